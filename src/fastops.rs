//! A faster 2D convolution for training on the flex CPU backend: burn's forward, and a backward
//! written as im2col + one matrix product per group of images.
//!
//! burn 0.22 computes a convolution's gradients with other convolutions: the weight gradient is
//! a convolution of the input by the output gradient (for the Keras convnet's second layer: a
//! 11×11 kernel over 128 "channels" producing a 3×3 output — a matrix product 9 columns wide,
//! which its im2col + gemm runs far below peak), and the input gradient is a transposed
//! convolution. Here both are the textbook formulation instead:
//!
//! - weight gradient `dW[O, C·K·K] = Σₙ dYₙ[O, P] · colsₙ[P, C·K·K]` (P = output positions),
//!   with `colsₙ` the unfolded input patches, summed in large blocks of images per thread;
//! - bias gradient `db[O] = Σₙ,ₚ dYₙ[O, p]`;
//! - input gradient `dXₙ = col2im(Wᵀ[C·K·K, O] · dYₙ[O, P])`, one image per task.
//!
//! This is a burn *backend extension* ([`ConvTrainOps`]): the operation is a node of burn's
//! autodiff graph with this backward, so models keep using plain tensors and burn's optimizers.
//! [`conv2d_train`] uses it only where it applies (flex, f32, autodiff, groups 1, dilation 1,
//! symmetric padding) and returns `None` otherwise; [`crate::conv::Conv2dBlock`] then falls back to
//! burn's `Conv2d`. Values and gradients equal burn's within float rounding (tests below).

// burn-ndarray is deprecated upstream but is one of this crate's backends (the user asked for it).
#![allow(deprecated)]

#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::backend::{
    Backend, TensorMetadata, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::tensor::{DType, ops::ConvOptions};

/// Training-time 2D convolution with a hand-written backward (see the [module docs](self)).
///
/// The default bodies compose burn's own convolution ops, so any backend that lists this
/// extension is correct; flex overrides the gradients with im2col + gemm kernels.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Autodiff
)]
pub trait ConvTrainOps: Backend {
    /// Convolution with bias, stride `stride`, symmetric zero padding `padding`, no dilation,
    /// one group.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, weight: `[O, C, KH, KW]`, bias: `[O]`
    /// - output: `[N, O, (H + 2·PH − KH)/SH + 1, (W + 2·PW − KW)/SW + 1]`
    fn conv2d_train(
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

    /// Gradient of [`ConvTrainOps::conv2d_train`] with respect to its input.
    ///
    /// # Shapes
    /// - weight: `[O, C, KH, KW]`, grad: `[N, O, HO, WO]`
    /// - output: `x_shape` = `[N, C, H, W]`
    fn conv2d_train_x_grad(
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

    /// Gradients of [`ConvTrainOps::conv2d_train`] with respect to its weight and bias.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, grad: `[N, O, HO, WO]`
    /// - output: (`[O, C, kernel[0], kernel[1]]`, `[O]`)
    fn conv2d_train_wb_grad(
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

    /// Non-overlapping max pooling (stride = kernel, no padding; a partial last window is
    /// dropped, as the output formula's floor says).
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: `[N, C, H / KH, W / KW]`
    fn max_pool2d_train(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
        Self::max_pool2d_train_fwd(x, kernel).0
    }

    /// [`ConvTrainOps::max_pool2d_train`] and the position of each window's maximum, as the
    /// backend's own backward expects it.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: (`[N, C, H / KH, W / KW]`, indices of the same shape)
    fn max_pool2d_train_fwd(
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

    /// Gradient of [`ConvTrainOps::max_pool2d_train`] with respect to its input.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, grad and indices: `[N, C, H / KH, W / KW]`
    /// - output: `[N, C, H, W]`
    fn max_pool2d_train_bwd(
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

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod autodiff {
    use super::ConvTrainOps;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Backend, TensorMetadata, tensor::FloatTensor};

    #[derive(Debug)]
    struct Conv2dTrainBackward;

    type State = (
        NodeId,
        NodeId,
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
    );

    impl<B: Backend + ConvTrainOps> Backward<B, 3> for Conv2dTrainBackward {
        type State = State;

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_w, node_b] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x_state, w_state, x_shape, kernel, stride, padding) = ops.state;
            let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
            let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
            if let Some(node) = node_x {
                let gx = B::conv2d_train_x_grad(weight, grad.clone(), x_shape, stride, padding);
                grads.register::<B>(node.id, gx);
            }
            if node_w.is_some() || node_b.is_some() {
                let (gw, gb) = B::conv2d_train_wb_grad(x, grad, kernel, stride, padding);
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, gw);
                }
                if let Some(node) = node_b {
                    grads.register::<B>(node.id, gb);
                }
            }
        }
    }

    #[derive(Debug)]
    struct MaxPoolTrainBackward;

    impl<B: Backend + ConvTrainOps> Backward<B, 1> for MaxPoolTrainBackward {
        type State = (NodeId, B::IntTensorPrimitive, [usize; 2]);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x_state, indices, kernel) = ops.state;
            let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
            if let Some(node) = node_x {
                let gx = B::max_pool2d_train_bwd(x, grad, indices, kernel);
                grads.register::<B>(node.id, gx);
            }
        }
    }

    impl<B: Backend + ConvTrainOps, C: CheckpointStrategy> ConvTrainOps for Autodiff<B, C> {
        fn max_pool2d_train(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
            match MaxPoolTrainBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let x_state = prep.checkpoint(&x);
                    let (out, indices) = B::max_pool2d_train_fwd(x.into_primitive(), kernel);
                    prep.finish((x_state, indices, kernel), out)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::max_pool2d_train(x.into_primitive(), kernel))
                }
            }
        }

        fn conv2d_train(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            stride: [usize; 2],
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            let x_shape: [usize; 4] = x.shape().dims();
            let w_shape: [usize; 4] = weight.shape().dims();
            let kernel = [w_shape[2], w_shape[3]];
            match Conv2dTrainBackward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let x_state = prep.checkpoint(&x);
                    let w_state = prep.checkpoint(&weight);
                    let out = B::conv2d_train(
                        x.into_primitive(),
                        weight.into_primitive(),
                        bias.into_primitive(),
                        stride,
                        padding,
                    );
                    prep.finish((x_state, w_state, x_shape, kernel, stride, padding), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::conv2d_train(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    stride,
                    padding,
                )),
            }
        }
    }
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernels {
    //! The im2col + gemm and pooling kernels on f32 slices, and the CPU backends' impls of
    //! [`ConvTrainOps`] on top of them.
    use burn::backend::TensorMetadata;
    use burn::tensor::TensorData;
    use rayon::prelude::*;

    /// Raw row-major access to a CPU backend's tensor primitive.
    pub(super) trait Raw: TensorMetadata + Sized {
        /// Calls `f` with the tensor's f32 values in row-major order (copied only if the
        /// tensor is not contiguous).
        fn with_f32<R>(&self, what: &str, f: impl FnOnce(&[f32]) -> R) -> R;
        /// The same for the u32 window positions of the pooling kernels.
        fn with_u32<R>(&self, f: impl FnOnce(&[u32]) -> R) -> R;
        /// A tensor owning `data`.
        fn from_values(data: TensorData) -> Self;
    }

    fn dims4<T: TensorMetadata>(t: &T) -> [usize; 4] {
        t.shape().dims()
    }

    pub(super) fn conv_forward<T: Raw>(
        x: T,
        weight: T,
        bias: T,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> T {
        let geo = Geometry::new(dims4(&x), dims4(&weight), stride, padding);
        let y = x.with_f32("input", |x| {
            weight.with_f32("weight", |w| {
                bias.with_f32("bias", |b| forward(&geo, x, w, b))
            })
        });
        T::from_values(TensorData::new(y, [geo.n, geo.o, geo.ho, geo.wo]))
    }

    pub(super) fn conv_x_grad<T: Raw>(
        weight: T,
        grad: T,
        x_shape: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> T {
        let geo = Geometry::new(x_shape, dims4(&weight), stride, padding);
        let gx = weight.with_f32("weight", |w| {
            grad.with_f32("output gradient", |g| x_grad(&geo, w, g))
        });
        T::from_values(TensorData::new(gx, x_shape))
    }

    pub(super) fn conv_wb_grad<T: Raw>(
        x: T,
        grad: T,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (T, T) {
        let x_shape = dims4(&x);
        let o = dims4(&grad)[1];
        let w_shape = [o, x_shape[1], kernel[0], kernel[1]];
        let geo = Geometry::new(x_shape, w_shape, stride, padding);
        let (gw, gb) = x.with_f32("input", |x| {
            grad.with_f32("output gradient", |g| wb_grad(&geo, x, g))
        });
        (
            T::from_values(TensorData::new(gw, w_shape)),
            T::from_values(TensorData::new(gb, [o])),
        )
    }

    pub(super) fn pool<T: Raw>(x: T, kernel: [usize; 2], with_indices: bool) -> (T, Option<T>) {
        let [n, c, h, w] = dims4(&x);
        let out_shape = [n, c, h / kernel[0], w / kernel[1]];
        let (y, idx) = x.with_f32("input", |x| {
            pool_forward(x, [n * c, h, w], kernel, with_indices)
        });
        let idx = with_indices.then(|| T::from_values(TensorData::new(idx, out_shape)));
        (T::from_values(TensorData::new(y, out_shape)), idx)
    }

    pub(super) fn pool_grad<T: Raw>(x: T, grad: T, indices: T, kernel: [usize; 2]) -> T {
        let [n, c, h, w] = dims4(&x);
        let gx = grad.with_f32("output gradient", |g| {
            indices.with_u32(|idx| pool_backward(g, idx, [n * c, h, w], kernel))
        });
        T::from_values(TensorData::new(gx, [n, c, h, w]))
    }

    /// `impl ConvTrainOps` for a CPU backend whose float and int primitives implement [`Raw`].
    macro_rules! impl_conv_train_ops {
        ($backend:ty) => {
            impl $crate::fastops::ConvTrainOps for $backend {
                fn conv2d_train(
                    x: FloatTensor<Self>,
                    weight: FloatTensor<Self>,
                    bias: FloatTensor<Self>,
                    stride: [usize; 2],
                    padding: [usize; 2],
                ) -> FloatTensor<Self> {
                    kernels::conv_forward(x, weight, bias, stride, padding)
                }

                fn conv2d_train_x_grad(
                    weight: FloatTensor<Self>,
                    grad: FloatTensor<Self>,
                    x_shape: [usize; 4],
                    stride: [usize; 2],
                    padding: [usize; 2],
                ) -> FloatTensor<Self> {
                    kernels::conv_x_grad(weight, grad, x_shape, stride, padding)
                }

                fn conv2d_train_wb_grad(
                    x: FloatTensor<Self>,
                    grad: FloatTensor<Self>,
                    kernel: [usize; 2],
                    stride: [usize; 2],
                    padding: [usize; 2],
                ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                    kernels::conv_wb_grad(x, grad, kernel, stride, padding)
                }

                fn max_pool2d_train(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
                    kernels::pool(x, kernel, false).0
                }

                fn max_pool2d_train_fwd(
                    x: FloatTensor<Self>,
                    kernel: [usize; 2],
                ) -> (FloatTensor<Self>, IntTensor<Self>) {
                    let (y, idx) = kernels::pool(x, kernel, true);
                    (y, idx.expect("indices requested"))
                }

                fn max_pool2d_train_bwd(
                    x: FloatTensor<Self>,
                    grad: FloatTensor<Self>,
                    indices: IntTensor<Self>,
                    kernel: [usize; 2],
                ) -> FloatTensor<Self> {
                    kernels::pool_grad(x, grad, indices, kernel)
                }
            }
        };
    }

    #[cfg(feature = "flex")]
    mod flex {
        use super::{super::kernels, Raw};
        use burn::backend::Flex;
        use burn::backend::flex::FlexTensor;
        use burn::backend::tensor::{FloatTensor, IntTensor};
        use burn::tensor::{DType, TensorData};

        impl Raw for FlexTensor {
            fn with_f32<R>(&self, what: &str, f: impl FnOnce(&[f32]) -> R) -> R {
                assert_eq!(self.dtype(), DType::F32, "fastops: {what} must be f32");
                let t = self.to_contiguous();
                f(t.as_slice::<f32>().expect("contiguous after to_contiguous"))
            }
            fn with_u32<R>(&self, f: impl FnOnce(&[u32]) -> R) -> R {
                assert_eq!(
                    self.dtype(),
                    DType::U32,
                    "fastops: pooling indices must be u32"
                );
                let t = self.to_contiguous();
                f(t.as_slice::<u32>().expect("contiguous after to_contiguous"))
            }
            fn from_values(data: TensorData) -> Self {
                FlexTensor::from_data(data)
            }
        }

        impl_conv_train_ops!(Flex);
    }

    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    mod ndarray {
        use super::{super::kernels, Raw};
        use burn::backend::ndarray::NdArrayTensor;
        use burn::backend::tensor::{FloatTensor, IntTensor};
        use burn::backend::{NdArray, TensorMetadata};
        use burn::tensor::TensorData;

        impl Raw for NdArrayTensor {
            fn with_f32<R>(&self, what: &str, f: impl FnOnce(&[f32]) -> R) -> R {
                match self {
                    NdArrayTensor::F32(s) => f(s
                        .view()
                        .as_standard_layout()
                        .as_slice()
                        .expect("standard layout")),
                    other => panic!("fastops: {what} must be f32, is {:?}", other.dtype()),
                }
            }
            fn with_u32<R>(&self, f: impl FnOnce(&[u32]) -> R) -> R {
                match self {
                    NdArrayTensor::U32(s) => f(s
                        .view()
                        .as_standard_layout()
                        .as_slice()
                        .expect("standard layout")),
                    other => panic!(
                        "fastops: pooling indices must be u32, is {:?}",
                        other.dtype()
                    ),
                }
            }
            fn from_values(data: TensorData) -> Self {
                NdArrayTensor::from_data(data)
            }
        }

        impl_conv_train_ops!(NdArray);
    }

    /// Planes per parallel task in the pooling kernels.
    const PLANES_PER_TASK: usize = 16;

    /// Max over each `KH×KW` window of `planes` images `[H, W]`; with `with_indices`, also the
    /// position of each maximum in its plane (`iy·W + ix`; the first maximum wins, NaN wins).
    fn pool_forward(
        x: &[f32],
        [planes, h, w]: [usize; 3],
        [kh, kw]: [usize; 2],
        with_indices: bool,
    ) -> (Vec<f32>, Vec<u32>) {
        let (ho, wo) = (h / kh, w / kw);
        let (hw, out) = (h * w, ho * wo);
        let mut y = vec![0.0f32; planes * out];
        let mut idx = vec![0u32; if with_indices { planes * out } else { 0 }];
        let task = |p0: usize, ys: &mut [f32], is: &mut [u32]| {
            for (k, yp) in ys.chunks_mut(out).enumerate() {
                let xp = &x[(p0 + k) * hw..(p0 + k + 1) * hw];
                if kh == 2 && kw == 2 {
                    let ip = if with_indices {
                        &mut is[k * out..(k + 1) * out]
                    } else {
                        &mut []
                    };
                    pool_plane_2x2(xp, w, yp, ip, ho, wo);
                    continue;
                }
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut best = f32::NEG_INFINITY;
                        let mut at = (oy * kh) * w + ox * kw;
                        for dy in 0..kh {
                            let row = (oy * kh + dy) * w + ox * kw;
                            for (dx, &v) in xp[row..row + kw].iter().enumerate() {
                                if v > best || (v.is_nan() && !best.is_nan()) {
                                    best = v;
                                    at = row + dx;
                                }
                            }
                        }
                        yp[oy * wo + ox] = best;
                        if with_indices {
                            is[k * out + oy * wo + ox] = at as u32;
                        }
                    }
                }
            }
        };
        let chunk = PLANES_PER_TASK * out;
        if with_indices {
            y.par_chunks_mut(chunk)
                .zip(idx.par_chunks_mut(chunk))
                .enumerate()
                .for_each(|(t, (ys, is))| task(t * PLANES_PER_TASK, ys, is));
        } else {
            y.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(t, ys)| task(t * PLANES_PER_TASK, ys, &mut []));
        }
        (y, idx)
    }

    /// The larger of two candidates with their positions; on a tie the first wins, NaN wins.
    #[inline(always)]
    fn pick(x: f32, ix: u32, y: f32, iy: u32) -> (f32, u32) {
        if y > x || (y.is_nan() && !x.is_nan()) {
            (y, iy)
        } else {
            (x, ix)
        }
    }

    /// 2×2 windows of one plane (`w` columns): outputs `y` (`[HO, WO]`) and, unless `idx` is
    /// empty, the position of each maximum.
    fn pool_plane_2x2(x: &[f32], w: usize, y: &mut [f32], idx: &mut [u32], ho: usize, wo: usize) {
        for oy in 0..ho {
            let r0 = &x[2 * oy * w..2 * oy * w + 2 * wo];
            let r1 = &x[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo];
            let yr = &mut y[oy * wo..(oy + 1) * wo];
            let base = (2 * oy * w) as u32;
            let (w32, mut col) = (w as u32, 0u32);
            if idx.is_empty() {
                for ((a, b), out) in r0
                    .chunks_exact(2)
                    .zip(r1.chunks_exact(2))
                    .zip(yr.iter_mut())
                {
                    let (m0, _) = pick(a[0], 0, a[1], 0);
                    let (m1, _) = pick(b[0], 0, b[1], 0);
                    *out = pick(m0, 0, m1, 0).0;
                }
            } else {
                let ir = &mut idx[oy * wo..(oy + 1) * wo];
                for (((a, b), out), at) in r0
                    .chunks_exact(2)
                    .zip(r1.chunks_exact(2))
                    .zip(yr.iter_mut())
                    .zip(ir.iter_mut())
                {
                    let i = base + col;
                    let (m0, i0) = pick(a[0], i, a[1], i + 1);
                    let (m1, i1) = pick(b[0], i + w32, b[1], i + w32 + 1);
                    let (m, im) = pick(m0, i0, m1, i1);
                    *out = m;
                    *at = im;
                    col += 2;
                }
            }
        }
    }

    /// Routes each output gradient to the position its window's maximum came from.
    fn pool_backward(
        g: &[f32],
        idx: &[u32],
        [planes, h, w]: [usize; 3],
        [kh, kw]: [usize; 2],
    ) -> Vec<f32> {
        let (hw, out) = (h * w, (h / kh) * (w / kw));
        assert_eq!(g.len(), planes * out, "max_pool2d_train: gradient shape");
        let mut gx = vec![0.0f32; planes * hw];
        gx.par_chunks_mut(PLANES_PER_TASK * hw)
            .enumerate()
            .for_each(|(t, gxs)| {
                for (k, gp) in gxs.chunks_mut(hw).enumerate() {
                    let p = t * PLANES_PER_TASK + k;
                    for (&i, &v) in idx[p * out..(p + 1) * out]
                        .iter()
                        .zip(&g[p * out..(p + 1) * out])
                    {
                        gp[i as usize] += v;
                    }
                }
            });
        gx
    }

    /// Sizes of one convolution.
    pub(super) struct Geometry {
        pub n: usize,
        pub c: usize,
        pub h: usize,
        pub w: usize,
        pub o: usize,
        pub kh: usize,
        pub kw: usize,
        pub sh: usize,
        pub sw: usize,
        pub ph: usize,
        pub pw: usize,
        pub ho: usize,
        pub wo: usize,
    }

    impl Geometry {
        pub fn new(x: [usize; 4], w: [usize; 4], s: [usize; 2], p: [usize; 2]) -> Self {
            let [n, c, h, wd] = x;
            let [o, _, kh, kw] = w;
            let ho = (h + 2 * p[0] - kh) / s[0] + 1;
            let wo = (wd + 2 * p[1] - kw) / s[1] + 1;
            Self {
                n,
                c,
                h,
                w: wd,
                o,
                kh,
                kw,
                sh: s[0],
                sw: s[1],
                ph: p[0],
                pw: p[1],
                ho,
                wo,
            }
        }
        fn ckk(&self) -> usize {
            self.c * self.kh * self.kw
        }
        fn p(&self) -> usize {
            self.ho * self.wo
        }
        /// For kernel column `kx`: the output columns `ox` whose input column
        /// `ox·SW + kx − PW` lies inside the image, as a half-open range.
        fn ox_range(&self, kx: usize) -> (usize, usize) {
            range_inside(self.wo, self.sw, kx, self.pw, self.w)
        }
        fn oy_range(&self, ky: usize) -> (usize, usize) {
            range_inside(self.ho, self.sh, ky, self.ph, self.h)
        }
    }

    /// Output indices `i` in `0..out` with `0 <= i·s + k − p < len`.
    fn range_inside(out: usize, s: usize, k: usize, p: usize, len: usize) -> (usize, usize) {
        // first i with i·s + k >= p
        let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
        // last i with i·s + k − p <= len − 1
        let hi = if len + p < k + 1 {
            0
        } else {
            ((len + p - k - 1) / s + 1).min(out)
        };
        (lo.min(hi), hi)
    }

    /// Unfolds image `x` (`[C, H, W]`) into `cols` (`[C·KH·KW, cols_stride]`, columns
    /// `col0..col0 + HO·WO` written; rows indexed `(c, ky, kx)`). Out-of-image taps are 0.
    fn im2col(geo: &Geometry, x: &[f32], cols: &mut [f32], cols_stride: usize, col0: usize) {
        let (hw, p) = (geo.h * geo.w, geo.p());
        for c in 0..geo.c {
            let xc = &x[c * hw..(c + 1) * hw];
            for ky in 0..geo.kh {
                let (oy0, oy1) = geo.oy_range(ky);
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &mut cols[r * cols_stride + col0..r * cols_stride + col0 + p];
                    let (ox0, ox1) = geo.ox_range(kx);
                    for oy in 0..geo.ho {
                        let dst = &mut row[oy * geo.wo..(oy + 1) * geo.wo];
                        if oy < oy0 || oy >= oy1 || ox0 >= ox1 {
                            dst.fill(0.0);
                            continue;
                        }
                        let iy = oy * geo.sh + ky - geo.ph;
                        let src = &xc[iy * geo.w..(iy + 1) * geo.w];
                        dst[..ox0].fill(0.0);
                        dst[ox1..].fill(0.0);
                        if geo.sw == 1 {
                            let ix0 = ox0 + kx - geo.pw;
                            dst[ox0..ox1].copy_from_slice(&src[ix0..ix0 + (ox1 - ox0)]);
                        } else {
                            for (ox, d) in dst.iter_mut().enumerate().take(ox1).skip(ox0) {
                                *d = src[ox * geo.sw + kx - geo.pw];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds `cols` (`[C·KH·KW, HO·WO]`) back into image gradient `gx` (`[C, H, W]`).
    fn col2im(geo: &Geometry, cols: &[f32], gx: &mut [f32]) {
        let (hw, p) = (geo.h * geo.w, geo.p());
        for c in 0..geo.c {
            let gc = &mut gx[c * hw..(c + 1) * hw];
            for ky in 0..geo.kh {
                let (oy0, oy1) = geo.oy_range(ky);
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &cols[r * p..(r + 1) * p];
                    let (ox0, ox1) = geo.ox_range(kx);
                    if ox0 >= ox1 {
                        continue;
                    }
                    for oy in oy0..oy1 {
                        let iy = oy * geo.sh + ky - geo.ph;
                        let src = &row[oy * geo.wo + ox0..oy * geo.wo + ox1];
                        let dst = &mut gc[iy * geo.w..(iy + 1) * geo.w];
                        if geo.sw == 1 {
                            let ix0 = ox0 + kx - geo.pw;
                            for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                                *d += s;
                            }
                        } else {
                            for (i, s) in src.iter().enumerate() {
                                dst[(ox0 + i) * geo.sw + kx - geo.pw] += s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` with explicit row/column strides (gemm crate).
    #[allow(clippy::too_many_arguments)]
    fn sgemm(
        (m, n, k): (usize, usize, usize),
        dst: &mut [f32],
        (dst_rs, dst_cs): (usize, usize),
        accumulate: bool,
        lhs: &[f32],
        (lhs_rs, lhs_cs): (usize, usize),
        rhs: &[f32],
        (rhs_rs, rhs_cs): (usize, usize),
    ) {
        // The last element each operand's strides reach must be inside its slice; that is all
        // gemm needs to stay in bounds.
        let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
            (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
        };
        assert!(m == 0 || n == 0 || last(m, n, dst_rs, dst_cs) < dst.len());
        assert!(m == 0 || k == 0 || last(m, k, lhs_rs, lhs_cs) < lhs.len());
        assert!(k == 0 || n == 0 || last(k, n, rhs_rs, rhs_cs) < rhs.len());
        // SAFETY: the assertions above keep every index gemm computes inside the three slices,
        // and `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                dst_cs as isize,
                dst_rs as isize,
                accumulate,
                lhs.as_ptr(),
                lhs_cs as isize,
                lhs_rs as isize,
                rhs.as_ptr(),
                rhs_cs as isize,
                rhs_rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Images per matrix product in the weight gradient: enough columns (`nb·HO·WO`) for gemm
    /// to run near peak, small enough for the unfolded block to stay in cache.
    fn block_images(geo: &Geometry) -> usize {
        let per_image = geo.ckk() * geo.p();
        (256 * 1024 / per_image.max(1)).clamp(1, 16)
    }

    /// Weight and bias gradients: per thread, blocks of images unfolded side by side and one
    /// product `dY_block[O, nb·P] · cols_blockᵀ[nb·P, C·K·K]`; the per-thread sums are added.
    pub(super) fn wb_grad(geo: &Geometry, x: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
        let chw = geo.c * geo.h * geo.w;
        let nb = block_images(geo);
        let threads = rayon::current_num_threads().max(1);
        let per_thread = geo.n.div_ceil(threads).max(1);
        let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..geo.n)
            .step_by(per_thread)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let end = (start + per_thread).min(geo.n);
                let mut gw = vec![0.0f32; o * ckk];
                let mut gb = vec![0.0f32; o];
                let mut cols = vec![0.0f32; ckk * nb * p];
                let mut gblock = vec![0.0f32; o * nb * p];
                let mut first = true;
                let mut b0 = start;
                while b0 < end {
                    let b1 = (b0 + nb).min(end);
                    let width = (b1 - b0) * p;
                    for (j, img) in (b0..b1).enumerate() {
                        im2col(geo, &x[img * chw..(img + 1) * chw], &mut cols, width, j * p);
                        let gi = &g[img * o * p..(img + 1) * o * p];
                        for oc in 0..o {
                            let src = &gi[oc * p..(oc + 1) * p];
                            gblock[oc * width + j * p..oc * width + (j + 1) * p]
                                .copy_from_slice(src);
                            gb[oc] += src.iter().sum::<f32>();
                        }
                    }
                    // gw[O, CKK] (+)= gblock[O, width] · colsᵀ[width, CKK]
                    sgemm(
                        (o, ckk, width),
                        &mut gw,
                        (ckk, 1),
                        !first,
                        &gblock,
                        (width, 1),
                        &cols,
                        (1, width),
                    );
                    first = false;
                    b0 = b1;
                }
                (gw, gb)
            })
            .collect();
        let mut parts = partials.into_iter();
        let (mut gw, mut gb) = parts
            .next()
            .unwrap_or_else(|| (vec![0.0; o * ckk], vec![0.0; o]));
        for (w2, b2) in parts {
            gw.iter_mut().zip(&w2).for_each(|(a, b)| *a += b);
            gb.iter_mut().zip(&b2).for_each(|(a, b)| *a += b);
        }
        (gw, gb)
    }

    /// Forward: per image, `Yₙ[O, P] = W[O, C·K·K] · colsₙ[C·K·K, P] + b`.
    pub(super) fn forward(geo: &Geometry, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
        let chw = geo.c * geo.h * geo.w;
        let mut y = vec![0.0f32; geo.n * o * p];
        y.par_chunks_mut(o * p).enumerate().for_each_init(
            || vec![0.0f32; ckk * p],
            |cols, (img, yi)| {
                im2col(geo, &x[img * chw..(img + 1) * chw], cols, p, 0);
                for (oc, row) in yi.chunks_mut(p).enumerate() {
                    row.fill(b[oc]);
                }
                sgemm((o, p, ckk), yi, (p, 1), true, w, (ckk, 1), cols, (p, 1));
            },
        );
        y
    }

    /// Input gradient: per image, `cols = Wᵀ[C·K·K, O] · dYₙ[O, P]`, then col2im.
    pub(super) fn x_grad(geo: &Geometry, w: &[f32], g: &[f32]) -> Vec<f32> {
        let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
        let chw = geo.c * geo.h * geo.w;
        let mut gx = vec![0.0f32; geo.n * chw];
        gx.par_chunks_mut(chw).enumerate().for_each_init(
            || vec![0.0f32; ckk * p],
            |cols, (img, gxi)| {
                sgemm(
                    (ckk, p, o),
                    cols,
                    (p, 1),
                    false,
                    w,
                    (1, ckk),
                    &g[img * o * p..(img + 1) * o * p],
                    (p, 1),
                );
                col2im(geo, cols, gxi);
            },
        );
        gx
    }

    #[cfg(test)]
    mod tests {
        use super::range_inside;

        #[test]
        fn inside_ranges() {
            // 5 outputs, stride 1, padding 1, kernel 3 over length 5: tap 0 misses output 0,
            // tap 2 misses output 4.
            assert_eq!(range_inside(5, 1, 0, 1, 5), (1, 5));
            assert_eq!(range_inside(5, 1, 1, 1, 5), (0, 5));
            assert_eq!(range_inside(5, 1, 2, 1, 5), (0, 4));
            // stride 2, padding 0, kernel 3 over 7: 3 outputs, all inside
            assert_eq!(range_inside(3, 2, 2, 0, 7), (0, 3));
        }
    }
}

/// The convolution of `conv` on `x` through [`ConvTrainOps`], or `None` where it does not
/// apply (not flex, not f32, groups or dilation ≠ 1, no bias, asymmetric or
/// "same" padding) — callers then use `conv.forward(x)`.
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_out, W_out]`
#[cfg(not(any(feature = "flex", feature = "ndarray")))]
pub fn conv2d_train(_conv: &Conv2d, _x: Tensor<4>) -> Option<Tensor<4>> {
    None
}

/// The convolution of `conv` on `x` through [`ConvTrainOps`], or `None` where it does not
/// apply (not flex, not f32, groups or dilation ≠ 1, no bias, asymmetric or "same" padding)
/// — callers then use `conv.forward(x)`.
///
/// # Shapes
/// - input: `[N, C_in, H, W]`
/// - output: `[N, C_out, H_out, W_out]`
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub fn conv2d_train(conv: &Conv2d, x: Tensor<4>) -> Option<Tensor<4>> {
    use burn::backend::Dispatch;
    let device = x.device();
    if !on_cpu_backend(&device)
        || x.dtype() != DType::F32
        || conv.groups != 1
        || conv.dilation != [1, 1]
    {
        return None;
    }
    let bias = conv.bias.as_ref()?;
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => [t, l],
        _ => return None,
    };
    let [_, _, h, w] = x.dims();
    let [_, _, kh, kw] = conv.weight.dims();
    if h + 2 * padding[0] < kh || w + 2 * padding[1] < kw {
        return None;
    }
    let out = <Dispatch as ConvTrainOps>::conv2d_train(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
        conv.stride,
        padding,
    );
    Some(Tensor::from_dispatch(out))
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use super::conv2d_train;
    use crate::testing::{assert_close, values};
    use burn::module::Module;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Tensor};

    /// The CPU backends compiled in: each test runs on every one of them.
    fn cpu_devices() -> Vec<Device> {
        use crate::BackendKind::{Flex, NdArray};
        [Flex, NdArray]
            .into_iter()
            .filter_map(|k| crate::backend::device_of(k).ok())
            .collect()
    }

    fn wave(len: usize, phase: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32) * 0.37 + phase).sin())
            .collect()
    }

    /// The reference is burn's own `Conv2d` (convolution forward, its transposed-convolution
    /// input gradient and convolution weight gradient) on the same device and weights.
    #[test]
    fn values_and_gradients_equal_burns_convolution() {
        for device in cpu_devices() {
            convolution_against_burns(device.autodiff());
        }
    }

    fn convolution_against_burns(ad: Device) {
        // (batch, c_in, c_out, h, w, kernel, stride, padding, input needs a gradient)
        let cases = [
            (37, 1, 8, 12, 12, [3, 3], [1, 1], [0, 0], false), // first layer: images
            (5, 3, 4, 9, 8, [3, 3], [1, 1], [1, 1], true),
            (4, 2, 3, 9, 7, [3, 2], [2, 2], [1, 0], true),
            (3, 4, 6, 10, 11, [5, 5], [2, 3], [2, 1], true),
            (2, 2, 2, 4, 4, [4, 4], [1, 1], [0, 0], true), // 1×1 output
        ];
        for (n, c, o, h, w, k, s, p, x_grad) in cases {
            let conv = Conv2dConfig::new([c, o], k)
                .with_stride(s)
                .with_padding(PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1]))
                .init(&ad);
            let x = Tensor::<1>::from_floats(wave(n * c * h * w, 0.1).as_slice(), &ad)
                .reshape([n, c, h, w]);
            let x = if x_grad { x.require_grad() } else { x };
            let ours = conv2d_train(&conv, x.clone()).expect("fast path applies");
            let burns = conv.forward(x.clone());
            let case = format!("case {:?}", (n, c, o, h, w, k, s, p));
            // inference (no autodiff): the same values
            let (conv_i, x_i) = (conv.valid(), x.clone().inner());
            assert_close(
                &values(conv2d_train(&conv_i, x_i.clone()).expect("applies")),
                &values(conv_i.forward(x_i)),
                1e-5,
            );
            assert_eq!(ours.dims(), burns.dims(), "{case}");
            assert_close(&values(ours.clone()), &values(burns.clone()), 1e-5);
            // A non-uniform upstream gradient, so that every position's weight matters.
            let r =
                Tensor::<1>::from_floats(wave(ours.dims().iter().product(), 1.3).as_slice(), &ad)
                    .reshape(ours.dims());
            let ga = (ours * r.clone()).sum().backward();
            let gb = (burns * r).sum().backward();
            assert_close(
                &values(conv.weight.grad(&ga).unwrap()),
                &values(conv.weight.grad(&gb).unwrap()),
                1e-4,
            );
            let bias = conv.bias.as_ref().unwrap();
            assert_close(
                &values(bias.grad(&ga).unwrap()),
                &values(bias.grad(&gb).unwrap()),
                1e-4,
            );
            if x_grad {
                assert_close(
                    &values(x.grad(&ga).unwrap()),
                    &values(x.grad(&gb).unwrap()),
                    1e-4,
                );
            } else {
                assert!(x.grad(&ga).is_none(), "{case}: images got a gradient");
            }
        }
    }

    /// The reference is burn's `max_pool2d` (flex's kernel and autodiff backward).
    #[test]
    fn max_pool_equals_burns_in_values_and_gradients() {
        for device in cpu_devices() {
            max_pool_against_burns(device.autodiff());
        }
    }

    fn max_pool_against_burns(ad: Device) {
        use super::max_pool2d_train;
        use burn::tensor::module::max_pool2d;
        use burn::tensor::ops::MaxPoolOptions;
        // (batch, channels, h, w, kernel): odd sizes drop the last row/column; 3×3 and 2×3
        // windows take the general path, 2×2 the specialised one.
        for (n, c, h, w, k) in [
            (3, 20, 26, 26, [2, 2]),
            (2, 3, 11, 7, [2, 2]),
            (2, 3, 9, 10, [3, 3]),
            (1, 2, 7, 9, [2, 3]),
        ] {
            let x = Tensor::<1>::from_floats(wave(n * c * h * w, 0.4).as_slice(), &ad)
                .reshape([n, c, h, w])
                .require_grad();
            let ours = max_pool2d_train(x.clone(), k).expect("applies on flex");
            let burns = max_pool2d(x.clone(), MaxPoolOptions::new(k).with_stride(k));
            assert_eq!(ours.dims(), burns.dims());
            assert_close(&values(ours.clone()), &values(burns.clone()), 0.0);
            let r =
                Tensor::<1>::from_floats(wave(ours.dims().iter().product(), 2.1).as_slice(), &ad)
                    .reshape(ours.dims());
            let ga = (ours * r.clone()).sum().backward();
            let gb = (burns * r).sum().backward();
            assert_close(
                &values(x.grad(&ga).unwrap()),
                &values(x.grad(&gb).unwrap()),
                0.0,
            );
            // without autodiff: the same values
            let xi = x.clone().inner();
            let inner = max_pool2d_train(xi.clone(), k).unwrap();
            let burn_inner = max_pool2d(xi, MaxPoolOptions::new(k).with_stride(k));
            assert_close(&values(inner), &values(burn_inner), 0.0);
        }
    }

    /// Worked by hand: ties go to the first position in row-major order (as PyTorch and burn
    /// do), a NaN anywhere in a window makes that window NaN (as PyTorch does), and the
    /// gradient goes only to the winning position.
    #[test]
    fn max_pool_ties_nan_and_gradient_routing_by_hand() {
        for device in cpu_devices() {
            max_pool_by_hand(device.autodiff());
        }
    }

    fn max_pool_by_hand(ad: Device) {
        use super::max_pool2d_train;
        #[rustfmt::skip]
        let x = Tensor::<1>::from_floats([
            1.0, 5.0,   2.0, 2.0,
            5.0, 0.0,   2.0, 2.0,
            -1.0, -3.0,  f32::NAN, 9.0,
            -2.0, -1.0,  0.0, 1.0,
        ], &ad)
        .reshape([1, 1, 4, 4])
        .require_grad();
        let y = max_pool2d_train(x.clone(), [2, 2]).unwrap();
        let v = values(y.clone());
        assert_eq!(&v[..3], &[5.0, 2.0, -1.0]);
        assert!(v[3].is_nan());
        let g = (y * Tensor::<1>::from_floats([10.0, 20.0, 30.0, 40.0], &ad).reshape([1, 1, 2, 2]))
            .sum()
            .backward();
        #[rustfmt::skip]
        assert_eq!(values(x.grad(&g).unwrap()), vec![
            0.0, 10.0,  20.0, 0.0,
            0.0, 0.0,   0.0, 0.0,
            30.0, 0.0,  40.0, 0.0,
            0.0, 0.0,   0.0, 0.0,
        ]);
    }

    #[test]
    fn falls_back_where_it_does_not_apply() {
        let ad = cpu_devices()[0].clone().autodiff();
        let grouped = Conv2dConfig::new([2, 2], [3, 3]).with_groups(2).init(&ad);
        assert!(conv2d_train(&grouped, Tensor::<4>::zeros([1, 2, 5, 5], &ad)).is_none());
        let same = Conv2dConfig::new([1, 2], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&ad);
        assert!(conv2d_train(&same, Tensor::<4>::zeros([1, 1, 5, 5], &ad)).is_none());
    }
}

/// Non-overlapping max pooling (window = stride = `kernel`, no padding) through
/// [`ConvTrainOps`], or `None` where it does not apply (not flex, not f32, window larger than
/// the input) — callers then use burn's `max_pool2d`.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C, H / KH, W / KW]`
#[cfg(not(any(feature = "flex", feature = "ndarray")))]
pub fn max_pool2d_train(_x: Tensor<4>, _kernel: [usize; 2]) -> Option<Tensor<4>> {
    None
}

/// Non-overlapping max pooling (window = stride = `kernel`, no padding) through
/// [`ConvTrainOps`], or `None` where it does not apply (not flex, not f32, window larger than
/// the input) — callers then use burn's `max_pool2d`.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C, H / KH, W / KW]`
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub fn max_pool2d_train(x: Tensor<4>, kernel: [usize; 2]) -> Option<Tensor<4>> {
    use burn::backend::Dispatch;
    let [_, _, h, w] = x.dims();
    if !on_cpu_backend(&x.device())
        || x.dtype() != DType::F32
        || kernel.contains(&0)
        || h < kernel[0]
        || w < kernel[1]
    {
        return None;
    }
    let out = <Dispatch as ConvTrainOps>::max_pool2d_train(x.into_dispatch(), kernel);
    Some(Tensor::from_dispatch(out))
}

/// Whether `device` is one of the CPU backends [`ConvTrainOps`] is implemented for (flex,
/// ndarray), with or without autodiff.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn on_cpu_backend(device: &burn::tensor::Device) -> bool {
    matches!(
        crate::backend::backend_of(device),
        Some(crate::BackendKind::Flex | crate::BackendKind::NdArray)
    )
}
