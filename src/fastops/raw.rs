//! Between burn and the kernels: row-major f32 slices of the CPU backends' tensor primitives
//! ([`Raw`], for flex and ndarray), the typed wrappers that run a kernel on them, and the
//! [`ConvPoolOps`](super::ConvPoolOps) impls of both backends.

use burn::backend::TensorMetadata;
use burn::tensor::TensorData;

use super::kernels::{conv, fused, pool};

/// Raw row-major access to a CPU backend's tensor primitive.
pub(crate) trait Raw: TensorMetadata + Sized {
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
    let geo = conv::Geometry::new(dims4(&x), dims4(&weight), stride, padding);
    let y = x.with_f32("input", |x| {
        weight.with_f32("weight", |w| {
            bias.with_f32("bias", |b| conv::forward(&geo, x, w, b))
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
    let geo = conv::Geometry::new(x_shape, dims4(&weight), stride, padding);
    let gx = weight.with_f32("weight", |w| {
        grad.with_f32("output gradient", |g| conv::x_grad(&geo, w, g))
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
    let geo = conv::Geometry::new(x_shape, w_shape, stride, padding);
    let (gw, gb) = x.with_f32("input", |x| {
        grad.with_f32("output gradient", |g| conv::wb_grad(&geo, x, g))
    });
    (
        T::from_values(TensorData::new(gw, w_shape)),
        T::from_values(TensorData::new(gb, [o])),
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn conv_pool<T: Raw>(
    x: T,
    weight: T,
    bias: T,
    stride: [usize; 2],
    padding: [usize; 2],
    pool: [usize; 2],
    relu: bool,
    with_indices: bool,
) -> (T, Option<T>) {
    let geo = conv::Geometry::new(dims4(&x), dims4(&weight), stride, padding);
    let (y, idx) = x.with_f32("input", |x| {
        weight.with_f32("weight", |w| {
            bias.with_f32("bias", |b| {
                fused::forward(&geo, pool, x, w, b, relu, with_indices)
            })
        })
    });
    let shape = [geo.n, geo.o, geo.ho / pool[0], geo.wo / pool[1]];
    let idx = with_indices.then(|| T::from_values(TensorData::new(idx, shape)));
    (T::from_values(TensorData::new(y, shape)), idx)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn conv_pool_grads<T: Raw, I: Raw>(
    x: T,
    weight: T,
    output: Option<T>,
    grad: T,
    indices: I,
    stride: [usize; 2],
    padding: [usize; 2],
    pool: [usize; 2],
    x_grad: bool,
) -> (Option<T>, T, T) {
    let geo = conv::Geometry::new(dims4(&x), dims4(&weight), stride, padding);
    let x_shape = dims4(&x);
    let w_shape = dims4(&weight);
    let (gx, gw, gb) = x.with_f32("input", |xs| {
        weight.with_f32("weight", |w| {
            grad.with_f32("output gradient", |g| {
                indices.with_u32(|idx| match &output {
                    Some(y) => y.with_f32("output", |y| {
                        fused::backward(&geo, pool, xs, w, Some(y), g, idx, x_grad)
                    }),
                    None => fused::backward(&geo, pool, xs, w, None, g, idx, x_grad),
                })
            })
        })
    });
    (
        x_grad.then(|| T::from_values(TensorData::new(gx, x_shape))),
        T::from_values(TensorData::new(gw, w_shape)),
        T::from_values(TensorData::new(gb, [geo.o])),
    )
}

pub(super) fn pool<T: Raw>(x: T, kernel: [usize; 2], with_indices: bool) -> (T, Option<T>) {
    let [n, c, h, w] = dims4(&x);
    let out_shape = [n, c, h / kernel[0], w / kernel[1]];
    let (y, idx) = x.with_f32("input", |x| {
        pool::forward(x, [n * c, h, w], kernel, with_indices)
    });
    let idx = with_indices.then(|| T::from_values(TensorData::new(idx, out_shape)));
    (T::from_values(TensorData::new(y, out_shape)), idx)
}

pub(super) fn pool_grad<T: Raw>(x: T, grad: T, indices: T, kernel: [usize; 2]) -> T {
    let [n, c, h, w] = dims4(&x);
    let gx = grad.with_f32("output gradient", |g| {
        indices.with_u32(|idx| pool::backward(g, idx, [n * c, h, w], kernel))
    });
    T::from_values(TensorData::new(gx, [n, c, h, w]))
}

/// `impl ConvPoolOps` for a CPU backend whose float and int primitives implement [`Raw`].
macro_rules! impl_conv_pool_ops {
    ($backend:ty) => {
        impl $crate::fastops::ConvPoolOps for $backend {
            fn conv2d_im2col(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                stride: [usize; 2],
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                raw::conv_forward(x, weight, bias, stride, padding)
            }

            fn conv2d_im2col_x_grad(
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                x_shape: [usize; 4],
                stride: [usize; 2],
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                raw::conv_x_grad(weight, grad, x_shape, stride, padding)
            }

            fn conv2d_im2col_wb_grad(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                kernel: [usize; 2],
                stride: [usize; 2],
                padding: [usize; 2],
            ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                raw::conv_wb_grad(x, grad, kernel, stride, padding)
            }

            fn conv2d_pool_im2col(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                stride: [usize; 2],
                padding: [usize; 2],
                pool: [usize; 2],
                relu: bool,
            ) -> FloatTensor<Self> {
                raw::conv_pool(x, weight, bias, stride, padding, pool, relu, false).0
            }

            fn conv2d_pool_im2col_with_argmax(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                stride: [usize; 2],
                padding: [usize; 2],
                pool: [usize; 2],
                relu: bool,
            ) -> (FloatTensor<Self>, IntTensor<Self>) {
                let (y, idx) = raw::conv_pool(x, weight, bias, stride, padding, pool, relu, true);
                (y, idx.expect("indices requested"))
            }

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
                raw::conv_pool_grads(
                    x,
                    weight,
                    relu.then_some(output),
                    grad,
                    indices,
                    stride,
                    padding,
                    pool,
                    x_grad,
                )
            }

            fn max_pool2d_tiled(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
                raw::pool(x, kernel, false).0
            }

            fn max_pool2d_tiled_with_argmax(
                x: FloatTensor<Self>,
                kernel: [usize; 2],
            ) -> (FloatTensor<Self>, IntTensor<Self>) {
                let (y, idx) = raw::pool(x, kernel, true);
                (y, idx.expect("indices requested"))
            }

            fn max_pool2d_tiled_x_grad(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                indices: IntTensor<Self>,
                kernel: [usize; 2],
            ) -> FloatTensor<Self> {
                raw::pool_grad(x, grad, indices, kernel)
            }
        }
    };
}

#[cfg(feature = "flex")]
mod flex {
    use super::{super::raw, Raw};
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

    impl_conv_pool_ops!(Flex);
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)]
mod ndarray {
    use super::{super::raw, Raw};
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

    impl_conv_pool_ops!(NdArray);
}
