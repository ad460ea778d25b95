//! `natgrad bench fvp --compare-jax`: the same Curves products timed in JAX right after
//! natgrad's own run (the JAX half of `scripts/compare-frameworks.py`, embedded, "highest"
//! precision), and natgrad / JAX ratios per operation and batch size. With several rounds
//! the two tools alternate (natgrad, JAX, natgrad, JAX, …) and the median of the per-round
//! ratios is reported, so a machine that changes speed midway affects both alike.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::bench::Report;

/// The comparison script, run by `python3 -` from its text.
const SCRIPT: &str = include_str!("../../../scripts/compare-frameworks.py");

/// natgrad's operation for each of the script's: (script name, natgrad name, JAX form).
const PAIRS: [(&str, &str, &str); 3] = [
    ("product", "apply", "linearize once, jit tangent + transpose"),
    ("loss", "forward", "jit(loss)"),
    ("loss+gradient", "gradient", "jit(value_and_grad(loss))"),
];

/// Runs JAX on `batches` (`runs` timed runs each) after natgrad's `first` report, then
/// `rounds − 1` more rounds of natgrad (`again`) and JAX, and returns the side-by-side table.
pub fn compare(
    first: &Report,
    mut again: impl FnMut() -> Result<Report, String>,
    batches: &[usize],
    runs: usize,
    rounds: usize,
) -> Result<String, String> {
    let batch_list = batches.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let runs = runs.to_string();
    let args = ["--only", "jax", "--precision", "highest", "--batch", &batch_list, "--runs", &runs];
    let mut natgrad_rounds: Vec<Vec<(String, usize, f64)>> = Vec::new();
    let mut jax_rounds = Vec::new();
    for round in 0..rounds.max(1) {
        let report = if round == 0 { None } else { Some(again()?) };
        let report = report.as_ref().unwrap_or(first);
        natgrad_rounds
            .push(report.results.iter().map(|t| (t.what.to_string(), t.batch, t.median_ms)).collect());
        jax_rounds.push(run_script(&args)?);
    }
    let per_round_ms = |rounds: &[Vec<(String, usize, f64)>], what: &str, batch: usize| -> Option<Vec<f64>> {
        rounds.iter().map(|r| r.iter().find(|(w, b, _)| w == what && *b == batch).map(|t| t.2)).collect()
    };
    let mut out = format!(
        "natgrad vs JAX (same machine, {} alternating round(s); medians of {runs} runs per round):\n",
        natgrad_rounds.len()
    );
    let _ = writeln!(
        out,
        "{:<9} {:>6} {:>11} {:>9} {:>8}  {:<24} JAX form",
        "what", "batch", "natgrad ms", "JAX ms", "ratio", "ratio per round"
    );
    for &batch in batches {
        for (script_name, ours, form) in PAIRS {
            let (Some(natgrad), Some(jax)) =
                (per_round_ms(&natgrad_rounds, ours, batch), per_round_ms(&jax_rounds, script_name, batch))
            else {
                continue;
            };
            let ratios: Vec<f64> = natgrad.iter().zip(&jax).map(|(n, j)| n / j).collect();
            let per_round = ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
            let _ = writeln!(
                out,
                "{ours:<9} {batch:>6} {:>11.2} {:>9.2} {:>8.2}  {per_round:<24} {form}",
                median(&natgrad),
                median(&jax),
                median(&ratios)
            );
        }
    }
    Ok(out)
}

/// The median (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// (operation, batch, median ms) from the script's `jax VERSION highest batch N WHAT MS ms` lines.
fn run_script(args: &[&str]) -> Result<Vec<(String, usize, f64)>, String> {
    let hint = "--compare-jax needs python3 with JAX installed (pip install \"jax[cpu]\")";
    let mut child = Command::new("python3")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{hint}: starting python3: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("python3's stdin")?
        .write_all(SCRIPT.as_bytes())
        .map_err(|e| format!("{hint}: {e}"))?;
    let output = child.wait_with_output().map_err(|e| format!("{hint}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("{hint}; the JAX run failed: {last}"));
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<(String, usize, f64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        ["jax", _, "highest", "batch", batch, what, ms, "ms"] => {
            Some((what.to_string(), batch.parse().ok()?, ms.parse().ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{median, parse_line};

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[0.8]), 0.8);
    }

    #[test]
    fn script_lines_parse() {
        let line = "jax 0.10.2 highest  batch   1000 loss+gradient   14.336 ms";
        assert_eq!(parse_line(line), Some(("loss+gradient".to_string(), 1000, 14.336)));
        assert_eq!(parse_line("jax 0.10.2 tf32 batch 1000 loss 5.8 ms"), None);
        assert_eq!(parse_line("torch 2.5 highest batch 1000 loss 5.8 ms"), None);
    }
}
