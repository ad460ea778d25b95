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
    // The reported training time excludes evaluations, so it is never below a point's (the
    // last evaluation happens after the last step's clock reading and is not subtracted).
    for s in &summaries {
        let prefix = format!("{},", s.method.name());
        let latest = csv
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.split(',').nth(2)?.parse::<f64>().ok())
            .fold(0.0f64, f64::max);
        assert!(
            s.seconds >= 0.0 && s.seconds >= latest - 1e-4,
            "{:?}: {} s after a point at {latest} s",
            s.method,
            s.seconds
        );
    }
    let png = std::fs::read(out.join("figure3.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    std::fs::remove_dir_all(&out).ok();
}

/// The CSV without its seconds column (wall clock differs between runs).
fn without_seconds(csv: &str) -> Vec<String> {
    csv.lines()
        .map(|l| {
            l.split(',').enumerate().filter(|(i, _)| *i != 2).map(|(_, f)| f).collect::<Vec<_>>().join(",")
        })
        .collect()
}

#[test]
fn a_run_from_a_saved_start_reproduces_the_original_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("natgrad-curves-init-{}", std::process::id()));
    let saved = dir.join("theta0.npy");
    let base = CurvesBench {
        methods: vec![Method::Ngd, Method::NcgF],
        budget: Duration::from_secs(60),
        sizes: Some((300, 64)),
        max_iterations: Some(4),
        eval_every: Some(1),
        ..CurvesBench::reduced()
    };
    std::fs::create_dir_all(&dir).unwrap();
    let first = CurvesBench { out: dir.join("first"), save_init: Some(saved.clone()), ..base.clone() };
    let original = run(&first).unwrap();
    let second = CurvesBench { out: dir.join("second"), init: Some(saved.clone()), ..base.clone() };
    let replay = run(&second).unwrap();
    // The saved start is the sparse initialisation, as float32.
    let (shape, theta0) = natgrad::npy::read(&saved).unwrap();
    let model = natgrad::nn::curves_autoencoder();
    assert_eq!(shape, vec![model.layout.len()]);
    let sparse = natgrad::training::sparse_init::<f32>(&model.layout, base.seed);
    assert!(theta0.iter().zip(&sparse).all(|(a, b)| *a as f32 == *b));
    for (a, b) in original.iter().zip(&replay) {
        assert_eq!(a.iterations, 4);
        assert_eq!(a.train_error.to_bits(), b.train_error.to_bits(), "{:?}", a.method);
        assert_eq!(a.test_error.to_bits(), b.test_error.to_bits(), "{:?}", a.method);
    }
    let csv = |run: &str| std::fs::read_to_string(dir.join(run).join("curves.csv")).unwrap();
    let (a, b) = (without_seconds(&csv("first")), without_seconds(&csv("second")));
    assert_eq!(a.len(), 1 + 2 * (1 + 4 + 1), "a row per iteration with --eval-every 1");
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_start_of_the_wrong_length_is_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("natgrad-curves-bad-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short.npy");
    natgrad::npy::write(&path, &[10], &[0.5f32; 10]).unwrap();
    let options = CurvesBench {
        out: dir.join("out"),
        sizes: Some((64, 16)),
        max_iterations: Some(1),
        init: Some(path.clone()),
        ..CurvesBench::reduced()
    };
    let message = run(&options).unwrap_err().to_string();
    assert!(message.contains("short.npy") && message.contains("842340"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_method_that_turns_non_finite_is_reported_and_the_benchmark_goes_on() {
    let dir = std::env::temp_dir().join(format!("natgrad-curves-nan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Finite, but large enough that the forward pass overflows f32 in the decoder.
    let path = dir.join("huge.npy");
    let n = natgrad::nn::curves_autoencoder().layout.len();
    natgrad::npy::write(&path, &[n], &vec![1e37f32; n]).unwrap();
    let options = CurvesBench {
        methods: vec![Method::Sgd, Method::Ngd],
        out: dir.join("out"),
        sizes: Some((64, 16)),
        max_iterations: Some(2),
        init: Some(path),
        ..CurvesBench::reduced()
    };
    let summaries = run(&options).unwrap();
    assert_eq!(summaries.len(), 2, "both methods ran");
    for s in &summaries {
        let why = s.stopped.as_deref().unwrap_or_else(|| panic!("{:?} did not stop", s.method));
        assert!(why.contains("not finite") && why.contains("restored"), "{why}");
        assert_eq!(s.iterations, 0);
    }
    let table = std::fs::read_to_string(dir.join("out").join("summary.md")).unwrap();
    assert!(
        table.contains("| sgd (stopped early) |") && table.contains("ngd stopped early: iteration 1"),
        "{table}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
