//! The CNN: a **feature extractor** (convolution + pooling blocks → a feature vector) followed
//! by a **classifier** (dense layers → class scores), each a burn module built from a serde
//! config.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::feature_extractor::{FeatureExtractor, FeatureExtractorConfig};
use crate::error::{Error, Result};
use crate::nn::dense::{Classifier, ClassifierConfig};

/// Configuration of a [`Cnn`]: a feature extractor and a classifier, plus a name.
///
/// # Examples
/// ```
/// use netcalc::CnnConfig;
/// // Keras' MNIST convnet, as JSON and back
/// let cfg = CnnConfig::keras_mnist();
/// let json = serde_json::to_string(&cfg).unwrap();
/// assert_eq!(CnnConfig::from_json(&json)?, cfg);
/// assert_eq!(cfg.features.feature_len()?, 64 * 5 * 5); // 1600 features
/// // a mistake is named by its field path
/// let err = CnnConfig::from_json(&json.replace("\"n_neurons\":[10]", "\"n_neurons\":[\"ten\"]"))
///     .unwrap_err()
///     .to_string();
/// assert!(err.contains("classifier.n_neurons[0]"), "{err}");
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    /// A name for summaries and run directories.
    pub name: String,
    /// The feature extractor.
    pub features: FeatureExtractorConfig,
    /// The classifier; its `n_inputs` must equal the feature length.
    pub classifier: ClassifierConfig,
}

impl CnnConfig {
    /// A CNN named `name` from its two parts.
    pub fn new(
        name: impl Into<String>,
        features: FeatureExtractorConfig,
        classifier: ClassifierConfig,
    ) -> Self {
        Self {
            name: name.into(),
            features,
            classifier,
        }
    }

    /// Reads a config from JSON text; unknown fields are errors, and every error names the
    /// field path (`classifier.n_neurons[1]`), the line and the column.
    pub fn from_json(text: &str) -> Result<Self> {
        crate::error::parse_json(std::path::Path::new(""), text)
    }

    /// Checks that every block fits its input and the classifier takes the feature vector.
    pub fn validate(&self) -> Result<()> {
        let f = self.features.feature_len()?;
        self.classifier.validate("classifier")?;
        if self.classifier.n_inputs != f {
            let [c, h, w] = self.features.output_shape()?;
            return Err(Error::config(
                "classifier.n_inputs",
                format!(
                    "is {} but the feature extractor outputs {c}·{h}·{w} = {f} features",
                    self.classifier.n_inputs
                ),
            ));
        }
        Ok(())
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.num_classes()
    }

    /// Builds the model after [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> Result<Cnn> {
        self.validate()?;
        Ok(Cnn {
            features: self.features.init(device)?,
            classifier: self.classifier.init(device)?,
        })
    }
}

/// Feature extractor + classifier.
///
/// # Examples
/// ```
/// use netcalc::CnnConfig;
/// use netcalc::burn::module::Module;
/// use netcalc::burn::tensor::Tensor;
/// let (_, device) = netcalc::select_device(None)?;
/// let model = CnnConfig::keras_mnist().init(&device)?;
/// assert_eq!(model.num_params(), 34_826);
/// let scores = model.try_forward(Tensor::zeros([8, 1, 28, 28], &device))?;
/// assert_eq!(scores.dims(), [8, 10]); // one score per digit
/// assert!(model.try_forward(Tensor::zeros([8, 1, 32, 32], &device)).is_err());
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Cnn {
    /// Conv/pool blocks → feature vector.
    pub features: FeatureExtractor,
    /// Dense layers → class scores.
    pub classifier: Classifier,
}

impl Cnn {
    /// Number of classes: the width of the classifier's last layer.
    pub fn num_classes(&self) -> usize {
        self.classifier
            .layers
            .last()
            .map_or(0, |l| l.weight.dims()[1])
    }

    /// Class scores (logits) for a batch of images.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]` (MNIST: `[N, 1, 28, 28]`)
    /// - output: `[N, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features.forward(x))
    }

    /// [`Cnn::forward`] after checking the input shape against the config.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, classes]`
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        self.check_input("Cnn::forward", &x)?;
        Ok(self.forward(x))
    }

    /// An error unless `x` is `[N >= 1, C, H, W]` with the configured `[C, H, W]`.
    pub(crate) fn check_input(&self, what: &str, x: &Tensor<4>) -> Result<()> {
        let [n, c, h, w] = x.dims();
        if [c, h, w] != self.features.input || n == 0 {
            return Err(Error::Shape {
                what: what.into(),
                message: format!(
                    "expected [N >= 1, {}, {}, {}], got [{n}, {c}, {h}, {w}]",
                    self.features.input[0], self.features.input[1], self.features.input[2]
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functional::activation::Activation;
    use crate::testing::test_device;

    fn presets_build_and_count_parameters(d: Device) {
        for (cfg, params) in [
            (CnnConfig::keras_mnist(), 34_826),
            (CnnConfig::mnist_default(), 225_034),
            (CnnConfig::mlp(), 40_785),
        ] {
            let model = cfg.init(&d).unwrap();
            assert_eq!(model.num_params(), params, "{}", cfg.name);
            assert_eq!(
                cfg.summary().unwrap().total_params(),
                params,
                "{}",
                cfg.name
            );
            let y = model.forward(Tensor::zeros([3, 1, 28, 28], &d));
            assert_eq!(y.dims(), [3, 10]);
        }
    }

    #[test]
    fn oversized_configs_are_refused_before_anything_is_allocated() {
        // found while fuzzing: 10^12 × 10^12 weights overflowed the parameter count (a panic
        // in debug builds, a wrapped number in the summary in release builds)
        let mut cfg = CnnConfig::mnist_default();
        cfg.classifier.n_neurons = vec![1_000_000_000_000, 1_000_000_000_000, 10];
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("classifier.n_neurons[0]"), "{err}");
        assert!(
            err.contains("1600·1000000000000") && err.contains("1073741824"),
            "{err}"
        );
        assert!(cfg.summary().is_err() && cfg.init(&test_device()).is_err());

        let mut cfg = CnnConfig::mnist_default();
        cfg.features.blocks[1].filters = 1 << 40;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("features.blocks[1]") && err.contains("the weights"),
            "{err}"
        );

        let mut cfg = CnnConfig::mlp();
        cfg.features.input = [1, 1 << 20, 1 << 20];
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("features.input") && err.contains("the input"),
            "{err}"
        );

        // the formulas saturate instead of overflowing
        assert_eq!(crate::nn::dense::dense_params(usize::MAX, 2), usize::MAX);
        assert_eq!(
            crate::nn::conv::conv2d_params(1 << 20, 1 << 20, 1 << 30),
            usize::MAX
        );
        let neuron =
            crate::nn::neuron::NeuronConfig::new(usize::MAX).with_activation(Activation::Sigmoid);
        assert!(neuron.init(&test_device()).is_err());
    }

    #[test]
    fn configs_that_cannot_work_are_rejected_with_names_and_numbers() {
        let mut cfg = CnnConfig::keras_mnist();
        cfg.classifier.n_inputs = 1000;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("classifier.n_inputs") && err.contains("1000") && err.contains("1600"),
            "{err}"
        );

        let mut cfg = CnnConfig::keras_mnist();
        cfg.features.input = [1, 8, 8];
        // 8 -> conv 6 -> pool 3 -> conv 1 -> pool: kernel 2 > 1
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("features.blocks[1].pool") && err.contains("kernel 2"),
            "{err}"
        );

        let mut cfg = CnnConfig::keras_mnist();
        cfg.features.blocks[0].kernel = 30;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("features.blocks[0]") && err.contains("kernel 30"),
            "{err}"
        );

        let mut cfg = CnnConfig::mlp();
        cfg.classifier.n_neurons = vec![50, 0, 10];
        assert!(cfg.init(&test_device()).is_err());

        let mut cfg = CnnConfig::keras_mnist();
        cfg.features.blocks[1].filters = 0;
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn config_round_trips_through_json_and_names_the_field_at_fault() {
        let cfg = CnnConfig::mnist_default();
        let text = serde_json::to_string_pretty(&cfg).unwrap();
        assert_eq!(CnnConfig::from_json(&text).unwrap(), cfg);
        let err = CnnConfig::from_json("{\"name\": 3}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("name: invalid type: integer `3`"), "{err}");
        let bad = text.replace("\"kernel\": 3", "\"kernel\": -3");
        let err = CnnConfig::from_json(&bad).unwrap_err().to_string();
        assert!(err.starts_with("features.blocks[0].kernel: "), "{err}");
    }

    fn wrong_input_shape_is_an_error(d: Device) {
        let m = CnnConfig::keras_mnist().init(&d).unwrap();
        let err = m
            .try_forward(Tensor::zeros([2, 1, 32, 32], &d))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 1, 32, 32]"), "{err}");
    }

    crate::test_on_backends!(
        presets_build_and_count_parameters,
        wrong_input_shape_is_an_error,
    );
}
