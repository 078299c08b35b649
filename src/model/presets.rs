//! The MNIST presets: Keras' convnet, netcalc's default CNN, and an MLP on the raw pixels.

use std::fmt;

use crate::error::{Error, Result};
use crate::functional::pool::PoolKind;
use crate::model::{CnnConfig, FeatureExtractorConfig};
use crate::nn::conv::Conv2dBlockConfig;
use crate::nn::dense::ClassifierConfig;
use crate::nn::pool::Pool2dConfig;

/// A model preset, by name: `cnn`, `keras-cnn` (alias `keras`) or `mlp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "app", derive(clap::ValueEnum))]
pub enum ModelPreset {
    /// The default: Keras' convnet with a hidden dense layer of 128 (225,034 parameters).
    ///
    /// See [`CnnConfig::mnist_default`].
    Cnn,
    /// Keras' "simple MNIST convnet" (34,826 parameters).
    ///
    /// See [`CnnConfig::keras_mnist`].
    #[cfg_attr(feature = "app", value(alias = "keras"))]
    KerasCnn,
    /// A multi-layer perceptron on the raw pixels, 784 -> [50, 25, 10] (40,785 parameters).
    ///
    /// See [`CnnConfig::mlp`].
    Mlp,
}

impl ModelPreset {
    /// Every preset.
    pub const ALL: [ModelPreset; 3] = [ModelPreset::Cnn, ModelPreset::KerasCnn, ModelPreset::Mlp];

    /// Its name (also the config's `name`).
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Cnn => "cnn",
            ModelPreset::KerasCnn => "keras-cnn",
            ModelPreset::Mlp => "mlp",
        }
    }

    /// Its configuration.
    pub fn config(self) -> CnnConfig {
        match self {
            ModelPreset::Cnn => CnnConfig::mnist_default(),
            ModelPreset::KerasCnn => CnnConfig::keras_mnist(),
            ModelPreset::Mlp => CnnConfig::mlp(),
        }
    }
}

impl fmt::Display for ModelPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelPreset {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "cnn" => Ok(Self::Cnn),
            "keras-cnn" | "keras" => Ok(Self::KerasCnn),
            "mlp" => Ok(Self::Mlp),
            other => Err(Error::setting(
                "model",
                format!("unknown preset `{other}`; expected cnn, keras-cnn or mlp"),
            )),
        }
    }
}

/// 3×3 convolution, ReLU, then 2×2 max pooling: the block both MNIST convnets repeat.
fn mnist_block(in_channels: usize, filters: usize) -> Conv2dBlockConfig {
    Conv2dBlockConfig::new(in_channels, filters, 3)
        .with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]))
}

/// The two MNIST convnets' feature extractor: 32 then 64 filters → 64·5·5 = 1600 features.
fn mnist_features() -> FeatureExtractorConfig {
    FeatureExtractorConfig::new([1, 28, 28])
        .with_blocks(vec![mnist_block(1, 32), mnist_block(32, 64)])
}

impl CnnConfig {
    /// Keras' "simple MNIST convnet": conv 32 3×3 ReLU, max-pool 2, conv 64 3×3 ReLU, max-pool 2,
    /// flatten (1600), dropout 0.5, dense 10. 34,826 parameters.
    pub fn keras_mnist() -> Self {
        CnnConfig::new(
            "keras-cnn",
            mnist_features(),
            ClassifierConfig::new(1600, [10]).with_input_dropout(0.5),
        )
    }

    /// netcalc's default MNIST model: Keras' convnet with a hidden dense layer of 128 ReLU units
    /// (dropout 0.25 on the features and 0.5 on the hidden layer). 225,034 parameters.
    pub fn mnist_default() -> Self {
        CnnConfig::new(
            "cnn",
            mnist_features(),
            ClassifierConfig::new(1600, [128, 10])
                .with_input_dropout(0.25)
                .with_hidden_dropout(0.5),
        )
    }

    /// A multi-layer perceptron on the raw pixels: 784 -> [50, 25, 10], ReLU. 40,785 parameters.
    pub fn mlp() -> Self {
        CnnConfig::new(
            "mlp",
            FeatureExtractorConfig::new([1, 28, 28]),
            ClassifierConfig::new(784, [50, 25, 10]),
        )
    }

    /// The same network for other data: images of `input` `[C, H, W]` and `classes` outputs.
    /// The first block takes `C` channels, the classifier the new feature length, its last
    /// layer `classes` units; every other layer stays as it is. An error when the blocks do
    /// not fit the new input.
    ///
    /// # Examples
    /// ```
    /// // the default CNN for 64×64 RGB photos of 3 kinds of leaves
    /// let cfg = netcalc::CnnConfig::mnist_default().for_data([3, 64, 64], 3)?;
    /// // 64 → conv 62 → pool 31 → conv 29 → pool 14: 64·14·14 features
    /// assert_eq!(cfg.classifier.n_inputs, 64 * 14 * 14);
    /// assert_eq!(cfg.num_classes(), 3);
    /// # Ok::<(), netcalc::Error>(())
    /// ```
    pub fn for_data(&self, input: [usize; 3], classes: usize) -> Result<Self> {
        let mut cfg = self.clone();
        let mut blocks = cfg.features.blocks.clone();
        if let Some(first) = blocks.first_mut() {
            first.in_channels = Some(input[0]);
        }
        for b in blocks.iter_mut().skip(1) {
            b.in_channels = None;
        }
        cfg.features = FeatureExtractorConfig::new(input).with_blocks(blocks);
        cfg.classifier.n_inputs = cfg.features.feature_len()?;
        if let Some(last) = cfg.classifier.n_neurons.last_mut() {
            *last = classes;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// A preset by name: `cnn`, `keras-cnn` (or `keras`) or `mlp`.
    pub fn preset(name: &str) -> Result<Self> {
        Ok(name.parse::<ModelPreset>()?.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for p in ModelPreset::ALL {
            assert_eq!(p.name().parse::<ModelPreset>().unwrap(), p);
            assert_eq!(p.config().name, p.name());
        }
        assert_eq!(
            "keras".parse::<ModelPreset>().unwrap(),
            ModelPreset::KerasCnn
        );
        let err = CnnConfig::preset("resnet").unwrap_err().to_string();
        assert!(err.contains("unknown preset `resnet`"), "{err}");
    }
}
