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

use crate::activation::Activation;
use crate::error::{Error, Result};

/// Configuration of a single [`Neuron`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronConfig {
    /// Number of inputs `n` (length of the weight vector).
    pub n_inputs: usize,
    /// The activation `f` applied to the weighted sum.
    #[serde(default)]
    pub activation: Activation,
}

impl NeuronConfig {
    /// A neuron with `n_inputs` inputs and the given activation.
    pub fn new(n_inputs: usize, activation: Activation) -> Self {
        Self {
            n_inputs,
            activation,
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
        crate::window::checked_elements("neuron", "the weights", &[self.n_inputs])?;
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

/// One artificial neuron: `y = f(w · x + b)`; it has `n + 1` parameters.
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
        let neuron = NeuronConfig::new(3, Activation::Sigmoid)
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
        let neuron = NeuronConfig::new(2, Activation::Relu)
            .init(&d)
            .unwrap()
            .with_weights(&[1.0, 1.0], -3.0)
            .unwrap();
        // (1,1): z = -1 -> 0; (2,4): z = 3 -> 3
        let x = Tensor::<2>::from_floats([[1.0, 1.0], [2.0, 4.0]], &d);
        assert_close(&values(neuron.forward(x)), &[0.0, 3.0], 1e-6);
    }

    fn bad_neuron_configs_are_errors(d: Device) {
        assert!(NeuronConfig::new(0, Activation::Relu).init(&d).is_err());
        assert!(NeuronConfig::new(3, Activation::Softmax).init(&d).is_err());
        let n = NeuronConfig::new(2, Activation::Relu).init(&d).unwrap();
        let err = n.with_weights(&[1.0], 0.0).unwrap_err().to_string();
        assert!(err.contains("2 inputs, got 1"), "{err}");
    }

    fn tensors_of_order_0_to_4(d: Device) {
        // order 0: a scalar; burn stores it as a one-element vector
        let scalar = Tensor::<1>::from_floats([3.5], &d);
        assert_eq!(scalar.dims(), [1]);
        assert_eq!(scalar.clone().into_scalar::<f32>(), 3.5);
        // order 1: a vector
        let v = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &d);
        assert_eq!(v.dims(), [3]);
        assert_eq!(values(v.slice(1..2)), vec![2.0]);
        // order 2: a matrix, 2 examples x 3 features; row 1, column 2 is 6
        let m = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &d);
        assert_eq!(m.dims(), [2, 3]);
        assert_eq!(values(m.clone().slice([1..2, 2..3])), vec![6.0]);
        // order 3: a batch of 2 one-channel signals of length 3 (the matrix's rows)
        let s = m.clone().reshape([2, 1, 3]);
        assert_eq!(s.dims(), [2, 1, 3]);
        assert_eq!(values(s.slice([1..2, 0..1, 0..3])), vec![4.0, 5.0, 6.0]);
        // order 4: a batch of 2 one-channel 2x2 images (values 1..8 in row-major order)
        let img = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &d)
            .reshape([2, 1, 2, 2]);
        assert_eq!(img.dims(), [2, 1, 2, 2]);
        assert_eq!(values(img.clone().sum_dim(0)), vec![6.0, 8.0, 10.0, 12.0]);
        // the second image's bottom-right pixel is the last element, 8
        let last = img.slice([1..2, 0..1, 1..2, 1..2]).reshape([1]);
        assert_eq!(values(last), vec![8.0]);
    }

    crate::test_on_backends!(
        weighted_sum_plus_bias_through_sigmoid,
        relu_neuron_clips_negative_sums,
        bad_neuron_configs_are_errors,
        tensors_of_order_0_to_4,
    );
}
