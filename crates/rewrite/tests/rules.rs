//! One test per rule: IR text in ⇒ IR text out with only that rule enabled, and the values
//! of both graphs compared through the interpreter on random inputs.

use natgrad_ir::text::{parse, print};
use natgrad_ir::{Bindings, Graph, Op, Tensor, eval};
use natgrad_rewrite::{Family, Options, all_rules, simplify};
use rand::{Rng, SeedableRng};

/// (rule, input, expected output). A rule listed with input == output must not fire.
#[rustfmt::skip]
const CASES: &[(&str, &str, &str)] = &[
    ("neg-neg",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = neg %0\n%2 : f64[B,3] = neg %1\nreturn %2\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("mul-one",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 1.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = mul %2, %0\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("div-one",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 1.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = div %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("sub-zero",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = sub %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("add-neg-zero",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const -0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = add %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    // x + (+0) is not x for x = −0: only fast-math removes it.
    ("add-neg-zero",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = add %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = add %0, %2\nreturn %3\n"),
    ("mul-neg-one",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const -1.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = mul %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = neg %0\nreturn %1\n"),
    ("sub-neg",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = neg %1\n%3 : f64[B,3] = sub %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = add %0, %1\nreturn %2\n"),
    ("add-neg",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = neg %1\n%3 : f64[B,3] = add %2, %0\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = sub %0, %1\nreturn %2\n"),
    ("mul-neg-neg",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = neg %0\n%3 : f64[B,3] = neg %1\n%4 : f64[B,3] = mul %2, %3\nreturn %4\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = mul %0, %1\nreturn %2\n"),
    ("mul-self",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = mul %0, %0\nreturn %1\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = square %0\nreturn %1\n"),
    // (a·b)/a with a = σ(x) > 0, operands in either order.
    ("div-cancel",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = sigmoid %0\n%3 : f64[B,3] = mul %1, %2\n%4 : f64[B,3] = div %3, %2\nreturn %4\n",
     "%0 : f64[B,3] = input \"y\"\nreturn %0\n"),
    // The sigmoid variance y(1−y) is known non-zero too.
    ("div-cancel",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = sigmoid %0\n%3 : f64[] = const 1.0\n%4 : f64[B,3] = broadcast %3\n%5 : f64[B,3] = sub %4, %2\n%6 : f64[B,3] = mul %2, %5\n%7 : f64[B,3] = mul %6, %1\n%8 : f64[B,3] = div %7, %6\nreturn %8\n",
     "%0 : f64[B,3] = input \"y\"\nreturn %0\n"),
    // Not for an `a` that may be zero.
    ("div-cancel",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = mul %0, %1\n%3 : f64[B,3] = div %2, %0\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = input \"y\"\n%2 : f64[B,3] = mul %0, %1\n%3 : f64[B,3] = div %2, %0\nreturn %3\n"),
    ("exp-log",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = softplus %0\n%2 : f64[B,3] = log %1\n%3 : f64[B,3] = exp %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = softplus %0\nreturn %1\n"),
    ("exp-log",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = log %0\n%2 : f64[B,3] = exp %1\nreturn %2\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = log %0\n%2 : f64[B,3] = exp %1\nreturn %2\n"),
    ("log-exp",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = exp %0\n%2 : f64[B,3] = log %1\nreturn %2\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("sum-of-broadcast",
     "%0 : f64[3] = input \"v\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[3] = sum[0] %1\nreturn %2\n",
     "%0 : f64[3] = input \"v\"\n%1 : f64[] = batch_size\n%2 : f64[3] = broadcast %1\n%3 : f64[3] = mul %0, %2\nreturn %3\n"),
    ("sum-of-broadcast",
     "%0 : f64[1,3] = input \"v\"\n%1 : f64[4,B,3] = broadcast %0\n%2 : f64[3] = sum[0,1] %1\nreturn %2\n",
     "%0 : f64[1,3] = input \"v\"\n%1 : f64[3] = reshape %0\n%2 : f64[] = const 4.0\n%3 : f64[] = batch_size\n%4 : f64[] = mul %3, %2\n%5 : f64[3] = broadcast %4\n%6 : f64[3] = mul %1, %5\nreturn %6\n"),
    // Not when a summed axis was there before the broadcast.
    ("sum-of-broadcast",
     "%0 : f64[3] = input \"v\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[] = sum[0,1] %1\nreturn %2\n",
     "%0 : f64[3] = input \"v\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[] = sum[0,1] %1\nreturn %2\n"),
    ("mul-zero",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = mul %0, %2\nreturn %3\n",
     "%0 : f64[] = const 0.0\n%1 : f64[B,3] = broadcast %0\nreturn %1\n"),
    ("add-zero",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[] = const 0.0\n%2 : f64[B,3] = broadcast %1\n%3 : f64[B,3] = add %0, %2\nreturn %3\n",
     "%0 : f64[B,3] = input \"x\"\nreturn %0\n"),
    ("sub-self",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = sub %0, %0\nreturn %1\n",
     "%0 : f64[] = const 0.0\n%1 : f64[B,3] = broadcast %0\nreturn %1\n"),
    ("div-self",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = div %0, %0\nreturn %1\n",
     "%0 : f64[] = const 1.0\n%1 : f64[B,3] = broadcast %0\nreturn %1\n"),
    ("broadcast-noop",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[B,3] = exp %1\nreturn %2\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = exp %0\nreturn %1\n"),
    ("reshape-noop",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = reshape %0\n%2 : f64[B,3] = exp %1\nreturn %2\n",
     "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = exp %0\nreturn %1\n"),
    ("broadcast-broadcast",
     "%0 : f64[3] = input \"v\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[2,B,3] = broadcast %1\nreturn %2\n",
     "%0 : f64[3] = input \"v\"\n%1 : f64[2,B,3] = broadcast %0\nreturn %1\n"),
    ("reshape-reshape",
     "%0 : f64[B,6] = input \"x\"\n%1 : f64[B,2,3] = reshape %0\n%2 : f64[B,3,2] = reshape %1\nreturn %2\n",
     "%0 : f64[B,6] = input \"x\"\n%1 : f64[B,3,2] = reshape %0\nreturn %1\n"),
    ("reshape-of-scalar",
     "%0 : f64[] = input \"s\"\n%1 : f64[B,6] = broadcast %0\n%2 : f64[B,2,3] = reshape %1\nreturn %2\n",
     "%0 : f64[] = input \"s\"\n%1 : f64[B,2,3] = broadcast %0\nreturn %1\n"),
    ("transpose-transpose",
     "%0 : f64[2,3,4] = input \"x\"\n%1 : f64[3,2,4] = transpose[1,0,2] %0\n%2 : f64[2,3,4] = transpose[1,0,2] %1\nreturn %2\n",
     "%0 : f64[2,3,4] = input \"x\"\nreturn %0\n"),
    ("transpose-transpose",
     "%0 : f64[2,3,4] = input \"x\"\n%1 : f64[3,2,4] = transpose[1,0,2] %0\n%2 : f64[4,3,2] = transpose[2,0,1] %1\nreturn %2\n",
     "%0 : f64[2,3,4] = input \"x\"\n%1 : f64[4,3,2] = transpose[2,1,0] %0\nreturn %1\n"),
    ("unary-of-broadcast",
     "%0 : f64[3] = input \"v\"\n%1 : f64[B,3] = broadcast %0\n%2 : f64[B,3] = exp %1\nreturn %2\n",
     "%0 : f64[3] = input \"v\"\n%1 : f64[3] = exp %0\n%2 : f64[B,3] = broadcast %1\nreturn %2\n"),
    ("binary-of-broadcasts",
     "%0 : f64[3] = input \"u\"\n%1 : f64[3] = input \"v\"\n%2 : f64[B,3] = broadcast %0\n%3 : f64[B,3] = broadcast %1\n%4 : f64[B,3] = sub %2, %3\nreturn %4\n",
     "%0 : f64[3] = input \"u\"\n%1 : f64[3] = input \"v\"\n%2 : f64[3] = sub %0, %1\n%3 : f64[B,3] = broadcast %2\nreturn %3\n"),
    ("const-uniform",
     "%0 : f64[3] = const [2.0, 2.0, 2.0]\nreturn %0\n",
     "%0 : f64[] = const 2.0\n%1 : f64[3] = broadcast %0\nreturn %1\n"),
    ("fold-constants",
     "%0 : f64[2] = const [1.0, 2.0]\n%1 : f64[2] = const [3.0, 4.5]\n%2 : f64[2] = add %0, %1\n%3 : f64[2] = exp %2\nreturn %3\n",
     "%0 : f64[2] = const [54.598150033144236, 665.1416330443618]\nreturn %0\n"),
];

fn random_bindings(graph: &Graph, seed: u64) -> Bindings<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut b = Bindings::new().with_batch(4);
    for id in graph.input_nodes() {
        if let Op::Input { name, shape, .. } = graph.op(id) {
            b.set(name.clone(), Tensor::from_fn(shape.resolve(4), |_| rng.random_range(0.2..2.0)));
        }
    }
    b
}

#[test]
fn each_rule_rewrites_its_pattern_and_preserves_values() {
    for &(rule, input, expected) in CASES {
        let graph = parse(input).unwrap_or_else(|e| panic!("{rule}: {e}"));
        let options = Options { fast_math: true, ..Options::only(rule) };
        let simplified = simplify(&graph, &options).unwrap();
        let out = print(&simplified.graph);
        assert_eq!(out, expected, "rule {rule}:\n{input}");
        let hits = simplified.stats.hits.get(rule).copied().unwrap_or(0);
        assert_eq!(hits > 0, input != expected, "rule {rule}: {hits} hits");
        assert!(
            simplified.stats.hits.keys().all(|r| *r == rule),
            "only {rule} may fire: {:?}",
            simplified.stats.hits
        );
        for seed in 0..3 {
            let before = eval(&graph, &random_bindings(&graph, seed)).unwrap();
            let after = eval(&simplified.graph, &random_bindings(&graph, seed)).unwrap();
            for (a, b) in after.iter().zip(&before) {
                assert_eq!(a.shape(), b.shape(), "rule {rule}");
                for (x, y) in a.data().iter().zip(b.data()) {
                    assert!(
                        (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                        "rule {rule} changed a value: {x} vs {y}"
                    );
                }
            }
        }
    }
}

/// Values the random draws never produce: signed zeros, negatives, infinities, NaN.
const SPECIAL: [f64; 7] = [0.0, -0.0, -1.5, -700.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];

/// Rules whose guard excludes some special values, and which ones (the guard is stated in
/// the rule's doc; the values here are where it does not hold).
fn excluded(rule: &str, value: f64) -> bool {
    match rule {
        // `log(softplus(x))` / `σ(x)` are only proved positive for finite x: at x = −∞ (and
        // below about −745 in f64) they underflow to 0, where the original is NaN or −∞.
        "exp-log" => value == f64::NEG_INFINITY || value == -700.0,
        // `σ(x)` and `σ(x)(1 − σ(x))` are non-zero in exact arithmetic for finite x only; at
        // ±∞ (or where σ rounds to 0 or 1) the original is 0/0 = NaN and the rewrite gives
        // the limit. Cancelling `a` also drops a NaN only `a` carries (x = NaN).
        "div-cancel" => !value.is_finite() || value == -700.0,
        _ => false,
    }
}

/// Equal as IEEE values, including the sign of zero; NaN equals NaN.
fn same(x: f64, y: f64) -> bool {
    (x.is_nan() && y.is_nan())
        || (x == y && x.is_sign_negative() == y.is_sign_negative())
        || (x - y).abs() <= 1e-12 * (1.0 + y.abs())
}

#[test]
fn exact_rules_preserve_zeros_negatives_infinities_and_nan() {
    for &(rule, input, expected) in CASES {
        let family = all_rules().find(|r| r.name == rule).map(|r| r.family);
        if input == expected || family == Some(Family::FastMath) {
            continue;
        }
        let graph = parse(input).unwrap();
        let simplified = simplify(&graph, &Options::only(rule)).unwrap();
        for &special in SPECIAL.iter().filter(|&&v| !excluded(rule, v)) {
            // Every input holds the special value at one position and random values elsewhere,
            // the position differing between inputs so pairs of specials meet too.
            let mut bindings = random_bindings(&graph, 7);
            for (k, id) in graph.input_nodes().into_iter().enumerate() {
                if let Op::Input { name, shape, .. } = graph.op(id) {
                    let dims = shape.resolve(4);
                    let len: usize = dims.iter().product();
                    let mut data = bindings.get(name).unwrap().data().to_vec();
                    data[k % len] = special;
                    data[(k + 1) % len] = special;
                    bindings.set(name.clone(), Tensor::new(dims, data).unwrap());
                }
            }
            let before = eval(&graph, &bindings).unwrap();
            let after = eval(&simplified.graph, &bindings).unwrap();
            for (a, b) in after.iter().zip(&before) {
                for (x, y) in a.data().iter().zip(b.data()) {
                    assert!(same(*x, *y), "rule {rule} with {special}: {x} after, {y} before\n{input}");
                }
            }
        }
    }
}

#[test]
fn every_rule_has_a_test_case() {
    for rule in all_rules() {
        assert!(
            CASES.iter().any(|(name, input, expected)| *name == rule.name && input != expected),
            "no case fires {}",
            rule.name
        );
    }
}

#[test]
fn fast_math_rules_are_off_by_default() {
    let input = "%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = sub %0, %0\nreturn %1\n";
    let simplified = simplify(&parse(input).unwrap(), &Options::default()).unwrap();
    assert_eq!(print(&simplified.graph), input);
}

#[test]
fn budgets_stop_a_rewrite_loop_and_report_the_rules() {
    // A long chain of negations collapses within the budget…
    let mut text = String::from("%0 : f64[B,3] = input \"x\"\n");
    for i in 1..=40 {
        text += &format!("%{i} : f64[B,3] = neg %{}\n", i - 1);
    }
    text += "return %40\n";
    let simplified = simplify(&parse(&text).unwrap(), &Options::default()).unwrap();
    assert_eq!(simplified.graph.len(), 1);
    assert!(simplified.stats.budget.is_none());
    // …but with one iteration allowed and rules still firing, the budget is reported.
    let graph = parse("%0 : f64[B,3] = input \"x\"\n%1 : f64[B,3] = mul %0, %0\n%2 : f64[B,3] = neg %1\n%3 : f64[B,3] = neg %2\nreturn %3\n").unwrap();
    let tight = Options { max_iterations: 1, ..Options::default() };
    let simplified = simplify(&graph, &tight).unwrap();
    let budget = simplified.stats.budget.expect("budget reported");
    assert!(budget.starts_with("iteration budget (1) reached; rules still firing: "), "{budget}");
    assert!(budget.contains("mul-self×1") && budget.contains("neg-neg×1"), "{budget}");
}
