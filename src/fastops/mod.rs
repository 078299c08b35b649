//! netcalc's CPU kernels for the two operations that dominate a CNN step: 2D convolution and
//! non-overlapping max pooling, forward and backward, on the flex and ndarray backends, for
//! training and inference alike.
//!
//! Two entry points, both infallible and both with burn's semantics and shapes: [`conv2d`] (a
//! burn `Conv2d` applied to `x`) and [`max_pool2d`]. Each uses the kernels here where they apply
//! (flex or ndarray, with or without autodiff; f32; for convolution one group, no dilation,
//! symmetric padding; for pooling windows that tile the input: stride = kernel, no padding)
//! and burn's own op otherwise (wgpu, other dtypes, grouped/dilated/"same" convolutions,
//! overlapping or padded pooling).
//!
//! How: burn 0.22 computes a convolution's weight gradient as another convolution (for the
//! Keras convnet's second layer an 11×11 kernel over 128 "channels" with a 3×3 output: a matrix
//! product only 9 columns wide) and its input gradient as a transposed convolution. Here all
//! three are the textbook im2col formulation, with the matrix products in the `gemm` crate:
//!
//! - forward `Yₙ[O, P] = W[O, C·K·K] · colsₙ[C·K·K, P] + b` (P = output positions);
//! - weight gradient `dW = Σₙ dYₙ · colsₙᵀ`, in blocks of images per thread; bias `db = Σ dY`;
//! - input gradient `dXₙ = col2im(Wᵀ · dYₙ)`.
//!
//! Max pooling records each window's winner (first maximum wins, NaN wins, as in PyTorch) and
//! routes the gradient back with one scatter.
//!
//! Layout: [`ConvPoolOps`] (a burn *backend extension*) here; `autodiff` (its graph nodes),
//! `raw` (slices of flex/ndarray tensors and the two backends' impls), `kernels` (the f32
//! kernels on slices: `conv`, `pool`, `gemm`) and `tests` (values and gradients against burn's
//! own ops, on every CPU backend compiled in).

// burn-ndarray is deprecated upstream; it stays one of this crate's backends.
#![allow(deprecated)]

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod autodiff;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernels;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod raw;
#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::backend::{
    Backend, Dispatch, TensorMetadata, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, PaddingConfig2d};
use burn::tensor::module::max_pool2d as burn_max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::tensor::{DType, ops::ConvOptions};
use burn::tensor::{Distribution, Tensor, TensorData};

/// The backend extension: 2D convolution (im2col + gemm) and tiled max pooling with their
/// gradients, as operations of a burn backend (see the [module docs](self)).
///
/// flex and ndarray implement every method with the kernels of this module; on
/// `Autodiff<B>` the two forward operations are graph nodes whose backward calls `B`'s gradient
/// methods. The default bodies are burn's own convolution and pooling ops, so the trait is
/// correct for any backend that lists it (none does today besides the two above).
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Autodiff
)]
pub trait ConvPoolOps: Backend {
    /// Convolution with bias, stride `stride`, symmetric zero padding `padding`, no dilation,
    /// one group.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
    /// - output: `[N, O, (H + 2·PH − KH)/SH + 1, (W + 2·PW − KW)/SW + 1]`
    fn conv2d_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        Self::conv2d(
            x,
            weight,
            Some(bias),
            ConvOptions::new(stride, padding, [1, 1], 1),
        )
    }

    /// Gradient of [`ConvPoolOps::conv2d_im2col`] with respect to its input.
    ///
    /// # Shapes
    /// - weight: `[O, C, KH, KW]`, grad: `[N, O, HO, WO]`
    /// - output: `x_shape` = `[N, C, H, W]`
    fn conv2d_im2col_x_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_shape: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let device = grad.device();
        let x = Self::float_zeros(x_shape.into(), &device, grad.dtype().into());
        Self::conv2d_x_backward(
            x,
            weight,
            grad,
            ConvOptions::new(stride, padding, [1, 1], 1),
        )
    }

    /// Gradients of [`ConvPoolOps::conv2d_im2col`] with respect to its weight and bias.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, grad: `[N, O, HO, WO]`
    /// - output: (`[O, C, kernel[0], kernel[1]]`, `[O]`)
    fn conv2d_im2col_wb_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [_, c, _, _] = x.shape().dims();
        let [n, o, ho, wo] = grad.shape().dims();
        let device = grad.device();
        let weight = Self::float_zeros(
            [o, c, kernel[0], kernel[1]].into(),
            &device,
            grad.dtype().into(),
        );
        let gw = Self::conv2d_weight_backward(
            x,
            weight,
            grad.clone(),
            ConvOptions::new(stride, padding, [1, 1], 1),
        );
        let g = Self::float_swap_dims(grad, 0, 1);
        let g = Self::float_reshape(g, [o, n * ho * wo].into());
        let gb = Self::float_reshape(Self::float_sum_dim(g, 1), [o].into());
        (gw, gb)
    }

    /// [`ConvPoolOps::conv2d_im2col`], then [`ConvPoolOps::max_pool2d_tiled`] with window
    /// `pool`, then ReLU if `relu`, in one pass: the convolution's output never leaves a
    /// per-thread buffer.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
    /// - output: `[N, O, HO / pool[0], WO / pool[1]]` with `HO`, `WO` the convolution's
    #[allow(clippy::too_many_arguments)]
    fn conv2d_pool_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        pool: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self> {
        Self::conv2d_pool_im2col_with_argmax(x, weight, bias, stride, padding, pool, relu).0
    }

    /// [`ConvPoolOps::conv2d_pool_im2col`] and, for each window, which of its positions won,
    /// in the backend's own encoding: only [`ConvPoolOps::conv2d_pool_im2col_grads`] of the
    /// same backend reads them (burn's pooling indices by default; the candidate's number in
    /// the window, row-major, on flex and ndarray).
    ///
    /// # Shapes
    /// - as [`ConvPoolOps::conv2d_pool_im2col`]; indices of the output's shape
    #[allow(clippy::too_many_arguments)]
    fn conv2d_pool_im2col_with_argmax(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        pool: [usize; 2],
        relu: bool,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let z = Self::conv2d_im2col(x, weight, bias, stride, padding);
        let (y, indices) = Self::max_pool2d_tiled_with_argmax(z, pool);
        (if relu { Self::relu(y) } else { y }, indices)
    }

    /// Gradients of [`ConvPoolOps::conv2d_pool_im2col`]: (input if `x_grad`, weight, bias).
    /// `output` is the block's output; with `relu` its zeros mask the gradient.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`
    /// - output, grad and indices: `[N, O, HO / pool[0], WO / pool[1]]`
    /// - returns (`[N, C, H, W]`, `[O, C, KH, KW]`, `[O]`)
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn conv2d_pool_im2col_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        pool: [usize; 2],
        relu: bool,
        x_grad: bool,
    ) -> (
        Option<FloatTensor<Self>>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let x_shape: [usize; 4] = x.shape().dims();
        let [o, _, kh, kw] = weight.shape().dims();
        let ho = (x_shape[2] + 2 * padding[0] - kh) / stride[0] + 1;
        let wo = (x_shape[3] + 2 * padding[1] - kw) / stride[1] + 1;
        let grad = if relu {
            Self::relu_backward(output, grad)
        } else {
            grad
        };
        let z = Self::float_zeros(
            [x_shape[0], o, ho, wo].into(),
            &grad.device(),
            grad.dtype().into(),
        );
        let gz = Self::max_pool2d_tiled_x_grad(z, grad, indices, pool);
        let gx = x_grad
            .then(|| Self::conv2d_im2col_x_grad(weight, gz.clone(), x_shape, stride, padding));
        let (gw, gb) = Self::conv2d_im2col_wb_grad(x, gz, [kh, kw], stride, padding);
        (gx, gw, gb)
    }

    /// Non-overlapping max pooling (stride = kernel, no padding; a partial last window is
    /// dropped, as the output formula's floor says).
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: `[N, C, H / KH, W / KW]`
    fn max_pool2d_tiled(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
        Self::max_pool2d_tiled_with_argmax(x, kernel).0
    }

    /// [`ConvPoolOps::max_pool2d_tiled`] and the position of each window's maximum, as the
    /// backend's own backward expects it.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: (`[N, C, H / KH, W / KW]`, indices of the same shape)
    fn max_pool2d_tiled_with_argmax(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let out = Self::max_pool2d_with_indices(
            x,
            kernel,
            kernel,
            [0, 0],
            [1, 1],
            false,
            burn::tensor::IntDType::I64,
        );
        (out.output, out.indices)
    }

    /// Gradient of [`ConvPoolOps::max_pool2d_tiled`] with respect to its input.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, grad and indices: `[N, C, H / KH, W / KW]`
    /// - output: `[N, C, H, W]`
    fn max_pool2d_tiled_x_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
        kernel: [usize; 2],
    ) -> FloatTensor<Self> {
        Self::max_pool2d_with_indices_backward(
            x,
            kernel,
            kernel,
            [0, 0],
            [1, 1],
            false,
            grad,
            indices,
        )
        .x_grad
    }
}

/// `conv.forward(x)`: burn's `Conv2d` on `x`, through [`ConvPoolOps`] where it applies.
///
/// Same values (within f32 rounding) and gradients as burn's `Conv2d::forward`, which it
/// falls back to for wgpu, non-f32 tensors, groups or dilation other than 1, asymmetric or
/// "same" padding, and kernels larger than the padded input.
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_out, W_out]`, `H_out = (H + 2·P − K) / S + 1`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match conv_fast_path(conv, &x) {
        #[cfg(any(feature = "flex", feature = "ndarray"))]
        Some((padding, bias)) => {
            let out = <Dispatch as ConvPoolOps>::conv2d_im2col(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                conv.stride,
                padding,
            );
            Tensor::from_dispatch(out)
        }
        _ => conv.forward(x),
    }
}

/// `relu?(max_pool2d(conv.forward(x)))`: convolution, max pooling (window `kernel`, step
/// `stride`, `padding`) and ReLU if `relu`, as one [`ConvPoolOps::conv2d_pool_im2col`] pass
/// where both [`conv2d`] and [`max_pool2d`] would use this module's kernels, and as those
/// three steps otherwise. Same values and gradients either way: the fused pass computes the
/// convolution with the same arithmetic as [`conv2d`], and max and ReLU are exact.
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_p, W_p]`, the pooling formula applied to the convolution's output
pub fn conv2d_max_pool(
    conv: &Conv2d,
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    relu: bool,
) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if let Some((conv_padding, bias)) = conv_fast_path(conv, &x) {
        let [_, _, h, w] = x.dims();
        let [_, _, kh, kw] = conv.weight.dims();
        let ho = (h + 2 * conv_padding[0] - kh) / conv.stride[0] + 1;
        let wo = (w + 2 * conv_padding[1] - kw) / conv.stride[1] + 1;
        if tiles([ho, wo], kernel, stride, padding) {
            let out = <Dispatch as ConvPoolOps>::conv2d_pool_im2col(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                conv.stride,
                conv_padding,
                kernel,
                relu,
            );
            return Tensor::from_dispatch(out);
        }
    }
    let y = max_pool2d(conv2d(conv, x), kernel, stride, padding);
    if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
}

/// `dropout.forward(x)`: burn's `Dropout` (identity unless training on an autodiff device;
/// otherwise each value kept with probability `1 − p` and scaled by `1 / (1 − p)`), with the
/// mask drawn fast on flex and ndarray.
///
/// burn draws a dropout mask one value at a time through its general sampler, which made it
/// a tenth of a CPU training step. Here one draw from burn's device RNG (so `device.seed(..)`
/// still makes runs repeatable) seeds a counter-based hash (SplitMix64's finalizer of
/// `seed + i`), and value `i` is kept when the hash's top 32 bits fall below `(1 − p)·2³²`.
/// Other backends use burn's own `Dropout`.
///
/// # Shapes
/// - input and output: any shape
pub fn dropout<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !dropout.training.is_enabled() || !x.device().is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    if !on_cpu_backend_any(x.dtype(), &x.device()) {
        return dropout.forward(x);
    }
    let device = x.device();
    let draw = Tensor::<1>::random([2], Distribution::Default, &device)
        .into_data()
        .to_vec::<f32>()
        .unwrap_or_default();
    let seed = draw
        .iter()
        .fold(0u64, |s, v| (s << 32) | u64::from(v.to_bits()));
    let mask = dropout_mask(x.shape().num_elements(), dropout.prob, seed);
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
            // SplitMix64's output function of the counter
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if (z >> 32) < threshold { scale } else { 0.0 }
        })
        .collect()
}

/// The symmetric padding `[PH, PW]` and the bias when [`conv2d`] can use the kernels of this
/// module.
fn conv_fast_path<'a>(
    conv: &'a Conv2d,
    x: &Tensor<4>,
) -> Option<([usize; 2], &'a Param<Tensor<1>>)> {
    let bias = conv.bias.as_ref()?;
    if !on_cpu_backend(x) || conv.groups != 1 || conv.dilation != [1, 1] {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => [t, l],
        _ => return None,
    };
    let [_, c, h, w] = x.dims();
    let [_, ci, kh, kw] = conv.weight.dims();
    let fits = |len: usize, p: usize, k: usize| {
        p.checked_mul(2)
            .and_then(|p2| p2.checked_add(len))
            .is_some_and(|padded| padded >= k)
    };
    (c == ci && fits(h, padding[0], kh) && fits(w, padding[1], kw)).then_some((padding, bias))
}

/// Max pooling with window `kernel`, step `stride` and `padding` (−∞) on each side: burn's
/// `max_pool2d`, through [`ConvPoolOps`] where the windows tile the input (stride = kernel, no
/// padding) on a CPU backend.
///
/// A partial last window is dropped, as the output formula's floor says; the first maximum
/// of a window wins a tie and NaN wins, as in burn and PyTorch.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C, (H + 2·PH − KH) / SH + 1, (W + 2·PW − KW) / SW + 1]`
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if pool_fast_path(&x, kernel, stride, padding) {
        let out = <Dispatch as ConvPoolOps>::max_pool2d_tiled(x.into_dispatch(), kernel);
        return Tensor::from_dispatch(out);
    }
    burn_max_pool2d(
        x,
        MaxPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding(padding),
    )
}

/// Whether [`max_pool2d`] can use the kernels of this module: windows that tile the input
/// (stride = kernel, no padding, at least one window) on a CPU backend.
#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
fn pool_fast_path(
    x: &Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> bool {
    let [_, _, h, w] = x.dims();
    tiles([h, w], kernel, stride, padding) && on_cpu_backend(x)
}

/// Whether pooling windows tile a `[H, W]` plane: stride = kernel, no padding, at least one
/// window.
fn tiles([h, w]: [usize; 2], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> bool {
    stride == kernel
        && padding == [0, 0]
        && !kernel.contains(&0)
        && h >= kernel[0]
        && w >= kernel[1]
}

/// Whether `x` is an f32 tensor on flex or ndarray (with or without autodiff): where
/// [`ConvPoolOps`] is implemented.
fn on_cpu_backend(x: &Tensor<4>) -> bool {
    on_cpu_backend_any(x.dtype(), &x.device())
}

/// [`on_cpu_backend`] for a tensor of any rank, by its dtype and device.
fn on_cpu_backend_any(dtype: burn::tensor::DType, device: &burn::tensor::Device) -> bool {
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
