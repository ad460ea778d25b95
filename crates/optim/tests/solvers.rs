//! CG and MinRes-QLP against dense solutions: SPD, damped, ill-conditioned, singular
//! (compatible and incompatible), indefinite, and the classic MinRes-QLP test problems.

use natgrad_optim::{
    CgFlag, CgOptions, HostOf, MinresFlag, MinresQlpOptions, OpError, cg, minres_qlp,
    minres_qlp_preconditioned,
};
use rand::{Rng, SeedableRng};

type Matrix = Vec<Vec<f64>>;

fn matvec(a: &Matrix, x: &[f64]) -> Vec<f64> {
    a.iter().map(|row| row.iter().zip(x).map(|(p, q)| p * q).sum()).collect()
}

fn operator(a: &Matrix) -> impl FnMut(&Vec<f64>, &mut Vec<f64>) -> Result<(), OpError> + '_ {
    move |x, out| {
        *out = matvec(a, x);
        Ok(())
    }
}

/// A random orthogonal matrix (Gram–Schmidt on a random matrix).
fn orthogonal(n: usize, seed: u64) -> Matrix {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut q: Matrix = Vec::new();
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        for u in &q {
            let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= d * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            q.push(v.iter().map(|x| x / norm).collect());
        }
    }
    q
}

/// `Qᵀ diag(d) Q` with rows of `q` as eigenvectors.
fn from_eigen(q: &Matrix, d: &[f64]) -> Matrix {
    let n = d.len();
    (0..n).map(|i| (0..n).map(|j| (0..n).map(|k| q[k][i] * d[k] * q[k][j]).sum()).collect()).collect()
}

/// `Qᵀ diag(1/d, 0 where d = 0) Q b`: the pseudo-inverse solution.
fn pinv_solve(q: &Matrix, d: &[f64], b: &[f64]) -> Vec<f64> {
    let coefficients: Vec<f64> = q
        .iter()
        .zip(d)
        .map(
            |(row, &di)| {
                if di.abs() < 1e-14 { 0.0 } else { row.iter().zip(b).map(|(a, b)| a * b).sum::<f64>() / di }
            },
        )
        .collect();
    (0..b.len()).map(|j| q.iter().zip(&coefficients).map(|(row, c)| row[j] * c).sum()).collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn rhs(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

const OPS: HostOf<f64> = HostOf::new_const();

#[test]
fn spd_systems() {
    let n = 30;
    let q = orthogonal(n, 1);
    let d: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
    let a = from_eigen(&q, &d);
    let b = rhs(n, 2);
    let expected = pinv_solve(&q, &d, &b);
    let options = CgOptions { progress: None, tolerance: 1e-12, ..CgOptions::default() };
    let r = cg(&OPS, &mut operator(&a), &b, None, None, &options).unwrap();
    assert_eq!(r.flag, CgFlag::Converged);
    assert!(rel(&r.x, &expected) < 1e-9, "cg: {}", rel(&r.x, &expected));
    // Warm start at the solution converges at once.
    let warm = cg(&OPS, &mut operator(&a), &b, Some(&expected), None, &options).unwrap();
    assert!(warm.iterations <= 1);
    // A diagonal preconditioner (here the exact inverse diagonal of a diagonal matrix) helps.
    let diag: Matrix = (0..n).map(|i| (0..n).map(|j| if i == j { d[i] } else { 0.0 }).collect()).collect();
    let inv: Vec<f64> = d.iter().map(|x| 1.0 / x).collect();
    let pre = cg(&OPS, &mut operator(&diag), &b, None, Some(&inv), &options).unwrap();
    assert_eq!(pre.iterations, 1);
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions { rtol: 1e-12, ..Default::default() })
        .unwrap();
    assert_eq!(m.flag, MinresFlag::Solved);
    assert!(rel(&m.x, &expected) < 1e-9, "minres: {}", rel(&m.x, &expected));
    assert!(m.cond >= 1.0 && m.a_norm > 0.0);
}

#[test]
fn damped_system_uses_the_shift() {
    let n = 25;
    let q = orthogonal(n, 3);
    let d: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect(); // PSD, one zero eigenvalue
    let a = from_eigen(&q, &d);
    let b = rhs(n, 4);
    let shifted: Vec<f64> = d.iter().map(|x| x + 0.7).collect();
    let expected = pinv_solve(&q, &shifted, &b);
    let m = minres_qlp(
        &OPS,
        &mut operator(&a),
        &b,
        &MinresQlpOptions { shift: 0.7, rtol: 1e-12, ..Default::default() },
    )
    .unwrap();
    assert_eq!(m.flag, MinresFlag::Solved);
    assert!(rel(&m.x, &expected) < 1e-9);
}

#[test]
fn ill_conditioned_system() {
    let n = 40;
    let q = orthogonal(n, 5);
    // A few tiny eigenvalues under a well-spread bulk: cond = 2e10.
    let d: Vec<f64> = (0..n)
        .map(|i| if i < 3 { 10f64.powi(-10 + 3 * i as i32) } else { 1.0 + i as f64 / n as f64 })
        .collect();
    let a = from_eigen(&q, &d);
    let b = rhs(n, 6);
    let m = minres_qlp(
        &OPS,
        &mut operator(&a),
        &b,
        &MinresQlpOptions { rtol: 1e-8, max_iterations: 400, ..Default::default() },
    )
    .unwrap();
    assert_eq!(m.flag, MinresFlag::Solved);
    // ‖x‖ ≈ 1e10 here, so judge the computed residual by the backward error
    // ‖b − Ax‖ / (‖A‖‖x‖ + ‖b‖), which rounding in `A` itself limits to ~1e-16.
    let norm = |v: &[f64]| v.iter().map(|r| r * r).sum::<f64>().sqrt();
    let residual: Vec<f64> = matvec(&a, &m.x).iter().zip(&b).map(|(ax, b)| ax - b).collect();
    let backward = norm(&residual) / (2.0 * norm(&m.x) + norm(&b));
    assert!(backward < 1e-12, "backward error {backward:e}");
    assert!(m.cond > 1e5, "condition estimate {:e}", m.cond);
}

#[test]
fn singular_compatible_gives_the_minimum_norm_solution() {
    let n = 20;
    let q = orthogonal(n, 7);
    let d: Vec<f64> = (0..n).map(|i| if i < 5 { 0.0 } else { i as f64 - 2.0 }).collect();
    let a = from_eigen(&q, &d);
    // b in the range of A.
    let b = matvec(&a, &rhs(n, 8));
    let expected = pinv_solve(&q, &d, &b);
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions { rtol: 1e-12, ..Default::default() })
        .unwrap();
    assert!(matches!(m.flag, MinresFlag::Solved), "{:?}", m.flag);
    assert!(rel(&m.x, &expected) < 1e-8, "min-norm: {:e}", rel(&m.x, &expected));
}

#[test]
fn singular_incompatible_gives_the_least_squares_solution() {
    let n = 20;
    let q = orthogonal(n, 9);
    let d: Vec<f64> = (0..n).map(|i| if i < 3 { 0.0 } else { (i as f64 - 10.0).max(1.0) }).collect();
    let a = from_eigen(&q, &d);
    let b = rhs(n, 10); // has components in the null space
    let expected = pinv_solve(&q, &d, &b);
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions::default()).unwrap();
    assert!(matches!(m.flag, MinresFlag::LeastSquares | MinresFlag::Singular), "{:?}", m.flag);
    assert!(rel(&m.x, &expected) < 1e-8, "least squares: {:e}", rel(&m.x, &expected));
}

#[test]
fn cg_reports_indefinite_matrices() {
    let n = 10;
    let q = orthogonal(n, 11);
    let d: Vec<f64> = (0..n).map(|i| i as f64 - 4.5).collect();
    let a = from_eigen(&q, &d);
    let r = cg(&OPS, &mut operator(&a), &rhs(n, 12), None, None, &CgOptions::default()).unwrap();
    assert_eq!(r.flag, CgFlag::NegativeCurvature);
}

#[test]
fn cg_stops_on_martens_progress_rule() {
    let n = 60;
    let q = orthogonal(n, 13);
    let d: Vec<f64> = (0..n).map(|i| 10f64.powf(-6.0 * i as f64 / n as f64)).collect();
    let a = from_eigen(&q, &d);
    let r = cg(
        &OPS,
        &mut operator(&a),
        &rhs(n, 14),
        None,
        None,
        &CgOptions { tolerance: 1e-30, ..CgOptions::default() },
    )
    .unwrap();
    assert_eq!(r.flag, CgFlag::Progress);
    let i = r.iterations;
    let k = 10usize.max((0.1 * i as f64).ceil() as usize);
    let (qi, qk) = (r.quadratic[i - 1], r.quadratic[i - 1 - k]);
    assert!((qi - qk) / qi < k as f64 * 5e-4);
    // The quadratic decreases monotonically in CG.
    assert!(r.quadratic.windows(2).all(|w| w[1] <= w[0] + 1e-12));
}

#[test]
fn classic_tridiagonal_problem() {
    let n: usize = 100;
    let a: Matrix = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        4.0
                    } else if i.abs_diff(j) == 1 {
                        -2.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let b: Vec<f64> = matvec(&a, &vec![1.0; n]);
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions { rtol: 1e-12, ..Default::default() })
        .unwrap();
    assert_eq!(m.flag, MinresFlag::Solved);
    assert!(rel(&m.x, &vec![1.0; n]) < 1e-8);
    // With the diagonal preconditioner M = diag(A)⁻¹ = 1/4.
    let diagonal = vec![0.25; n];
    let options = MinresQlpOptions { rtol: 1e-12, ..Default::default() };
    let p = minres_qlp_preconditioned(&OPS, &mut operator(&a), &b, Some(&diagonal), &options).unwrap();
    assert_eq!(p.flag, MinresFlag::Solved);
    assert!(rel(&p.x, &vec![1.0; n]) < 1e-8);
}

#[test]
fn a_diagonal_preconditioner_speeds_up_a_badly_scaled_system() {
    let n: usize = 60;
    let scale: Vec<f64> = (0..n).map(|i| 10f64.powf(3.0 * i as f64 / n as f64)).collect();
    // A = S T S with T the tridiagonal 4/−1 matrix: diag(A) spans 6 decades.
    let entry = |i: usize, j: usize| {
        if i == j {
            4.0
        } else if i.abs_diff(j) == 1 {
            -1.0
        } else {
            0.0
        }
    };
    let a: Matrix = (0..n).map(|i| (0..n).map(|j| scale[i] * scale[j] * entry(i, j)).collect()).collect();
    let b = rhs(n, 17);
    let options = MinresQlpOptions { rtol: 1e-10, max_iterations: 1000, ..Default::default() };
    let plain = minres_qlp(&OPS, &mut operator(&a), &b, &options).unwrap();
    let inverse_diagonal: Vec<f64> = (0..n).map(|i| 1.0 / a[i][i]).collect();
    let pre =
        minres_qlp_preconditioned(&OPS, &mut operator(&a), &b, Some(&inverse_diagonal), &options).unwrap();
    assert_eq!(pre.flag, MinresFlag::Solved);
    assert!(pre.iterations < plain.iterations, "{} vs {}", pre.iterations, plain.iterations);
    let residual: Vec<f64> = matvec(&a, &pre.x).iter().zip(&b).map(|(ax, b)| ax - b).collect();
    let norm = |v: &[f64]| v.iter().map(|r| r * r).sum::<f64>().sqrt();
    assert!(norm(&residual) / norm(&b) < 1e-6, "{:e}", norm(&residual) / norm(&b));
}

#[test]
fn classic_singular_diagonal_problem() {
    // diag(−10, …, 10) with b = 1: singular (0 on the diagonal) and incompatible.
    let d: Vec<f64> = (-10..=10).map(|i| i as f64).collect();
    let n = d.len();
    let a: Matrix = (0..n).map(|i| (0..n).map(|j| if i == j { d[i] } else { 0.0 }).collect()).collect();
    let b = vec![1.0; n];
    let expected: Vec<f64> = d.iter().map(|&x| if x == 0.0 { 0.0 } else { 1.0 / x }).collect();
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions::default()).unwrap();
    assert!(matches!(m.flag, MinresFlag::LeastSquares | MinresFlag::Singular), "{:?}", m.flag);
    assert!(rel(&m.x, &expected) < 1e-8, "{:e}", rel(&m.x, &expected));
}

#[test]
#[allow(clippy::needless_range_loop)] // symmetric fill reads clearer with indices
fn classic_zeroed_random_problem() {
    // 10×10 random symmetric matrix with its last 3 rows and columns zeroed.
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let n = 10;
    let mut a: Matrix = vec![vec![0.0; n]; n];
    for i in 0..n - 3 {
        for j in 0..=i {
            let v = rng.random_range(-1.0..1.0);
            a[i][j] = v;
            a[j][i] = v;
        }
    }
    let b = rhs(n, 16);
    let m = minres_qlp(&OPS, &mut operator(&a), &b, &MinresQlpOptions::default()).unwrap();
    // Minimum-norm least squares: the zeroed block gets nothing, the rest solves A₇ x = b₇.
    assert!(m.x[n - 3..].iter().all(|v| v.abs() < 1e-10), "{:?}", &m.x[n - 3..]);
    let residual: Vec<f64> = matvec(&a, &m.x).iter().zip(&b).map(|(ax, b)| ax - b).collect();
    assert!(residual[..n - 3].iter().all(|r| r.abs() < 1e-8), "{residual:?}");
}
