//! Between burn and the kernels: row-major f32 slices of the CPU backends' tensor primitives
//! ([`Raw`], for flex and ndarray), the typed wrappers that run a kernel on them, and the
//! [`ConvPoolOps`](super::ConvPoolOps) and [`ConvPoolGrads`](super::ConvPoolGrads) impls of
//! both backends.

use burn::backend::{Backend, TensorMetadata};
use burn::tensor::TensorData;

use super::cpu::{self, Geometry, Saved};
use super::ops::{ConvGeometry, FusedBackward, FusedBlock, FusedGrads};

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

fn geometry<T: TensorMetadata>(x_shape: [usize; 4], weight: &T, g: ConvGeometry) -> Geometry {
    Geometry::new(x_shape, dims4(weight), g.stride, g.padding)
}

pub(super) fn conv_forward<T: Raw>(x: T, weight: T, bias: T, g: ConvGeometry) -> T {
    let geo = geometry(dims4(&x), &weight, g);
    let y = x.with_f32("input", |x| {
        weight.with_f32("weight", |w| {
            bias.with_f32("bias", |b| cpu::conv2d_forward(&geo, x, w, b))
        })
    });
    T::from_values(TensorData::new(y, [geo.n, geo.o, geo.ho, geo.wo]))
}

pub(super) fn conv_x_grad<T: Raw>(weight: T, grad: T, x_shape: [usize; 4], g: ConvGeometry) -> T {
    let geo = geometry(x_shape, &weight, g);
    let gx = weight.with_f32("weight", |w| {
        grad.with_f32("output gradient", |g| cpu::conv2d_x_grad(&geo, w, g))
    });
    T::from_values(TensorData::new(gx, x_shape))
}

pub(super) fn conv_wb_grad<T: Raw>(x: T, grad: T, kernel: [usize; 2], g: ConvGeometry) -> (T, T) {
    let x_shape = dims4(&x);
    let o = dims4(&grad)[1];
    let w_shape = [o, x_shape[1], kernel[0], kernel[1]];
    let geo = Geometry::new(x_shape, w_shape, g.stride, g.padding);
    let (gw, gb) = x.with_f32("input", |x| {
        grad.with_f32("output gradient", |g| cpu::conv2d_wb_grad(&geo, x, g))
    });
    (
        T::from_values(TensorData::new(gw, w_shape)),
        T::from_values(TensorData::new(gb, [o])),
    )
}

/// The fused block's output and, when `winners` is asked for, each window's winner.
pub(super) fn conv_pool<T: Raw>(
    x: T,
    weight: T,
    bias: T,
    block: FusedBlock,
    winners: bool,
) -> (T, Option<T>) {
    let geo = geometry(dims4(&x), &weight, block.conv);
    let (y, idx) = x.with_f32("input", |x| {
        weight.with_f32("weight", |w| {
            bias.with_f32("bias", |b| {
                cpu::block_forward(&geo, block.pool, x, w, b, block.relu, winners)
            })
        })
    });
    let shape = [geo.n, geo.o, geo.ho / block.pool[0], geo.wo / block.pool[1]];
    let idx = winners.then(|| T::from_values(TensorData::new(idx, shape)));
    (T::from_values(TensorData::new(y, shape)), idx)
}

pub(super) fn conv_pool_grads<B>(a: FusedBackward<B>) -> FusedGrads<B>
where
    B: Backend<FloatTensorPrimitive: Raw, IntTensorPrimitive: Raw>,
{
    let x_shape = dims4(&a.x);
    let w_shape = dims4(&a.weight);
    let geo = geometry(x_shape, &a.weight, a.block.conv);
    let (gx, gw, gb) = a.x.with_f32("input", |x| {
        a.weight.with_f32("weight", |w| {
            a.grad.with_f32("output gradient", |g| {
                a.winners.with_u32(|idx| {
                    let (pool, input_grad) = (a.block.pool, a.input_grad);
                    match &a.relu_output {
                        Some(y) => y.with_f32("output", |y| {
                            let saved = Saved {
                                x,
                                w,
                                y: Some(y),
                                idx,
                                g,
                            };
                            cpu::block_backward(&geo, pool, saved, input_grad)
                        }),
                        None => {
                            let saved = Saved {
                                x,
                                w,
                                y: None,
                                idx,
                                g,
                            };
                            cpu::block_backward(&geo, pool, saved, input_grad)
                        }
                    }
                })
            })
        })
    });
    FusedGrads {
        x: a.input_grad
            .then(|| Raw::from_values(TensorData::new(gx, x_shape))),
        weight: Raw::from_values(TensorData::new(gw, w_shape)),
        bias: Raw::from_values(TensorData::new(gb, [geo.o])),
    }
}

/// Tiled max pooling and, when `winners` is asked for, each window's winner.
pub(super) fn pool<T: Raw>(x: T, window: [usize; 2], winners: bool) -> (T, Option<T>) {
    let [n, c, h, w] = dims4(&x);
    let out_shape = [n, c, h / window[0], w / window[1]];
    let (y, idx) = x.with_f32("input", |x| {
        cpu::max_pool_forward(x, [n * c, h, w], window, winners)
    });
    let idx = winners.then(|| T::from_values(TensorData::new(idx, out_shape)));
    (T::from_values(TensorData::new(y, out_shape)), idx)
}

pub(super) fn pool_grad<T: Raw>(x_shape: [usize; 4], grad: T, winners: T, window: [usize; 2]) -> T {
    let [n, c, h, w] = x_shape;
    let gx = grad.with_f32("output gradient", |g| {
        winners.with_u32(|idx| cpu::max_pool_backward(g, idx, [n * c, h, w], window))
    });
    T::from_values(TensorData::new(gx, x_shape))
}

fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    t.shape().dims()
}

pub(super) fn dense_forward<T: Raw>(x: T, weight: T, bias: T) -> T {
    let ([n, i], [_, o]) = (dims2(&x), dims2(&weight));
    let y = x.with_f32("input", |x| {
        weight.with_f32("weight", |w| {
            bias.with_f32("bias", |b| cpu::dense_forward([n, i, o], x, w, b))
        })
    });
    T::from_values(TensorData::new(y, [n, o]))
}

pub(super) fn dense_x_grad<T: Raw>(weight: T, grad: T) -> T {
    let ([i, o], [n, _]) = (dims2(&weight), dims2(&grad));
    let gx = weight.with_f32("weight", |w| {
        grad.with_f32("output gradient", |g| cpu::dense_x_grad([n, i, o], g, w))
    });
    T::from_values(TensorData::new(gx, [n, i]))
}

pub(super) fn dense_wb_grad<T: Raw>(x: T, grad: T) -> (T, T) {
    let ([n, i], [_, o]) = (dims2(&x), dims2(&grad));
    let (gw, gb) = x.with_f32("input", |x| {
        grad.with_f32("output gradient", |g| cpu::dense_wb_grad([n, i, o], x, g))
    });
    (
        T::from_values(TensorData::new(gw, [i, o])),
        T::from_values(TensorData::new(gb, [o])),
    )
}

/// `impl ConvPoolOps` and `impl ConvPoolGrads` for a CPU backend whose float and int
/// primitives implement [`Raw`].
macro_rules! impl_conv_pool_ops {
    ($backend:ty) => {
        impl $crate::kernels::ConvPoolOps for $backend {
            fn conv2d_with_bias(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                geometry: ConvGeometry,
            ) -> FloatTensor<Self> {
                raw::conv_forward(x, weight, bias, geometry)
            }

            fn conv2d_max_pool(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                block: FusedBlock,
            ) -> FloatTensor<Self> {
                raw::conv_pool(x, weight, bias, block, false).0
            }

            fn max_pool2d_tiled(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self> {
                raw::pool(x, window, false).0
            }

            fn dense(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                raw::dense_forward(x, weight, bias)
            }
        }

        impl $crate::kernels::ConvPoolGrads for $backend {
            fn conv2d_with_bias_x_grad(
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                x_shape: [usize; 4],
                geometry: ConvGeometry,
            ) -> FloatTensor<Self> {
                raw::conv_x_grad(weight, grad, x_shape, geometry)
            }

            fn conv2d_with_bias_wb_grad(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                kernel: [usize; 2],
                geometry: ConvGeometry,
            ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                raw::conv_wb_grad(x, grad, kernel, geometry)
            }

            fn conv2d_max_pool_with_winners(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                block: FusedBlock,
            ) -> (FloatTensor<Self>, IntTensor<Self>) {
                let (y, idx) = raw::conv_pool(x, weight, bias, block, true);
                (y, idx.expect("winners requested"))
            }

            fn conv2d_max_pool_grads(backward: FusedBackward<Self>) -> FusedGrads<Self> {
                raw::conv_pool_grads(backward)
            }

            fn max_pool2d_tiled_with_winners(
                x: FloatTensor<Self>,
                window: [usize; 2],
            ) -> (FloatTensor<Self>, IntTensor<Self>) {
                let (y, idx) = raw::pool(x, window, true);
                (y, idx.expect("winners requested"))
            }

            fn max_pool2d_tiled_x_grad(
                x_shape: [usize; 4],
                grad: FloatTensor<Self>,
                winners: IntTensor<Self>,
                window: [usize; 2],
            ) -> FloatTensor<Self> {
                raw::pool_grad(x_shape, grad, winners, window)
            }

            fn dense_x_grad(
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                raw::dense_x_grad(weight, grad)
            }

            fn dense_wb_grad(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                raw::dense_wb_grad(x, grad)
            }
        }
    };
}

#[cfg(feature = "flex")]
mod flex {
    use super::super::ops::{ConvGeometry, FusedBackward, FusedBlock, FusedGrads};
    use super::{super::raw, Raw};
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::{FloatTensor, IntTensor};
    use burn::tensor::{DType, TensorData};

    impl Raw for FlexTensor {
        fn with_f32<R>(&self, what: &str, f: impl FnOnce(&[f32]) -> R) -> R {
            assert_eq!(self.dtype(), DType::F32, "kernels: {what} must be f32");
            let t = self.to_contiguous();
            f(t.as_slice::<f32>().expect("contiguous after to_contiguous"))
        }
        fn with_u32<R>(&self, f: impl FnOnce(&[u32]) -> R) -> R {
            assert_eq!(
                self.dtype(),
                DType::U32,
                "kernels: pooling winners must be u32"
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
    use super::super::ops::{ConvGeometry, FusedBackward, FusedBlock, FusedGrads};
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
                other => panic!("kernels: {what} must be f32, is {:?}", other.dtype()),
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
                    "kernels: pooling winners must be u32, is {:?}",
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
