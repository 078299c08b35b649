//! Models out to PyTorch and in from it, through burn's own store (`burn-store`):
//!
//! - [`export`] writes `model.safetensors` (the weights in PyTorch's names and layouts: a
//!   linear layer's weight `[out, in]`, a convolution's `[out, in, k, k]`), `model.py` (a
//!   `build()` of the same network as a `torch.nn.Module` whose `state_dict()` has exactly the
//!   file's keys and shapes, and a `preprocess()` that turns images into its input as netcalc
//!   does), `classes.json`, and `netcalc.json` ([`ExportManifest`]: the model's config, its
//!   classes, input shape, normalisation and preprocessing — what netcalc needs to read the
//!   model back);
//! - [`import`] reads such weights back — `.safetensors`, or a PyTorch state dict saved with
//!   `torch.save(model.state_dict(), path)` — into an ordinary run directory, with the data
//!   contract of an export directory, a run directory or a config file.
//!
//! The names are netcalc's module paths: `features.blocks.0.conv.weight`,
//! `classifier.layers.1.bias`, …; `model.py` builds its modules under the same names.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

use serde::{Deserialize, Serialize};

use crate::app::data::{DataInfo, Normalization, Preprocess};
use crate::app::fsio::{read_json, write_atomic, write_json};
use crate::app::session::TrainedModel;
use crate::app::train::{RunDir, TrainConfig};
use crate::error::{Error, Result};
use crate::model::{Cnn, CnnConfig};

/// The files [`export`] writes.
pub const EXPORTED: [&str; 5] = [
    "model.safetensors",
    "model.py",
    "classes.json",
    MANIFEST,
    "model.onnx",
];

/// The file of an export directory that says how netcalc reads the model back.
pub const MANIFEST: &str = "netcalc.json";

/// `netcalc.json`: the model's config and its data contract (classes, input shape,
/// normalisation, preprocessing), so that `import --config EXPORT_DIR` needs nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportManifest {
    /// The network.
    pub model: CnnConfig,
    /// What the model knows of its data.
    pub data: DataInfo,
}

/// Writes `m` to the directory `out` for PyTorch: `model.safetensors`, `model.py`,
/// `classes.json` and `netcalc.json` (see the [module docs](self)). A directory that exists is
/// refused unless `force`; each file is written atomically.
pub fn export(m: &TrainedModel, out: &Path, force: bool) -> Result<Vec<PathBuf>> {
    if out.exists() && !force {
        return Err(Error::io(
            out,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists; give --force to write into it",
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let weights = out.join(EXPORTED[0]);
    write_atomic(&weights, &safetensors_bytes(&m.model, &weights)?)?;
    let py = out.join(EXPORTED[1]);
    write_atomic(&py, pytorch_module(&m.config, &m.info).as_bytes())?;
    let classes = out.join(EXPORTED[2]);
    write_json(&classes, &m.info.classes)?;
    let manifest = out.join(MANIFEST);
    write_json(
        &manifest,
        &ExportManifest {
            model: m.config.clone(),
            data: m.info.clone(),
        },
    )?;
    let onnx = out.join(EXPORTED[4]);
    write_atomic(
        &onnx,
        &crate::app::onnx::to_onnx(&m.model, &m.config, &m.info)?,
    )?;
    Ok(vec![weights, py, classes, manifest, onnx])
}

/// The model's weights as safetensors bytes, in PyTorch's layouts; `path` names it in errors.
pub fn safetensors_bytes(model: &Cnn, path: &Path) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        // only the parameters: not the dropout layers' training flags
        .with_regex(r"\.(weight|bias)$");
    model
        .save_into(&mut store)
        .map_err(|e| Error::data(path, format!("cannot write safetensors: {e}")))?;
    store
        .get_bytes()
        .map_err(|e| Error::data(path, format!("cannot write safetensors: {e}")))
}

/// What [`import`] reads and writes.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The model and its data contract: an export directory (its `netcalc.json`), a run
    /// directory (its `config.json` and `data.json`), or a JSON file: a `TrainConfig` (a run's
    /// `config.json`), a bare `CnnConfig`, or a `netcalc.json`.
    pub config: PathBuf,
    /// The weights: `.safetensors`, or a PyTorch state dict (`.pt`, `.pth`).
    pub weights: PathBuf,
    /// A JSON list of the class names, in output order, instead of the config's (default
    /// without one: `0`, `1`, …).
    pub classes: Option<PathBuf>,
    /// The normalisation the model expects, instead of the config's (default without one:
    /// MNIST's constants on every channel).
    pub normalization: Option<Normalization>,
    /// How new images are read, instead of the config's (default without one: resized).
    pub preprocess: Option<Preprocess>,
    /// The run directory to write; it must not exist.
    pub out: PathBuf,
}

/// What [`import`] wrote, and each default it had to use.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The run directory.
    pub out: PathBuf,
    /// The data contract the run directory holds.
    pub info: DataInfo,
    /// One line per value that came from neither the config nor a flag, e.g.
    /// `classes: 0 … 9 (no data file; give --classes)`.
    pub defaults: Vec<String>,
}

/// The formats of weights [`import`] reads, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeightsFormat {
    /// 8 bytes of header length, then a JSON header.
    Safetensors,
    /// `torch.save`'s zip archive, or its older bare pickle.
    Pytorch,
}

fn weights_format(path: &Path) -> Result<WeightsFormat> {
    use std::io::Read;
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&[0x80]) {
        return Ok(WeightsFormat::Pytorch);
    }
    if n == 9 && head[8] == b'{' {
        return Ok(WeightsFormat::Safetensors);
    }
    Err(Error::data(
        path,
        "is neither safetensors nor a PyTorch state dict (torch.save)",
    ))
}

/// Reads the model and, where there is one, its data contract: from an export directory's
/// `netcalc.json`, a run directory's `config.json` and `data.json`, or a JSON file (a
/// `netcalc.json` when it has `data`, a `TrainConfig` when it has `model`, else a
/// `CnnConfig`).
pub fn read_model_source(path: &Path) -> Result<(TrainConfig, Option<DataInfo>)> {
    if path.is_dir() {
        let manifest = path.join(MANIFEST);
        if manifest.is_file() {
            return read_model_source(&manifest);
        }
        if path.join(RunDir::CONFIG).is_file() {
            let run = RunDir::open(path)?;
            let data = path
                .join(RunDir::DATA)
                .is_file()
                .then(|| run.read_data_info())
                .transpose()?;
            return Ok((run.read_config()?, data));
        }
        return Err(Error::data(
            path,
            format!(
                "is neither an export directory ({MANIFEST}) nor a run directory ({})",
                RunDir::CONFIG
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = crate::error::parse_json(path, &text)?;
    if value.get("data").is_some() {
        let m: ExportManifest = crate::error::parse_json(path, &text)?;
        m.data.check()?;
        Ok((
            TrainConfig {
                model: m.model,
                ..TrainConfig::default()
            },
            Some(m.data),
        ))
    } else if value.get("model").is_some() {
        Ok((crate::error::parse_json(path, &text)?, None))
    } else {
        Ok((
            TrainConfig {
                model: crate::error::parse_json::<CnnConfig>(path, &text)?,
                ..TrainConfig::default()
            },
            None,
        ))
    }
}

/// Loads `weights` into a model of `config` on `device`; every tensor must be there with its
/// shape, and none left over. Errors name the tensor (and both shapes).
pub fn load_weights(config: &CnnConfig, weights: &Path, device: &Device) -> Result<Cnn> {
    let mut model = config.init(device)?;
    let result = match weights_format(weights)? {
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(weights)
                .with_from_adapter(PyTorchToBurnAdapter)
                .skip_enum_variants(true)
                .validate(false)
                .allow_partial(true);
            model.load_from(&mut store).map_err(|e| {
                Error::data(weights, format!("cannot read the safetensors file: {e}"))
            })?
        }
        WeightsFormat::Pytorch => {
            let mut store = PytorchStore::from_file(weights)
                .map_indices_contiguous(false)
                .validate(false)
                .allow_partial(true);
            model
                .load_from(&mut store)
                .map_err(|e| Error::data(weights, format!("cannot read the PyTorch file: {e}")))?
        }
    };
    check_applied(&result, weights)?;
    Ok(model)
}

/// An error for the first thing wrong in `result`: a shape or type mismatch, a missing
/// parameter, a tensor the model has no place for.
fn check_applied(result: &ApplyResult, path: &Path) -> Result<()> {
    if let Some(e) = result.errors.first() {
        let message = match e {
            ApplyError::ShapeMismatch {
                path: name,
                expected,
                found,
            } => {
                // shown in the file's (PyTorch's) layout: the adapter has turned a linear
                // layer's [out, in] into burn's [in, out] by now
                let pytorch = |s: &[usize]| {
                    let mut v = s.to_vec();
                    if v.len() == 2 {
                        v.reverse();
                    }
                    v
                };
                format!(
                    "tensor `{name}` has shape {:?}, the model needs {:?}",
                    pytorch(found.as_slice()),
                    pytorch(expected.as_slice())
                )
            }
            other => other.to_string(),
        };
        return Err(Error::data(path, message));
    }
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| p.ends_with(".weight") || p.ends_with(".bias"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            path,
            format!(
                "has no tensor `{}` (the model's parameters: {})",
                missing.join("`, `"),
                "features.blocks.N.conv.{weight,bias}, classifier.layers.N.{weight,bias}"
            ),
        ));
    }
    if let Some(extra) = result.unused.first() {
        return Err(Error::data(
            path,
            format!("has tensor `{extra}`, which the model has no parameter for"),
        ));
    }
    Ok(())
}

/// Writes an ordinary run directory (`config.json`, `model.bpk`, `data.json`) from a config and
/// weights from PyTorch or safetensors; `eval`, `predict`, `explain` and `serve` use it as any
/// other. The classes, normalisation and preprocessing come from the flags, else from the
/// config's data contract (an export or run directory), else from defaults — classes `0…n−1`,
/// MNIST's normalisation, images resized (a 1×28×28 model is not assumed to be digits) — each
/// of which is named in [`Imported::defaults`]. Nothing is written when anything is wrong.
pub fn import(opts: &ImportOptions, device: &Device) -> Result<Imported> {
    let (cfg, data) = read_model_source(&opts.config)?;
    cfg.validate()?;
    let (info, defaults) = resolve_contract(
        &cfg.model,
        data,
        &opts.config,
        &ContractFlags {
            classes: opts.classes.clone(),
            normalization: opts.normalization.clone(),
            preprocess: opts.preprocess,
        },
    )?;
    let model = load_weights(&cfg.model, &opts.weights, device)?;
    write_run(&opts.out, &cfg, &info, &model)?;
    Ok(Imported {
        out: opts.out.clone(),
        info,
        defaults,
    })
}

/// The flags that override an imported model's data contract.
#[derive(Debug, Clone, Default)]
pub struct ContractFlags {
    /// `--classes`: a JSON file of class names.
    pub classes: Option<PathBuf>,
    /// `--mean` and `--std`.
    pub normalization: Option<Normalization>,
    /// `--preprocess`.
    pub preprocess: Option<Preprocess>,
}

/// The data contract of an imported `model`: each part from `flags`, else from `data` (the
/// contract that came with it; `source` names where, in errors), else a default, named in the
/// returned list.
pub fn resolve_contract(
    model: &CnnConfig,
    data: Option<DataInfo>,
    source: &Path,
    flags: &ContractFlags,
) -> Result<(DataInfo, Vec<String>)> {
    let n = model.num_classes();
    let shape = model.features.input;
    if let Some(d) = &data
        && d.shape != shape
    {
        return Err(Error::data(
            source,
            format!(
                "its data contract is for images {:?}, its model takes {shape:?}",
                d.shape
            ),
        ));
    }
    let mut defaults = Vec::new();
    let classes: Vec<String> = match (&flags.classes, &data) {
        (Some(p), _) => {
            let names: Vec<String> = read_json(p)?;
            if names.len() != n {
                return Err(Error::data(
                    p,
                    format!(
                        "names {} classes, the config's model has {n} outputs",
                        names.len()
                    ),
                ));
            }
            names
        }
        (None, Some(d)) => {
            if d.classes.len() != n {
                return Err(Error::data(
                    source,
                    format!(
                        "names {} classes, its model has {n} outputs",
                        d.classes.len()
                    ),
                ));
            }
            d.classes.clone()
        }
        (None, None) => {
            defaults.push(format!(
                "classes: 0 … {} (no data file; give --classes)",
                n.saturating_sub(1)
            ));
            (0..n).map(|i| i.to_string()).collect()
        }
    };
    let normalization = match (&flags.normalization, &data) {
        (Some(norm), _) => norm.clone(),
        (None, Some(d)) => d.normalization.clone(),
        (None, None) => {
            defaults.push(format!(
                "normalisation: MNIST's mean {} and standard deviation {} on every channel (no data file; give --mean and --std)",
                crate::app::data::MNIST_MEAN,
                crate::app::data::MNIST_STD
            ));
            Normalization::mnist(shape[0])
        }
    };
    let preprocess = match (flags.preprocess, &data) {
        (Some(p), _) => p,
        (None, Some(d)) => d.preprocess,
        (None, None) => {
            defaults.push(
                "preprocessing: resize (no data file; give --preprocess digit for MNIST-style digits)"
                    .into(),
            );
            Preprocess::Resize
        }
    };
    let info = DataInfo {
        classes,
        shape,
        normalization,
        preprocess,
    };
    info.check()?;
    Ok((info, defaults))
}

/// A new run directory `out` (refused when it exists) with `cfg`, `info` and `model`.
pub fn write_run(out: &Path, cfg: &TrainConfig, info: &DataInfo, model: &Cnn) -> Result<()> {
    RunDir::check_can_create(out)?;
    if out.exists() {
        return Err(Error::io(
            out,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the run directory exists",
            ),
        ));
    }
    let run = RunDir::create(out)?;
    run.write_config(cfg)?;
    run.write_data_info(info)?;
    run.save_model(&model.clone().valid())?;
    Ok(())
}

/// `model.py`: the network as PyTorch modules with netcalc's names, `build()`, `preprocess()`,
/// the class names and the normalisation.
pub fn pytorch_module(config: &CnnConfig, info: &DataInfo) -> String {
    let config_json = serde_json::to_string_pretty(config).unwrap_or_default();
    let classes = serde_json::to_string(&info.classes).unwrap_or_default();
    let fmt = |v: &[f32]| {
        let s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        format!("[{}]", s.join(", "))
    };
    let [c, h, w] = info.shape;
    PY_TEMPLATE
        .replace("{NAME}", &config.name)
        .replace("{CONFIG}", &config_json)
        .replace("{CLASSES}", &classes)
        .replace("{MEAN}", &fmt(&info.normalization.mean))
        .replace("{STD}", &fmt(&info.normalization.std))
        .replace("{INPUT}", &format!("[{c}, {h}, {w}]"))
}

const PY_TEMPLATE: &str = r#""""netcalc model `{NAME}`, exported: the same network in PyTorch, and netcalc's preprocessing.

    import safetensors.torch
    from model import build, preprocess, CLASSES
    net = build()
    net.load_state_dict(safetensors.torch.load_file("model.safetensors"))
    net.eval()
    scores = net(preprocess(images))  # images: uint8 numpy, [N, H, W] or [N, H, W, C]
    names = [CLASSES[i] for i in scores.argmax(1)]

Written by `netcalc export`; the module names are netcalc's (features.blocks.N.conv,
classifier.layers.N), so `state_dict()` has exactly the keys and shapes of model.safetensors.
"""

import json

import numpy as np
import torch
from torch import nn

CONFIG = json.loads(r"""{CONFIG}""")
CLASSES = {CLASSES}
INPUT = {INPUT}  # [C, H, W]
MEAN = {MEAN}
STD = {STD}

_ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
}


class Block(nn.Module):
    """Convolution -> activation -> optional pooling."""

    def __init__(self, c_in, b):
        super().__init__()
        self.conv = nn.Conv2d(c_in, b["filters"], b["kernel"], stride=b.get("stride", 1),
                              padding=b.get("padding", 0))
        self.activation = _ACTIVATIONS[b.get("activation", "relu")]()
        p = b.get("pool")
        if p is None:
            self.pool = nn.Identity()
        else:
            k = tuple(p["kernel"])
            s = tuple(p.get("stride") or p["kernel"])
            pad = tuple(p.get("padding", [0, 0]))
            # netcalc's average pooling counts padding in the divisor, as PyTorch's default
            self.pool = nn.MaxPool2d(k, s, pad) if p["kind"] == "max" else nn.AvgPool2d(k, s, pad)

    def forward(self, x):
        return self.pool(self.activation(self.conv(x)))


class FeatureExtractor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c_in, blocks = cfg["input"][0], []
        for b in cfg.get("blocks", []):
            blocks.append(Block(b.get("in_channels", c_in), b))
            c_in = b["filters"]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return torch.flatten(x, 1)


class Classifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        sizes = [cfg["n_inputs"]] + cfg["n_neurons"]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.input_dropout = nn.Dropout(cfg.get("input_dropout", 0.0))
        self.hidden_dropout = nn.Dropout(cfg.get("hidden_dropout", 0.0))
        self.hidden_activation = _ACTIVATIONS[cfg.get("hidden_activation", "relu")]()
        self.output_activation = _ACTIVATIONS[cfg.get("output_activation", "identity")]()

    def forward(self, x):
        x = self.input_dropout(x)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = self.hidden_dropout(self.hidden_activation(x))
            else:
                x = self.output_activation(x)
        return x


class Net(nn.Module):
    """Feature extractor + classifier: images [N, C, H, W] -> class scores [N, classes]."""

    def __init__(self, cfg=CONFIG):
        super().__init__()
        self.features = FeatureExtractor(cfg["features"])
        self.classifier = Classifier(cfg["classifier"])

    def forward(self, x):
        return self.classifier(self.features(x))


def build() -> nn.Module:
    """The network, with fresh weights: load model.safetensors into it."""
    return Net()


def preprocess(images) -> torch.Tensor:
    """uint8 images [N, H, W] or [N, H, W, C] (C = 1, 3 or 4) -> float32 [N, C, H, W], as
    netcalc turns pixels into its input: transparency composited onto black, converted to the
    model's channels (grey = (2126 R + 7152 G + 722 B + 5000) // 10000), then (p / 255 - mean) / std
    per channel. The images must already be the model's H × W."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be [N, H, W] or [N, H, W, C] with C in 1, 3, 4; got {x.shape}")
    c, h, w = INPUT
    if x.shape[1:3] != (h, w):
        raise ValueError(f"images are {x.shape[1]}x{x.shape[2]}; the model takes {h}x{w}: resize them first")
    x = x.astype(np.uint32)
    if x.shape[-1] == 4:
        x = (x[..., :3] * x[..., 3:4] + 127) // 255
    elif x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if c == 1:
        x = (2126 * x[..., 0] + 7152 * x[..., 1] + 722 * x[..., 2] + 5000)[..., None] // 10000
    t = torch.from_numpy(x.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, c, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, c, 1, 1)
    return (t - mean) / std
"#;
