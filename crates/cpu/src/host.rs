//! The ops that run as Rust loops or library calls rather than fused kernels: GEMM (faer
//! or matrixmultiply by the transpose flag, transposes as strides, one block per worker),
//! softmax, transpose, materialised broadcasts and reductions. Each works on concrete shapes
//! and row-major slices.

use std::any::TypeId;

use natgrad_ir::{Reduce, Scalar};
use rayon::ThreadPool;

/// Below this many multiply-adds a GEMM runs on the calling thread.
const PARALLEL_GEMM_MIN: usize = 1 << 18;

/// One GEMM `c = a·b` on strided operands, or a block of one.
#[derive(Clone, Copy)]
struct Gemm<T> {
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    /// Row and column strides of `a`, in elements.
    a_strides: [isize; 2],
    b: *const T,
    b_strides: [isize; 2],
    c: *mut T,
    /// Row stride of `c` (its column stride is 1).
    c_row_stride: isize,
}

// SAFETY: the blocks handed to workers write disjoint elements of `c` and only read `a` and
// `b`, which outlive the scope the workers run in.
unsafe impl<T: Send> Send for Gemm<T> {}
// SAFETY: as above; a `Gemm` is a read-only description shared by the workers.
unsafe impl<T: Sync> Sync for Gemm<T> {}

impl<T: Scalar> Gemm<T> {
    /// Rows `start..end` of `c`.
    fn rows(self, start: usize, end: usize) -> Gemm<T> {
        Gemm {
            m: end - start,
            a: self.a.wrapping_offset(start as isize * self.a_strides[0]),
            c: self.c.wrapping_offset(start as isize * self.c_row_stride),
            ..self
        }
    }

    /// Columns `start..end` of `c`.
    fn cols(self, start: usize, end: usize) -> Gemm<T> {
        Gemm {
            n: end - start,
            b: self.b.wrapping_offset(start as isize * self.b_strides[1]),
            c: self.c.wrapping_add(start),
            ..self
        }
    }

    /// Runs this GEMM with faer's `matmul` on the calling thread.
    ///
    /// # Safety
    /// As for [`Gemm::call`].
    unsafe fn call_faer(self) {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: T is f32; extents as the caller promised.
            unsafe { self.cast::<f32>().faer(1.0) }
        } else if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: T is f64; extents as the caller promised.
            unsafe { self.cast::<f64>().faer(1.0) }
        } else {
            unreachable!("Scalar is sealed to f32 and f64")
        }
    }

    /// The same GEMM on `U`-typed pointers (for `U` = `T`).
    fn cast<U>(self) -> Gemm<U> {
        Gemm {
            m: self.m,
            k: self.k,
            n: self.n,
            a: self.a.cast(),
            a_strides: self.a_strides,
            b: self.b.cast(),
            b_strides: self.b_strides,
            c: self.c.cast(),
            c_row_stride: self.c_row_stride,
        }
    }

    /// Runs this GEMM on the calling thread with matrixmultiply's kernel for `T`.
    ///
    /// # Safety
    /// `a`, `b` and `c` must hold every element their strides reach for `m × k`, `k × n`
    /// and `m × n`, and no other thread may touch this block of `c` meanwhile.
    unsafe fn call(self) {
        let [rsa, csa] = self.a_strides;
        let [rsb, csb] = self.b_strides;
        let (m, k, n, rsc) = (self.m, self.k, self.n, self.c_row_stride);
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            let (a, b, c) = (self.a.cast::<f32>(), self.b.cast::<f32>(), self.c.cast::<f32>());
            // SAFETY: T is f32; extents as the caller promised.
            unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
        } else if TypeId::of::<T>() == TypeId::of::<f64>() {
            let (a, b, c) = (self.a.cast::<f64>(), self.b.cast::<f64>(), self.c.cast::<f64>());
            // SAFETY: T is f64; extents as the caller promised.
            unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
        } else {
            unreachable!("Scalar is sealed to f32 and f64")
        }
    }
}

impl<T: faer::traits::ComplexField + Copy> Gemm<T> {
    /// `c = one · a·b` by faer.
    ///
    /// # Safety
    /// As for [`Gemm::call`].
    unsafe fn faer(self, one: T) {
        let [rsa, csa] = self.a_strides;
        let [rsb, csb] = self.b_strides;
        // SAFETY: the strides reach only elements the caller promised exist; `c` is written
        // by this call alone and aliases neither operand (the memory plan gives a matmul's
        // output its own buffer).
        unsafe {
            let a = faer::MatRef::from_raw_parts(self.a, self.m, self.k, rsa, csa);
            let b = faer::MatRef::from_raw_parts(self.b, self.k, self.n, rsb, csb);
            let c = faer::MatMut::from_raw_parts_mut(self.c, self.m, self.n, self.c_row_stride, 1);
            faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, one, faer::Par::Seq);
        }
    }
}

/// Cuts a block `start..end` of rows or columns out of a GEMM.
type Split<T> = fn(Gemm<T>, usize, usize) -> Gemm<T>;

/// `out = op(a)·op(b)` for row-major `a` (`a_shape`) and `b` (`b_shape`) on `pool`'s
/// workers: one block of output rows (or of columns, when `out` is wider than tall) per
/// worker, each a single-threaded product — faer's unless `a` is transposed, matrixmultiply's
/// for the weight gradients `hᵀδ` (inner extent the batch), which measured faster each
/// (`scripts/gemm-compare`, docs/benchmarks.md). Blocks of sequential faer calls measured
/// faster than faer's own parallel split on every Curves and section-7 shape (docs/benchmarks.md,
/// issue 13 third pass). Weight gradients with a long inner extent are split along it
/// instead (`k_split`; `partials` holds the other workers' parts). The choice depends
/// on the shapes and the worker count alone, so results are reproducible.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Scalar>(
    pool: &ThreadPool,
    a: &[T],
    a_shape: [usize; 2],
    ta: bool,
    b: &[T],
    b_shape: [usize; 2],
    tb: bool,
    out: &mut [T],
    partials: &mut Vec<T>,
) {
    let (m, k) = if ta { (a_shape[1], a_shape[0]) } else { (a_shape[0], a_shape[1]) };
    let n = if tb { b_shape[0] } else { b_shape[1] };
    assert!(
        a.len() >= a_shape[0] * a_shape[1] && b.len() >= b_shape[0] * b_shape[1] && out.len() >= m * n,
        "matmul buffers sized by the plan"
    );
    assert_eq!(if ta { a_shape[0] } else { a_shape[1] }, k, "inner extents");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].iter_mut().for_each(|v| *v = T::zero());
        return;
    }
    let a_strides = if ta { [1, a_shape[1] as isize] } else { [a_shape[1] as isize, 1] };
    let b_strides = if tb { [1, b_shape[1] as isize] } else { [b_shape[1] as isize, 1] };
    let gemm = Gemm {
        m,
        k,
        n,
        a: a.as_ptr(),
        a_strides,
        b: b.as_ptr(),
        b_strides,
        c: out.as_mut_ptr(),
        c_row_stride: n as isize,
    };
    // SAFETY (for every call below): the extents were checked above, and each block is a
    // disjoint part of `out` that no other thread touches while it runs.
    let run = move |part: Gemm<T>| unsafe { if ta { part.call() } else { part.call_faer() } };
    let workers = pool.current_num_threads();
    if workers <= 1 || m * n * k < PARALLEL_GEMM_MIN {
        run(gemm);
        return;
    }
    if ta && k >= K_SPLIT_MIN * workers && (workers - 1) * m * n <= k * (m + n) {
        k_split(pool, gemm, &mut out[..m * n], partials);
        return;
    }
    let (len, block) = if m >= n { (m, Gemm::rows as Split<T>) } else { (n, Gemm::cols as Split<T>) };
    let chunk = len.div_ceil(workers.min(len));
    // Blocks are disjoint rows (or columns) of `out`; `a`, `b` and `out` outlive the call.
    crate::pool::for_each_block(pool, len.div_ceil(chunk), |i| {
        run(block(gemm, i * chunk, ((i + 1) * chunk).min(len)))
    });
}

/// Inner extent per worker below which a weight-gradient product is not split along it.
const K_SPLIT_MIN: usize = 128;

/// `out = aᵀ·b` (as `gemm` describes it, writing `out`) with the inner extent — the batch,
/// for a weight gradient `hᵀδ` — split into one slice per worker: worker 0 writes `out`, the
/// others their own `m × n` partial in `partials`, then the partials are added to `out` in
/// blocks of rows. Each worker reads only its rows of both operands: Curves' apply got 0–3%
/// faster at batch 1000 and 3.5–5% at 5000 than with the output split (docs/benchmarks.md,
/// issue 13 fourth pass). The
/// sum's order depends on the worker count alone, so results are reproducible.
fn k_split<T: Scalar>(pool: &ThreadPool, gemm: Gemm<T>, out: &mut [T], partials: &mut Vec<T>) {
    let workers = pool.current_num_threads();
    let (m, k, n) = (gemm.m, gemm.k, gemm.n);
    let size = m * n;
    let chunk = k.div_ceil(workers);
    let extra = k.div_ceil(chunk) - 1;
    if partials.len() < extra * size {
        partials.resize(extra * size, T::zero());
    }
    let base = partials.as_mut_ptr();
    let parts: Vec<Gemm<T>> = (0..=extra)
        .map(|w| Gemm {
            k: chunk.min(k - w * chunk),
            a: gemm.a.wrapping_offset((w * chunk) as isize * gemm.a_strides[1]),
            b: gemm.b.wrapping_offset((w * chunk) as isize * gemm.b_strides[0]),
            c: if w == 0 { out.as_mut_ptr() } else { base.wrapping_add((w - 1) * size) },
            c_row_stride: n as isize,
            ..gemm
        })
        .collect();
    // SAFETY: each worker writes its own `m × n` target (`out` or a partial sized above) and
    // reads its slice of the inner extent of `a` and `b`, inside the checked extents.
    crate::pool::for_each_block(pool, parts.len(), |w| unsafe { parts[w].call() });
    let partials = &partials[..extra * size];
    let block = m.div_ceil(workers) * n;
    pool.scope(|scope| {
        for (i, out) in out.chunks_mut(block).enumerate() {
            scope.spawn(move |_| {
                for part in partials.chunks_exact(size) {
                    out.iter_mut().zip(&part[i * block..]).for_each(|(o, &v)| *o = *o + v);
                }
            });
        }
    });
}

/// Softmax or log-softmax along `axis` (maximum subtracted first).
pub fn softmax<T: Scalar>(x: &[T], shape: &[usize], axis: usize, log: bool, out: &mut [T]) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let max = (0..n).map(|j| x[at(j)]).fold(T::neg_infinity(), T::max);
            let total = (0..n).fold(T::zero(), |s, j| s + (x[at(j)] - max).exp());
            let log_total = total.ln();
            for j in 0..n {
                let shifted = x[at(j)] - max;
                out[at(j)] = if log { shifted - log_total } else { shifted.exp() / total };
            }
        }
    }
}

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Transpose: output axis `i` is input axis `perm[i]`.
pub fn transpose<T: Scalar>(x: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out_strides = strides(&out_shape);
    let len: usize = out_shape.iter().product();
    for (flat, slot) in out[..len].iter_mut().enumerate() {
        let source: usize =
            (0..perm.len()).map(|i| ((flat / out_strides[i]) % out_shape[i]) * in_strides[perm[i]]).sum();
        *slot = x[source];
    }
}

/// Numpy broadcast of `x` (`shape`) to `out_shape`.
pub fn broadcast<T: Scalar>(x: &[T], shape: &[usize], out_shape: &[usize], out: &mut [T]) {
    let offset = out_shape.len() - shape.len();
    let in_strides = strides(shape);
    let out_strides = strides(out_shape);
    let len: usize = out_shape.iter().product();
    if x.len() == 1 {
        out[..len].iter_mut().for_each(|v| *v = x[0]);
        return;
    }
    for (flat, slot) in out[..len].iter_mut().enumerate() {
        let mut source = 0;
        for (axis, &size) in shape.iter().enumerate() {
            if size != 1 {
                source += ((flat / out_strides[axis + offset]) % out_shape[axis + offset]) * in_strides[axis];
            }
        }
        *slot = x[source];
    }
}

/// Elements of `x` one task of a parallel row sum covers.
const ROW_SUM_BLOCK: usize = 1 << 16;

/// Lanes of independent partial sums in [`row_sums`] (so the compiler can vectorise).
const SUM_LANES: usize = 8;

/// `sums[r] = Σ rows[r·inner..(r+1)·inner]`, with [`SUM_LANES`] interleaved partial sums
/// per row (added pairwise at the end).
fn row_sums<T: Scalar>(rows: &[T], inner: usize, sums: &mut [T]) {
    for (sum, row) in sums.iter_mut().zip(rows.chunks(inner)) {
        let mut lanes = [T::zero(); SUM_LANES];
        let mut whole = row.chunks_exact(SUM_LANES);
        for chunk in &mut whole {
            for (lane, &v) in lanes.iter_mut().zip(chunk) {
                *lane = *lane + v;
            }
        }
        let mut width = SUM_LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                lanes[i] = lanes[i] + lanes[i + width];
            }
        }
        *sum = whole.remainder().iter().fold(lanes[0], |acc, &v| acc + v);
    }
}

/// Sum / mean / max of `x` (`shape`) over `axes` into `out` (row-major over the kept axes);
/// sums over trailing axes run in blocks of rows on `pool`.
pub fn reduce<T: Scalar>(
    pool: &ThreadPool,
    x: &[T],
    shape: &[usize],
    kind: Reduce,
    axes: &[usize],
    out: &mut [T],
) {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let out_len: usize = kept_shape.iter().product();
    let init = if kind == Reduce::Max { T::neg_infinity() } else { T::zero() };
    out[..out_len].iter_mut().for_each(|v| *v = init);
    let len: usize = shape.iter().product();
    // Fast paths: reducing the leading axes (column sums) or the trailing axes (row sums).
    let leading = axes.iter().enumerate().all(|(i, &a)| i == a);
    let trailing = axes.iter().rev().enumerate().all(|(i, &a)| a == shape.len() - 1 - i);
    let combine = |acc: T, v: T| match kind {
        Reduce::Sum | Reduce::Mean => acc + v,
        Reduce::Max => {
            if acc.is_nan() || v.is_nan() {
                T::nan()
            } else if acc >= v {
                acc
            } else {
                v
            }
        }
    };
    if out_len == 0 || len == 0 {
    } else if leading {
        // Row by row over contiguous chunks, so the inner loop vectorises.
        for chunk in x[..len].chunks_exact(out_len) {
            if kind == Reduce::Max {
                out[..out_len].iter_mut().zip(chunk).for_each(|(o, &v)| *o = combine(*o, v));
            } else {
                out[..out_len].iter_mut().zip(chunk).for_each(|(o, &v)| *o = *o + v);
            }
        }
    } else if trailing && kind != Reduce::Max {
        let inner = len / out_len;
        let rows_per_block = (ROW_SUM_BLOCK / inner).max(1);
        let blocks = out[..out_len].chunks_mut(rows_per_block).zip(x[..len].chunks(rows_per_block * inner));
        if out_len <= rows_per_block {
            blocks.for_each(|(sums, rows)| row_sums(rows, inner, sums));
        } else {
            pool.scope(|scope| {
                for (sums, rows) in blocks {
                    scope.spawn(move |_| row_sums(rows, inner, sums));
                }
            });
        }
    } else if trailing {
        let inner = len / out_len;
        for (o, chunk) in x[..len].chunks(inner).enumerate() {
            out[o] = chunk.iter().fold(out[o], |acc, &v| combine(acc, v));
        }
    } else {
        let in_strides = strides(shape);
        let kept_strides = strides(&kept_shape);
        for (flat, &v) in x[..len].iter().enumerate() {
            let dest: usize = kept
                .iter()
                .enumerate()
                .map(|(k, &a)| ((flat / in_strides[a]) % shape[a]) * kept_strides[k])
                .sum();
            out[dest] = combine(out[dest], v);
        }
    }
    if kind == Reduce::Mean {
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let scale = T::from_f64(count as f64);
        out[..out_len].iter_mut().for_each(|v| *v = *v / scale);
    }
}
