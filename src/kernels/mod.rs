//! netcalc's CPU kernels for what dominates a CNN step — 2D convolution, max pooling whose
//! windows tile the input, and the two fused — forward and backward, on the flex and ndarray
//! backends, plus a fast dropout mask.
//!
//! The layers ([`crate::nn`]) say *what* they compute and call one function here, which decides
//! *how*:
//! - [`conv2d_block`]: convolution → activation → optional pooling. On flex and ndarray, with
//!   max pooling after ReLU (or no activation) in windows that tile the convolution's output,
//!   it is one fused pass whose convolution output stays in a per-thread buffer; otherwise the
//!   steps one after the other, each through the fastest path that applies.
//! - [`conv2d`]: a convolution alone; [`pool2d`]: pooling alone; [`dense`]: a dense layer;
//!   [`dropout`].
//!
//! Each has burn's semantics and shapes and falls back to burn's own op where the kernels do
//! not apply (wgpu, other dtypes, groups or dilation other than 1, asymmetric padding,
//! overlapping or padded pooling windows).
//!
//! How, on AVX-512 (the paths CPUs without it take are below):
//!
//! - **Direct convolution** (`cpu::direct`): register tiles of 2×6 output positions by 32
//!   filters, accumulated from the bias with one FMA per tap and channel, straight from a
//!   channels-last copy of the image (no unfolding). In the fused block the tile's rows are two
//!   pooling rows, so pooling, bias and ReLU happen in registers and only the window's maximum
//!   and its winner (which of the window's positions) leave them. A stride-1 convolution alone
//!   runs the same tiles with a plain store, so fused and unfused results are bit-identical.
//! - **Backward through the winners only** (`cpu::winners`): after ReLU and 2×2 max pooling only
//!   one position in four has a gradient, so the weight and input gradients visit the winners
//!   alone — the windows of each filter are found with vector compares and compressed stores,
//!   the weight gradient of a filter stays in registers, and the input gradient of a window sums
//!   its filters' weights in registers before one add per tap. Layers with few channels (the
//!   first: one) use unfolded patch rows instead of channel vectors.
//! - **Dense layers** (`cpu::dense`): forward, input and weight gradients as three matrix
//!   products in the `gemm` crate, rows split over the threads for large products (and one or
//!   two forward outputs past a multiple of 16 as dot products, `cpu::dense_remainder`).
//!
//! Which of these computes an operation is decided in one place, `cpu::path::choose`, from the
//! CPU (an `Avx512` token, made only where run-time detection found AVX-512 and `NETCALC_SIMD`
//! allows it) and the sizes; the kernels' entry points match on the path it returns.
//!
//! Elsewhere (AVX2, the x86-64 baseline, other geometries) the convolution is the textbook
//! im2col formulation with its matrix products in `gemm`: forward
//! `Yₙ[O, P] = W[O, C·K·K] · colsₙ[C·K·K, P] + b`, weight gradient `dW = Σₙ dYₙ · colsₙᵀ` in
//! blocks of images per thread, input gradient `dXₙ = col2im(Wᵀ · dYₙ)`. burn 0.22 itself
//! computes the weight gradient as another convolution whose matrix product is only as wide as
//! the filter (9 columns for 3×3) and the input gradient as a transposed convolution.
//!
//! Max pooling records each window's winner (first maximum wins, NaN wins, as in PyTorch) and
//! routes the gradient back with one scatter.
//!
//! Layout: this file (the entry points, and the rule that fuses a block or not), `ops` (the
//! backend extension [`ConvPoolOps`] and [`ConvPoolGrads`], with their parameter structs),
//! `autodiff` (their graph nodes), `raw` (slices of flex/ndarray tensors and the two backends'
//! impls), `cpu` (the f32 kernels on slices: its entry points and the choice of kernels in
//! `cpu::path`; shared `geometry`, `views`, `element`, `threads`, `scratch`, `gemm`, `simd`
//! and `avx512`; the algorithms `im2col`, `direct`, `pool`, `fused` with `fused_pool`,
//! `winners`, and `dense` with `dense_remainder`) and `tests` (values and gradients against
//! burn's own ops, on every CPU backend compiled in). The kernels never see a layer: they take
//! tensors and sizes.

// burn-ndarray is deprecated upstream; it stays one of this crate's backends.
#![allow(deprecated)]

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod autodiff;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod ops;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod raw;
#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests;

#[cfg(any(feature = "flex", feature = "ndarray"))]
pub use ops::{ConvGeometry, ConvPoolGrads, ConvPoolOps, FusedBackward, FusedBlock, FusedGrads};

#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::backend::Dispatch;
use burn::tensor::module::{avg_pool2d, conv2d as burn_conv2d, max_pool2d as burn_max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};

use crate::functional::activation::Activation;
use crate::functional::pool::PoolKind;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use crate::functional::window::window_positions;

/// A 2D convolution: its weights and how it slides.
///
/// # Shapes
/// - weight: `[C_out, C_in / groups, K_h, K_w]`
/// - bias: `[C_out]`
#[derive(Debug, Clone)]
pub struct Conv2dSpec {
    /// The filters.
    pub weight: Tensor<4>,
    /// One bias per filter, if any.
    pub bias: Option<Tensor<1>>,
    /// Stride, `(begin, end)` padding per axis, dilation and groups, as burn's `conv2d` takes
    /// them.
    pub options: ConvOptions<2>,
}

/// A 2D pooling window: which statistic it keeps, its size, step and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[K_h, K_w]`.
    pub kernel: [usize; 2],
    /// Step `[S_h, S_w]`.
    pub stride: [usize; 2],
    /// Padding `[P_h, P_w]` on each side (−∞ for max, 0 for average).
    pub padding: [usize; 2],
}

/// What a convolution block computes: convolution → activation → optional pooling.
#[derive(Debug, Clone)]
pub struct Conv2dBlockSpec {
    /// The convolution.
    pub conv: Conv2dSpec,
    /// The activation after it.
    pub activation: Activation,
    /// The pooling after the activation, if any.
    pub pool: Option<Pool2dSpec>,
}

/// A block's output, and its convolution's output after the activation when it was asked
/// for ([`conv2d_block_traced`]).
#[derive(Debug, Clone)]
pub struct BlockOutput {
    /// What the block returns.
    pub output: Tensor<4>,
    /// `activation(conv(x))`: the feature maps before pooling.
    pub activated: Option<Tensor<4>>,
}

/// `activation(conv(x))`, then pooling: what a [`Conv2dBlockSpec`] computes.
///
/// The rule that fuses a block or not: max pooling after ReLU (or after no activation) is
/// computed *before* the activation — max and ReLU commute (ReLU never decreases), so the
/// outputs and gradients are the same and ReLU touches a quarter of the values. On flex and
/// ndarray, with windows that tile the convolution's output, convolution, pooling and ReLU are
/// then one operation ([`ConvPoolOps::conv2d_max_pool`]); everything else is [`conv2d`], the
/// activation and [`pool2d`] one after the other. The same values either way: the fused pass
/// has [`conv2d`]'s arithmetic, and max and ReLU are exact. Which kernels then compute each
/// operation is chosen in one place below this one (`cpu::path::choose`).
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_out, W_out]`, the convolution's and the pooling's output formula
///   ([`crate::window_output_len`]) applied in turn
pub fn conv2d_block(x: Tensor<4>, block: &Conv2dBlockSpec) -> Tensor<4> {
    conv2d_block_traced(x, block, false).output
}

/// [`conv2d_block`], also returning `activation(conv(x))` when `keep_activated` is set (for
/// looking inside the network: the fused pass never forms it, so this runs the steps one by
/// one; the output is bit for bit the same).
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: as [`conv2d_block`]; `activated`: `[N, C_out, H_conv, W_conv]`
pub fn conv2d_block_traced(
    x: Tensor<4>,
    block: &Conv2dBlockSpec,
    keep_activated: bool,
) -> BlockOutput {
    let act = block.activation;
    let pool_first = matches!(block.pool, Some(p) if p.kind == PoolKind::Max)
        && matches!(act, Activation::Relu | Activation::Identity);
    if pool_first
        && !keep_activated
        && let Some(output) = fused(&x, block)
    {
        return BlockOutput {
            output,
            activated: None,
        };
    }
    let z = conv2d(x, &block.conv);
    let activated = keep_activated.then(|| act.forward(z.clone()));
    let output = match (&block.pool, pool_first) {
        (Some(p), true) => act.forward(pool2d(z, p)),
        (Some(p), false) => pool2d(activated.clone().unwrap_or_else(|| act.forward(z)), p),
        (None, _) => activated.clone().unwrap_or_else(|| act.forward(z)),
    };
    BlockOutput { output, activated }
}

/// The fused pass of [`conv2d_block`] when it applies: a CPU backend, a convolution the
/// kernels take, and max-pooling windows that tile its output.
fn fused(x: &Tensor<4>, block: &Conv2dBlockSpec) -> Option<Tensor<4>> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        let pool = block.pool?;
        let (geometry, bias) = conv_fast_path(&block.conv, x)?;
        let [_, _, h, w] = x.dims();
        let [_, _, kh, kw] = block.conv.weight.dims();
        let ho = window_positions(h, kh, geometry.stride[0], geometry.padding[0])?;
        let wo = window_positions(w, kw, geometry.stride[1], geometry.padding[1])?;
        if !tiles([ho, wo], &pool) {
            return None;
        }
        let fused = FusedBlock {
            conv: geometry,
            pool: pool.kernel,
            relu: block.activation == Activation::Relu,
        };
        let out = <Dispatch as ConvPoolOps>::conv2d_max_pool(
            x.clone().into_dispatch(),
            block.conv.weight.clone().into_dispatch(),
            bias.into_dispatch(),
            fused,
        );
        Some(Tensor::from_dispatch(out))
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        let _ = (x, block);
        None
    }
}

/// `conv2d(x, weight, bias, options)`, burn's convolution, through [`ConvPoolOps`] where it
/// applies.
///
/// Same values (within f32 rounding) and gradients as burn's; burn's own op runs for wgpu,
/// non-f32 tensors, groups or dilation other than 1, asymmetric padding, and kernels larger
/// than the padded input.
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_out, W_out]`, `H_out = (H + 2·P − K) / S + 1`
pub fn conv2d(x: Tensor<4>, conv: &Conv2dSpec) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if let Some((geometry, bias)) = conv_fast_path(conv, &x) {
        let out = <Dispatch as ConvPoolOps>::conv2d_with_bias(
            x.into_dispatch(),
            conv.weight.clone().into_dispatch(),
            bias.into_dispatch(),
            geometry,
        );
        return Tensor::from_dispatch(out);
    }
    burn_conv2d(
        x,
        conv.weight.clone(),
        conv.bias.clone(),
        conv.options.clone(),
    )
}

/// The geometry and the bias when [`conv2d`] can use the kernels of this module (with a bias,
/// one group, no dilation, symmetric padding, a kernel that fits).
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn conv_fast_path(conv: &Conv2dSpec, x: &Tensor<4>) -> Option<(ConvGeometry, Tensor<1>)> {
    let o = &conv.options;
    if !on_cpu_backend(x.dtype(), &x.device()) || o.groups != 1 || o.dilation != [1, 1] {
        return None;
    }
    let [(top, bottom), (left, right)] = o.padding;
    if top != bottom || left != right {
        return None;
    }
    let geometry = ConvGeometry {
        stride: o.stride,
        padding: [top, left],
    };
    let [_, c, h, w] = x.dims();
    let [_, ci, kh, kw] = conv.weight.dims();
    let fits = |len, k, s, p| window_positions(len, k, s, p).is_some();
    if c != ci || !fits(h, kh, o.stride[0], top) || !fits(w, kw, o.stride[1], left) {
        return None;
    }
    Some((geometry, conv.bias.clone()?))
}

/// Pooling with the window `pool`: burn's `max_pool2d` or `avg_pool2d`, with max pooling
/// through [`ConvPoolOps`] where the windows tile the input (stride = kernel, no padding) on a
/// CPU backend.
///
/// A partial last window is dropped, as the output formula's floor says; the first maximum
/// of a window wins a tie and NaN wins, as in burn and PyTorch.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C, (H + 2·PH − KH) / SH + 1, (W + 2·PW − KW) / SW + 1]`
pub fn pool2d(x: Tensor<4>, pool: &Pool2dSpec) -> Tensor<4> {
    match pool.kind {
        PoolKind::Max => {
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            if pool_fast_path(&x, pool) {
                let out =
                    <Dispatch as ConvPoolOps>::max_pool2d_tiled(x.into_dispatch(), pool.kernel);
                return Tensor::from_dispatch(out);
            }
            burn_max_pool2d(
                x,
                MaxPoolOptions::new(pool.kernel)
                    .with_stride(pool.stride)
                    .with_padding(pool.padding),
            )
        }
        PoolKind::Avg => avg_pool2d(
            x,
            AvgPoolOptions::new(pool.kernel)
                .with_stride(pool.stride)
                .with_padding(pool.padding),
        ),
    }
}

/// Whether [`pool2d`] can use the kernels of this module: max pooling in windows that tile
/// the input on a CPU backend.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn pool_fast_path(x: &Tensor<4>, pool: &Pool2dSpec) -> bool {
    let [_, _, h, w] = x.dims();
    pool.kind == PoolKind::Max && tiles([h, w], pool) && on_cpu_backend(x.dtype(), &x.device())
}

/// Whether pooling windows tile a `[H, W]` plane: stride = kernel, no padding, at least one
/// window.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn tiles([h, w]: [usize; 2], pool: &Pool2dSpec) -> bool {
    pool.stride == pool.kernel
        && pool.padding == [0, 0]
        && !pool.kernel.contains(&0)
        && h >= pool.kernel[0]
        && w >= pool.kernel[1]
}

/// A dense layer, `x · W + b`: burn's `Linear`, through [`ConvPoolOps::dense`] (matrix
/// products split over the threads, for both CPU backends alike) on flex and ndarray.
///
/// Same values (within f32 rounding) and gradients as burn's `Linear::forward`, which runs
/// for wgpu, other dtypes, a layer without bias, and shapes that do not match.
///
/// # Shapes
/// - input: `[N, n_in]`
/// - output: `[N, n_out]`
pub fn dense(x: Tensor<2>, layer: &burn::nn::Linear) -> Tensor<2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if let Some(bias) = &layer.bias {
        let w = layer.weight.val();
        let fits = x.dims()[1] == w.dims()[0] && bias.dims()[0] == w.dims()[1];
        if fits && on_cpu_backend(x.dtype(), &x.device()) && w.dtype() == DType::F32 {
            let out = <Dispatch as ConvPoolOps>::dense(
                x.into_dispatch(),
                w.into_dispatch(),
                bias.val().into_dispatch(),
            );
            return Tensor::from_dispatch(out);
        }
    }
    layer.forward(x)
}

/// Dropout with probability `prob`, as burn's `Dropout` does it: the identity unless
/// `training` on an autodiff device; otherwise each value kept with probability `1 − p` and
/// scaled by `1 / (1 − p)`. The mask is drawn fast on flex and ndarray.
///
/// burn draws a dropout mask one value at a time through its general sampler, which made it
/// a tenth of a CPU training step. Here one draw from burn's device RNG (so `device.seed(..)`
/// still makes runs repeatable) seeds a counter-based hash (SplitMix64's finalizer of
/// `seed + i`), and value `i` is kept when the hash's top 32 bits fall below `(1 − p)·2³²`.
/// Other backends draw the mask with burn's Bernoulli sampler, exactly as burn's `Dropout`.
///
/// # Shapes
/// - input and output: any shape
pub fn dropout<const D: usize>(x: Tensor<D>, prob: f64, training: bool) -> Tensor<D> {
    if !training || !x.device().is_autodiff() || prob == 0.0 {
        return x;
    }
    let keep = 1.0 - prob;
    if !on_cpu_backend(x.dtype(), &x.device()) {
        let random = x.random_like(Distribution::Bernoulli(keep));
        return x * random * (1.0 / keep);
    }
    let device = x.device();
    let draw = Tensor::<1>::random([2], Distribution::Default, &device)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let seed = draw
        .iter()
        .fold(0u64, |s, v| (s << 32) | u64::from(v.to_bits()));
    let mask = dropout_mask(x.shape().num_elements(), prob, seed);
    let mask = Tensor::<D>::from_data(TensorData::new(mask, x.shape()), &device);
    x * mask
}

/// `n` values, each `1 / (1 − p)` with probability `1 − p` and 0 otherwise, from `seed`.
fn dropout_mask(n: usize, p: f64, seed: u64) -> Vec<f32> {
    let keep = 1.0 - p;
    // P(h < threshold) = threshold / 2³² for h uniform on [0, 2³²)
    let threshold = (keep * 4_294_967_296.0).round() as u64;
    let scale = (1.0 / keep) as f32;
    (0..n as u64)
        .map(|i| {
            if (crate::seed::splitmix64(seed, i) >> 32) < threshold {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

/// Whether a tensor of `dtype` on `device` is f32 on flex or ndarray (with or without
/// autodiff): where [`ConvPoolOps`] is implemented.
fn on_cpu_backend(dtype: DType, device: &Device) -> bool {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        dtype == DType::F32
            && matches!(
                crate::backend::backend_of(device),
                Some(crate::BackendKind::Flex | crate::BackendKind::NdArray)
            )
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        let _ = (dtype, device);
        false
    }
}
