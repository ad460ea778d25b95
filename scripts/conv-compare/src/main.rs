//! The forward convolution of `bench unlabeled`'s network (NHWC images 28×28×1, 16 filters
//! 5×5, stride 2, no padding → 12×12×16), f32, two routes side by side, medians of 21 runs:
//!
//! * `im2col + GEMM`: the patches `[n·144, 25]` gathered in runs (natgrad's `patches`
//!   module: images split over the pool's workers), then faer's GEMM with the filters
//!   `[25, 16]`, one block of rows per worker (natgrad's route for products with few
//!   output columns) — what natgrad's CPU backend runs;
//! * `direct`: per output position, 16 accumulators over the 25 window values (the filter
//!   loop is contiguous, so rustc vectorises it), images split over the workers.
//!
//! `cargo run --release -- THREADS` (default 2); it also runs a wider case (3 channels,
//! 32 filters, padding 2) to show how the comparison moves with the shape.

use std::time::Instant;

use faer::{Accum, Par};
use rayon::prelude::*;

#[derive(Clone, Copy)]
struct Conv {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    stride: usize,
    pad: usize,
    filters: usize,
}

impl Conv {
    fn out(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.pad - self.k) / self.stride + 1,
            (self.w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }
    fn patch(&self) -> usize {
        self.k * self.k * self.c
    }
    /// The source pixel of window value (i, j) at position (oy, ox), if inside the image.
    fn pixel(&self, oy: usize, ox: usize, i: usize, j: usize) -> Option<usize> {
        let y = (oy * self.stride + i).checked_sub(self.pad).filter(|&y| y < self.h)?;
        let x = (ox * self.stride + j).checked_sub(self.pad).filter(|&x| x < self.w)?;
        Some((y * self.w + x) * self.c)
    }
}

fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..21)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2] * 1e3
}

/// natgrad's route: per window row, the part inside the image is one contiguous run.
fn im2col(s: &Conv, image: &[f32], patches: &mut [f32]) {
    let (oh, ow) = s.out();
    let run = s.k * s.c;
    let mut offset = 0;
    for oy in 0..oh {
        for ox in 0..ow {
            let left = (ox * s.stride) as isize - s.pad as isize;
            let first = left.max(0) as usize;
            let end = ((left + s.k as isize).max(0) as usize).min(s.w);
            for i in 0..s.k {
                let to = &mut patches[offset..offset + run];
                to.fill(0.0);
                let y = (oy * s.stride + i).checked_sub(s.pad).filter(|&y| y < s.h);
                if let Some(y) = y.filter(|_| first < end) {
                    let before = (first as isize - left) as usize * s.c;
                    let len = (end - first) * s.c;
                    let from = (y * s.w + first) * s.c;
                    to[before..before + len].copy_from_slice(&image[from..from + len]);
                }
                offset += run;
            }
        }
    }
}

/// F accumulators per output position, kept in registers (F is a compile-time constant).
fn direct<const F: usize>(s: &Conv, image: &[f32], filters: &[f32], out: &mut [f32]) {
    let (oh, ow) = s.out();
    for oy in 0..oh {
        for ox in 0..ow {
            let mut acc = [0f32; F];
            for i in 0..s.k {
                for j in 0..s.k {
                    let Some(p) = s.pixel(oy, ox, i, j) else { continue };
                    for ch in 0..s.c {
                        let v = image[p + ch];
                        let row: &[f32; F] =
                            filters[((i * s.k + j) * s.c + ch) * F..][..F].try_into().unwrap();
                        for (a, &w) in acc.iter_mut().zip(row) {
                            *a = v.mul_add(w, *a);
                        }
                    }
                }
            }
            out[(oy * ow + ox) * F..(oy * ow + ox + 1) * F].copy_from_slice(&acc);
        }
    }
}

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    println!("threads {threads}");
    println!(
        "shape                               batch  im2col ms  GEMM ms  im2col+GEMM ms  direct ms  direct / (im2col+GEMM)"
    );
    let section7 = Conv { h: 28, w: 28, c: 1, k: 5, stride: 2, pad: 0, filters: 16 };
    let wider = Conv { h: 28, w: 28, c: 3, k: 5, stride: 1, pad: 2, filters: 32 };
    for (name, s) in [("28x28x1, 16 5x5 /2", section7), ("28x28x3, 32 5x5 /1 pad 2", wider)] {
        for n in [384, 2000] {
            let (oh, ow) = s.out();
            let rows = n * oh * ow;
            let images: Vec<f32> =
                (0..n * s.h * s.w * s.c).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
            let filters: Vec<f32> =
                (0..s.patch() * s.filters).map(|i| ((i * 104729) % 997) as f32 / 997.0 - 0.5).collect();
            let mut patches = vec![0f32; rows * s.patch()];
            let mut via_gemm = vec![0f32; rows * s.filters];
            let mut via_direct = vec![0f32; rows * s.filters];
            let image_len = s.h * s.w * s.c;
            let gather = |patches: &mut [f32]| {
                pool.install(|| {
                    patches
                        .par_chunks_mut(oh * ow * s.patch())
                        .zip(images.par_chunks(image_len))
                        .with_min_len(8)
                        .for_each(|(p, x)| im2col(&s, x, p))
                })
            };
            // natgrad's route for a narrow product: one block of rows per worker, each a
            // sequential faer GEMM.
            let gemm = |patches: &[f32], out: &mut [f32]| {
                let per = rows.div_ceil(threads);
                pool.install(|| {
                    out.par_chunks_mut(per * s.filters).zip(patches.par_chunks(per * s.patch())).for_each(
                        |(c, a)| {
                            let m = c.len() / s.filters;
                            let a = faer::MatRef::from_row_major_slice(a, m, s.patch());
                            let b = faer::MatRef::from_row_major_slice(&filters, s.patch(), s.filters);
                            let c = faer::MatMut::from_row_major_slice_mut(c, m, s.filters);
                            faer::linalg::matmul::matmul(c, Accum::Replace, a, b, 1.0f32, Par::Seq);
                        },
                    )
                });
            };
            let t_im2col = median(|| gather(&mut patches));
            let t_gemm = median(|| gemm(&patches, &mut via_gemm));
            let t_both = median(|| {
                gather(&mut patches);
                gemm(&patches, &mut via_gemm);
            });
            let t_direct = median(|| {
                pool.install(|| {
                    via_direct
                        .par_chunks_mut(oh * ow * s.filters)
                        .zip(images.par_chunks(image_len))
                        .with_min_len(8)
                        .for_each(|(o, x)| match s.filters {
                            16 => direct::<16>(&s, x, &filters, o),
                            32 => direct::<32>(&s, x, &filters, o),
                            f => unimplemented!("{f} filters"),
                        })
                })
            });
            let worst = via_gemm.iter().zip(&via_direct).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst < 1e-3, "the routes disagree by {worst}");
            println!(
                "{name:<35} {n:>5}  {t_im2col:>9.3}  {t_gemm:>7.3}  {t_both:>14.3}  {t_direct:>9.3}  {:>6.2}",
                t_direct / t_both
            );
        }
    }
}
