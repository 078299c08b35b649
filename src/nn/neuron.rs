//! The artificial neuron: a weighted sum of the inputs, plus a bias, through an activation.
//!
//! `y = f(w · x + b)` for one input vector `x` of length `n`. On a batch the inputs form a
//! matrix `X` of shape `[N, n]` (one row per example) and the outputs a vector of length `N`.
//!
//! # Tensors of order 0 to 4
//! | order | name | shape | example here |
//! |---|---|---|---|
//! | 0 | scalar | `[]` (burn: `[1]`) | the bias `b`, one loss value |
//! | 1 | vector | `[n]` | the weights `w`, one example `x` |
//! | 2 | matrix | `[N, n]` | a batch of examples; a dense layer's weights |
//! | 3 | order-3 tensor | `[N, C, L]` | a batch of 1D signals (pooling 1D, conv 1D) |
//! | 4 | order-4 tensor | `[N, C, H, W]` | a batch of images (MNIST is `[N, 1, 28, 28]`) |
//!
//! burn has no rank-0 tensor: a scalar is a `Tensor<1>` of one element
//! ([`Tensor::into_scalar`] reads it). The order is a tensor's type parameter (`Tensor<4>`), so
//! a shape of the wrong order does not compile.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::functional::activation::Activation;

/// Configuration of a single [`Neuron`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronConfig {
    /// Number of inputs `n` (length of the weight vector).
    pub n_inputs: usize,
    /// The activation `f` applied to the weighted sum (default ReLU).
    #[serde(default)]
    pub activation: Activation,
}

impl NeuronConfig {
    /// A neuron with `n_inputs` inputs and ReLU.
    pub fn new(n_inputs: usize) -> Self {
        Self {
            n_inputs,
            activation: Activation::Relu,
        }
    }

    /// Builds the neuron with zero weights and bias (set them with [`Neuron::with_weights`] or
    /// train them).
    pub fn init(&self, device: &Device) -> Result<Neuron> {
        if self.n_inputs == 0 {
            return Err(Error::config(
                "neuron",
                "n_inputs must be at least 1, got 0",
            ));
        }
        crate::functional::window::checked_elements("neuron", "the weights", &[self.n_inputs])?;
        if self.activation == Activation::Softmax {
            return Err(Error::config(
                "neuron",
                "softmax normalises over several outputs; a single neuron's softmax is always 1 (use sigmoid, or a dense layer of several neurons)",
            ));
        }
        Ok(Neuron {
            weights: Param::from_tensor(Tensor::zeros([self.n_inputs], device)),
            bias: Param::from_tensor(Tensor::zeros([1], device)),
            activation: self.activation,
        })
    }
}

setters!(NeuronConfig {
    /// Sets the activation.
    with_activation(activation: Activation);
});

/// One artificial neuron: `y = f(w · x + b)`; it has `n + 1` parameters.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::{Activation, NeuronConfig};
/// let (_, device) = netcalc::select_device(None)?;
/// let neuron = NeuronConfig::new(3)
///     .with_activation(Activation::Sigmoid)
///     .init(&device)?
///     .with_weights(&[0.5, -1.0, 2.0], 0.1)?;
/// assert_eq!(neuron.num_params(), 4); // 3 weights + 1 bias
/// // z = 0.5·1 − 1·2 + 2·3 + 0.1 = 4.6, sigmoid(4.6) = 0.990048
/// let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
/// let y = neuron.forward_one(x).into_scalar::<f32>();
/// assert!((y - 0.990_048).abs() < 1e-5);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Neuron {
    /// The weights `w`, shape `[n]`.
    pub weights: Param<Tensor<1>>,
    /// The bias `b`, shape `[1]`.
    pub bias: Param<Tensor<1>>,
    /// The activation `f`.
    #[module(skip)]
    pub activation: Activation,
}

impl Neuron {
    /// Replaces the weights and the bias with the given values.
    pub fn with_weights(self, weights: &[f32], bias: f32) -> Result<Self> {
        let [n] = self.weights.dims();
        if weights.len() != n {
            return Err(Error::Shape {
                what: "Neuron::with_weights".into(),
                message: format!("the neuron has {n} inputs, got {} weights", weights.len()),
            });
        }
        let device = self.weights.device();
        Ok(Self {
            weights: Param::from_tensor(Tensor::from_floats(weights, &device)),
            bias: Param::from_tensor(Tensor::from_floats([bias], &device)),
            activation: self.activation,
        })
    }

    /// The activation's input, `z = X w + b`, before `f`.
    ///
    /// # Shapes
    /// - input: `[N, n]`
    /// - output: `[N]`
    pub fn weighted_sum(&self, x: Tensor<2>) -> Tensor<1> {
        let [n] = self.weights.dims();
        let w = self.weights.val().reshape([n, 1]);
        let z = x.matmul(w) + self.bias.val().reshape([1, 1]);
        z.flatten(0, 1)
    }

    /// `y = f(w · x + b)` for one example: a vector in, a scalar out (a tensor of order 0,
    /// which burn holds as one element).
    ///
    /// # Shapes
    /// - input: `[n]`
    /// - output: `[1]`
    pub fn forward_one(&self, x: Tensor<1>) -> Tensor<1> {
        let [n] = x.dims();
        self.forward(x.reshape([1, n]))
    }

    /// `y = f(X w + b)`, one output per row of `X`.
    ///
    /// # Shapes
    /// - input: `[N, n]`
    /// - output: `[N]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<1> {
        // Softmax is refused at init (it needs several outputs), so every activation here is
        // element-wise.
        self.activation.forward(self.weighted_sum(x))
    }

    /// Number of parameters: `n` weights + 1 bias.
    pub fn num_params(&self) -> usize {
        self.weights.dims()[0] + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::tensor::Device;

    fn weighted_sum_plus_bias_through_sigmoid(d: Device) {
        let neuron = NeuronConfig::new(3)
            .with_activation(Activation::Sigmoid)
            .init(&d)
            .unwrap()
            .with_weights(&[0.5, -1.0, 2.0], 0.1)
            .unwrap();
        assert_eq!(neuron.num_params(), 4);
        // x1 = (1, 2, 3): z = 0.5 - 2 + 6 + 0.1 = 4.6, sigmoid(4.6) = 0.990048
        // x2 = (0, 0, 0): z = 0.1, sigmoid(0.1) = 0.524979
        let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &d);
        assert_close(&values(neuron.weighted_sum(x.clone())), &[4.6, 0.1], 1e-5);
        assert_close(&values(neuron.forward(x)), &[0.990_048, 0.524_979], 1e-5);
    }

    fn relu_neuron_clips_negative_sums(d: Device) {
        let neuron = NeuronConfig::new(2)
            .init(&d)
            .unwrap()
            .with_weights(&[1.0, 1.0], -3.0)
            .unwrap();
        // (1,1): z = -1 -> 0; (2,4): z = 3 -> 3
        let x = Tensor::<2>::from_floats([[1.0, 1.0], [2.0, 4.0]], &d);
        assert_close(&values(neuron.forward(x)), &[0.0, 3.0], 1e-6);
    }

    fn bad_neuron_configs_are_errors(d: Device) {
        assert!(NeuronConfig::new(0).init(&d).is_err());
        assert!(
            NeuronConfig::new(3)
                .with_activation(Activation::Softmax)
                .init(&d)
                .is_err()
        );
        let n = NeuronConfig::new(2).init(&d).unwrap();
        let err = n.with_weights(&[1.0], 0.0).unwrap_err().to_string();
        assert!(err.contains("2 inputs, got 1"), "{err}");
    }

    /// The orders of the tensors netcalc's layers take and give, by hand: the neuron maps an
    /// example (order 1) to a scalar (order 0) and a batch (order 2) to a vector (order 1); a
    /// dense layer's weights are a matrix; 1D pooling works on order 3, 2D pooling on order 4.
    fn tensors_of_order_0_to_4_through_the_layers(d: Device) {
        use crate::functional::pool::PoolKind;
        use crate::nn::pool::{Pool1dConfig, Pool2dConfig};
        let neuron = NeuronConfig::new(2)
            .with_activation(Activation::Identity)
            .init(&d)
            .unwrap()
            .with_weights(&[2.0, -1.0], 0.5)
            .unwrap();
        // order 1 -> order 0: 2·3 − 1·4 + 0.5 = 2.5, one element
        let y = neuron.forward_one(Tensor::<1>::from_floats([3.0, 4.0], &d));
        assert_eq!(y.dims(), [1]);
        assert_eq!(y.into_scalar::<f32>(), 2.5);
        // order 2 -> order 1: rows (3, 4) and (1, 1) -> 2.5 and 1.5
        let batch = Tensor::<2>::from_floats([[3.0, 4.0], [1.0, 1.0]], &d);
        assert_eq!(values(neuron.forward(batch)), vec![2.5, 1.5]);
        // a dense layer's weights: order 2, [n_in, n_out]
        let dense = crate::nn::dense::ClassifierConfig::new(3, [2])
            .init(&d)
            .unwrap();
        assert_eq!(dense.layers[0].weight.dims(), [3, 2]);
        // order 3: 2 signals of 1 channel, length 4, pooled by 2 -> [2, 1, 2]
        let signals = Tensor::<1>::from_floats([1.0, 5.0, 2.0, 0.0, -1.0, -2.0, 7.0, 3.0], &d)
            .reshape([2, 1, 4]);
        let p1 = Pool1dConfig::new(PoolKind::Max, 2).init(&d).unwrap();
        let pooled = p1.forward(signals);
        assert_eq!(pooled.dims(), [2, 1, 2]);
        assert_eq!(values(pooled), vec![5.0, 2.0, -1.0, 7.0]);
        // order 4: 2 images of 1 channel, 2×2, pooled to one value each -> [2, 1, 1, 1]
        let images = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &d)
            .reshape([2, 1, 2, 2]);
        let p2 = Pool2dConfig::new(PoolKind::Avg, [2, 2]).init(&d).unwrap();
        let pooled = p2.forward(images);
        assert_eq!(pooled.dims(), [2, 1, 1, 1]);
        assert_eq!(values(pooled), vec![2.5, 6.5]);
    }

    crate::test_on_backends!(
        weighted_sum_plus_bias_through_sigmoid,
        relu_neuron_clips_negative_sums,
        bad_neuron_configs_are_errors,
        tensors_of_order_0_to_4_through_the_layers,
    );
}
