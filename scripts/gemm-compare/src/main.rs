//! GEMM routes side by side on the Curves shapes: f32 GFLOP/s, medians of 15 runs.
//!
//! * `gemm`: gemm 0.19 with `Parallelism::Rayon(threads)` inside a rayon pool;
//! * `mm`: matrixmultiply's own threading (thread count from `MATMUL_NUM_THREADS`, read once);
//! * `mm split`: single-threaded matrixmultiply calls on row blocks of C, one per worker of
//!   a rayon pool (what natgrad's CPU backend does) — run with `MATMUL_NUM_THREADS=1`.
//!
//! `MATMUL_NUM_THREADS=2 cargo run --release -- 2` (for `mm`), then
//! `MATMUL_NUM_THREADS=1 cargo run --release -- 2` (for `mm split`).

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

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // (m, k, n, transpose a, transpose b): Curves forward, backward (δWᵀ) and weight gradient (hᵀδ).
    let shapes = [
        (5000, 784, 400, false, false),
        (5000, 400, 784, false, true),
        (784, 5000, 400, true, false),
        (5000, 400, 200, false, false),
        (1000, 784, 400, false, false),
        (400, 1000, 200, true, false),
    ];
    println!("threads {threads}");
    println!("{:<26} {:>8} {:>8} {:>10}", "shape (m×k·k×n)", "gemm", "mm", "mm split");
    for (m, k, n, ta, tb) in shapes {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        // Row-major a is [m,k] (or [k,m] when transposed); strides in elements.
        let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        let t_gemm = median(|| {
            pool.install(|| unsafe {
                gemm::gemm(
                    m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), csa, rsa, b.as_ptr(), csb, rsb,
                    0.0, 1.0, false, false, false, gemm::Parallelism::Rayon(threads),
                )
            })
        });
        let t_mm = median(|| unsafe {
            matrixmultiply::sgemm(
                m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1,
            )
        });
        let chunk = m.div_ceil(threads);
        let (a_ptr, b_ptr) = (a.as_ptr() as usize, b.as_ptr() as usize);
        let t_split = median(|| {
            pool.scope(|scope| {
                for (i, rows) in c.chunks_mut(chunk * n).enumerate() {
                    scope.spawn(move |_| unsafe {
                        let a = (a_ptr as *const f32).offset(i as isize * chunk as isize * rsa);
                        matrixmultiply::sgemm(
                            rows.len() / n, k, n, 1.0, a, rsa, csa, b_ptr as *const f32, rsb, csb, 0.0,
                            rows.as_mut_ptr(), n as isize, 1,
                        )
                    });
                }
            })
        });
        let label = format!("{m}×{k}{}·{k}×{n}{}", if ta { "ᵀ" } else { "" }, if tb { "ᵀ" } else { "" });
        println!(
            "{label:<26} {:>8.1} {:>8.1} {:>10.1}",
            flops / t_gemm / 1e9,
            flops / t_mm / 1e9,
            flops / t_split / 1e9
        );
    }
}
