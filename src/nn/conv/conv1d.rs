//! The 1D convolution block: a length-`K` convolution with `C_out` filters over `C_in`
//! channels, an activation, and optional 1D pooling. `K·C_in·C_out + C_out` parameters; the
//! output length is `floor((L + 2P − K) / S) + 1`, then the pooling's formula.

use burn::module::Module;
use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{check_conv, conv_out, conv1d_params, default_stride};
use crate::error::Result;
use crate::functional::activation::Activation;
use crate::functional::window::checked_elements;
use crate::nn::pool::{Pool1d, Pool1dConfig};

/// Configuration of a [`Conv1dBlock`]: 1D convolution → activation → optional 1D pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dBlockConfig {
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Number of filters `C_out`.
    pub filters: usize,
    /// Kernel length `K`.
    pub kernel: usize,
    /// Step `S` (default 1).
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Zero padding `P` on each side.
    #[serde(default)]
    pub padding: usize,
    /// Activation after the convolution (default ReLU).
    #[serde(default)]
    pub activation: Activation,
    /// Optional pooling after the activation.
    #[serde(default)]
    pub pool: Option<Pool1dConfig>,
}

impl Conv1dBlockConfig {
    /// `filters` filters of length `kernel` over `in_channels` channels, stride 1, no padding,
    /// ReLU, no pooling.
    pub fn new(in_channels: usize, filters: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            filters,
            kernel,
            stride: 1,
            padding: 0,
            activation: Activation::Relu,
            pool: None,
        }
    }
    /// Checks the sizes and the weights' size limit.
    pub fn validate(&self) -> Result<()> {
        check_conv(
            "conv1d",
            self.in_channels,
            self.filters,
            self.kernel,
            self.stride,
        )?;
        checked_elements(
            "conv1d",
            "the weights",
            &[self.kernel, self.in_channels, self.filters],
        )?;
        Ok(())
    }

    /// Output `[C_out, L_out]` of the block for an input of length `len`.
    pub fn output_shape(&self, len: usize) -> Result<[usize; 2]> {
        self.validate()?;
        let len = conv_out("conv1d", len, self.kernel, self.stride, self.padding)?;
        let len = match &self.pool {
            None => len,
            Some(p) => {
                let stride = p.stride.unwrap_or(p.kernel);
                conv_out("conv1d.pool", len, p.kernel, stride, p.padding)?
            }
        };
        Ok([self.filters, len])
    }

    /// Parameters: `K·C_in·C_out + C_out`.
    pub fn num_params(&self) -> usize {
        conv1d_params(self.kernel, self.in_channels, self.filters)
    }

    /// Builds the block.
    pub fn init(&self, device: &Device) -> Result<Conv1dBlock> {
        self.validate()?;
        let conv = Conv1dConfig::new(self.in_channels, self.filters, self.kernel)
            .with_stride(self.stride)
            .with_padding(PaddingConfig1d::Explicit(self.padding, self.padding))
            .init(device);
        let pool = self
            .pool
            .as_ref()
            .map(|p| p.init(device))
            .transpose()
            .map_err(|e| e.within("conv1d"))?;
        Ok(Conv1dBlock {
            conv,
            activation: self.activation,
            pool,
        })
    }
}

setters!(Conv1dBlockConfig {
    /// Sets the stride.
    with_stride(stride: usize);
    /// Sets the zero padding on each side.
    with_padding(padding: usize);
    /// Sets the activation.
    with_activation(activation: Activation);
    /// Adds a pooling layer after the activation.
    with_pool(pool: Pool1dConfig) => Some;
});

/// Convolution 1D → activation → optional pooling.
///
/// # Examples
/// ```
/// use netcalc::Conv1dBlockConfig;
/// use netcalc::burn::tensor::Tensor;
/// let (_, device) = netcalc::select_device(None)?;
/// // 8 filters of length 5 over 4 channels: 5·4·8 + 8 = 168 parameters
/// let cfg = Conv1dBlockConfig::new(4, 8, 5);
/// assert_eq!(cfg.num_params(), 168);
/// assert_eq!(cfg.output_shape(20)?, [8, 16]); // (20 − 5) / 1 + 1
/// let y = cfg.init(&device)?.forward(Tensor::zeros([3, 4, 20], &device));
/// assert_eq!(y.dims(), [3, 8, 16]);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Conv1dBlock {
    /// The convolution (burn's `Conv1d`): weight `[C_out, C_in, K]`, bias `[C_out]`.
    pub conv: Conv1d,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
    /// The optional pooling layer.
    pub pool: Option<Pool1d>,
}

impl Conv1dBlock {
    /// Convolution, activation, pooling.
    ///
    /// # Shapes
    /// - input: `[N, C_in, L]`
    /// - output: `[N, C_out, L_out]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self.activation.forward(self.conv.forward(x));
        match &self.pool {
            Some(p) => p.forward(y),
            None => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functional::pool::PoolKind;
    use crate::testing::{assert_close, values};
    use burn::module::Param;

    fn parameters_and_shapes(d: Device) {
        assert_eq!(conv1d_params(5, 4, 8), 168); // 5·4·8 + 8
        let b1 = Conv1dBlockConfig::new(4, 8, 5).init(&d).unwrap();
        assert_eq!(b1.num_params(), 168);
        let c1 = Conv1dBlockConfig::new(1, 2, 3).with_pool(Pool1dConfig::new(PoolKind::Avg, 2));
        // 10 -> conv 8 -> pool 4
        assert_eq!(c1.output_shape(10).unwrap(), [2, 4]);
        let y = c1.init(&d).unwrap().forward(Tensor::zeros([1, 1, 10], &d));
        assert_eq!(y.dims(), [1, 2, 4]);
        // stride 2, padding 1: (9 + 2 - 3)/2 + 1 = 5
        let c2 = Conv1dBlockConfig::new(1, 2, 3)
            .with_stride(2)
            .with_padding(1);
        assert_eq!(c2.output_shape(9).unwrap(), [2, 5]);
        let y = c2.init(&d).unwrap().forward(Tensor::zeros([1, 1, 9], &d));
        assert_eq!(y.dims(), [1, 2, 5]);
    }

    fn conv1d_values_by_hand(d: Device) {
        let mut block = Conv1dBlockConfig::new(1, 1, 3)
            .with_activation(Activation::Identity)
            .init(&d)
            .unwrap();
        // moving sum of 3 with weights (1, 2, 1), bias -1
        block.conv.weight =
            Param::from_tensor(Tensor::<1>::from_floats([1.0, 2.0, 1.0], &d).reshape([1, 1, 3]));
        block.conv.bias = Some(Param::from_tensor(Tensor::from_floats([-1.0], &d)));
        let x = Tensor::<1>::from_floats([1.0, 0.0, 2.0, 1.0], &d).reshape([1, 1, 4]);
        // 1+0+2-1 = 2; 0+4+1-1 = 4
        assert_close(&values(block.forward(x)), &[2.0, 4.0], 1e-5);
    }

    fn impossible_convolutions_are_errors(d: Device) {
        assert!(Conv1dBlockConfig::new(1, 2, 9).output_shape(4).is_err());
        assert!(Conv1dBlockConfig::new(0, 2, 3).init(&d).is_err());
        let err = Conv1dBlockConfig::new(1, 2, 3)
            .with_pool(Pool1dConfig::new(PoolKind::Max, 2).with_padding(2))
            .init(&d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("conv1d.pool1d: padding 2"), "{err}");
    }

    crate::test_on_backends!(
        parameters_and_shapes,
        conv1d_values_by_hand,
        impossible_convolutions_are_errors,
    );
}
