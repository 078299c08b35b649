//! The one matrix product the kernels need, on slices with explicit strides.

/// A matrix read from a slice: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

/// Row-major `[rows, cols]` in `data`, rows `rs` apart.
pub(super) fn rows(data: &[f32], rs: usize) -> Mat<'_> {
    Mat { data, rs, cs: 1 }
}

/// The transpose of row-major `[cols, rows]` in `data` (rows `rs` apart): columns of it.
pub(super) fn columns(data: &[f32], rs: usize) -> Mat<'_> {
    Mat {
        data,
        rs: 1,
        cs: rs,
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` (gemm crate, on this thread), `dst` row-major with
/// rows `dst_rs` apart; `accumulate` adds to what `dst` holds instead of overwriting it.
pub(super) fn sgemm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (&mut [f32], usize),
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
) {
    // The last element each operand's strides reach must be inside its slice; that is all
    // gemm needs to stay in bounds.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(m == 0 || n == 0 || last(m, n, dst_rs, 1) < dst.len());
    assert!(m == 0 || k == 0 || last(m, k, lhs.rs, lhs.cs) < lhs.data.len());
    assert!(k == 0 || n == 0 || last(k, n, rhs.rs, rhs.cs) < rhs.data.len());
    // SAFETY: the assertions above keep every index gemm computes inside the three slices,
    // and `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A convolution's forward product over `width` unfolded columns: `z[O, width] =
/// W[O, CKK] · cols[CKK, width] + b` (each row of `z` starts as its filter's bias).
pub(crate) fn forward_product(
    (o, ckk, width): (usize, usize, usize),
    w: &[f32],
    bias: &[f32],
    cols: &[f32],
    z: &mut [f32],
) {
    for (oc, row) in z.chunks_mut(width).enumerate().take(o) {
        row.fill(bias[oc]);
    }
    sgemm(
        (o, width, ckk),
        (z, width),
        true,
        rows(w, ckk),
        rows(cols, width),
    );
}

/// A convolution's weight gradient over `width` columns: `gw[O, CKK] (+)= dz[O, width] ·
/// colsᵀ[width, CKK]`, added to `gw` when `accumulate`.
pub(crate) fn weight_grad_product(
    (o, ckk, width): (usize, usize, usize),
    dz: &[f32],
    cols: &[f32],
    gw: &mut [f32],
    accumulate: bool,
) {
    sgemm(
        (o, ckk, width),
        (gw, ckk),
        accumulate,
        rows(dz, width),
        columns(cols, width),
    );
}

/// A convolution's unfolded input gradient over `width` columns: `xcols[CKK, width] =
/// Wᵀ[CKK, O] · dz[O, width]`.
pub(crate) fn input_grad_product(
    (o, ckk, width): (usize, usize, usize),
    w: &[f32],
    dz: &[f32],
    xcols: &mut [f32],
) {
    sgemm(
        (ckk, width, o),
        (xcols, width),
        false,
        columns(w, ckk),
        rows(dz, width),
    );
}
