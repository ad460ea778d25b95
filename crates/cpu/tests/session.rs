//! A CPU session's bad inputs are error values naming the input, its type and both lengths.

use std::sync::Arc;

use natgrad_cpu::Program;
use natgrad_ir::{Builder, DType, Shape};
use natgrad_lower::{CompileOptions, Partition, Plan, Session as _};

#[test]
fn bad_session_calls_are_errors_that_name_the_input() {
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[3]));
    let v = b.input("v", Shape::fixed(&[3]));
    let graph = b.finish(&[&(x.exp() * &v)]).unwrap();
    let partition = Partition::new(vec![vec!["x".into()], vec!["v".into()]]);
    let plan = Plan::build(&graph, &partition, DType::F64, true).unwrap();
    let program = Arc::new(Program::<f64>::new(Arc::new(plan), &CompileOptions::default()).unwrap());
    let mut session = program.open_session(2);
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
