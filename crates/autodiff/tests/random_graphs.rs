//! Property test: random small graphs built from every op pass the three derivative checks
//! (Rop vs finite differences, Lop dot-product test, Rop vs Rop-via-double-Lop).

mod common;

use common::*;
use natgrad_ir::{Builder, Compare, DType, Dim, Expr, NodeId, Shape};
use proptest::prelude::*;

const BATCH: usize = 2;

/// Applies op number `selector` to pool members `x`, `y`, with `w: [3,3]` and `v: [3]`.
fn step(selector: u8, x: &Expr, y: &Expr, w: &Expr, v: &Expr) -> Expr {
    match selector % 25 {
        0 => -x,
        1 => x.tanh().exp(),
        2 => (x.softplus() + 0.5).log(),
        3 => (x.square() + 1.0).sqrt(),
        4 => x.square(),
        5 => x.sigmoid().pow(1.5),
        6 => x.sigmoid(),
        7 => x.relu(),
        8 => x.softplus(),
        9 => x + y,
        10 => x - y,
        11 => x * y,
        12 => x / &(y.square() + 1.0),
        13 => x.maximum(y),
        14 => x.matmul(w),
        15 => x.matmul_t(w, false, true),
        16 => x.softmax(1),
        17 => x.log_softmax(1),
        18 => x - &x.max(&[1], true),
        19 => x * &x.mean(&[0], true),
        20 => x.transpose(&[1, 0]).softmax(1).transpose(&[1, 0]),
        21 => x.reshape(Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(1)])).sum(&[2], false),
        22 => x + v,
        23 => x.compare(Compare::Gt, y).select(x, y),
        _ => x.sigmoid().log1p() * &x.sum(&[0, 1], false),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn random_graphs_pass_the_derivative_checks(
        steps in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..8),
        seed in any::<u64>(),
    ) {
        let b = Builder::new(DType::F64);
        let a = b.input("a", Shape::batched(&[3]));
        let c = b.input("c", Shape::batched(&[3]));
        let w = b.input("w", Shape::fixed(&[3, 3]));
        let v = b.input("v", Shape::fixed(&[3]));
        let mut pool = vec![a.clone(), c.clone()];
        for (selector, i, j) in &steps {
            let next = step(*selector, &pool[i % pool.len()], &pool[j % pool.len()], &w, &v);
            pool.push(next);
        }
        let y = pool.last().unwrap().clone();
        let graph = b.finish(&[&y]).unwrap();
        let xs: Vec<NodeId> = [&a, &c, &w, &v].iter().map(|e| e.id()).collect();
        let mut rng = rng(seed);
        let shapes = [vec![BATCH, 3], vec![BATCH, 3], vec![3, 3], vec![3]];
        let point: Vec<_> = shapes.iter().map(|s| uniform(&mut rng, s, -1.5, 1.5)).collect();
        let dirs: Vec<_> = shapes.iter().map(|s| uniform(&mut rng, s, -1.0, 1.0)).collect();
        check_derivatives(&format!("{steps:?}"), &graph, y.id(), &xs, &point, &dirs, &mut rng, BATCH);
    }
}
