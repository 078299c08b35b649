//! The CNN: a **feature extractor** (convolution + pooling blocks → a feature vector) followed by a
//! **classifier** (dense layers → class scores), each a burn module built from a serde config.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::conv::{Conv2dBlock, Conv2dBlockConfig};
use crate::dense::{Classifier, ClassifierConfig, dense_params};
use crate::error::{Error, Result};
use crate::pool::{Pool2dConfig, PoolKind};
use crate::summary::{Summary, SummaryRow};

/// Configuration of a [`FeatureExtractor`]: the input image shape and the conv blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureExtractorConfig {
    /// Input `[C, H, W]` (MNIST: `[1, 28, 28]`).
    pub input: [usize; 3],
    /// Convolution blocks, applied in order; none = just flatten the image (an MLP).
    #[serde(default)]
    pub blocks: Vec<Conv2dBlockConfig>,
}

impl FeatureExtractorConfig {
    /// The shape after every block, `[C, H, W]`, checking that each block fits its input.
    pub fn block_shapes(&self) -> Result<Vec<[usize; 3]>> {
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::config(
                "features.input",
                format!(
                    "every dimension of the input must be at least 1, got {:?}",
                    self.input
                ),
            ));
        }
        crate::window::checked_elements("features.input", "the input", &self.input)?;
        let mut shape = self.input;
        let mut out = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            shape = b.output_shape(&format!("features.blocks[{i}]"), shape)?;
            out.push(shape);
        }
        Ok(out)
    }

    /// `[C, H, W]` of the last block's output.
    pub fn output_shape(&self) -> Result<[usize; 3]> {
        Ok(self.block_shapes()?.last().copied().unwrap_or(self.input))
    }

    /// Length of the flattened feature vector, `C·H·W` of the output.
    pub fn feature_len(&self) -> Result<usize> {
        let [c, h, w] = self.output_shape()?;
        crate::window::checked_elements("features", "the feature vector", &[c, h, w])
    }

    /// Builds the extractor.
    pub fn init(&self, device: &Device) -> Result<FeatureExtractor> {
        self.block_shapes()?;
        let mut c_in = self.input[0];
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            blocks.push(b.init(c_in, device)?);
            c_in = b.filters;
        }
        Ok(FeatureExtractor {
            blocks,
            input: self.input,
        })
    }
}

/// Conv/pool blocks followed by flattening.
#[derive(Module, Debug)]
pub struct FeatureExtractor {
    /// The blocks, in order.
    pub blocks: Vec<Conv2dBlock>,
    /// The expected input `[C, H, W]`.
    pub input: [usize; 3],
}

impl FeatureExtractor {
    /// The feature vector of each image.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, F]` with `F = C_out·H_out·W_out` of the last block
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(x);
        }
        x.flatten(1, 3)
    }
}

/// Configuration of a [`Cnn`]: a feature extractor and a classifier, plus a name.
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

fn mnist_conv(filters: usize, pool: bool) -> Conv2dBlockConfig {
    let c = Conv2dBlockConfig::new(filters, 3).with_activation(Activation::Relu);
    if pool {
        c.with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]))
    } else {
        c
    }
}

impl CnnConfig {
    /// Keras' "simple MNIST convnet": conv 32 3×3 ReLU, max-pool 2, conv 64 3×3 ReLU, max-pool 2,
    /// flatten (1600), dropout 0.5, dense 10. 34,826 parameters.
    pub fn keras_mnist() -> Self {
        Self {
            name: "keras-cnn".into(),
            features: FeatureExtractorConfig {
                input: [1, 28, 28],
                blocks: vec![mnist_conv(32, true), mnist_conv(64, true)],
            },
            classifier: ClassifierConfig::new(1600, [10]).with_input_dropout(0.5),
        }
    }

    /// netcalc's default MNIST model: Keras' convnet with a hidden dense layer of 128 ReLU units
    /// (dropout 0.25 on the features and 0.5 on the hidden layer). 225,034 parameters.
    pub fn mnist_default() -> Self {
        Self {
            name: "cnn".into(),
            features: FeatureExtractorConfig {
                input: [1, 28, 28],
                blocks: vec![mnist_conv(32, true), mnist_conv(64, true)],
            },
            classifier: ClassifierConfig::new(1600, [128, 10])
                .with_input_dropout(0.25)
                .with_hidden_dropout(0.5),
        }
    }

    /// A multi-layer perceptron on the raw pixels: 784 -> [50, 25, 10], ReLU. 40,785 parameters.
    pub fn mlp() -> Self {
        Self {
            name: "mlp".into(),
            features: FeatureExtractorConfig {
                input: [1, 28, 28],
                blocks: Vec::new(),
            },
            classifier: ClassifierConfig::new(784, [50, 25, 10]),
        }
    }

    /// A preset by name: `cnn`, `keras-cnn` or `mlp`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "cnn" => Ok(Self::mnist_default()),
            "keras-cnn" | "keras" => Ok(Self::keras_mnist()),
            "mlp" => Ok(Self::mlp()),
            other => Err(Error::setting(
                "model",
                format!("unknown preset `{other}`; expected cnn, keras-cnn or mlp"),
            )),
        }
    }

    /// Reads a config from JSON; unknown fields are errors.
    pub fn from_json(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text)
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

    /// The Keras-like summary: conv, pooling, flatten, dropout and dense rows with output shapes
    /// and parameter counts.
    pub fn summary(&self) -> Result<Summary> {
        self.validate()?;
        let mut rows = Vec::new();
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut name = |base: &'static str, ty: &str| {
            let n = counts.entry(base).or_insert(0);
            let s = if *n == 0 {
                format!("{base} ({ty})")
            } else {
                format!("{base}_{n} ({ty})")
            };
            *n += 1;
            s
        };
        let mut c_in = self.features.input[0];
        let mut shape = self.features.input;
        for (i, b) in self.features.blocks.iter().enumerate() {
            let layer = format!("features.blocks[{i}]");
            let conv = b.conv_output_shape(&layer, shape)?;
            rows.push(SummaryRow {
                layer: name("conv2d", "Conv2D"),
                output_shape: conv.to_vec(),
                params: b.num_params(c_in),
            });
            shape = b.output_shape(&layer, shape)?;
            if let Some(p) = &b.pool {
                let (base, ty) = match p.kind {
                    PoolKind::Max => ("max_pooling2d", "MaxPooling2D"),
                    PoolKind::Avg => ("average_pooling2d", "AveragePooling2D"),
                };
                rows.push(SummaryRow {
                    layer: name(base, ty),
                    output_shape: shape.to_vec(),
                    params: 0,
                });
            }
            c_in = b.filters;
        }
        let f = shape.iter().product::<usize>();
        rows.push(SummaryRow {
            layer: name("flatten", "Flatten"),
            output_shape: vec![f],
            params: 0,
        });
        let cls = &self.classifier;
        if cls.input_dropout > 0.0 {
            rows.push(SummaryRow {
                layer: name("dropout", "Dropout"),
                output_shape: vec![f],
                params: 0,
            });
        }
        let shapes = cls.layer_shapes();
        for (i, (w, _)) in shapes.iter().enumerate() {
            rows.push(SummaryRow {
                layer: name("dense", "Dense"),
                output_shape: vec![w[1]],
                params: dense_params(w[0], w[1]),
            });
            if i + 1 < shapes.len() && cls.hidden_dropout > 0.0 {
                rows.push(SummaryRow {
                    layer: name("dropout", "Dropout"),
                    output_shape: vec![w[1]],
                    params: 0,
                });
            }
        }
        Ok(Summary {
            name: self.name.clone(),
            input_shape: self.features.input.to_vec(),
            rows,
        })
    }
}

/// Feature extractor + classifier.
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
    fn check_input(&self, what: &str, x: &Tensor<4>) -> Result<()> {
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

/// What a [`Stage`] of [`Cnn::forward_stages`] is, in the concepts' own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The image fed to the network, `[C, H, W]`.
    Input,
    /// Feature maps of a convolution after its activation, `[C_out, H, W]`.
    Conv,
    /// Feature maps after a pooling layer, `[C_out, H, W]`.
    Pool,
    /// The flattened output of the feature extractor, `[F]`.
    FeatureVector,
    /// A hidden dense layer after its activation, `[n]`.
    Dense,
    /// The classifier's output: one score (logit) per class, `[classes]`.
    ClassScores,
    /// The softmax of the class scores: one probability per class, `[classes]`.
    Probabilities,
}

/// One intermediate result of a forward pass (see [`Cnn::forward_stages`]).
#[derive(Debug, Clone)]
pub struct Stage {
    /// Where it comes from, e.g. `features.blocks[0].conv`, `classifier.layers[1]`.
    pub name: String,
    /// What it is.
    pub kind: StageKind,
    /// Its shape for one image (without the batch axis), as in the summary.
    pub shape: Vec<usize>,
    /// The values, one row per image: `[N, ∏ shape]`.
    pub tensor: Tensor<2>,
}

impl Stage {
    /// The values of image `index` of the batch (`∏ shape` of them, row-major).
    pub fn row(&self, index: usize) -> Result<Vec<f32>> {
        let n = self.tensor.dims()[0];
        let error = |message: String| Error::Shape {
            what: format!("stage {}", self.name),
            message,
        };
        if index >= n {
            return Err(error(format!("image {index} of a batch of {n}")));
        }
        self.tensor
            .clone()
            .slice(index..index + 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| error(format!("{e:?}")))
    }
}

impl Cnn {
    /// The forward pass in inference mode (no dropout), returning every stage with its shape:
    /// the input; each convolution after its activation and each pooling layer (the feature
    /// maps); the feature vector; each hidden dense layer after its activation; the class
    /// scores (exactly [`Cnn::forward`]'s output); the softmax probabilities.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]` matching the config
    /// - output: stages whose `tensor` is `[N, ∏ shape]`
    pub fn forward_stages(&self, x: Tensor<4>) -> Result<Vec<Stage>> {
        self.check_input("Cnn::forward_stages", &x)?;
        let mut stages = Vec::new();
        let map_stage = |name: String, kind: StageKind, t: &Tensor<4>| {
            let [n, c, h, w] = t.dims();
            Stage {
                name,
                kind,
                shape: vec![c, h, w],
                tensor: t.clone().reshape([n, c * h * w]),
            }
        };
        stages.push(map_stage("input".into(), StageKind::Input, &x));
        let mut x = x;
        for (i, b) in self.features.blocks.iter().enumerate() {
            let z = crate::fastops::conv2d(&b.conv, x);
            let activated = b.activation.forward(z.clone());
            stages.push(map_stage(
                format!("features.blocks[{i}].conv"),
                StageKind::Conv,
                &activated,
            ));
            if b.pool.is_some() {
                // the order `forward` uses (max-pool before ReLU), so the values are its own
                x = b.after_conv(z, Some(activated));
                stages.push(map_stage(
                    format!("features.blocks[{i}].pool"),
                    StageKind::Pool,
                    &x,
                ));
            } else {
                x = activated;
            }
        }
        let mut v = x.flatten::<2>(1, 3);
        let vec_stage = |name: String, kind: StageKind, t: &Tensor<2>| Stage {
            name,
            kind,
            shape: vec![t.dims()[1]],
            tensor: t.clone(),
        };
        stages.push(vec_stage(
            "feature vector".into(),
            StageKind::FeatureVector,
            &v,
        ));
        let cls = &self.classifier;
        let last = cls.layers.len().saturating_sub(1);
        for (i, layer) in cls.layers.iter().enumerate() {
            v = layer.forward(v);
            if i < last {
                v = cls.hidden_activation.forward(v);
                stages.push(vec_stage(
                    format!("classifier.layers[{i}]"),
                    StageKind::Dense,
                    &v,
                ));
            } else {
                v = cls.output_activation.forward(v);
                stages.push(vec_stage(
                    format!("classifier.layers[{i}]"),
                    StageKind::ClassScores,
                    &v,
                ));
            }
        }
        let p = crate::prob::softmax(v, 1);
        stages.push(vec_stage("softmax".into(), StageKind::Probabilities, &p));
        Ok(stages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_device;
    use burn::tensor::Device;

    #[test]
    fn keras_convnet_summary_matches_keras() {
        let s = CnnConfig::keras_mnist().summary().unwrap();
        let rows: Vec<(&str, Vec<usize>, usize)> = s
            .rows
            .iter()
            .map(|r| (r.layer.as_str(), r.output_shape.clone(), r.params))
            .collect();
        // model.summary() of keras.io/examples/vision/mnist_convnet (channels-first here)
        assert_eq!(
            rows,
            vec![
                ("conv2d (Conv2D)", vec![32, 26, 26], 320),
                ("max_pooling2d (MaxPooling2D)", vec![32, 13, 13], 0),
                ("conv2d_1 (Conv2D)", vec![64, 11, 11], 18_496),
                ("max_pooling2d_1 (MaxPooling2D)", vec![64, 5, 5], 0),
                ("flatten (Flatten)", vec![1600], 0),
                ("dropout (Dropout)", vec![1600], 0),
                ("dense (Dense)", vec![10], 16_010),
            ]
        );
        assert_eq!(s.total_params(), 34_826);
        let text = s.to_string();
        assert!(text.contains("Total params: 34,826"), "{text}");
        assert!(text.contains("18,496") && text.contains("16,010"), "{text}");
    }

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

    fn feature_vector_length(d: Device) {
        let cfg = CnnConfig::keras_mnist();
        assert_eq!(cfg.features.output_shape().unwrap(), [64, 5, 5]);
        assert_eq!(cfg.features.feature_len().unwrap(), 1600);
        let f = cfg
            .features
            .init(&d)
            .unwrap()
            .forward(Tensor::zeros([2, 1, 28, 28], &d));
        assert_eq!(f.dims(), [2, 1600]);
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
        assert_eq!(dense_params(usize::MAX, 2), usize::MAX);
        assert_eq!(
            crate::conv::conv2d_params(1 << 20, 1 << 20, 1 << 30),
            usize::MAX
        );
        let neuron = crate::neuron::NeuronConfig::new(usize::MAX, Activation::Sigmoid);
        assert!(neuron.init(&test_device()).is_err());
        // the largest allowed layer is still accepted by the check
        assert!(crate::window::checked_elements("x", "w", &[1 << 15, 1 << 15]).is_ok());
        assert!(crate::window::checked_elements("x", "w", &[(1 << 15) + 1, 1 << 15]).is_err());
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
    fn config_round_trips_through_json() {
        let cfg = CnnConfig::mnist_default();
        let text = serde_json::to_string_pretty(&cfg).unwrap();
        assert_eq!(CnnConfig::from_json(&text).unwrap(), cfg);
        assert!(CnnConfig::from_json("{\"name\": 3}").is_err());
    }

    fn wrong_input_shape_is_an_error(d: Device) {
        let m = CnnConfig::keras_mnist().init(&d).unwrap();
        let err = m
            .try_forward(Tensor::zeros([2, 1, 32, 32], &d))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 1, 32, 32]"), "{err}");
    }

    fn stages_match_forward_and_summary(d: Device) {
        use burn::tensor::Distribution;
        for cfg in [
            CnnConfig::mnist_default(),
            CnnConfig::keras_mnist(),
            CnnConfig::mlp(),
        ] {
            let m = cfg.init(&d).unwrap();
            let x = Tensor::<4>::random([3, 1, 28, 28], Distribution::Normal(0.0, 1.0), &d);
            let stages = m.forward_stages(x.clone()).unwrap();
            let logits = crate::testing::values(m.forward(x));
            let n = stages.len();
            assert_eq!(stages[0].kind, StageKind::Input);
            assert_eq!(stages[0].shape, vec![1, 28, 28]);
            assert_eq!(stages[n - 2].kind, StageKind::ClassScores);
            // forward's output: the same ops in the same order, so bit for bit on the CPU
            // backends; wgpu fuses element-wise ops into different kernels when intermediate
            // results are kept (the stages), which moves the last bits
            let scores = crate::testing::values(stages[n - 2].tensor.clone());
            if crate::backend::backend_of(&d) == Some(crate::BackendKind::Wgpu) {
                crate::testing::assert_close(&scores, &logits, 1e-5);
            } else {
                assert_eq!(scores, logits, "{}", cfg.name);
            }
            assert_eq!(stages[n - 1].kind, StageKind::Probabilities);
            let probs = crate::testing::values(stages[n - 1].tensor.clone());
            for row in probs.chunks(10) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            // every stage's shape is the summary's row for that layer (dropout rows aside)
            let rows: Vec<Vec<usize>> = cfg
                .summary()
                .unwrap()
                .rows
                .into_iter()
                .filter(|r| !r.layer.starts_with("dropout"))
                .map(|r| r.output_shape)
                .collect();
            let shapes: Vec<Vec<usize>> =
                stages[1..n - 1].iter().map(|s| s.shape.clone()).collect();
            assert_eq!(shapes, rows, "{}", cfg.name);
            for s in &stages {
                assert_eq!(
                    s.tensor.dims(),
                    [3, s.shape.iter().product::<usize>()],
                    "{}",
                    s.name
                );
                let row = s.row(2).unwrap();
                assert_eq!(row.len(), s.shape.iter().product::<usize>(), "{}", s.name);
                assert!(s.row(3).is_err(), "a batch of 3 has no image 3");
            }
        }
        // the default CNN: input, conv, pool, conv, pool, feature vector, dense, scores, softmax
        let kinds: Vec<StageKind> = CnnConfig::mnist_default()
            .init(&d)
            .unwrap()
            .forward_stages(Tensor::zeros([1, 1, 28, 28], &d))
            .unwrap()
            .into_iter()
            .map(|s| s.kind)
            .collect();
        use StageKind::*;
        assert_eq!(
            kinds,
            [
                Input,
                Conv,
                Pool,
                Conv,
                Pool,
                FeatureVector,
                Dense,
                ClassScores,
                Probabilities
            ]
        );
        let m = CnnConfig::mlp().init(&d).unwrap();
        assert!(m.forward_stages(Tensor::zeros([1, 1, 27, 28], &d)).is_err());
    }

    crate::test_on_backends!(
        presets_build_and_count_parameters,
        feature_vector_length,
        wrong_input_shape_is_an_error,
        stages_match_forward_and_summary,
    );
}
