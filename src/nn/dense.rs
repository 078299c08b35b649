//! Dense (fully connected) layers and the classifier stack built from `n_neurons`.
//!
//! A dense layer from `n_in` to `n_out` neurons is `n_out` [neurons](crate::nn::neuron) side by side:
//! a weight matrix `[n_in, n_out]` and a bias vector `[n_out]`, so `n_in·n_out + n_out`
//! parameters. A stack with input 100 and `n_neurons = [50, 25, 10]` has weights (100, 50),
//! (50, 25), (25, 10), biases (50), (25), (10) and 5,050 + 1,275 + 260 = 6,585 parameters.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::functional::activation::Activation;
use crate::kernels::{dense, dropout};

/// `n_in·n_out + n_out`: the parameters of a dense layer with bias.
///
/// Saturates at `usize::MAX` instead of overflowing.
pub fn dense_params(n_in: usize, n_out: usize) -> usize {
    n_in.saturating_mul(n_out).saturating_add(n_out)
}

/// Configuration of a [`Classifier`]: dense layers of `n_neurons[i]` units; the last one gives the
/// class scores (logits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Size of the input vector (for a CNN: the feature extractor's output length).
    pub n_inputs: usize,
    /// Units per layer; the last entry is the number of classes.
    pub n_neurons: Vec<usize>,
    /// Activation after every layer but the last.
    #[serde(default)]
    pub hidden_activation: Activation,
    /// Activation after the last layer (identity: raw class scores, what the losses expect).
    #[serde(default = "identity")]
    pub output_activation: Activation,
    /// Dropout probability on the stack's input (Keras' convnet uses 0.5 after flattening).
    #[serde(default)]
    pub input_dropout: f64,
    /// Dropout probability after each hidden layer's activation.
    #[serde(default)]
    pub hidden_dropout: f64,
}

fn identity() -> Activation {
    Activation::Identity
}

impl ClassifierConfig {
    /// Dense stack `n_inputs -> n_neurons…` with ReLU between layers, raw scores out, no dropout.
    pub fn new(n_inputs: usize, n_neurons: impl Into<Vec<usize>>) -> Self {
        Self {
            n_inputs,
            n_neurons: n_neurons.into(),
            hidden_activation: Activation::Relu,
            output_activation: Activation::Identity,
            input_dropout: 0.0,
            hidden_dropout: 0.0,
        }
    }

    /// `(weight shape, bias shape)` of every layer: `([n_in, n_out], [n_out])`.
    pub fn layer_shapes(&self) -> Vec<([usize; 2], [usize; 1])> {
        let mut n_in = self.n_inputs;
        self.n_neurons
            .iter()
            .map(|&n_out| {
                let s = ([n_in, n_out], [n_out]);
                n_in = n_out;
                s
            })
            .collect()
    }

    /// Total parameters: the sum of `n_in·n_out + n_out` over the layers.
    pub fn num_params(&self) -> usize {
        self.layer_shapes()
            .iter()
            .map(|(w, _)| dense_params(w[0], w[1]))
            .fold(0, usize::saturating_add)
    }

    /// Number of classes (the last layer's width).
    pub fn num_classes(&self) -> usize {
        self.n_neurons.last().copied().unwrap_or(0)
    }

    /// Checks the sizes and dropout probabilities; `layer` prefixes the error's location.
    pub fn validate(&self, layer: &str) -> Result<()> {
        if self.n_inputs == 0 {
            return Err(Error::config(layer, "n_inputs must be at least 1, got 0"));
        }
        if self.n_neurons.is_empty() {
            return Err(Error::config(
                layer,
                "n_neurons is empty: at least the output layer is needed",
            ));
        }
        if let Some(i) = self.n_neurons.iter().position(|&n| n == 0) {
            return Err(Error::config(
                format!("{layer}.n_neurons[{i}]"),
                "a dense layer needs at least 1 neuron, got 0",
            ));
        }
        let mut n_in = self.n_inputs;
        for (i, &n_out) in self.n_neurons.iter().enumerate() {
            crate::functional::window::checked_elements(
                &format!("{layer}.n_neurons[{i}]"),
                "the weights",
                &[n_in, n_out],
            )?;
            n_in = n_out;
        }
        for (name, p) in [
            ("input_dropout", self.input_dropout),
            ("hidden_dropout", self.hidden_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(
                    format!("{layer}.{name}"),
                    format!("dropout probability must be in [0, 1), got {p}"),
                ));
            }
        }
        Ok(())
    }

    /// Builds the stack.
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        self.validate("classifier")?;
        let layers = self
            .layer_shapes()
            .iter()
            .map(|(w, _)| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Ok(Classifier {
            layers,
            input_dropout: DropoutConfig::new(self.input_dropout).init(),
            hidden_dropout: DropoutConfig::new(self.hidden_dropout).init(),
            hidden_activation: self.hidden_activation,
            output_activation: self.output_activation,
        })
    }
}

setters!(ClassifierConfig {
    /// Sets the dropout probability on the stack's input.
    with_input_dropout(input_dropout: f64);
    /// Sets the dropout probability after each hidden activation.
    with_hidden_dropout(hidden_dropout: f64);
    /// Sets the activation between layers.
    with_hidden_activation(hidden_activation: Activation);
    /// Sets the activation after the last layer (identity by default: raw class scores, what
    /// the losses expect).
    with_output_activation(output_activation: Activation);
});

/// A stack of dense layers ending in class scores.
///
/// # Examples
/// ```
/// use netcalc::ClassifierConfig;
/// use netcalc::burn::module::Module;
/// use netcalc::burn::tensor::Tensor;
/// let (_, device) = netcalc::select_device(None)?;
/// // 100 inputs, n_neurons = [50, 25, 10]
/// let cfg = ClassifierConfig::new(100, [50, 25, 10]);
/// assert_eq!(cfg.layer_shapes(), [([100, 50], [50]), ([50, 25], [25]), ([25, 10], [10])]);
/// assert_eq!(cfg.num_params(), 5_050 + 1_275 + 260); // 6,585
/// let model = cfg.init(&device)?;
/// assert_eq!(model.num_params(), 6_585);
/// assert_eq!(model.forward(Tensor::zeros([4, 100], &device)).dims(), [4, 10]);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Classifier {
    /// The dense layers; `layers[i].weight` is `[n_in, n_out]`, `layers[i].bias` `[n_out]`.
    pub layers: Vec<Linear>,
    /// Dropout on the input (active only while training on an autodiff device).
    pub input_dropout: Dropout,
    /// Dropout after each hidden activation.
    pub hidden_dropout: Dropout,
    /// Activation between layers.
    #[module(skip)]
    pub hidden_activation: Activation,
    /// Activation after the last layer.
    #[module(skip)]
    pub output_activation: Activation,
}

impl Classifier {
    /// Class scores.
    ///
    /// # Shapes
    /// - input: `[N, n_inputs]`
    /// - output: `[N, n_classes]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_traced(x, |_, _| {})
    }

    /// [`Classifier::forward`], calling `visit(i, h)` with the output `h` of every layer `i`
    /// after its activation (before dropout): the hidden layers' activations, then the
    /// class scores.
    ///
    /// # Shapes
    /// - input: `[N, n_inputs]`
    /// - output: `[N, n_classes]`; `h`: `[N, n_neurons[i]]`
    pub fn forward_traced(
        &self,
        x: Tensor<2>,
        mut visit: impl FnMut(usize, &Tensor<2>),
    ) -> Tensor<2> {
        let mut x = apply_dropout(&self.input_dropout, x);
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = dense(x, layer);
            if i < last {
                x = self.hidden_activation.forward(x);
                visit(i, &x);
                x = apply_dropout(&self.hidden_dropout, x);
            } else {
                x = self.output_activation.forward(x);
                visit(i, &x);
            }
        }
        x
    }
}

/// burn's `Dropout` layer's setting, through [`crate::kernels::dropout`].
fn apply_dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    dropout(x, d.prob, d.training.is_enabled())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::module::Param;
    use burn::tensor::Device;

    fn the_50_25_10_stack_on_100_inputs(d: Device) {
        let cfg = ClassifierConfig::new(100, [50, 25, 10]);
        assert_eq!(
            cfg.layer_shapes(),
            vec![([100, 50], [50]), ([50, 25], [25]), ([25, 10], [10])]
        );
        // 100·50+50 = 5,050; 50·25+25 = 1,275; 25·10+10 = 260
        assert_eq!(cfg.num_params(), 6_585);
        let model = cfg.init(&d).unwrap();
        assert_eq!(model.num_params(), 6_585);
        let dims: Vec<_> = model
            .layers
            .iter()
            .map(|l| (l.weight.dims(), l.bias.as_ref().unwrap().dims()))
            .collect();
        assert_eq!(
            dims,
            vec![([100, 50], [50]), ([50, 25], [25]), ([25, 10], [10])]
        );
        let y = model.forward(Tensor::zeros([4, 100], &d));
        assert_eq!(y.dims(), [4, 10]);
    }

    fn forward_by_hand(d: Device) {
        let mut model = ClassifierConfig::new(2, [2, 1]).init(&d).unwrap();
        // layer 0: W = [[1, -1], [2, 1]] (rows = inputs), b = [0, -1]; relu
        // layer 1: W = [[1], [3]], b = [0.5]
        model.layers[0].weight =
            Param::from_tensor(Tensor::from_floats([[1.0, -1.0], [2.0, 1.0]], &d));
        model.layers[0].bias = Some(Param::from_tensor(Tensor::from_floats([0.0, -1.0], &d)));
        model.layers[1].weight = Param::from_tensor(Tensor::from_floats([[1.0], [3.0]], &d));
        model.layers[1].bias = Some(Param::from_tensor(Tensor::from_floats([0.5], &d)));
        // x = (1, 1): h = relu(1+2, -1+1-1) = (3, 0); y = 3 + 0 + 0.5 = 3.5
        // x = (-1, 2): h = relu(-1+4, 1+2-1) = (3, 2); y = 3 + 6 + 0.5 = 9.5
        let x = Tensor::<2>::from_floats([[1.0, 1.0], [-1.0, 2.0]], &d);
        assert_close(&values(model.forward(x)), &[3.5, 9.5], 1e-5);
    }

    fn zero_sized_layers_and_bad_dropout_are_errors(d: Device) {
        let err = ClassifierConfig::new(10, [5, 0, 2])
            .init(&d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("n_neurons[1]"), "{err}");
        assert!(ClassifierConfig::new(0, [2]).init(&d).is_err());
        assert!(ClassifierConfig::new(3, Vec::new()).init(&d).is_err());
        let err = ClassifierConfig::new(3, [2])
            .with_input_dropout(1.5)
            .init(&d)
            .unwrap_err();
        assert!(err.to_string().contains("input_dropout"), "{err}");
    }

    crate::test_on_backends!(
        the_50_25_10_stack_on_100_inputs,
        forward_by_hand,
        zero_sized_layers_and_bad_dropout_are_errors,
    );
}
