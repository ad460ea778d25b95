//! A CPU session's bad inputs are error values naming the input, its type and both lengths;
//! its profile times every unit that ran.

use std::sync::Arc;

use natgrad_cpu::Program;
use natgrad_ir::{Builder, DType, Shape};
use natgrad_lower::{CompileOptions, KExpr, Partition, Phase, Plan, Session as _, Work};

#[test]
fn bad_session_calls_are_errors_that_name_the_input() {
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[3]));
    let v = b.input("v", Shape::fixed(&[3]));
    let graph = b.finish(&[&(x.exp() * &v)]).unwrap();
    let partition = Partition::new(vec![vec!["x".into()], vec!["v".into()]]);
    let plan = Plan::build(&graph, &partition, DType::F64, true).unwrap();
    let program = Arc::new(Program::<f64>::new(Arc::new(plan), &CompileOptions::default()).unwrap());
    let mut session = program.open_session(2).unwrap();
    let message = |e: natgrad_lower::Error| e.to_string();
    assert_eq!(message(session.set("y", &[0.0]).unwrap_err()), "the program has no input or param named 'y'");
    assert_eq!(
        message(session.set("x", &[0.0; 5]).unwrap_err()),
        "input 'x' expects f64[B,3] = 6 values at batch size 2, got 5"
    );
    assert_eq!(message(session.run(0).unwrap_err()), "input 'x' was not set before running");
    session.set("x", &[0.0; 6]).unwrap();
    session.run(0).unwrap();
    let host_vector = vec![1.0f64; 3];
    assert_eq!(
        message(session.set_from_device("v", &host_vector, 0, 3).unwrap_err()),
        "this backend: no device vectors: use Session::set"
    );
    assert_eq!(message(session.run(1).unwrap_err()), "input 'v' was not set before running");
    assert_eq!(message(session.run(2).unwrap_err()), "phase 2 out of range: the program has 2");
    session.set("v", &[1.0, 2.0, 3.0]).unwrap();
    session.run(1).unwrap();
    let mut out = [0.0; 6];
    session.read(0, &mut out).unwrap();
    assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(message(session.read(1, &mut out).unwrap_err()), "output 1 out of range: the program has 1");
    assert_eq!(
        message(session.read(0, &mut out[..4]).unwrap_err()),
        "output 0 holds f64[B,3] = 6 values at batch size 2, the buffer given has 4"
    );
}

/// Profiling times every unit of the phases that ran, once per run, and `unit_cost` gives
/// each unit's FLOPs and bytes from the shapes: here a `[B,5]·[5,4]` GEMM and a sigmoid
/// kernel over `[B,4]` with its column sum.
#[test]
fn the_profile_times_every_unit_that_ran_with_its_cost() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[5]));
    let w = b.param("w", Shape::fixed(&[5, 4]));
    let h = x.matmul(&w).sigmoid();
    let graph = b.finish(&[&h, &h.sum(&[0], false)]).unwrap();
    let plan = Arc::new(Plan::build(&graph, &Partition::single(), DType::F32, true).unwrap());
    let program = Arc::new(Program::<f32>::new(Arc::clone(&plan), &CompileOptions::default()).unwrap());
    let mut session = program.open_session(3).unwrap();
    session.set("x", &[0.5; 15]).unwrap();
    session.set("w", &[0.25; 20]).unwrap();
    session.run(0).unwrap();
    assert!(session.profile().is_none(), "profiling is off by default");
    session.set_profiling(true);
    for _ in 0..4 {
        session.run(0).unwrap();
    }
    let profile = session.profile().expect("profiling is on").clone();
    let ran: Vec<usize> = profile.units().map(|(u, _)| u).collect();
    let expected: Vec<usize> =
        (0..plan.units.len()).filter(|&u| plan.units[u].phase == Phase::Run(0)).collect();
    assert_eq!(ran, expected);
    assert!(profile.units().all(|(_, t)| t.calls == 4));
    let kinds = profile.by_kind();
    assert_eq!(kinds.keys().copied().collect::<Vec<_>>(), ["kernel", "matmul"]);
    assert_eq!(kinds["matmul"].calls, 4);
    assert_eq!(profile.total(), profile.units().map(|(_, t)| t.time).sum());

    let matmul = (0..plan.units.len()).find(|&u| matches!(plan.units[u].work, Work::MatMul { .. })).unwrap();
    let cost = plan.unit_cost(matmul, 3);
    assert_eq!(cost.flops, 2.0 * 3.0 * 5.0 * 4.0);
    assert_eq!(cost.bytes, 4.0 * (15.0 + 20.0 + 12.0));
    assert!(cost.label.starts_with("matmul %0[3, 5]·%1[5, 4] → %2[3, 4]"), "{}", cost.label);
    let kernel = (0..plan.units.len()).find(|&u| matches!(plan.units[u].work, Work::Kernel { .. })).unwrap();
    let cost = plan.unit_cost(kernel, 3);
    let Work::Kernel { spec, .. } = &plan.units[kernel].work else { unreachable!() };
    assert_eq!(spec.column_sums.len(), 1, "the sum is fused into the sigmoid's kernel");
    // The stored matmul result is read; the sigmoid ([3,4]) and its column sum ([4]) written.
    assert_eq!(cost.bytes, 4.0 * (12.0 + 12.0 + 4.0));
    let operations =
        spec.exprs.iter().filter(|e| !matches!(e, KExpr::Input(_) | KExpr::Const(_))).count() + 1;
    assert_eq!(cost.flops, operations as f64 * 12.0);
    assert!(cost.label.contains("+ 1 column sum"), "{}", cost.label);
    let table = profile.slowest_units(&plan, 3, 4, 1);
    assert_eq!(table.lines().count(), 2, "a header and the slowest unit:\n{table}");
}

/// A batch size at which a value's element count overflows (here `4·(2⁶² + 1)` wraps to 4)
/// is an error naming the value, not a session whose buffers are smaller than its GEMM; one
/// whose buffers the machine cannot give is an out-of-memory error.
#[test]
fn a_batch_too_large_to_address_or_allocate_is_an_error() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[4]));
    let w = b.param("w", Shape::fixed(&[4, 4]));
    let graph = b.finish(&[&x.matmul(&w)]).unwrap();
    let plan = Arc::new(Plan::build(&graph, &Partition::single(), DType::F32, true).unwrap());
    let program = Arc::new(Program::<f32>::new(plan, &CompileOptions::default()).unwrap());
    for batch in [(1usize << 62) + 1, usize::MAX / 8, usize::MAX] {
        let Err(error) = program.open_session(batch) else { panic!("batch {batch} was accepted") };
        let message = error.to_string();
        assert!(message.starts_with(&format!("batch size {batch}: input")), "{message}");
        assert!(message.contains("f32[B,4]) would need more memory than can be addressed"), "{message}");
    }
    // Addressable but more than any machine has (2⁶⁰ bytes for `x` alone): an error from
    // the allocation, not an abort.
    let Err(error) = program.open_session(1 << 56) else { panic!("an exabyte was allocated") };
    assert!(
        error.to_string().starts_with("out of memory: a buffer at batch size 72057594037927936 needs"),
        "{error}"
    );
    // An ordinary batch size is planned as before, its buffers zeroed.
    let mut session = program.open_session(1 << 10).unwrap();
    session.set("w", &[1.0; 16]).unwrap();
    session.set("x", &vec![0.5; 4 << 10]).unwrap();
    session.run(0).unwrap();
    let mut out = vec![0.0; 4 << 10];
    session.read(0, &mut out).unwrap();
    assert!(out.iter().all(|&v| v == 2.0));
}
