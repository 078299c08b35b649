//! What the kernels share at the level of single values and short runs: which candidate wins
//! a max-pooling window ([`beats`]), where ReLU lets the gradient through ([`relu_passes`]),
//! and the copy of a short run ([`copy_short`]). All `#[inline(always)]`, so that they are
//! compiled into each instruction set's build of their callers (`multiversion!`).

/// Whether candidate `y` (later in the window) beats `x`: larger, or NaN over a number. On a
/// tie the earlier one stays, so the first maximum wins. Written as selects, not branches, so
/// that the loops that call it vectorize.
#[inline(always)]
pub(super) fn beats(x: f32, y: f32) -> bool {
    #[allow(clippy::eq_op)]
    let y_nan_x_not = (y != y) & (x == x);
    (y > x) | y_nan_x_not
}

/// Whether ReLU lets the gradient through an output `y` (as burn's `relu_backward` decides:
/// for `y > 0` and for NaN).
#[inline(always)]
pub(super) fn relu_passes(y: f32) -> bool {
    y.is_nan() || y > 0.0
}

/// `dst.copy_from_slice(src)` for the short runs of the fused block (a grid row, a segment):
/// up to 32 values as two fixed-size copies that may overlap, which compile to a few vector
/// moves, where a call to `memcpy` would cost more than the copy.
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    #[inline(always)]
    fn two<const K: usize>(dst: &mut [f32], src: &[f32], n: usize) {
        dst[..K].copy_from_slice(&src[..K]);
        dst[n - K..].copy_from_slice(&src[n - K..]);
    }
    match n {
        0 => {}
        1 => dst[0] = src[0],
        2..=3 => two::<2>(dst, src, n),
        4..=7 => two::<4>(dst, src, n),
        8..=15 => two::<8>(dst, src, n),
        16..=32 => two::<16>(dst, src, n),
        _ => dst.copy_from_slice(src),
    }
}
