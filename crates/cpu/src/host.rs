//! The ops that run as Rust loops or library calls rather than fused kernels: GEMM
//! (matrixmultiply, transposes as strides), softmax, transpose, materialised broadcasts and
//! reductions. Each works on concrete shapes and row-major slices.

use std::any::TypeId;

use natgrad_ir::{Reduce, Scalar};

/// Reinterprets `&[T]` as `&[U]` when they are the same type.
fn same<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    // SAFETY: T and U are the same type, so the layout is identical.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &*(x as *const [T] as *const [U]) })
}

/// Reinterprets `&mut [T]` as `&mut [U]` when they are the same type.
fn same_mut<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
    // SAFETY: T and U are the same type, so the layout is identical.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &mut *(x as *mut [T] as *mut [U]) })
}

/// `c = a·b` (overwriting c) with row/column strides in elements, by matrixmultiply's GEMM
/// of `T` (the extents were checked by [`matmul`]).
#[allow(clippy::too_many_arguments)]
fn gemm<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    [rsa, csa]: [isize; 2],
    b: &[T],
    [rsb, csb]: [isize; 2],
    c: &mut [T],
) {
    let rsc = n as isize;
    if let (Some(a), Some(b), Some(c)) = (same::<T, f32>(a), same::<T, f32>(b), same_mut::<T, f32>(c)) {
        // SAFETY: `matmul` checked that every buffer holds the extents the strides reach.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                0.0,
                c.as_mut_ptr(),
                rsc,
                1,
            )
        }
    } else if let (Some(a), Some(b), Some(c)) = (same::<T, f64>(a), same::<T, f64>(b), same_mut::<T, f64>(c))
    {
        // SAFETY: as above.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                0.0,
                c.as_mut_ptr(),
                rsc,
                1,
            )
        }
    } else {
        unreachable!("Scalar is sealed to f32 and f64")
    }
}

/// `out = op(a)·op(b)` for row-major `a` (`a_shape`) and `b` (`b_shape`).
pub fn matmul<T: Scalar>(
    a: &[T],
    a_shape: [usize; 2],
    ta: bool,
    b: &[T],
    b_shape: [usize; 2],
    tb: bool,
    out: &mut [T],
) {
    let (m, k) = if ta { (a_shape[1], a_shape[0]) } else { (a_shape[0], a_shape[1]) };
    let n = if tb { b_shape[0] } else { b_shape[1] };
    assert!(
        a.len() >= a_shape[0] * a_shape[1] && b.len() >= b_shape[0] * b_shape[1] && out.len() >= m * n,
        "matmul buffers sized by the plan"
    );
    assert_eq!(
        if ta { a_shape[0] } else { a_shape[1] },
        if tb { b_shape[1] } else { b_shape[0] },
        "inner extents"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].iter_mut().for_each(|v| *v = T::zero());
        return;
    }
    let (rsa, csa) = if ta { (1, a_shape[1] as isize) } else { (a_shape[1] as isize, 1) };
    let (rsb, csb) = if tb { (1, b_shape[1] as isize) } else { (b_shape[1] as isize, 1) };
    gemm(m, k, n, a, [rsa, csa], b, [rsb, csb], out);
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

/// Sum / mean / max of `x` (`shape`) over `axes` into `out` (row-major over the kept axes).
pub fn reduce<T: Scalar>(x: &[T], shape: &[usize], kind: Reduce, axes: &[usize], out: &mut [T]) {
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
