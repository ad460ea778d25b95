//! GEMM routes side by side on the Curves shapes, f32 and f64: GFLOP/s, medians of 15 runs.
//!
//! * `gemm`: gemm 0.19 with `Parallelism::Rayon(threads)` inside a rayon pool;
//! * `faer`: faer 0.24's `matmul` with `Par::rayon(threads)` (it calls gemm's kernels);
//! * `mm`: matrixmultiply's own threading (thread count from `MATMUL_NUM_THREADS`, read once);
//! * `mm split`: single-threaded matrixmultiply calls on row blocks of C, one per worker of
//!   a rayon pool (what natgrad's CPU backend does) — meaningful with `MATMUL_NUM_THREADS=1`.
//!
//! `MATMUL_NUM_THREADS=2 cargo run --release -- 2` (the `mm` column), then
//! `MATMUL_NUM_THREADS=1 cargo run --release -- 2` (the other columns), and `-- 1` for one thread.

use std::num::NonZeroUsize;
use std::time::Instant;

fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One element type's entry points.
trait Element: Copy + Send + Sync + faer::traits::ComplexField + 'static {
    const NAME: &'static str;
    fn of(v: f64) -> Self;
    /// matrixmultiply's GEMM for this type.
    #[allow(clippy::too_many_arguments)]
    unsafe fn mm(
        m: usize, k: usize, n: usize, a: *const Self, rsa: isize, csa: isize, b: *const Self, rsb: isize,
        csb: isize, c: *mut Self, rsc: isize,
    );
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn of(v: f64) -> f32 {
        v as f32
    }
    unsafe fn mm(
        m: usize, k: usize, n: usize, a: *const f32, rsa: isize, csa: isize, b: *const f32, rsb: isize,
        csb: isize, c: *mut f32, rsc: isize,
    ) {
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn of(v: f64) -> f64 {
        v
    }
    unsafe fn mm(
        m: usize, k: usize, n: usize, a: *const f64, rsa: isize, csa: isize, b: *const f64, rsb: isize,
        csb: isize, c: *mut f64, rsc: isize,
    ) {
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
    }
}

fn compare<T: Element>(pool: &rayon::ThreadPool, threads: usize) {
    // (m, k, n, transpose a, transpose b): Curves forward, backward (δWᵀ) and weight
    // gradient (hᵀδ) at batches 5000 and 1000, large and middle layers.
    let shapes = [
        (5000, 784, 400, false, false),
        (5000, 400, 784, false, true),
        (784, 5000, 400, true, false),
        (5000, 400, 200, false, false),
        (1000, 784, 400, false, false),
        (1000, 400, 784, false, true),
        (784, 1000, 400, true, false),
        (1000, 400, 200, false, false),
        (400, 1000, 200, true, false),
        (1000, 200, 100, false, false),
        (1000, 100, 50, false, true),
    ];
    println!("{} threads {threads}", T::NAME);
    println!("{:<26} {:>8} {:>8} {:>8} {:>10}", "shape (m×k·k×n)", "gemm", "faer", "mm", "mm split");
    for (m, k, n, ta, tb) in shapes {
        let a = vec![T::of(0.5); m * k];
        let b = vec![T::of(0.25); k * n];
        let mut c = vec![T::of(0.0); m * n];
        // Row-major a is [m,k] (or [k,m] when transposed); strides in elements.
        let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        let t_gemm = median(|| {
            pool.install(|| unsafe {
                gemm::gemm(
                    m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), csa, rsa, b.as_ptr(), csb, rsb,
                    T::of(0.0), T::of(1.0), false, false, false, gemm::Parallelism::Rayon(threads),
                )
            })
        });
        let par = if threads > 1 {
            faer::Par::Rayon(NonZeroUsize::new(threads).expect("threads > 1"))
        } else {
            faer::Par::Seq
        };
        let t_faer = median(|| {
            pool.install(|| unsafe {
                let lhs = faer::MatRef::from_raw_parts(a.as_ptr(), m, k, rsa, csa);
                let rhs = faer::MatRef::from_raw_parts(b.as_ptr(), k, n, rsb, csb);
                let dst = faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, n as isize, 1);
                faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, T::of(1.0), par);
            })
        });
        let t_mm = median(|| unsafe {
            T::mm(m, k, n, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, c.as_mut_ptr(), n as isize)
        });
        let chunk = m.div_ceil(threads);
        let (a_ptr, b_ptr) = (a.as_ptr() as usize, b.as_ptr() as usize);
        let t_split = median(|| {
            pool.scope(|scope| {
                for (i, rows) in c.chunks_mut(chunk * n).enumerate() {
                    scope.spawn(move |_| unsafe {
                        let a = (a_ptr as *const T).offset(i as isize * chunk as isize * rsa);
                        T::mm(
                            rows.len() / n, k, n, a, rsa, csa, b_ptr as *const T, rsb, csb, rows.as_mut_ptr(),
                            n as isize,
                        )
                    });
                }
            })
        });
        let label = format!("{m}×{k}{}·{k}×{n}{}", if ta { "ᵀ" } else { "" }, if tb { "ᵀ" } else { "" });
        println!(
            "{label:<26} {:>8.1} {:>8.1} {:>8.1} {:>10.1}",
            flops / t_gemm / 1e9,
            flops / t_faer / 1e9,
            flops / t_mm / 1e9,
            flops / t_split / 1e9
        );
    }
}

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    compare::<f32>(&pool, threads);
    compare::<f64>(&pool, threads);
}
