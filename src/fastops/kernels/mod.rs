//! The f32 kernels on row-major slices, independent of burn: convolution (im2col + gemm) and
//! tiled max pooling, each with its backward. Parallel over images or planes with rayon.

#[macro_use]
pub(crate) mod simd;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod conv;
pub(crate) mod fused;
mod gemm;
pub(crate) mod pool;
mod scratch;
