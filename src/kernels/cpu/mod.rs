//! The f32 kernels on row-major slices, independent of burn: convolution, tiled max pooling and
//! the dense layer, each with its backward, and the fused block. Parallel over images or
//! planes with rayon.
//!
//! The functions of this file are the entry points, one per operation; where there is more
//! than one way to compute it, they match on the [`Path`] that [`path::choose`] returns (the
//! one place that chooses) and run it.
//!
//! Layout (no module imports one that imports it back):
//! - shared: `geometry` (the sizes of a convolution), `views` (the slice views the fused
//!   block's kernels pass each other), `element` (the max-pooling comparison, ReLU's gradient
//!   rule, short copies), `threads` (parallel or not, tasks, per-thread sums), `scratch`
//!   (per-thread buffers), `gemm` (the matrix products), `simd` (the instruction-set level, the
//!   `Avx512` token and `multiversion!`), `avx512` (the AVX-512 kernels' helpers), `path` (the
//!   choice of kernels);
//! - algorithms: `im2col` (convolution as im2col + gemm), `direct` (the AVX-512 direct
//!   convolution, alone or with the block's 2×2 pooling), `pool` (tiled max pooling), `fused`
//!   (the fused block as im2col + gemm in the pooled column order) with its pooling
//!   `fused_pool`, `winners` (the block's AVX-512 backward through the pooling winners),
//!   `dense` (the dense layer) with its AVX-512 remainder `dense_remainder`.
//!
//! Algorithms import shared modules and their own parts (`fused` → `fused_pool`, `dense` →
//! `dense_remainder`), never another algorithm; only this file combines them.

#[macro_use]
pub(crate) mod simd;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod dense;
#[cfg(target_arch = "x86_64")]
mod dense_remainder;
#[cfg(target_arch = "x86_64")]
mod direct;
mod element;
mod fused;
mod fused_pool;
mod gemm;
mod geometry;
mod im2col;
mod path;
mod pool;
mod scratch;
mod threads;
mod views;
#[cfg(target_arch = "x86_64")]
mod winners;

pub(crate) use geometry::Geometry;
#[cfg(test)]
pub(crate) use threads::with_parallel;
pub(crate) use views::Saved;

pub(crate) use dense::{wb_grad as dense_wb_grad, x_grad as dense_x_grad};
pub(crate) use im2col::{wb_grad as conv2d_wb_grad, x_grad as conv2d_x_grad};
pub(crate) use pool::{backward as max_pool_backward, forward as max_pool_forward};

use path::{Op, Path};

/// A convolution with bias: `[N, O, HO, WO]`. The direct convolution on AVX-512 with stride 1
/// (the fused block's arithmetic), else im2col + gemm.
pub(crate) fn conv2d_forward(geo: &Geometry, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    match path::choose(Op::Conv(geo)) {
        #[cfg(target_arch = "x86_64")]
        Path::DirectConv(avx512) => direct::conv(avx512, geo, x, w, b),
        other => {
            debug_assert_eq!(other, Path::Gemm, "the path of a convolution");
            im2col::forward(geo, x, w, b)
        }
    }
}

/// The fused block's forward: convolution, max pooling in `pool` windows that tile its output,
/// ReLU if `relu`. Returns the output `[N, O, HQ, WQ]` and, with `with_indices`, each window's
/// winning candidate `d = dy·PW + dx`, which [`block_backward`] reads whichever path made it.
pub(crate) fn block_forward(
    geo: &Geometry,
    pool: [usize; 2],
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    match path::choose(Op::BlockForward(geo, pool)) {
        #[cfg(target_arch = "x86_64")]
        Path::DirectBlock(avx512) => direct::forward(avx512, geo, x, w, bias, relu, with_indices),
        #[cfg(target_arch = "x86_64")]
        Path::DirectConvThenPool(avx512) => {
            // other windows: the direct convolution, then the tiled pooling (the unfused
            // steps' arithmetic, so the same bits)
            let z = direct::conv(avx512, geo, x, w, bias);
            pool_conv_output(geo, pool, &z, relu, with_indices)
        }
        other => {
            debug_assert_eq!(other, Path::Gemm, "the path of a fused block");
            fused::forward(geo, pool, x, w, bias, relu, with_indices)
        }
    }
}

/// The fused block's pooling (and ReLU if `relu`) of its convolution output `z`
/// (`[N, O, HO, WO]`) by the tiled pooling, with each winner's position in its plane turned
/// into its candidate in the window: [`block_forward`] after the direct convolution.
#[cfg(target_arch = "x86_64")]
fn pool_conv_output(
    geo: &Geometry,
    pool: [usize; 2],
    z: &[f32],
    relu: bool,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    let (mut y, mut idx) = pool::forward(z, [geo.n * geo.o, geo.ho, geo.wo], pool, with_indices);
    let (hq, wq) = (geo.ho / pool[0], geo.wo / pool[1]);
    if with_indices && hq * wq > 0 {
        for plane in idx.chunks_mut(hq * wq) {
            for (i, at) in plane.iter_mut().enumerate() {
                let (oy, ox) = (i / wq, i % wq);
                let (iy, ix) = (*at as usize / geo.wo, *at as usize % geo.wo);
                *at = ((iy - oy * pool[0]) * pool[1] + ix - ox * pool[1]) as u32;
            }
        }
    }
    if relu {
        for v in &mut y {
            *v = if element::relu_passes(*v) { *v } else { 0.0 };
        }
    }
    (y, idx)
}

/// Gradients of [`block_forward`]: (input gradient if `x_grad`, else empty; weight
/// `[O, C, KH, KW]`; bias `[O]`). Through the winners only on AVX-512 where the windows and
/// filters allow, else im2col + gemm in the pooled order.
pub(crate) fn block_backward(
    geo: &Geometry,
    pool: [usize; 2],
    saved: Saved,
    x_grad: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    match path::choose(Op::BlockBackward(geo, pool)) {
        #[cfg(target_arch = "x86_64")]
        Path::Winners(avx512, layout) => {
            winners::backward(avx512, layout, geo, pool, saved, x_grad)
        }
        other => {
            debug_assert_eq!(other, Path::Gemm, "the path of a fused block's backward");
            fused::backward(geo, pool, saved, x_grad)
        }
    }
}

/// A dense layer: `y[N, O] = x[N, I] · w[I, O] + b`.
pub(crate) fn dense_forward(dims: [usize; 3], x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let [_, inputs, outputs] = dims;
    let path = path::choose(Op::Dense { inputs, outputs });
    dense::forward(path, dims, x, w, b)
}
