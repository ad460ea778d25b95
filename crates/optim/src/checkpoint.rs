//! Checkpoints: parameters, optimizer state and the iteration count, written atomically
//! (a temporary file renamed into place). Resuming replays the batch streams, so a resumed
//! CPU run equals the uninterrupted one bit for bit.

use std::io::{self, Write};
use std::path::Path;

use crate::problem::Problem;
use crate::train::{Optimizer, OptimizerState};
use crate::vector::VectorOps;

/// A saved training state.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Optimizer name (checked on resume).
    pub method: String,
    /// Iterations completed.
    pub iteration: usize,
    /// Parameters.
    pub theta: Vec<f64>,
    /// Optimizer state.
    pub state: OptimizerState,
}

const MAGIC: &str = "natgrad-checkpoint 1";

fn line(values: &[f64]) -> String {
    values.iter().map(|v| format!("{:016x}", v.to_bits())).collect::<Vec<_>>().join(" ")
}

fn parse_line(text: &str) -> Result<Vec<f64>, String> {
    text.split_whitespace()
        .map(|w| u64::from_str_radix(w, 16).map(f64::from_bits).map_err(|e| format!("`{w}`: {e}")))
        .collect()
}

impl Checkpoint {
    /// Captures the state of a run after `iteration` iterations.
    pub fn capture<P: Problem, O: Optimizer<P> + ?Sized>(
        ops: &P::Ops,
        optimizer: &O,
        theta: &<P::Ops as VectorOps>::Vector,
        iteration: usize,
    ) -> Checkpoint {
        Checkpoint {
            method: optimizer.name().to_string(),
            iteration,
            theta: ops.to_f64(theta),
            state: optimizer.state(ops),
        }
    }

    /// The checkpoint as text: values as exact bit patterns, one vector per line.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{MAGIC}\n{}\n{}\n{}\n{}\n",
            self.method,
            self.iteration,
            line(&self.theta),
            line(&self.state.scalars)
        );
        text.push_str(&format!("{}\n", self.state.vectors.len()));
        for v in &self.state.vectors {
            text.push_str(&line(v));
            text.push('\n');
        }
        text
    }

    /// Writes the checkpoint atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(self.to_text().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    /// Reads a checkpoint written by [`Checkpoint::write`].
    pub fn read(path: &Path) -> io::Result<Checkpoint> {
        let text = std::fs::read_to_string(path)?;
        Checkpoint::parse(&text)
            .map_err(|what| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display())))
    }

    /// Parses the text of [`Checkpoint::to_text`].
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err("not a natgrad checkpoint".into());
        }
        let method = lines.next().ok_or("missing method")?.to_string();
        // Found by fuzzing: a name ending in '\r' did not survive writing and reading.
        if method.is_empty() || method.trim() != method || method.chars().any(char::is_control) {
            return Err(format!("bad method name {method:?}"));
        }
        let iteration = lines.next().and_then(|l| l.parse().ok()).ok_or("missing iteration")?;
        let theta = parse_line(lines.next().ok_or("missing parameters")?)?;
        let scalars = parse_line(lines.next().ok_or("missing scalars")?)?;
        let count: usize = lines.next().and_then(|l| l.parse().ok()).ok_or("missing vector count")?;
        let vectors = (0..count)
            .map(|_| parse_line(lines.next().ok_or("missing vector")?))
            .collect::<Result<Vec<_>, _>>()?;
        if lines.next().is_some() {
            return Err(format!("more lines than the {count} vectors announced"));
        }
        Ok(Checkpoint { method, iteration, theta, state: OptimizerState { scalars, vectors } })
    }

    /// Restores parameters and optimizer state, and replays the problem's batch streams to
    /// where the checkpointed run was. Returns the iterations already done. A checkpoint of
    /// another optimizer or of a model with another parameter count is an error.
    pub fn resume<P: Problem, O: Optimizer<P> + ?Sized>(
        &self,
        problem: &mut P,
        optimizer: &mut O,
        theta: &mut <P::Ops as VectorOps>::Vector,
    ) -> Result<usize, String> {
        if optimizer.name() != self.method {
            return Err(format!("checkpoint is of {}, not {}", self.method, optimizer.name()));
        }
        let ops = problem.ops().clone();
        if self.theta.len() != ops.len(theta) {
            return Err(format!(
                "checkpoint holds {} parameters, the model has {}",
                self.theta.len(),
                ops.len(theta)
            ));
        }
        *theta = ops.vector_from_f64(&self.theta);
        optimizer.restore(&ops, &self.state);
        for _ in 0..self.iteration {
            problem.next_batch();
        }
        Ok(self.iteration)
    }
}

#[cfg(test)]
mod tests {
    use super::Checkpoint;

    #[test]
    fn malformed_checkpoints_are_errors() {
        let good = "natgrad-checkpoint 1\nngd\n3\n3ff0000000000000\n\n0\n";
        let parsed = Checkpoint::parse(good).unwrap();
        assert_eq!(parsed.to_text(), good);
        for (text, message) in [
            ("natgrad-checkpoint 1\nng\r\r\n0\n\n\n0\n", "bad method name \"ng\\r\""),
            ("natgrad-checkpoint 1\nngd\n3\nzz\n\n0\n", "`zz`"),
            ("natgrad-checkpoint 1\nngd\n3\n\n\n2\n\n", "missing vector"),
            ("natgrad-checkpoint 1\nngd\n3\n\n\n0\nextra\n", "more lines than the 0 vectors announced"),
            ("checkpoint\n", "not a natgrad checkpoint"),
        ] {
            let err = Checkpoint::parse(text).unwrap_err();
            assert!(err.contains(message), "{text:?}: {err}");
        }
    }
}
