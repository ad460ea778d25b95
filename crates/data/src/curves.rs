//! The Curves data set, regenerated: 28×28 images of a random cubic spline through three
//! points, inked at 60 points evenly spaced in arc length by bilinear splatting, blurred
//! with a 3×3 kernel and clipped to [0, 1] (recipe and choices in `shared/curves.md`).
//! Results on it are reported as "Curves (regenerated)".

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Dataset;

/// Image side.
pub const SIDE: usize = 28;

/// The curve through the three points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spline {
    /// Natural cubic spline (second derivative 0 at both ends) — the default.
    Natural,
    /// The parabola through the points (what MATLAB's `spline` gives for 3 points).
    Parabola,
}

/// Generator settings.
#[derive(Clone, Debug)]
pub struct CurvesOptions {
    /// Seed; train and test come from separate streams derived from it.
    pub seed: u64,
    /// Training images.
    pub train: usize,
    /// Test images.
    pub test: usize,
    /// Curve family.
    pub spline: Spline,
    /// Ink per trajectory point.
    pub ink: f64,
    /// Blur kernel parameter t (kernel `[[t²/4, t/2, t²/4], [t/2, 1, t/2], [t²/4, t/2, t²/4]]`).
    pub blur: f64,
    /// Redraw curves that leave [0.5, 26.5].
    pub reject_outside: bool,
}

impl Default for CurvesOptions {
    fn default() -> CurvesOptions {
        CurvesOptions {
            seed: 1,
            train: 20_000,
            test: 10_000,
            spline: Spline::Natural,
            ink: 0.5,
            blur: 0.5,
            reject_outside: false,
        }
    }
}

/// The generated train and test sets (784 values per image, row-major, row = y).
#[derive(Clone, Debug)]
pub struct Curves {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
}

/// More images asked for than the machine has memory for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("out of memory: {images} Curves images of 784 f32 pixels need {}, which could not be allocated", match *bytes {
    usize::MAX => "more bytes than can be addressed".to_string(),
    n => format!("{n} bytes"),
})]
pub struct OutOfMemory {
    /// Images asked for.
    pub images: usize,
    /// Bytes they need (saturated at `usize::MAX`).
    pub bytes: usize,
}

impl Curves {
    /// Generates the data set; sizes the machine cannot hold are an error, not an abort.
    pub fn generate(options: &CurvesOptions) -> Result<Curves, OutOfMemory> {
        let make = |count: usize, stream: u64| {
            let mut rng = StdRng::seed_from_u64(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream);
            let pixels = count.checked_mul(SIDE * SIDE);
            let out_of_memory = || OutOfMemory {
                images: count,
                bytes: pixels.map_or(usize::MAX, |n| n.saturating_mul(size_of::<f32>())),
            };
            let mut data = Vec::new();
            data.try_reserve_exact(pixels.ok_or_else(out_of_memory)?).map_err(|_| out_of_memory())?;
            for _ in 0..count {
                data.extend(image(&mut rng, options).iter().map(|&v| v as f32));
            }
            Ok(Dataset { width: SIDE * SIDE, data })
        };
        Ok(Curves { train: make(options.train, 1)?, test: make(options.test, 2)? })
    }
}

/// The curve `y = s(x)` through three points with increasing x.
fn curve(spline: Spline, xs: [f64; 3], ys: [f64; 3]) -> impl Fn(f64) -> f64 {
    let (h1, h2) = (xs[1] - xs[0], xs[2] - xs[1]);
    let m2 = match spline {
        Spline::Natural => 6.0 * ((ys[2] - ys[1]) / h2 - (ys[1] - ys[0]) / h1) / (2.0 * (h1 + h2)),
        Spline::Parabola => 0.0,
    };
    move |x: f64| match spline {
        Spline::Natural => {
            let (i, h) = if x <= xs[1] { (0, h1) } else { (1, h2) };
            let (m_left, m_right) = if i == 0 { (0.0, m2) } else { (m2, 0.0) };
            let a = (xs[i + 1] - x) / h;
            let b = 1.0 - a;
            a * ys[i] + b * ys[i + 1] + ((a * a * a - a) * m_left + (b * b * b - b) * m_right) * h * h / 6.0
        }
        Spline::Parabola => {
            // Lagrange form through the three points.
            (0..3)
                .map(|i| {
                    let others: Vec<usize> = (0..3).filter(|&j| j != i).collect();
                    ys[i] * others.iter().map(|&j| (x - xs[j]) / (xs[i] - xs[j])).product::<f64>()
                })
                .sum()
        }
    }
}

/// One image, row-major.
fn image(rng: &mut StdRng, options: &CurvesOptions) -> Vec<f64> {
    loop {
        let mut xs = [rng.random_range(2.0..26.0), rng.random_range(2.0..26.0), rng.random_range(2.0..26.0)];
        xs.sort_by(f64::total_cmp);
        if xs[1] - xs[0] < 2.0 || xs[2] - xs[1] < 2.0 {
            continue;
        }
        let ys = [rng.random_range(2.0..26.0), rng.random_range(2.0..26.0), rng.random_range(2.0..26.0)];
        let s = curve(options.spline, xs, ys);
        // Tabulate the curve finely and walk its arc length.
        const STEPS: usize = 2000;
        let points: Vec<(f64, f64)> = (0..=STEPS)
            .map(|k| xs[0] + (xs[2] - xs[0]) * k as f64 / STEPS as f64)
            .map(|x| (x, s(x)))
            .collect();
        if options.reject_outside && points.iter().any(|&(_, y)| !(0.5..=26.5).contains(&y)) {
            continue;
        }
        let mut cumulative = vec![0.0];
        for w in points.windows(2) {
            let last = *cumulative.last().expect("non-empty");
            cumulative.push(last + ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt());
        }
        let length = *cumulative.last().expect("non-empty");
        let mut canvas = vec![0.0; SIDE * SIDE];
        let mut segment = 0;
        for k in 0..60 {
            let target = length * k as f64 / 59.0;
            while segment + 1 < points.len() - 1 && cumulative[segment + 1] < target {
                segment += 1;
            }
            let span = (cumulative[segment + 1] - cumulative[segment]).max(f64::MIN_POSITIVE);
            let f = ((target - cumulative[segment]) / span).clamp(0.0, 1.0);
            let x = points[segment].0 + f * (points[segment + 1].0 - points[segment].0);
            let y = points[segment].1 + f * (points[segment + 1].1 - points[segment].1);
            splat(&mut canvas, x, y, options.ink);
        }
        return blur(&canvas, options.blur).into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    }
}

/// Bilinear splat of `ink` at column x, row y into the four neighbouring pixels.
fn splat(canvas: &mut [f64], x: f64, y: f64, ink: f64) {
    let (c0, r0) = (x.floor(), y.floor());
    let (fc, fr) = (x - c0, y - r0);
    for (dr, wr) in [(0, 1.0 - fr), (1, fr)] {
        for (dc, wc) in [(0, 1.0 - fc), (1, fc)] {
            let (r, c) = (r0 as i64 + dr, c0 as i64 + dc);
            if (0..SIDE as i64).contains(&r) && (0..SIDE as i64).contains(&c) {
                canvas[r as usize * SIDE + c as usize] += ink * wr * wc;
            }
        }
    }
}

/// 3×3 blur with zero padding.
fn blur(canvas: &[f64], t: f64) -> Vec<f64> {
    let kernel =
        [[t * t / 4.0, t / 2.0, t * t / 4.0], [t / 2.0, 1.0, t / 2.0], [t * t / 4.0, t / 2.0, t * t / 4.0]];
    let mut out = vec![0.0; SIDE * SIDE];
    for r in 0..SIDE {
        for c in 0..SIDE {
            let mut total = 0.0;
            for (dr, row) in kernel.iter().enumerate() {
                for (dc, w) in row.iter().enumerate() {
                    let (rr, cc) = (r as i64 + dr as i64 - 1, c as i64 + dc as i64 - 1);
                    if (0..SIDE as i64).contains(&rr) && (0..SIDE as i64).contains(&cc) {
                        total += w * canvas[rr as usize * SIDE + cc as usize];
                    }
                }
            }
            out[r * SIDE + c] = total;
        }
    }
    out
}
