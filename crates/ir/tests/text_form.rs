//! The text form: printer/parser round trip over random graphs, hash-consing, DOT export.

use natgrad_ir::text::{parse, print};
use natgrad_ir::{Binary, Compare, DType, Dim, F64Bits, Graph, NodeId, Op, Provenance, Reduce, Shape, Unary};
use proptest::prelude::*;

/// One random construction step: an op selector, operand picks and a value.
type Step = (u8, usize, usize, usize, f64, bool);

fn shapes() -> Vec<Shape> {
    vec![
        Shape::batched(&[3]),
        Shape(vec![Dim::Fixed(3), Dim::Batch]),
        Shape::fixed(&[3, 3]),
        Shape::fixed(&[3]),
        Shape::fixed(&[1, 3]),
        Shape::batched(&[1]),
        Shape::scalar(),
    ]
}

fn op_for(step: &Step, dtype: DType) -> Op {
    let (selector, a, _, _, value, flag) = *step;
    let shapes = shapes();
    let shape = shapes[a % shapes.len()].clone();
    match selector % 14 {
        0 => Op::Unary(Unary::ALL[a % Unary::ALL.len()]),
        1 => Op::Unary(Unary::Pow(F64Bits::new(value))),
        2 => Op::Binary(Binary::ALL[a % Binary::ALL.len()]),
        3 => Op::Compare(Compare::ALL[a % Compare::ALL.len()]),
        4 => Op::Select,
        5 => Op::Softmax { axis: a % 2 },
        6 => Op::LogSoftmax { axis: a % 2 },
        7 => Op::MatMul { transpose_a: flag, transpose_b: a % 2 == 0 },
        8 => Op::Broadcast { shape },
        9 => Op::Reshape { shape },
        10 => Op::Transpose { perm: if flag { vec![1, 0] } else { vec![0] } },
        11 => {
            let kind = [Reduce::Sum, Reduce::Mean, Reduce::Max][a % 3];
            let axes = [vec![], vec![0], vec![1], vec![0, 1]][(a / 3) % 4].clone();
            Op::Reduce { kind, axes, keep_dims: flag }
        }
        12 => Op::scalar(dtype, value),
        _ => Op::Constant {
            dtype,
            shape: Shape::fixed(&[3]),
            values: [value, -value, value * 1e-30].iter().map(|v| F64Bits::new(dtype.round(*v))).collect(),
        },
    }
}

fn random_graph(steps: &[Step], dtype: DType) -> Graph {
    let mut g = Graph::new();
    for (i, shape) in shapes().into_iter().enumerate() {
        g.add(Op::Input { name: format!("in{i}"), dtype, shape }, &[]).unwrap();
    }
    g.add(Op::Param { name: "w".into(), dtype, shape: Shape::fixed(&[3, 3]) }, &[]).unwrap();
    g.add(Op::BatchSize { dtype }, &[]).unwrap();
    for step in steps {
        let op = op_for(step, dtype);
        let n = g.len();
        let operands: Vec<NodeId> =
            [step.1, step.2, step.3].iter().take(op.arity()).map(|p| NodeId::from_index(p % n)).collect();
        let name = (step.0 % 5 == 0).then(|| format!("node {}", step.2 % 7));
        let _ = g.add_with(op, &operands, Provenance { name, location: None });
    }
    let last = NodeId::from_index(g.len() - 1);
    g.set_outputs(vec![last, NodeId::from_index(0)]);
    g
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6f64..1e6,
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        Just(1e-300),
        Just(0.1),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn print_parse_round_trips(
        steps in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<usize>(), value(), any::<bool>()), 0..60),
        double in any::<bool>(),
    ) {
        let dtype = if double { DType::F64 } else { DType::F32 };
        let g = random_graph(&steps, dtype);
        g.verify().unwrap();
        let text = print(&g);
        let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(&parsed, &g);
        prop_assert_eq!(print(&parsed), text);
    }
}

#[test]
fn adding_the_same_op_twice_returns_the_same_node() {
    let mut g = Graph::new();
    let x =
        g.add(Op::Input { name: "x".into(), dtype: DType::F32, shape: Shape::batched(&[4]) }, &[]).unwrap();
    let a = g.add(Op::Unary(Unary::Exp), &[x]).unwrap();
    let b = g.add(Op::Unary(Unary::Exp), &[x]).unwrap();
    assert_eq!(a, b);
    let s1 = g.add(Op::Binary(Binary::Add), &[a, x]).unwrap();
    let s2 = g.add(Op::Binary(Binary::Add), &[x, a]).unwrap();
    assert_ne!(s1, s2, "operand order is part of the key");
    let c1 = g.add(Op::scalar(DType::F32, 0.1), &[]).unwrap();
    let c2 = g.add(Op::scalar(DType::F32, 0.1f32 as f64), &[]).unwrap();
    assert_eq!(c1, c2, "f32 constants are rounded before interning");
    let n1 = g.add(Op::scalar(DType::F32, f64::NAN), &[]).unwrap();
    let n2 = g.add(Op::scalar(DType::F32, -f64::NAN), &[]).unwrap();
    assert_eq!(n1, n2, "NaNs are canonical");
    assert_eq!(g.len(), 6);
    assert_eq!(g.users(x), vec![a, s1, s2]);

    // The DSL shares subexpressions through the same mechanism.
    let b = natgrad_ir::Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[2]));
    let y1 = (&x * 2.0).sigmoid();
    let y2 = (&x * 2.0).sigmoid();
    assert_eq!(y1.id(), y2.id());
    assert_eq!(b.finish(&[&y1]).unwrap().len(), 5); // x, 2, broadcast, mul, sigmoid
}

#[test]
fn text_form_matches_the_documented_layout() {
    let b = natgrad_ir::Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[784]));
    let w = b.param("w1", Shape::fixed(&[784, 400]));
    let h = x.matmul(&w).sigmoid().named("h1");
    let p = h.softmax(1).sum(&[1], true);
    let g = b.finish(&[&p]).unwrap();
    let expected = "\
%0 : f32[B,784] = input \"x\"
%1 : f32[784,400] = param \"w1\"
%2 : f32[B,400] = matmul %0, %1
%3 : f32[B,400] = sigmoid %2  # h1
%4 : f32[B,400] = softmax[axis=1] %3
%5 : f32[B,1] = sum[1,keepdims] %4
return %5
";
    assert_eq!(print(&g), expected);
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(dot.contains("%2 = matmul\\lf32[B,400]"), "{dot}");
    assert_eq!(dot.matches("->").count(), 5);
}

/// Found by fuzzing: declared shapes whose element count overflows are type errors, not an
/// overflow panic in shape inference.
#[test]
fn shapes_too_large_to_count_are_errors() {
    let text = "%0 : f32[B,3] = input \"x\"\n%1 : f32[4611686018427387904,4] = reshape %0\nreturn %1\n";
    let err = natgrad_ir::text::parse(text).unwrap_err().to_string();
    assert!(err.contains("has more elements than can be addressed"), "{err}");
    let text = "%0 : f32[4294967296,4294967296,2] = input \"x\"\nreturn %0\n";
    let err = natgrad_ir::text::parse(text).unwrap_err().to_string();
    assert!(err.contains("has more elements than can be addressed"), "{err}");
}
