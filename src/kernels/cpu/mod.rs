//! The f32 kernels on row-major slices, independent of burn: convolution (im2col + gemm) and
//! tiled max pooling, each with its backward, and the fused block. Parallel over images or
//! planes with rayon.

#[macro_use]
pub(crate) mod simd;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod conv;
#[cfg(target_arch = "x86_64")]
mod direct;
pub(crate) mod fused;
mod gemm;
pub(crate) mod linear;
pub(crate) mod pool;
mod scratch;
#[cfg(target_arch = "x86_64")]
mod winners;

use rayon::prelude::*;

/// Runs `task(t, ys, is)` in parallel for each chunk `t` of `y` (`chunk` values) and the
/// matching chunk of the window positions `idx`; `is` is empty when `idx` is (no positions
/// asked for).
fn for_each_output_chunk(
    y: &mut [f32],
    idx: &mut [u32],
    chunk: usize,
    task: impl Fn(usize, &mut [f32], &mut [u32]) + Sync + Send,
) {
    if idx.is_empty() {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, ys)| task(t, ys, &mut []));
    } else {
        y.par_chunks_mut(chunk)
            .zip(idx.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, (ys, is))| task(t, ys, is));
    }
}
