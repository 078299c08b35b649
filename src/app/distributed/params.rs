//! A model's parameters and gradients as one flat `f32` buffer, in the order burn visits the
//! module's parameters: what the ranks of a job sum, broadcast and compare.
//!
//! Every parameter has its place in the buffer whether or not this rank has a gradient for it
//! (a rank with no examples in a batch has none at all): the ranks' buffers always have the
//! same length and layout.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// Moves the gradients of `module`'s parameters out of `grads` into `buf` (its first
/// [`Module::num_params`] values), each multiplied by `scale`; a parameter without a gradient gets
/// zeros.
///
/// # Panics
/// When `buf` is shorter than [`Module::num_params`] (a caller's bug).
pub fn take_grads<M: Module>(module: &M, grads: &mut GradientsParams, scale: f32, buf: &mut [f32]) {
    struct Take<'a> {
        grads: &'a mut GradientsParams,
        scale: f32,
        buf: &'a mut [f32],
        at: usize,
    }
    impl ModuleVisitor for Take<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.shape().num_elements();
            let out = &mut self.buf[self.at..self.at + n];
            self.at += n;
            let values = self
                .grads
                .remove::<D>(param.id)
                .and_then(|g| g.into_data().convert::<f32>().try_into_vec::<f32>().ok());
            match values {
                Some(v) if v.len() == n => {
                    for (o, g) in out.iter_mut().zip(v) {
                        *o = g * self.scale;
                    }
                }
                _ => out.fill(0.0),
            }
        }
    }
    module.visit(&mut Take {
        grads,
        scale,
        buf,
        at: 0,
    });
}

/// Gradients for every parameter of `module` from `buf` (laid out as [`take_grads`] writes
/// it), on `device` (the backend's device without autodiff, where burn keeps gradients).
pub fn grads_from(module: &impl Module, buf: &[f32], device: &Device) -> GradientsParams {
    struct Put<'a> {
        grads: GradientsParams,
        buf: &'a [f32],
        at: usize,
        device: &'a Device,
    }
    impl ModuleVisitor for Put<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.shape();
            let n = shape.num_elements();
            let values = self.buf[self.at..self.at + n].to_vec();
            self.at += n;
            let g = Tensor::<D>::from_data(TensorData::new(values, shape), self.device);
            self.grads.register(param.id, g);
        }
    }
    let mut put = Put {
        grads: GradientsParams::new(),
        buf,
        at: 0,
        device,
    };
    module.visit(&mut put);
    put.grads
}

/// `module`'s parameter values, flat.
pub fn param_values<M: Module>(module: &M) -> Vec<f32> {
    struct Read(Vec<f32>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0
                .extend(data.try_into_vec::<f32>().expect("converted to f32 above"));
        }
    }
    let mut r = Read(Vec::new());
    module.visit(&mut r);
    r.0
}

/// `module` with its parameter values replaced by `values` (laid out as [`param_values`]
/// returns them); ids, devices and whether each requires a gradient stay.
pub fn with_param_values<M: Module>(module: M, values: &[f32]) -> M {
    struct Write<'a> {
        values: &'a [f32],
        at: usize,
    }
    impl ModuleMapper for Write<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let n = param.shape().num_elements();
            let values = self.values[self.at..self.at + n].to_vec();
            self.at += n;
            param.map(|t| {
                let grad = t.is_require_grad();
                let data = TensorData::new(values, t.shape());
                Tensor::<D>::from_data(data, &t.device()).set_require_grad(grad)
            })
        }
    }
    module.map(&mut Write { values, at: 0 })
}

/// Draws every parameter's initial values now (burn initialises parameters lazily, at their
/// first use).
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            drop(param.val());
        }
    }
    module.visit(&mut Touch);
}

/// A checksum of parameter values: FNV-1a over their bits. Equal parameters give equal
/// checksums on every rank; one flipped bit changes it.
pub fn checksum(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CnnConfig;
    use crate::testing::cpu_devices;
    use burn::tensor::Distribution;

    #[test]
    fn gradients_go_through_the_flat_buffer_unchanged_and_scaled() {
        for (_, device) in cpu_devices() {
            let ad = device.clone().autodiff();
            ad.seed(3);
            // no dropout: every forward below computes the same gradients
            let mut cfg = CnnConfig::keras_mnist();
            cfg.classifier.input_dropout = 0.0;
            let model = cfg.init(&ad).unwrap();
            let n = model.num_params();
            assert_eq!(n, 34_826);
            let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &ad);
            let grads =
                || GradientsParams::from_grads(model.forward(x.clone()).sum().backward(), &model);
            let mut g = grads();
            let mut buf = vec![f32::NAN; n];
            take_grads(&model, &mut g, 1.0, &mut buf);
            assert!(g.is_empty(), "every gradient moved out");
            // the last parameter visited is the dense layer's bias: its gradient, read from burn
            let bias = model.classifier.layers[0].bias.as_ref().unwrap();
            let direct = grads()
                .remove::<1>(bias.id)
                .unwrap()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            assert_eq!(&buf[n - 10..], &direct[..]);
            // scaled by a half: exactly half
            let mut half = vec![0.0; n];
            take_grads(&model, &mut grads(), 0.5, &mut half);
            for (h, b) in half.iter().zip(&buf) {
                assert_eq!(*h, b * 0.5);
            }
            // back into tensors and out again: the same values
            let mut back = grads_from(&model, &buf, &device);
            assert_eq!(back.len(), 6);
            let mut again = vec![0.0; n];
            take_grads(&model, &mut back, 1.0, &mut again);
            assert_eq!(again, buf);
            // a parameter without a gradient: zeros in its place, the others as they are
            let mut missing = grads();
            let conv = &model.features.blocks[0].conv.weight;
            let first = conv.shape().num_elements();
            drop(missing.remove::<4>(conv.id));
            let mut partial = vec![f32::NAN; n];
            take_grads(&model, &mut missing, 1.0, &mut partial);
            assert!(partial[..first].iter().all(|&v| v == 0.0));
            assert_eq!(&partial[first..], &buf[first..]);
        }
    }

    #[test]
    fn parameter_values_round_trip_and_their_checksum_sees_one_bit() {
        for (_, device) in cpu_devices() {
            let ad = device.autodiff();
            ad.seed(1);
            let a = CnnConfig::keras_mnist().init(&ad).unwrap();
            ad.seed(2);
            let b = CnnConfig::keras_mnist().init(&ad).unwrap();
            let va = param_values(&a);
            let vb = param_values(&b);
            assert_ne!(checksum(&va), checksum(&vb));
            let b = with_param_values(b, &va);
            assert_eq!(param_values(&b), va);
            assert_eq!(checksum(&param_values(&b)), checksum(&va));
            // still trainable: the replaced parameters require gradients
            let loss = b.forward(Tensor::<4>::ones([1, 1, 28, 28], &ad)).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &b);
            assert_eq!(grads.len(), 6);
            let mut flipped = va.clone();
            flipped[100] = f32::from_bits(flipped[100].to_bits() ^ 1);
            assert_ne!(checksum(&flipped), checksum(&va));
        }
    }
}
