//! Every op that can reject its operands does so with a typed error whose message names the
//! op, the node's name, the source location and the shapes.

use natgrad_ir::{Binary, Builder, Compare, DType, Error, F64Bits, Graph, NodeId, Op, Reduce, Shape};

fn input(g: &mut Graph, name: &str, shape: Shape) -> NodeId {
    g.add(Op::Input { name: name.into(), dtype: DType::F32, shape }, &[]).unwrap()
}

/// Adds `op` to a graph holding `a: f32[B,3]`, `b: f32[B,4]`, `m: f32[3,4]`, `v: f64[3]`
/// and returns the error message.
fn reject(op: Op, pick: &[&str]) -> String {
    let mut g = Graph::new();
    let ids = [
        ("a", input(&mut g, "a", Shape::batched(&[3]))),
        ("b", input(&mut g, "b", Shape::batched(&[4]))),
        ("m", input(&mut g, "m", Shape::fixed(&[3, 4]))),
        (
            "v",
            g.add(Op::Input { name: "v".into(), dtype: DType::F64, shape: Shape::fixed(&[3]) }, &[]).unwrap(),
        ),
    ];
    let operands: Vec<NodeId> = pick.iter().map(|p| ids.iter().find(|(n, _)| n == p).unwrap().1).collect();
    let (result, line) = (g.add(op, &operands), line!());
    let message = result.unwrap_err().to_string();
    let prefix = format!(" at {}:{line}: ", file!());
    assert!(message.contains(&prefix), "{message}");
    message.replacen(&prefix, ": ", 1)
}

#[test]
fn elementwise_ops_need_equal_types() {
    for b in Binary::ALL {
        let expected = format!(
            "{}: f32[B,3] vs f32[B,4]: operand types differ (elementwise ops need equal types; broadcast explicitly)",
            b.name()
        );
        assert_eq!(reject(Op::Binary(b), &["a", "b"]), expected);
    }
    for c in Compare::ALL {
        assert!(
            reject(Op::Compare(c), &["a", "b"]).starts_with(&format!("{}: f32[B,3] vs f32[B,4]", c.name()))
        );
    }
    assert!(reject(Op::Select, &["a", "a", "b"]).starts_with("select: f32[B,3] vs f32[B,3] vs f32[B,4]: "));
    assert!(reject(Op::Binary(Binary::Add), &["m", "v"]).contains("f32[3,4] vs f64[3]"));
}

#[test]
fn matmul_errors_name_both_shapes() {
    let mm = |ta, tb| Op::MatMul { transpose_a: ta, transpose_b: tb };
    assert_eq!(reject(mm(false, false), &["b", "m"]), "matmul: f32[B,4] × f32[3,4]: inner dimensions 4 ≠ 3");
    assert_eq!(reject(mm(false, true), &["a", "m"]), "matmul: f32[B,3] × f32[3,4]ᵀ: inner dimensions 3 ≠ 4");
    assert_eq!(reject(mm(true, false), &["a", "m"]), "matmul: f32[B,3]ᵀ × f32[3,4]: inner dimensions B ≠ 3");
    assert_eq!(
        reject(mm(false, false), &["v", "m"]),
        "matmul: f64[3] × f32[3,4]: both operands must have rank 2 (or more, for the first)"
    );
}

#[test]
fn stacked_matmul_errors_name_both_shapes() {
    let mut g = Graph::new();
    let stack = |dims: &[usize]| {
        let mut all = vec![natgrad_ir::Dim::Batch];
        all.extend(dims.iter().map(|&d| natgrad_ir::Dim::Fixed(d)));
        Shape(all)
    };
    let a = input(&mut g, "a", stack(&[2, 3]));
    let b = input(&mut g, "b", stack(&[4, 3]));
    let m = input(&mut g, "m", Shape::fixed(&[3, 4]));
    let mm = |ta, tb| Op::MatMul { transpose_a: ta, transpose_b: tb };
    let error = |op: Op, operands: &[NodeId], g: &mut Graph| g.add(op, operands).unwrap_err().to_string();
    let rank = error(mm(false, false), &[m, a], &mut g);
    assert!(rank.ends_with("f32[3,4] × f32[B,2,3]: only the first operand may have rank above 2"), "{rank}");
    let inner = error(mm(false, true), &[b, m], &mut g);
    assert!(inner.ends_with("f32[B,4,3] × f32[3,4]ᵀ: inner dimensions 3 ≠ 4"), "{inner}");
    assert!(error(mm(true, false), &[a, m], &mut g).contains("the same leading dimensions"));
    assert!(g.add(mm(false, false), &[a, m]).is_ok(), "stacks of rows multiply");
}

#[test]
fn layout_ops_reject_bad_shapes() {
    let to = |dims: &[usize]| Shape::batched(dims);
    assert_eq!(
        reject(Op::Broadcast { shape: to(&[4]) }, &["a"]),
        "broadcast: f32[B,3] → [B,4]: cannot broadcast (dimensions align from the right; only size-1 dimensions stretch)"
    );
    assert_eq!(
        reject(Op::Reshape { shape: to(&[4]) }, &["a"]),
        "reshape: f32[B,3] → [B,4]: element counts differ"
    );
    assert_eq!(
        reject(Op::Transpose { perm: vec![0, 0] }, &["m"]),
        "transpose: f32[3,4]: [0, 0] is not a permutation of its 2 axes"
    );
    assert_eq!(
        reject(Op::Reduce { kind: Reduce::Sum, axes: vec![2], keep_dims: false }, &["a"]),
        "sum: f32[B,3]: reduction axes [2] must be distinct, ascending and below rank 2"
    );
    assert_eq!(reject(Op::Softmax { axis: 2 }, &["a"]), "softmax: f32[B,3]: axis 2 out of range for rank 2");
    assert_eq!(
        reject(Op::LogSoftmax { axis: 5 }, &["v"]),
        "log_softmax: f64[3]: axis 5 out of range for rank 1"
    );
}

#[test]
fn leaves_and_arity_are_checked() {
    let param = Op::Param { name: "w".into(), dtype: DType::F32, shape: Shape::batched(&[3]) };
    assert_eq!(reject(param, &[]), "param: parameter shape [B,3] may not use the batch dimension B");
    let constant =
        Op::Constant { dtype: DType::F32, shape: Shape::fixed(&[2]), values: vec![F64Bits::new(1.0)] };
    assert_eq!(reject(constant, &[]), "const: constant of shape [2] needs 2 values, got 1");
    assert_eq!(reject(Op::Binary(Binary::Add), &["a"]), "add: takes 2 operand(s), got 1");
    let clash = Op::Input { name: "a".into(), dtype: DType::F32, shape: Shape::batched(&[5]) };
    assert_eq!(reject(clash, &[]), "input: the name \"a\" is already used by `%0 : f32[B,3] = input`");
    let mut g = Graph::new();
    let err = g.add(Op::Unary(natgrad_ir::Unary::Exp), &[NodeId::from_index(7)]).unwrap_err();
    assert!(matches!(err, Error::UnknownNode { operand: 7, len: 0, .. }), "{err}");
}

#[test]
fn dsl_errors_carry_the_user_line_and_node_name() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[784]));
    let w = b.param("w1", Shape::fixed(&[400, 200]));
    let (h, line) = (x.matmul(&w), line!());
    let err = b.finish(&[&h]).unwrap_err();
    assert!(matches!(err, Error::Type { .. }));
    assert_eq!(
        err.to_string(),
        format!("matmul at {}:{line}: f32[B,784] × f32[400,200]: inner dimensions 784 ≠ 400", file!())
    );

    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[10]));
    let y = b.input("y", Shape::batched(&[5]));
    let (z, line) = (&x + &y, line!());
    let err = b.finish(&[&z.exp()]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("add at {}:{line}: f64[B,10] vs f64[B,5]: shapes cannot be broadcast together", file!())
    );
}

#[test]
fn parsed_graphs_report_the_line() {
    let text = "%0 : f32[B,3] = input \"a\"\n%1 : f32[B,4] = exp %0\n";
    let err = natgrad_ir::text::parse(text).unwrap_err().to_string();
    assert_eq!(err, "line 2: declared type f32[B,4] but the op infers f32[B,3]");
    let err = natgrad_ir::text::parse("%0 : f32[3] = input \"a\"\n%1 : f32[3] = frob %0").unwrap_err();
    assert_eq!(err.to_string(), "line 2: unknown op `frob`");
    let err = natgrad_ir::text::parse("%1 : f32[3] = exp %0").unwrap_err();
    assert_eq!(err.to_string(), "line 1: `%0` is not defined above");
}
