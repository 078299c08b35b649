//! The operations the kernels add to burn's CPU backends: [`ConvPoolOps`], a burn *backend
//! extension* (dispatched through burn's `Dispatch` backend, with its own autodiff nodes), and
//! [`ConvPoolGrads`], the gradients and recording forward passes those nodes call on the inner
//! backend. flex and ndarray implement both (in `raw`); `Autodiff<B>` implements
//! [`ConvPoolOps`] (in `autodiff`).

use burn::backend::{
    Backend, backend_extension,
    tensor::{FloatTensor, IntTensor},
};

/// How a 2D convolution slides: its stride and symmetric zero padding (one group, no
/// dilation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Step `[S_h, S_w]`.
    pub stride: [usize; 2],
    /// Zeros `[P_h, P_w]` on each side.
    pub padding: [usize; 2],
}

/// The fused block: a convolution, max pooling in `pool` windows that tile its output
/// (stride = window, no padding; a partial last window is dropped), then ReLU if `relu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusedBlock {
    /// The convolution's geometry.
    pub conv: ConvGeometry,
    /// The pooling window `[PH, PW]`.
    pub pool: [usize; 2],
    /// Whether ReLU follows the pooling.
    pub relu: bool,
}

/// The backend extension: 2D convolution, tiled max pooling, the two fused, and the dense
/// layer, as operations of a burn backend (see the [module docs](super)).
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Autodiff
)]
pub trait ConvPoolOps: Backend {
    /// Convolution with bias (symmetric zero padding, one group, no dilation): the direct
    /// convolution on AVX-512 with stride 1, else im2col + gemm.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
    /// - output: `[N, O, (H + 2·PH − KH)/SH + 1, (W + 2·PW − KW)/SW + 1]`
    fn conv2d_with_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// [`ConvPoolOps::conv2d_with_bias`], then [`ConvPoolOps::max_pool2d_tiled`] with the
    /// block's window, then ReLU if it says so, in one pass: the convolution's output never
    /// leaves a per-thread buffer.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
    /// - output: `[N, O, HO / PH, WO / PW]` with `HO`, `WO` the convolution's
    fn conv2d_max_pool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        block: FusedBlock,
    ) -> FloatTensor<Self>;

    /// Non-overlapping max pooling (stride = window, no padding; a partial last window is
    /// dropped, as the output formula's floor says).
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: `[N, C, H / KH, W / KW]`
    fn max_pool2d_tiled(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self>;

    /// A dense layer: `x · weight + bias`.
    ///
    /// # Shapes
    /// - x: `[N, I]`, weight: `[I, O]`, bias: `[O]`
    /// - output: `[N, O]`
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// What the fused block's backward reads: the forward's inputs, what it recorded, and the
/// gradient of its output.
///
/// # Shapes
/// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`
/// - relu_output, winners and grad: `[N, O, HO / PH, WO / PW]`
#[derive(Debug)]
pub struct FusedBackward<B: Backend> {
    /// The block's input.
    pub x: FloatTensor<B>,
    /// The filters.
    pub weight: FloatTensor<B>,
    /// The block's output when it ends in ReLU (its zeros stop the gradient), else `None`.
    pub relu_output: Option<FloatTensor<B>>,
    /// Each window's winner, as [`ConvPoolGrads::conv2d_max_pool_with_winners`] recorded it.
    pub winners: IntTensor<B>,
    /// The gradient of the block's output.
    pub grad: FloatTensor<B>,
    /// The block.
    pub block: FusedBlock,
    /// Whether the input's gradient is wanted (not for images fed to the first layer).
    pub input_grad: bool,
}

/// The fused block's gradients.
///
/// # Shapes
/// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
#[derive(Debug)]
pub struct FusedGrads<B: Backend> {
    /// The input's, when it was asked for.
    pub x: Option<FloatTensor<B>>,
    /// The filters'.
    pub weight: FloatTensor<B>,
    /// The biases'.
    pub bias: FloatTensor<B>,
}

/// The gradients behind [`ConvPoolOps`] on `Autodiff<B>`, and the forward passes that record
/// what they need (each pooling window's winner, in the backend's own encoding: only the
/// same backend's gradient reads it). Called by the autodiff nodes on the inner backend.
pub trait ConvPoolGrads: Backend {
    /// The input gradient of [`ConvPoolOps::conv2d_with_bias`].
    ///
    /// # Shapes
    /// - weight: `[O, C, KH, KW]`, grad: `[N, O, HO, WO]`
    /// - output: `x_shape`
    fn conv2d_with_bias_x_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_shape: [usize; 4],
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// The weight and bias gradients of [`ConvPoolOps::conv2d_with_bias`].
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, grad: `[N, O, HO, WO]`
    /// - output: (`[O, C, kernel[0], kernel[1]]`, `[O]`)
    fn conv2d_with_bias_wb_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kernel: [usize; 2],
        geometry: ConvGeometry,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// [`ConvPoolOps::conv2d_max_pool`] and each window's winner.
    ///
    /// # Shapes
    /// - as [`ConvPoolOps::conv2d_max_pool`]; winners of the output's shape
    fn conv2d_max_pool_with_winners(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        block: FusedBlock,
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// The gradients of [`ConvPoolOps::conv2d_max_pool`].
    fn conv2d_max_pool_grads(backward: FusedBackward<Self>) -> FusedGrads<Self>;

    /// [`ConvPoolOps::max_pool2d_tiled`] and each window's winner.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: (`[N, C, H / KH, W / KW]`, winners of the same shape)
    fn max_pool2d_tiled_with_winners(
        x: FloatTensor<Self>,
        window: [usize; 2],
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// The input gradient of [`ConvPoolOps::max_pool2d_tiled`].
    ///
    /// # Shapes
    /// - grad and winners: `[N, C, H / KH, W / KW]`
    /// - output: `x_shape` (`[N, C, H, W]`)
    fn max_pool2d_tiled_x_grad(
        x_shape: [usize; 4],
        grad: FloatTensor<Self>,
        winners: IntTensor<Self>,
        window: [usize; 2],
    ) -> FloatTensor<Self>;

    /// The input gradient of [`ConvPoolOps::dense`]: `grad · weightᵀ`.
    ///
    /// # Shapes
    /// - weight: `[I, O]`, grad: `[N, O]`
    /// - output: `[N, I]`
    fn dense_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The weight and bias gradients of [`ConvPoolOps::dense`]: `xᵀ · grad` and the column
    /// sums of `grad`.
    ///
    /// # Shapes
    /// - x: `[N, I]`, grad: `[N, O]`
    /// - output: (`[I, O]`, `[O]`)
    fn dense_wb_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}
