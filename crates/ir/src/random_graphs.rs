//! Random graphs for the backends' differential tests: each step applies one of
//! [`FAMILIES`] op families (unary math, binary arithmetic, GEMMs, softmax, reductions,
//! transposes, broadcasts, compare-select) to two earlier values. The caller draws the
//! steps, so the same steps give the same graph on every backend.

use crate::{Builder, Compare, DType, Expr, Graph, Result, Shape};

/// How many op families [`step`] chooses from (`selector % FAMILIES`).
pub const FAMILIES: u8 = 20;

/// Applies op family `selector` to `x` and `y` (both `[B, n]`), with `w: [n, n]` and
/// `v: [n]`; the result is `[B, n]` again.
pub fn step(selector: u8, x: &Expr, y: &Expr, w: &Expr, v: &Expr) -> Expr {
    match selector % FAMILIES {
        0 => -x,
        1 => x.tanh().exp(),
        2 => (x.softplus() + 0.5).log(),
        3 => (x.square() + 1.0).sqrt(),
        4 => x.sigmoid().pow(1.5),
        5 => x.relu(),
        6 => x + y,
        7 => x - y,
        8 => x * y,
        9 => x / &(y.square() + 1.0),
        10 => x.maximum(y),
        11 => x.matmul(w),
        12 => x.matmul_t(w, false, true),
        13 => x.softmax(1),
        14 => x.log_softmax(1),
        15 => x - &x.max(&[1], true),
        16 => x * &x.mean(&[0], true),
        17 => x.transpose(&[1, 0]).softmax(1).transpose(&[1, 0]),
        18 => x + v,
        _ => x.compare(Compare::Gt, y).select(x, y),
    }
}

/// The graph of `steps` (`(selector, i, j)`: apply [`step`] to values `i` and `j`, modulo
/// the values so far) on inputs `a`, `c` (`[B, width]`), `w` (`[width, width]`) and `v`
/// (`[width]`); its outputs are the last two values.
pub fn graph(dtype: DType, width: usize, steps: &[(u8, usize, usize)]) -> Result<Graph> {
    let b = Builder::new(dtype);
    let mut values = vec![b.input("a", Shape::batched(&[width])), b.input("c", Shape::batched(&[width]))];
    let w = b.input("w", Shape::fixed(&[width, width]));
    let v = b.input("v", Shape::fixed(&[width]));
    for &(selector, i, j) in steps {
        let next = step(selector, &values[i % values.len()], &values[j % values.len()], &w, &v);
        values.push(next);
    }
    let outputs: Vec<&Expr> = values.iter().rev().take(2).collect();
    b.finish(&outputs)
}

/// 1 to 9 steps drawn from `seed` (SplitMix64), the same on every machine: the GPU tests
/// run these graphs and the PTX tests assemble them.
pub fn seeded_steps(seed: u64) -> Vec<(u8, usize, usize)> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let count = 1 + (next() % 9) as usize;
    (0..count).map(|_| ((next() % 256) as u8, (next() % 64) as usize, (next() % 64) as usize)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_steps_are_reproducible_and_the_first_48_seeds_cover_every_family() {
        let mut seen = [false; FAMILIES as usize];
        for seed in 0..48 {
            let steps = seeded_steps(seed);
            assert_eq!(steps, seeded_steps(seed));
            assert!((1..=9).contains(&steps.len()), "seed {seed}: {} steps", steps.len());
            for &(selector, i, j) in &steps {
                assert!(i < 64 && j < 64);
                seen[(selector % FAMILIES) as usize] = true;
            }
            for dtype in [DType::F32, DType::F64] {
                let graph = graph(dtype, 5, &steps).unwrap();
                assert_eq!(graph.outputs().len(), 2);
            }
        }
        assert_ne!(seeded_steps(1), seeded_steps(2));
        let missing: Vec<usize> = (0..FAMILIES as usize).filter(|&f| !seen[f]).collect();
        assert!(missing.is_empty(), "families never drawn: {missing:?}");
    }
}
