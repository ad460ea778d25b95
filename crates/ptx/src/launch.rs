//! What a runtime does for each plan unit, as data: kernel launches with their `.u64`
//! arguments (each entry kind's parameter contract, documented in [`crate::kernel`],
//! [`crate::host`] and [`crate::patches`]), buffers zeroed, GEMMs in cuBLAS's column-major
//! terms and values written. The CUDA runtime executes these steps on a GPU; the PTX
//! simulator executes the same steps on the host, so the launch arguments are checked
//! without a GPU.

use natgrad_ir::{DType, NodeId, Reduce};
use natgrad_lower::{Plan, Work, as_matrix};

/// Threads per block of every plan launch (the entries are grid-stride loops).
pub const BLOCK: u32 = 256;

/// Reduced elements per thread when a sum or mean over many elements has fewer than
/// [`REDUCE_OUTPUTS`] outputs (the chunks' parts are added atomically).
pub const REDUCE_CHUNK: usize = 64;

/// Outputs from which a reduction keeps one thread per output.
pub const REDUCE_OUTPUTS: usize = 16384;

/// Most blocks of one launch (the grid-stride loop covers the rest).
pub const MAX_BLOCKS: usize = 1 << 20;

/// The blocks of a launch over `total` elements with [`BLOCK`] threads each.
pub fn blocks(total: usize) -> u32 {
    total.div_ceil(BLOCK as usize).min(MAX_BLOCKS) as u32
}

/// Which entry of a plan's [`crate::Module`] a launch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The entry of plan unit `u` (its name is in [`crate::Module::kernels`]).
    Unit(usize),
    /// The in-place scale entry ([`crate::Module::scale`]) dividing a fused column sum by
    /// its count.
    Scale,
}

/// Column-major `c = op(a)·op(b)` (`m × n`, inner extent `k ≥ 1`) as `cublas?gemm` takes
/// it, with α = 1 and β = 0; `lda`, `ldb`, `ldc` are leading dimensions in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// Whether `a` is transposed (`CUBLAS_OP_T`).
    pub transa: bool,
    /// Whether `b` is transposed.
    pub transb: bool,
    /// Rows of `c`.
    pub m: usize,
    /// Columns of `c`.
    pub n: usize,
    /// The inner extent.
    pub k: usize,
    /// The buffer of `a`.
    pub a: NodeId,
    /// Leading dimension of `a`.
    pub lda: usize,
    /// The buffer of `b`.
    pub b: NodeId,
    /// Leading dimension of `b`.
    pub ldb: usize,
    /// The buffer of `c`.
    pub c: NodeId,
    /// Leading dimension of `c`.
    pub ldc: usize,
}

/// One thing a runtime does, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Launch `entry` for `total` threads' work ([`blocks`] blocks of [`BLOCK`] threads)
    /// with `.u64` parameters `args`.
    Launch {
        /// The entry.
        entry: Entry,
        /// Work items of the grid-stride loop: elements, or 16-byte vectors of a fused
        /// kernel's ([`crate::kernel::threads`]); nothing is launched for 0.
        total: usize,
        /// Its parameters: buffer addresses, sizes, float bits.
        args: Vec<u64>,
    },
    /// Zero the first `elements` elements of a node's buffer.
    Zero {
        /// The node.
        node: NodeId,
        /// Elements to zero.
        elements: usize,
    },
    /// A GEMM on cuBLAS.
    Gemm(Gemm),
    /// Write `values` (converted to the plan's element type) to the start of a node's buffer.
    Write {
        /// The node.
        node: NodeId,
        /// The values.
        values: Vec<f64>,
    },
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// The bits of `value` in `dtype`, as the entries read float parameters (f32 in the low 32).
pub fn float_bits(dtype: DType, value: f64) -> u64 {
    match dtype {
        DType::F32 => u64::from((value as f32).to_bits()),
        DType::F64 => value.to_bits(),
    }
}

/// The steps running unit `u` of `plan` at batch size `batch`; `address` gives the device
/// address of a node's buffer (from the shared memory plan).
pub fn steps(plan: &Plan, u: usize, batch: usize, address: &dyn Fn(NodeId) -> u64) -> Vec<Step> {
    let unit = &plan.units[u];
    let out = unit.outputs[0];
    let dims = |n: NodeId| plan.graph.shape(n).resolve(batch);
    let launch = |total: usize, args: Vec<u64>| Step::Launch { entry: Entry::Unit(u), total, args };
    match &unit.work {
        Work::Kernel { spec, shape, args } => {
            let dims = shape.resolve(batch);
            let cols = dims.last().copied().unwrap_or(1);
            let total: usize = dims.iter().product();
            let rows = total.checked_div(cols).unwrap_or(0);
            let sums = &args[args.len() - spec.column_sums.len()..];
            // Column sums accumulate with atomics into zeroed buffers.
            let mut steps: Vec<Step> = sums.iter().map(|&node| Step::Zero { node, elements: cols }).collect();
            let mut params: Vec<u64> = args.iter().map(|&a| address(a)).collect();
            params.extend([rows as u64, cols as u64]);
            steps.push(launch(crate::kernel::threads(spec, rows, cols), params));
            for (sum, &node) in spec.column_sums.iter().zip(sums) {
                if sum.mean {
                    let args = vec![address(node), cols as u64, float_bits(spec.dtype, 1.0 / rows as f64)];
                    steps.push(Step::Launch { entry: Entry::Scale, total: cols, args });
                }
            }
            steps
        }
        Work::MatMul { a, b, ta, tb } => matmul(plan, batch, *a, *b, *ta, *tb, out),
        Work::Patches { x, window, adjoint } => {
            let image = if *adjoint { dims(out) } else { dims(*x) };
            let [n, h, w, c] = [image[0], image[1], image[2], image[3]];
            let [oh, ow] = window.positions([h, w]).unwrap_or([0, 0]);
            let [kh, kw] = window.kernel;
            let total = if *adjoint { n * h * w * c } else { n * oh * ow * kh * kw * c };
            let geometry = [c, kw, kh, ow, oh, w, h, window.stride[1], window.stride[0]];
            let mut args = vec![address(*x), address(out), total as u64];
            args.extend(geometry.iter().map(|&v| v as u64));
            args.extend([window.padding[1] as u64, window.padding[0] as u64]);
            vec![launch(total, args)]
        }
        Work::Softmax { x, axis, .. } => {
            let dims = dims(*x);
            let (outer, n, inner): (usize, usize, usize) =
                (dims[..*axis].iter().product(), dims[*axis], dims[axis + 1..].iter().product());
            vec![launch(outer * inner, vec![address(*x), address(out), outer as u64, n as u64, inner as u64])]
        }
        Work::Transpose { x, perm } => {
            let source = strides(&dims(*x));
            let sources: Vec<usize> = perm.iter().map(|&p| source[p]).collect();
            vec![gather(&dims(out), &sources, vec![address(*x), address(out)], launch)]
        }
        Work::Broadcast { x } => {
            let (x_dims, out_dims) = (dims(*x), dims(out));
            let source = strides(&x_dims);
            let offset = out_dims.len() - x_dims.len();
            let sources: Vec<usize> = (0..out_dims.len())
                .map(|i| if i < offset || x_dims[i - offset] == 1 { 0 } else { source[i - offset] })
                .collect();
            vec![gather(&out_dims, &sources, vec![address(*x), address(out)], launch)]
        }
        Work::Reduce { x, kind, axes } => {
            let dims = dims(*x);
            let source = strides(&dims);
            let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
            let kept_dims: Vec<usize> = kept.iter().map(|&a| dims[a]).collect();
            let reduced_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
            let (total, count) =
                (kept_dims.iter().product::<usize>(), reduced_dims.iter().product::<usize>());
            let scale = if *kind == Reduce::Mean { 1.0 / count as f64 } else { 1.0 };
            // Sums over many elements into few outputs are split into chunks added
            // atomically; maxima (no float atomic) and well-parallel ones are not.
            let split = *kind != Reduce::Max && total < REDUCE_OUTPUTS && count > REDUCE_CHUNK;
            let chunk = if split { REDUCE_CHUNK } else { count.max(1) };
            let mut steps = Vec::new();
            if split {
                steps.push(Step::Zero { node: out, elements: total });
            }
            let mut args = vec![address(*x), address(out), total as u64, count as u64, chunk as u64];
            for (axis, (d, s)) in kept.iter().zip(kept_dims.iter().zip(strides(&kept_dims))) {
                args.extend([*d as u64, s as u64, source[*axis] as u64]);
            }
            for (axis, (d, s)) in axes.iter().zip(reduced_dims.iter().zip(strides(&reduced_dims))) {
                args.extend([*d as u64, s as u64, source[*axis] as u64]);
            }
            args.push(float_bits(plan.dtype, scale));
            steps.push(launch(total * count.div_ceil(chunk).max(1), args));
            steps
        }
        Work::Constant { values } => {
            let len = plan.elements(out, batch).max(1);
            vec![Step::Write { node: out, values: values.iter().copied().cycle().take(len).collect() }]
        }
        Work::BatchSize => vec![Step::Write { node: out, values: vec![batch as f64] }],
    }
}

/// A gather launch writing `out_dims` from source strides `sources`; `args` holds the two
/// buffer addresses.
fn gather(
    out_dims: &[usize],
    sources: &[usize],
    mut args: Vec<u64>,
    launch: impl Fn(usize, Vec<u64>) -> Step,
) -> Step {
    let total: usize = out_dims.iter().product();
    args.push(total as u64);
    for ((d, s), source) in out_dims.iter().zip(strides(out_dims)).zip(sources) {
        args.extend([*d as u64, s as u64, *source as u64]);
    }
    launch(total, args)
}

/// Row-major `out = op(a)·op(b)` as the column-major `outᵀ = op(b)ᵀ·op(a)ᵀ` cuBLAS computes,
/// transposes as operation flags (never copies); an empty inner extent zeroes the output.
fn matmul(plan: &Plan, batch: usize, a: NodeId, b: NodeId, ta: bool, tb: bool, out: NodeId) -> Vec<Step> {
    let dims = |n: NodeId| as_matrix(&plan.graph.shape(n).resolve(batch));
    let (ad, bd) = (dims(a), dims(b));
    let (m, k) = if ta { (ad[1], ad[0]) } else { (ad[0], ad[1]) };
    let n = if tb { bd[0] } else { bd[1] };
    if m == 0 || n == 0 {
        return Vec::new();
    }
    if k == 0 {
        return vec![Step::Zero { node: out, elements: m * n }];
    }
    vec![Step::Gemm(Gemm {
        transa: tb,
        transb: ta,
        m: n,
        n: m,
        k,
        a: b,
        lda: bd[1].max(1),
        b: a,
        ldb: ad[1].max(1),
        c: out,
        ldc: n,
    })]
}
