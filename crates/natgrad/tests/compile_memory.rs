//! Compiling and dropping programs returns their memory, JIT code pages included. Its own
//! test binary: it turns the process-wide compile cache off.

use natgrad::{CompileOptions, compile_cache, compile_fisher_product};

/// Bytes of anonymous executable mappings (JIT code pages) in this process (Linux).
fn jit_code_bytes() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("Linux /proc");
    maps.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let anonymous = fields.len() == 5;
            (anonymous && fields[1].contains('x')).then(|| {
                let (start, end) = fields[0].split_once('-').unwrap();
                usize::from_str_radix(end, 16).unwrap() - usize::from_str_radix(start, 16).unwrap()
            })
        })
        .sum()
}

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
    // The first compiles grow the allocator's pools; measure the next 400 in two halves.
    for _ in 0..100 {
        compile();
    }
    let (code, mut resident) = (jit_code_bytes(), vec![resident_bytes()]);
    for i in 100..500 {
        compile();
        if i == 299 || i == 499 {
            resident.push(resident_bytes());
        }
    }
    assert!(kernels > 10, "the Curves product has {kernels} fused kernels");
    // Leaking the JIT's code pages (measured by not freeing the module on purpose) adds
    // 4 KiB of executable mappings per kernel and about 37 KiB of resident memory per
    // compile (7.5 MiB per half). Freed, the code mappings stay where they were, and
    // resident memory moves by allocator noise only (0–2 MiB, once up to 12 MiB in one
    // half: glibc arenas), so the smaller half is bounded.
    let code_grown = jit_code_bytes().saturating_sub(code);
    assert!(code_grown < 64 << 10, "JIT code mappings grew by {code_grown} bytes over 400 compiles");
    let halves = [resident[1].saturating_sub(resident[0]), resident[2].saturating_sub(resident[1])];
    let bound = 4 << 20;
    assert!(
        halves.iter().min().unwrap() < &bound,
        "resident memory grew by {halves:?} bytes over two halves of 200 compiles (bound {bound} for the smaller)"
    );
}
