//! Compiling and dropping programs returns their memory, JIT code pages included. Its own
//! test binary: it turns the process-wide compile cache off.

use natgrad::{CompileOptions, compile_cache, compile_fisher_product};

/// Resident set size of this process, in bytes (Linux).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn compiling_and_dropping_the_curves_product_500_times_keeps_memory_bounded() {
    compile_cache().lock().unwrap().set_capacity(0);
    let model = natgrad::nn::curves_autoencoder();
    let options = CompileOptions::default();
    let theta = vec![0.01f32; model.layout.len()];
    let batch = vec![0.5f32; 2 * 784];
    let mut kernels = 0;
    let mut compile = || {
        let mut fvp = compile_fisher_product::<f32>(&model, &options).unwrap();
        fvp.prepare(&theta, &batch).unwrap();
        kernels = fvp.report.kernels;
    };
    // The first compiles grow the allocator's pools; measure the last 400.
    for _ in 0..100 {
        compile();
    }
    let warm = resident_bytes();
    for _ in 100..500 {
        compile();
    }
    let grown = resident_bytes().saturating_sub(warm);
    assert!(kernels > 10, "the Curves product has {kernels} fused kernels");
    // Not freeing the JIT's code pages grows resident memory by about 37 KiB per compile
    // (15 MiB over these 400, measured by leaking the module on purpose); freeing them, by
    // under 0.1 MiB.
    let bound = 8 << 20;
    assert!(grown < bound, "resident memory grew by {grown} bytes over 400 compiles (bound {bound})");
}
