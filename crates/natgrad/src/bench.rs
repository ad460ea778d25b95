//! `natgrad bench fvp`: forward, loss+gradient, prepare and apply timings for a model, as
//! achieved GFLOP/s next to the GEMM peak measured in the same run with the same library.

use std::fmt::Write as _;
use std::time::Instant;

use natgrad_autodiff::fisher_product;
use natgrad_ir::Scalar;
use natgrad_ir::{DType, Graph, Model, NodeId, Op};
use natgrad_lower::Partition;

use crate::compile::{CompileOptions, Error, compile_fisher_product, compile_gradient, compile_loss};

/// One timed operation.
#[derive(Clone, Debug)]
pub struct Timing {
    /// `forward`, `gradient`, `prepare` or `apply`.
    pub what: &'static str,
    /// Batch size.
    pub batch: usize,
    /// Median, min, max milliseconds.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Matmul FLOPs the operation needs, per run.
    pub flops: f64,
}

impl Timing {
    /// Achieved GFLOP/s at the median.
    pub fn gflops(&self) -> f64 {
        self.flops / (self.median_ms * 1e6)
    }
}

/// A whole benchmark run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Best median GEMM GFLOP/s over Curves-like shapes, same library and threads.
    pub gemm_peak_gflops: f64,
    /// Compile time of the Fisher product: graph build, autodiff, simplify, codegen (ms).
    pub compile_ms: [f64; 4],
    /// Memory plan of the Fisher product per batch (bytes).
    pub peak_bytes: Vec<(usize, usize)>,
    /// Timings.
    pub results: Vec<Timing>,
    /// Where each operation's time goes by kind of work, per batch size.
    pub profiles: Vec<String>,
    /// The slowest units of forward, gradient and apply per batch size (`run`'s `units`),
    /// as tables.
    pub unit_tables: Vec<String>,
    /// Per batch size, apply's largest deviation from the same product in f64 on the CPU,
    /// over the largest element of that product (the element type's and, on a GPU, TF32's
    /// rounding).
    pub apply_errors: Vec<(usize, f64)>,
}

fn time_runs(runs: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<(f64, f64, f64), Error> {
    f()?; // warm-up
    let mut ms: Vec<f64> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[0], ms[ms.len() - 1]))
}

/// FLOPs of the matmuls of `graph`, split by whether they depend on a `v.` input.
fn matmul_flops(graph: &Graph, batch: usize) -> (f64, f64) {
    let mut tangent = vec![false; graph.len()];
    let (mut without, mut with) = (0.0, 0.0);
    for id in graph.node_ids() {
        tangent[id.index()] = matches!(graph.op(id), Op::Input { name, .. } if name.starts_with("v."))
            || graph.inputs(id).iter().any(|i| tangent[i.index()]);
        if let Op::MatMul { transpose_a, .. } = graph.op(id) {
            let a = graph.shape(graph.inputs(id)[0]).resolve(batch);
            let k = if *transpose_a { a[0] } else { a[1] };
            let f = 2.0 * graph.shape(id).num_elements(batch) as f64 * k as f64;
            if tangent[id.index()] { with += f } else { without += f }
        }
    }
    (without, with)
}

fn flops_of(graph: &Graph, batch: usize) -> f64 {
    let (a, b) = matmul_flops(graph, batch);
    a + b
}

/// `batch × width` input (or target) values `value(i)`, or an error — not an abort — when
/// their count overflows or the machine will not give the memory (a `--batch` too large).
fn inputs<T: Scalar>(batch: usize, width: usize, value: impl Fn(usize) -> T) -> Result<Vec<T>, Error> {
    let count =
        batch.checked_mul(width).filter(|n| n.checked_mul(size_of::<T>()).is_some()).ok_or_else(|| {
            natgrad_lower::Error::BatchTooLarge {
                batch,
                node: "the inputs".into(),
                ty: format!("{}[{batch},{width}]", T::DTYPE),
            }
        })?;
    Ok(filled(count, value, || format!("the inputs at batch size {batch}"))?)
}

/// `count` values `value(i)`, or an out-of-memory error for `what` where `collect` would
/// abort the process.
pub(crate) fn filled<T>(
    count: usize,
    value: impl Fn(usize) -> T,
    what: impl FnOnce() -> String,
) -> Result<Vec<T>, natgrad_lower::Error> {
    let mut values = Vec::new();
    values.try_reserve_exact(count).map_err(|_| natgrad_lower::Error::OutOfMemory {
        what: what(),
        bytes: count.saturating_mul(size_of::<T>()),
    })?;
    values.extend((0..count).map(value));
    Ok(values)
}

/// Best median GFLOP/s of the device's GEMM on the shapes of the model's first layer (a
/// one-matmul graph compiled like any other).
fn gemm_peak<T: Scalar>(
    batch: usize,
    n_in: usize,
    n_out: usize,
    runs: usize,
    options: &CompileOptions,
) -> Result<f64, Error> {
    let shapes = [(batch, n_in, n_out), (batch, n_out, n_in), (n_in, batch, n_out)];
    let mut best: f64 = 0.0;
    for (m, k, n) in shapes {
        let builder = natgrad_ir::Builder::new(T::DTYPE);
        let a = builder.input("a", natgrad_ir::Shape::fixed(&[m, k]));
        let b = builder.input("b", natgrad_ir::Shape::fixed(&[k, n]));
        let graph = builder.finish(&[&a.matmul(&b)])?;
        let program = crate::compile::compile_graph::<T>(&graph, &Partition::single(), options)?;
        let mut session = program.session(1)?;
        session.set("a", &vec![T::from_f64(0.5); m * k])?;
        session.set("b", &vec![T::from_f64(0.25); k * n])?;
        let (median, _, _) = time_runs(runs, || Ok(session.run(0)?))?;
        best = best.max(2.0 * (m * k * n) as f64 / (median * 1e6));
    }
    Ok(best)
}

/// Runs the benchmark for the model `build` makes in an element type (timed as graph
/// construction; also built in f64 for the CPU reference of apply's accuracy), listing the
/// `units` slowest units of forward, gradient and apply per batch size.
pub fn run<T: Scalar>(
    build: impl Fn(DType) -> Result<Model, Error>,
    batches: &[usize],
    runs: usize,
    units: usize,
    options: &CompileOptions,
) -> Result<Report, Error> {
    let start = Instant::now();
    let model = build(T::DTYPE)?;
    let build_time = start.elapsed();
    let mut reference = compile_fisher_product::<f64>(&build(DType::F64)?, &CompileOptions::default())?;
    let mut apply_errors = Vec::new();
    let mut fvp = compile_fisher_product::<T>(&model, options)?;
    let compile_ms = [
        build_time.as_secs_f64() * 1e3,
        fvp.report.autodiff.as_secs_f64() * 1e3,
        fvp.report.simplify.as_secs_f64() * 1e3,
        (fvp.report.lower + fvp.report.codegen).as_secs_f64() * 1e3,
    ];
    let mut gradient = compile_gradient::<T>(&model, options)?;
    let mut loss = compile_loss::<T>(&model, options)?;
    let product_graph = fisher_product(&model)?.graph;
    let gradient_graph = natgrad_autodiff::gradient(&model)?.graph;
    let n = model.layout.len();
    let width = model.graph.shape(model.input).0[1].resolve(1);
    let n_out = model
        .graph
        .shape(first_matmul(&model.graph).unwrap_or(model.input))
        .0
        .last()
        .map_or(1, |d| d.resolve(1));
    let theta: Vec<T> =
        (0..n).map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0 * 0.1 - 0.05)).collect();
    let v: Vec<T> = (0..n).map(|i| T::from_f64(((i * 104729) % 1000) as f64 / 1000.0 - 0.5)).collect();
    let mut gv = vec![T::zero(); n];
    let mut grad = vec![T::zero(); n];
    let mut results = Vec::new();
    let mut peak_bytes = Vec::new();
    let mut profiles = Vec::new();
    let mut unit_tables = Vec::new();
    let mut gemm_peak_gflops: f64 = 0.0;
    for &batch in batches {
        let x = inputs(batch, width, |i| T::from_f64(((i * 31) % 97) as f64 / 97.0))?;
        let targets: Vec<T> = if model.is_autoencoder() {
            Vec::new()
        } else {
            inputs(batch, model.graph.shape(model.targets).0[1].resolve(1), |_| T::zero())?
        };
        let targets = (!model.is_autoencoder()).then_some(targets.as_slice());
        gemm_peak_gflops = gemm_peak_gflops.max(gemm_peak::<T>(batch, width, n_out, runs, options)?);
        let (forward_flops, _) = matmul_flops(&model.graph, batch);
        let (prepare_flops, apply_flops) = matmul_flops(&product_graph, batch);
        let mut record = |what, (median_ms, min_ms, max_ms): (f64, f64, f64), flops| {
            results.push(Timing { what, batch, median_ms, min_ms, max_ms, flops })
        };
        record("forward", time_runs(runs, || loss.loss(&theta, &x, targets).map(|_| ()))?, forward_flops);
        record(
            "gradient",
            time_runs(runs, || gradient.loss_and_gradient(&theta, &x, targets, &mut grad).map(|_| ()))?,
            flops_of(&gradient_graph, batch),
        );
        record("prepare", time_runs(runs, || fvp.prepare(&theta, &x))?, prepare_flops);
        record("apply", time_runs(runs, || fvp.apply(&v, &mut gv))?, apply_flops);
        loss.set_profiling(true);
        gradient.set_profiling(true);
        fvp.set_profiling(true);
        for _ in 0..runs {
            loss.loss(&theta, &x, targets)?;
            gradient.loss_and_gradient(&theta, &x, targets, &mut grad)?;
            fvp.apply(&v, &mut gv)?;
        }
        let timed = [
            ("forward", loss.profile(batch), loss.plan(), ""),
            ("gradient", gradient.profile(batch), gradient.plan(), " --product gradient"),
            ("apply", fvp.profile(), fvp.plan(), " --product fisher"),
        ];
        for (what, profile, plan, graph) in timed {
            let profile = profile.unwrap_or_default();
            if units > 0 {
                unit_tables.push(format!(
                    "{what}: the {units} slowest of {} units at batch {batch} (nodes as `natgrad ir --model …{graph} --optimized` numbers them):\n{}",
                    profile.units().count(),
                    profile.slowest_units(plan, batch, runs, units)
                ));
            }
            profiles.push(profile_line(what, batch, runs, &profile));
        }
        loss.set_profiling(false);
        gradient.set_profiling(false);
        fvp.set_profiling(false);
        peak_bytes.push((batch, fvp.peak_bytes().unwrap_or(0)));
        let wide = |values: &[T]| values.iter().map(|v| v.as_f64()).collect::<Vec<f64>>();
        reference.prepare(&wide(&theta), &wide(&x))?;
        let mut exact = vec![0.0; n];
        reference.apply(&wide(&v), &mut exact)?;
        let scale = exact.iter().fold(f64::MIN_POSITIVE, |m, e| m.max(e.abs()));
        let deviation = gv.iter().zip(&exact).fold(0.0f64, |m, (g, e)| m.max((g.as_f64() - e).abs()));
        apply_errors.push((batch, deviation / scale));
    }
    Ok(Report { gemm_peak_gflops, compile_ms, peak_bytes, results, profiles, unit_tables, apply_errors })
}

/// `"{what} profile at batch {batch}: kernel 6.6% (22 calls/run) …"`.
fn profile_line(what: &str, batch: usize, runs: usize, profile: &natgrad_lower::Profile) -> String {
    let total = profile.total().as_secs_f64();
    let mut line = format!("{what} profile at batch {batch}:");
    for (kind, natgrad_lower::UnitTime { calls, time }) in profile.by_kind() {
        let _ = write!(
            line,
            " {kind} {:.1}% {:.2} ms ({} calls/run)",
            100.0 * time.as_secs_f64() / total,
            1e3 * time.as_secs_f64() / runs as f64,
            calls / runs
        );
    }
    line
}

fn first_matmul(graph: &Graph) -> Option<NodeId> {
    graph.node_ids().find(|&id| matches!(graph.op(id), Op::MatMul { .. }))
}

impl Report {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut out =
            format!("GEMM peak (the device's GEMM, same threads): {:.1} GFLOP/s\n", self.gemm_peak_gflops);
        let [build, autodiff, simplify, codegen] = self.compile_ms;
        let _ = writeln!(
            out,
            "compile: {:.1} ms total = graph {build:.1} + autodiff {autodiff:.1} + simplify {simplify:.1} + codegen {codegen:.1}",
            build + autodiff + simplify + codegen
        );
        for (batch, bytes) in &self.peak_bytes {
            let _ =
                writeln!(out, "memory plan at batch {batch}: {:.1} MiB", *bytes as f64 / (1 << 20) as f64);
        }
        for (batch, error) in &self.apply_errors {
            let _ = writeln!(
                out,
                "apply at batch {batch} vs the f64 product on the CPU: largest error {error:.2e} of the largest element"
            );
        }
        let _ = writeln!(
            out,
            "{:<9} {:>6} {:>10} {:>10} {:>10} {:>9} {:>7}",
            "what", "batch", "median ms", "min ms", "max ms", "GFLOP/s", "of peak"
        );
        for line in &self.profiles {
            let _ = writeln!(out, "{line}");
        }
        for r in &self.results {
            let _ = writeln!(
                out,
                "{:<9} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>9.1} {:>6.0}%",
                r.what,
                r.batch,
                r.median_ms,
                r.min_ms,
                r.max_ms,
                r.gflops(),
                100.0 * r.gflops() / self.gemm_peak_gflops
            );
        }
        for table in &self.unit_tables {
            let _ = write!(out, "{table}");
        }
        out
    }

    /// The JSON form (`--json FILE`).
    pub fn json(&self) -> String {
        let results: Vec<String> = self
            .results
            .iter()
            .map(|r| {
                format!(
                    "{{\"what\": \"{}\", \"batch\": {}, \"median_ms\": {:.4}, \"min_ms\": {:.4}, \"max_ms\": {:.4}, \"gflops\": {:.3}}}",
                    r.what, r.batch, r.median_ms, r.min_ms, r.max_ms, r.gflops()
                )
            })
            .collect();
        let peak: Vec<String> =
            self.peak_bytes.iter().map(|(b, n)| format!("{{\"batch\": {b}, \"bytes\": {n}}}")).collect();
        let errors: Vec<String> = self
            .apply_errors
            .iter()
            .map(|(b, e)| format!("{{\"batch\": {b}, \"relative_error\": {e:e}}}"))
            .collect();
        format!(
            "{{\"gemm_peak_gflops\": {:.3}, \"compile_ms\": {:.3}, \"compile_breakdown_ms\": {{\"graph\": {:.3}, \"autodiff\": {:.3}, \"simplify\": {:.3}, \"codegen\": {:.3}}}, \"memory_plan\": [{}], \"apply_errors\": [{}], \"results\": [{}]}}\n",
            self.gemm_peak_gflops,
            self.compile_ms.iter().sum::<f64>(),
            self.compile_ms[0],
            self.compile_ms[1],
            self.compile_ms[2],
            self.compile_ms[3],
            peak.join(", "),
            errors.join(", "),
            results.join(", ")
        )
    }
}

/// `natgrad bench exp`: the two routes for the kernels' transcendentals (libm calls per lane
/// vs the shared routines — inline on 128-bit vectors, or on slices in rows at least 32 wide),
/// on an f32 sigmoid kernel and on the Curves forward pass (sigmoids and the softplus of the
/// loss), side by side.
pub fn exp_routes(batch: usize, runs: usize) -> Result<String, Error> {
    use natgrad_ir::{Builder, DType, Shape};
    let mut out = format!(
        "f32 math routes, batch {batch}, medians of {runs} runs (min–max); rows of 784 run the shared routines on slices (AVX-512, AVX2 or baseline: the widest this CPU has, capped by NATGRAD_CPU_MAX_ISA)\n"
    );
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[784]));
    let graph = b.finish(&[&x.sigmoid()])?;
    let data: Vec<f32> = inputs(batch, 784, |i| ((i % 1997) as f32 / 1997.0 - 0.5) * 20.0)?;
    let model = crate::nn::curves_autoencoder();
    let theta: Vec<f32> =
        (0..model.layout.len()).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 * 0.1 - 0.05).collect();
    for libm_math in [true, false] {
        let options = CompileOptions { libm_math, ..CompileOptions::default() };
        let program = crate::compile::compile_graph::<f32>(&graph, &Partition::single(), &options)?;
        let mut session = program.session(batch)?;
        session.set("x", &data)?;
        let (median, min, max) = time_runs(runs, || Ok(session.run(0)?))?;
        let route = if libm_math { "libm" } else { "shared" };
        let _ = writeln!(
            out,
            "sigmoid kernel [{batch}×784], {route:<10}: {median:.2} ms ({min:.2}–{max:.2}), {:.0} Melem/s",
            (batch * 784) as f64 / (median * 1e3)
        );
        let mut loss = crate::compile::compile_loss::<f32>(&model, &options)?;
        let (median, min, max) = time_runs(runs, || loss.loss(&theta, &data, None).map(|_| ()))?;
        let _ = writeln!(out, "Curves forward + loss,  {route:<10}: {median:.2} ms ({min:.2}–{max:.2})");
    }
    Ok(out)
}
