//! The paper's section-7 and section-8 experiments end to end on small Fashion-MNIST-shaped
//! directories written here: `bench unlabeled` (every run lowers the training cost, the
//! unlabeled pool's labels are never read — they are invalid on purpose) and `bench order`
//! (variances of the right shape, finite and positive, reproducible); both write their CSV,
//! figure and table.

use std::path::Path;

use natgrad::order_bench::{OrderBench, OrderMethod};
use natgrad::unlabeled_bench::{MetricBatch, UnlabeledBench, run};

/// An IDX file of unsigned bytes.
fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// Class `k` images: a bright horizontal band at rows 3k..3k+3, with noise.
fn images(labels: &[u8], seed: u32) -> Vec<u8> {
    let mut state = seed;
    labels
        .iter()
        .flat_map(|&k| (0..784).map(move |p| (p / 28, usize::from(k.min(8)))))
        .map(|(row, k)| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = (state >> 24) as u8 / 4;
            if row / 3 == k { 200 + noise / 2 } else { noise }
        })
        .collect()
}

#[test]
fn every_run_lowers_the_cost_without_reading_unlabeled_labels() {
    let dir = std::env::temp_dir().join(format!("natgrad-unlabeled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (labeled, pool, test) = (120usize, 200usize, 60usize);
    let mut train_labels: Vec<u8> = (0..labeled).map(|i| (i % 3) as u8).collect();
    let pool_classes: Vec<u8> = (0..pool).map(|i| (i % 3) as u8).collect();
    let mut pixels = images(&train_labels, 1);
    pixels.extend(images(&pool_classes, 2));
    train_labels.extend(std::iter::repeat_n(255u8, pool)); // invalid: must never be read
    let test_labels: Vec<u8> = (0..test).map(|i| (i % 3) as u8).collect();
    let n = (labeled + pool) as u32;
    idx(&dir.join("train-images-idx3-ubyte"), &[n, 28, 28], &pixels);
    idx(&dir.join("train-labels-idx1-ubyte"), &[n], &train_labels);
    idx(&dir.join("t10k-images-idx3-ubyte"), &[test as u32, 28, 28], &images(&test_labels, 3));
    idx(&dir.join("t10k-labels-idx1-ubyte"), &[test as u32], &test_labels);

    let options = UnlabeledBench {
        data: dir.clone(),
        labeled,
        updates: 6,
        eval_every: 3,
        gradient_batch: 40,
        metric_batch: 50,
        filters: 4,
        hidden: 16,
        out: dir.join("out"),
        ..UnlabeledBench::default()
    };
    let summaries = run(&options).unwrap();
    assert_eq!(summaries.iter().map(|s| s.metric).collect::<Vec<_>>(), MetricBatch::ALL.to_vec());
    for s in &summaries {
        assert_eq!(s.updates, 6);
        assert_eq!(s.evaluations.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 3, 6]);
        let (first, last) = (s.evaluations[0], s.last());
        assert!(last.1 < first.1, "{:?}: training cost {} → {}", s.metric, first.1, last.1);
        assert!((0.0..=100.0).contains(&last.2));
    }
    // Same start, same gradient batches: the runs differ only through the metric.
    assert_eq!(summaries[0].evaluations[0], summaries[2].evaluations[0]);
    assert_ne!(summaries[0].last().1, summaries[2].last().1);
    let csv = std::fs::read_to_string(dir.join("out/unlabeled.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 3);
    assert_eq!(&std::fs::read(dir.join("out/figure1.png")).unwrap()[..4], b"\x89PNG");
    let table = std::fs::read_to_string(dir.join("out/summary.md")).unwrap();
    assert!(table.contains("| unlabeled | 6 |"), "{table}");

    let too_many = UnlabeledBench { labeled: labeled + pool, ..options };
    let message = run(&too_many).unwrap_err().to_string();
    assert!(message.contains("--labeled must be between 1 and 319"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn order_measures_a_variance_per_segment_for_both_methods() {
    let dir = std::env::temp_dir().join(format!("natgrad-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labels: Vec<u8> = (0..90).map(|i| (i % 3) as u8).collect();
    idx(&dir.join("train-images-idx3-ubyte"), &[90, 28, 28], &images(&labels, 5));
    idx(&dir.join("train-labels-idx1-ubyte"), &[90], &labels);
    idx(&dir.join("t10k-images-idx3-ubyte"), &[30, 28, 28], &images(&labels[..30], 6));
    idx(&dir.join("t10k-labels-idx1-ubyte"), &[30], &labels[..30]);
    let options = OrderBench {
        data: dir.clone(),
        segments: 3,
        segment_size: 32,
        rest: 64,
        repeats: 2,
        batch: 32,
        hidden: 8,
        out: dir.join("out"),
        ..OrderBench::default()
    };
    let summaries = natgrad::order_bench::run(&options).unwrap();
    assert_eq!(
        summaries.iter().map(|s| s.method).collect::<Vec<_>>(),
        vec![OrderMethod::Sgd, OrderMethod::Ngd]
    );
    for s in &summaries {
        assert_eq!(s.variance.len(), 3);
        assert!(s.variance.iter().all(|v| v.is_finite() && *v > 0.0), "{:?}", s.variance);
        assert!((0.0..=100.0).contains(&s.heldout_error));
    }
    let again = natgrad::order_bench::run(&OrderBench { out: dir.join("again"), ..options.clone() }).unwrap();
    assert_eq!(again[1].variance, summaries[1].variance, "seeded: the same runs again");
    let csv = std::fs::read_to_string(dir.join("out/order.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    assert_eq!(&std::fs::read(dir.join("out/figure2.png")).unwrap()[..4], b"\x89PNG");
    let bad = natgrad::order_bench::run(&OrderBench { repeats: 1, ..options });
    assert!(bad.unwrap_err().to_string().contains("≥ 2 repeats"));
    std::fs::remove_dir_all(&dir).ok();
}
