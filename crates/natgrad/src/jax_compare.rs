//! `natgrad bench fvp --compare-jax`: the same Curves products timed in JAX right after
//! natgrad's own run (the JAX half of `scripts/compare-frameworks.py`, embedded, "highest"
//! precision), and natgrad / JAX ratios per operation and batch size.

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

/// Runs JAX on `batches` (`runs` timed runs each) and returns the side-by-side table.
pub fn compare(report: &Report, batches: &[usize], runs: usize) -> Result<String, String> {
    let batch_list = batches.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let jax = run_script(&[
        "--only",
        "jax",
        "--precision",
        "highest",
        "--batch",
        &batch_list,
        "--runs",
        &runs.to_string(),
    ])?;
    let mut out = String::from("natgrad vs JAX (same machine, one after the other; medians):\n");
    let _ = writeln!(
        out,
        "{:<9} {:>6} {:>11} {:>9} {:>8}  JAX form",
        "what", "batch", "natgrad ms", "JAX ms", "ratio"
    );
    for &batch in batches {
        for (script_name, ours, form) in PAIRS {
            let theirs = jax.iter().find(|(what, b, _)| what == script_name && *b == batch).map(|t| t.2);
            let natgrad =
                report.results.iter().find(|t| t.what == ours && t.batch == batch).map(|t| t.median_ms);
            if let (Some(jax_ms), Some(natgrad_ms)) = (theirs, natgrad) {
                let _ = writeln!(
                    out,
                    "{ours:<9} {batch:>6} {natgrad_ms:>11.2} {jax_ms:>9.2} {:>8.2}  {form}",
                    natgrad_ms / jax_ms
                );
            }
        }
    }
    Ok(out)
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
    use super::parse_line;

    #[test]
    fn script_lines_parse() {
        let line = "jax 0.10.2 highest  batch   1000 loss+gradient   14.336 ms";
        assert_eq!(parse_line(line), Some(("loss+gradient".to_string(), 1000, 14.336)));
        assert_eq!(parse_line("jax 0.10.2 tf32 batch 1000 loss 5.8 ms"), None);
        assert_eq!(parse_line("torch 2.5 highest batch 1000 loss 5.8 ms"), None);
    }
}
