//! Activation functions, as a serde-serializable enum.

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// The non-linearity applied after a weighted sum.
///
/// Serialized in lower case (`"relu"`, `"sigmoid"` …) so configs read naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = 1 / (1 + e^-x)`: squashes to (0, 1); the logit's inverse.
    Sigmoid,
    /// `f(x) = tanh(x)`: squashes to (-1, 1).
    Tanh,
    /// `f(x) = max(0, x)`.
    #[default]
    Relu,
    /// Softmax over the last dimension: non-negative outputs that sum to 1.
    Softmax,
}

impl Activation {
    /// Applies the activation element-wise (softmax: along the last dimension).
    ///
    /// # Examples
    /// ```
    /// use netcalc::Activation;
    /// use netcalc::burn::tensor::Tensor;
    /// let (_, device) = netcalc::select_device(None)?;
    /// let x = Tensor::<1>::from_floats([-2.0, 0.0, 1.0], &device);
    /// let relu = Activation::Relu.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
    /// assert_eq!(relu, [0.0, 0.0, 1.0]); // max(0, x)
    /// let s = Activation::Sigmoid.forward(x).into_data().try_to_vec::<f32>().unwrap();
    /// assert!((s[1] - 0.5).abs() < 1e-6); // 1 / (1 + e⁰)
    /// # Ok::<(), netcalc::Error>(())
    /// ```
    ///
    /// # Shapes
    /// - input: any shape `[..]`
    /// - output: the same shape
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Relu => activation::relu(x),
            Activation::Softmax => activation::softmax(x, D - 1),
        }
    }

    /// The name Keras would print for it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "linear",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::tensor::Device;

    fn each_activation_by_hand(d: Device) {
        let x = || Tensor::<1>::from_floats([-2.0, 0.0, 1.0], &d);
        // identity: unchanged
        assert_close(
            &values(Activation::Identity.forward(x())),
            &[-2.0, 0.0, 1.0],
            1e-6,
        );
        // relu: max(0, x)
        assert_close(
            &values(Activation::Relu.forward(x())),
            &[0.0, 0.0, 1.0],
            1e-6,
        );
        // sigmoid: 1/(1+e^2) = 0.119203, 1/2, 1/(1+e^-1) = 0.731059
        assert_close(
            &values(Activation::Sigmoid.forward(x())),
            &[0.119_203, 0.5, 0.731_059],
            1e-5,
        );
        // tanh(-2) = -0.964028, tanh(0) = 0, tanh(1) = 0.761594
        assert_close(
            &values(Activation::Tanh.forward(x())),
            &[-0.964_028, 0.0, 0.761_594],
            1e-5,
        );
        // softmax: e^-2, e^0, e^1 = 0.135335, 1, 2.718282; sum 3.853617
        assert_close(
            &values(Activation::Softmax.forward(x())),
            &[0.035_119, 0.259_496, 0.705_385],
            1e-5,
        );
    }

    #[test]
    fn serde_names_are_lower_case() {
        assert_eq!(
            serde_json::to_string(&Activation::Relu).unwrap(),
            "\"relu\""
        );
        let a: Activation = serde_json::from_str("\"softmax\"").unwrap();
        assert_eq!(a, Activation::Softmax);
        assert!(serde_json::from_str::<Activation>("\"swish\"").is_err());
    }

    crate::test_on_backends!(each_activation_by_hand,);
}
