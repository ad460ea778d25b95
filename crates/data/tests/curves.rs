//! The Curves generator: deterministic, in range, and with the image statistics of the
//! prototype in `shared/curves.md`.

use natgrad_data::{BatchStream, Curves, CurvesOptions, Spline};

fn small(seed: u64) -> Curves {
    Curves::generate(&CurvesOptions { seed, train: 2000, test: 200, ..CurvesOptions::default() }).unwrap()
}

#[test]
fn same_seed_same_images_other_seed_other_images() {
    let (a, b, c) = (small(7), small(7), small(8));
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    assert_ne!(a.train, c.train);
    assert_ne!(a.train.head(200), a.test, "train and test come from separate streams");
    assert_eq!(a.train.len(), 2000);
    assert_eq!(a.train.width, 784);
}

#[test]
fn values_are_in_the_unit_interval() {
    let d = small(3);
    assert!(d.train.data.iter().chain(&d.test.data).all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn image_statistics_match_the_recipe() {
    let d = small(1);
    let n = d.train.len() as f64;
    let pixels = d.train.data.len() as f64;
    let mean = d.train.data.iter().map(|&v| v as f64).sum::<f64>() / pixels;
    let inked = d.train.data.iter().filter(|&&v| v > 0.05).count() as f64 / pixels;
    let saturated = d.train.data.iter().filter(|&&v| v >= 0.99).count() as f64 / pixels;
    let mean_image: Vec<f64> =
        (0..784).map(|p| (0..d.train.len()).map(|i| d.train.row(i)[p] as f64).sum::<f64>() / n).collect();
    let squared = |image: &dyn Fn(usize) -> f64| {
        (0..d.train.len())
            .map(|i| {
                d.train.row(i).iter().enumerate().map(|(p, &v)| (v as f64 - image(p)).powi(2)).sum::<f64>()
            })
            .sum::<f64>()
            / n
    };
    let error_of_mean = squared(&|p| mean_image[p]);
    let error_of_zeros = squared(&|_| 0.0);
    println!(
        "mean {mean:.4} inked {inked:.4} saturated {saturated:.4} mean-image error {error_of_mean:.2} zeros {error_of_zeros:.2}"
    );
    // Prototype: 0.071, 0.135, 0.031, 35.2, 41.1.
    assert!((0.06..0.085).contains(&mean), "mean pixel {mean}");
    assert!((0.11..0.16).contains(&inked), "inked fraction {inked}");
    assert!((0.015..0.05).contains(&saturated), "saturated fraction {saturated}");
    assert!((31.0..39.0).contains(&error_of_mean), "squared error of the mean image {error_of_mean}");
    assert!((37.0..45.0).contains(&error_of_zeros), "squared error of zeros {error_of_zeros}");
}

#[test]
fn the_parabola_option_differs() {
    let a = Curves::generate(&CurvesOptions { train: 50, test: 1, ..CurvesOptions::default() }).unwrap();
    let b = Curves::generate(&CurvesOptions {
        train: 50,
        test: 1,
        spline: Spline::Parabola,
        ..CurvesOptions::default()
    })
    .unwrap();
    assert_ne!(a.train, b.train);
}

#[test]
fn batch_streams_cover_each_epoch_and_are_seeded() {
    let mut s = BatchStream::new(10, 5, 1);
    let mut seen: Vec<usize> = s.next_indices().to_vec();
    seen.extend(s.next_indices());
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    let mut t = BatchStream::new(10, 5, 1);
    let mut u = BatchStream::new(10, 5, 2);
    assert_eq!(BatchStream::new(10, 5, 1).next_indices(), t.next_indices());
    assert_ne!(t.next_indices().to_vec(), u.next_indices().to_vec());
}

#[test]
fn in_order_streams_visit_examples_as_stored() {
    let mut s = BatchStream::in_order(7, 3);
    assert_eq!(s.next_indices(), &[0, 1, 2]);
    assert_eq!(s.next_indices(), &[3, 4, 5]);
    assert_eq!(s.next_indices(), &[0, 1, 2], "the incomplete last batch is skipped");
}
