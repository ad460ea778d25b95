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

fn parse_line(text: &str) -> io::Result<Vec<f64>> {
    text.split_whitespace()
        .map(|w| {
            u64::from_str_radix(w, 16)
                .map(f64::from_bits)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        })
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

    /// Writes the checkpoint (values as exact bit patterns) atomically.
    pub fn write(&self, path: &Path) -> io::Result<()> {
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
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    /// Reads a checkpoint written by [`Checkpoint::write`].
    pub fn read(path: &Path) -> io::Result<Checkpoint> {
        let text = std::fs::read_to_string(path)?;
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()));
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("not a natgrad checkpoint"));
        }
        let method = lines.next().ok_or_else(|| bad("missing method"))?.to_string();
        let iteration = lines.next().and_then(|l| l.parse().ok()).ok_or_else(|| bad("missing iteration"))?;
        let theta = parse_line(lines.next().ok_or_else(|| bad("missing parameters"))?)?;
        let scalars = parse_line(lines.next().ok_or_else(|| bad("missing scalars"))?)?;
        let count: usize =
            lines.next().and_then(|l| l.parse().ok()).ok_or_else(|| bad("missing vector count"))?;
        let vectors = (0..count)
            .map(|_| parse_line(lines.next().ok_or_else(|| bad("missing vector"))?))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Checkpoint { method, iteration, theta, state: OptimizerState { scalars, vectors } })
    }

    /// Restores parameters and optimizer state, and replays the problem's batch streams to
    /// where the checkpointed run was. Returns the iterations already done.
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
        *theta = ops.vector_from_f64(&self.theta);
        optimizer.restore(&ops, &self.state);
        for _ in 0..self.iteration {
            problem.next_batch();
        }
        Ok(self.iteration)
    }
}
