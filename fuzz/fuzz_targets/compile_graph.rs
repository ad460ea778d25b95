//! Random small graphs built through the DSL, compiled for the CPU or for the GPU backend on
//! the PTX simulator (`Device::Sim`) and run against the reference interpreter: every input ends in a typed error (from the builder or the
//! compiler) or in outputs equal to the interpreter's within a tolerance scaled by the
//! largest intermediate value. Never a panic, a crash or a memory error.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use natgrad::lower::Partition;
use natgrad::prelude::{Bindings, Builder, DType, Expr, Graph, Shape, Tensor};
use natgrad::{CompileOptions, Device, Scalar, compile_graph};
use natgrad_ir::{Compare, Dim, Op, Window, eval_nodes};

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});

/// Largest magnitude for which values are compared; beyond it (or with ±∞ anywhere) an
/// overflow boundary may fall differently in compiled code, and only "no crash" is checked.
const COMPARED_MAGNITUDE: f64 = 1e30;

fn check(u: &mut Unstructured) -> Result<()> {
    let double = u.arbitrary::<bool>()?;
    let device = if u.arbitrary()? { Device::Sim } else { Device::Cpu };
    let options = CompileOptions {
        device,
        simplify: u.arbitrary()?,
        libm_math: u.arbitrary()?,
        threads: u.int_in_range(1..=2)?,
        ..CompileOptions::default()
    };
    let batch = u.int_in_range(1..=5)?;
    let Some(graph) = random_graph(u, if double { DType::F64 } else { DType::F32 })? else {
        return Ok(());
    };
    if double {
        compare::<f64>(u, &graph, batch, &options, 1e-10)
    } else {
        compare::<f32>(u, &graph, batch, &options, 1e-4)
    }
}

/// A graph of 1–12 random steps over batched inputs `a`, `c` ([B, n]) and fixed `w` ([n, n])
/// and `v` ([n]); `None` when the builder rejects it (a typed error, which is fine).
fn random_graph(u: &mut Unstructured, dtype: DType) -> Result<Option<Graph>> {
    let n = u.int_in_range(1..=6)?;
    let b = Builder::new(dtype);
    let leaves = [
        b.input("a", Shape::batched(&[n])),
        b.input("c", Shape::batched(&[n])),
        b.input("w", Shape::fixed(&[n, n])),
        b.input("v", Shape::fixed(&[n])),
    ];
    let mut pool: Vec<Expr> = leaves.to_vec();
    for _ in 0..u.int_in_range(1..=12)? {
        let x = pool[u.choose_index(pool.len())?].clone();
        let y = pool[u.choose_index(pool.len())?].clone();
        let next = step(u, &b, &leaves, &x, &y)?;
        pool.push(next);
    }
    let count = u.int_in_range(1..=2)?.min(pool.len());
    let outputs: Vec<&Expr> = pool.iter().rev().take(count).collect();
    Ok(b.finish(&outputs).ok())
}

/// One operation on `x` (and `y`); operands of the wrong shape are allowed on purpose.
fn step(u: &mut Unstructured, b: &Builder, leaves: &[Expr; 4], x: &Expr, y: &Expr) -> Result<Expr> {
    let axis = u.int_in_range(0..=2)?;
    let keep = u.arbitrary::<bool>()?;
    let c = f64::from(u.int_in_range(-8i8..=8)?) / 4.0;
    Ok(match u.int_in_range(0..=32u8)? {
        0 => -x,
        1 => x.exp(),
        2 => (x.softplus() + 0.5).log(),
        3 => (x.square() + 1.0).sqrt(),
        4 => x.sigmoid().pow(1.5),
        5 => x.relu(),
        6 => x + y,
        7 => x - y,
        8 => x * y,
        9 => x / &(y.square() + 1.0),
        10 => x.maximum(y),
        11 => x.matmul(y),
        12 => x.matmul_t(y, u.arbitrary()?, u.arbitrary()?),
        13 => x.softmax(axis),
        14 => x.log_softmax(axis),
        15 => x - &x.max(&[axis], true),
        16 => x.sum(&[axis], keep),
        17 => x.mean(&[axis], keep),
        18 => x.transpose(&[1, 0]),
        19 => x.tanh(),
        20 => x * c,
        21 => x + &b.scalar(c),
        22 => x * &b.batch_size(),
        23 => x.square().log1p(),
        24 => x.reshape(Shape(vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(u.int_in_range(1..=6)?)])),
        25 => x.broadcast_to(Shape(vec![Dim::Batch, Dim::Fixed(u.int_in_range(1..=6)?)])),
        26 => x.sum_all(),
        // Compare only leaves: a comparison of two computed values that are equal up to
        // rounding may fall either way, in compiled code and in the interpreter alike.
        27 => {
            let (p, q) = (&leaves[u.choose_index(2)?], &leaves[u.choose_index(2)?]);
            p.compare(Compare::Gt, q).select(x, y)
        }
        28 => x.max(&[axis], keep),
        29 => x.softplus() * c,
        // Convolution patches of `x` seen as 1×n images, summed back to [B, patch].
        30 => {
            let window = random_window(u)?;
            let image = Shape(vec![Dim::Batch, Dim::Fixed(1), row_width(x), Dim::Fixed(1)]);
            x.reshape(image).im2col(window).sum(&[1, 2], false)
        }
        // col2im of `x` seen as the 1×n patches of a 1-row image, back to rows.
        31 => {
            let kernel = u.int_in_range(1..=3)?;
            let padding = u.int_in_range(0..=(kernel - 1) / 2)?;
            let window = Window { kernel: [1, kernel], stride: [1, 1], padding: [0, padding] };
            let Dim::Fixed(n) = row_width(x) else { return Ok(x.clone()) };
            let width = n + kernel - 1 - 2 * padding;
            let patches = Shape(vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(n), Dim::Fixed(kernel)]);
            x.reshape(Shape(vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(n), Dim::Fixed(1)]))
                .broadcast_to(patches)
                .col2im(window, [1, width])
                .reshape(Shape::batched(&[width]))
        }
        // A convolution of `x` seen as a 1×n image with filters all equal to Σv.
        _ => {
            let window = random_window(u)?;
            let image = Shape(vec![Dim::Batch, Dim::Fixed(1), row_width(x), Dim::Fixed(1)]);
            let filters =
                leaves[3].sum_all().broadcast_to(Shape::fixed(&[window.kernel[0], window.kernel[1], 1, 2]));
            x.reshape(image).conv2d(&filters, window.stride, window.padding).sum(&[1, 3], false)
        }
    })
}

/// The last dimension of `x` (the row width of a `[B, n]` value).
fn row_width(x: &Expr) -> Dim {
    x.shape().0.last().copied().unwrap_or(Dim::Fixed(1))
}

/// A window over 1-row images: kernel 1×(1–3), stride 1×(1–2), padding 0×(0–1).
fn random_window(u: &mut Unstructured) -> Result<Window> {
    Ok(Window {
        kernel: [1, u.int_in_range(1..=3)?],
        stride: [1, u.int_in_range(1..=2)?],
        padding: [0, u.int_in_range(0..=1)?],
    })
}

/// Compiles `graph`, runs it on random inputs and compares with the interpreter.
fn compare<T: Scalar>(
    u: &mut Unstructured,
    graph: &Graph,
    batch: usize,
    options: &CompileOptions,
    tolerance: f64,
) -> Result<()> {
    let Ok(program) = compile_graph::<T>(graph, &Partition::single(), options) else { return Ok(()) };
    let mut session = program.clone().session(batch).expect("a session of a compiled graph opens");
    let mut bindings = Bindings::new().with_batch(batch);
    for id in graph.node_ids() {
        if let Op::Input { name, shape, .. } = graph.op(id) {
            let dims = shape.resolve(batch);
            let values = (0..dims.iter().product::<usize>())
                .map(|_| Ok(T::from_f64(f64::from(u.int_in_range(-16i8..=16)?) / 8.0)))
                .collect::<Result<Vec<T>>>()?;
            session.set(name, &values).expect("input lengths come from the graph's shapes");
            bindings.set(name.clone(), Tensor::new(dims, values).expect("shape and data agree"));
        }
    }
    session.run(0).expect("running a compiled graph with every input set succeeds");
    let all: Vec<_> = graph.node_ids().collect();
    let Ok(values) = eval_nodes(graph, &bindings, &all) else { return Ok(()) };
    let scale = values.iter().flat_map(|t| t.data()).fold(0.0f64, |m, v| m.max(v.as_f64().abs()));
    if !(scale <= COMPARED_MAGNITUDE) {
        return Ok(());
    }
    for (index, &id) in graph.outputs().iter().enumerate() {
        let expected = values[id.index()].data();
        let mut got = vec![T::zero(); expected.len()];
        session.read(index, &mut got).expect("output lengths come from the graph's shapes");
        for (k, (g, w)) in got.iter().zip(expected).enumerate() {
            let (g, w) = (g.as_f64(), w.as_f64());
            let equal = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tolerance * (1.0 + scale);
            assert!(equal, "output {index}[{k}]: compiled {g}, interpreter {w} (scale {scale})\n{graph}");
        }
    }
    Ok(())
}
