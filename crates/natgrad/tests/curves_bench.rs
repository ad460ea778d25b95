//! End to end on a tiny configuration: every method lowers the error, and the CSV, the
//! figure (PNG, SVG) and the summary table are written.

use std::time::Duration;

use natgrad::curves_bench::{CurvesBench, Method, run};

#[test]
fn every_method_lowers_the_error_and_all_outputs_are_written() {
    let out = std::env::temp_dir().join(format!("natgrad-curves-{}", std::process::id()));
    let options = CurvesBench {
        budget: Duration::from_secs(60),
        out: out.clone(),
        sizes: Some((256, 64)),
        max_iterations: Some(3),
        ..CurvesBench::reduced()
    };
    let summaries = run(&options).unwrap();
    assert_eq!(summaries.len(), Method::ALL.len());
    for s in &summaries {
        assert!(s.iterations > 0, "{:?} ran no iteration", s.method);
        assert!(s.train_error < s.initial_error, "{:?}: {} → {}", s.method, s.initial_error, s.train_error);
        assert!(s.test_error.is_finite());
    }
    for file in ["curves.csv", "figure3.png", "figure3.svg", "summary.md"] {
        let len = std::fs::metadata(out.join(file)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{file} is missing or empty");
    }
    let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    assert!(csv.starts_with("method,iteration,seconds,train_error,test_error"));
    for m in Method::ALL {
        assert!(csv.lines().any(|l| l.starts_with(&format!("{},", m.name()))), "no rows for {}", m.name());
    }
    let png = std::fs::read(out.join("figure3.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    std::fs::remove_dir_all(&out).ok();
}
