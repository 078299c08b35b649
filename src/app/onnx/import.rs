//! An ONNX graph read back as a netcalc CNN: the [`CnnConfig`] inferred from the graph's ops
//! and shapes, and the weights from its initializers.
//!
//! What it reads: one chain of ops from the graph's one input to its class scores (the output
//! `logits` when there is one, else the first output):
//! - `Conv` (square kernel, the same padding on every side, stride the same both ways, no
//!   dilation, one group), then optionally an activation (`Relu`, `Sigmoid`, `Tanh`,
//!   `Softmax` on the last axis), then optionally `MaxPool` or `AveragePool` (padding counted,
//!   no `ceil_mode`): one block each;
//! - `Flatten` (axis 1) or `Reshape` to `[N, -1]`;
//! - `Gemm` (either weight layout), or `MatMul` followed by `Add` of a bias, each optionally
//!   followed by an activation: one dense layer each (the hidden layers share one activation);
//! - `Identity` and `Dropout` anywhere, and `Constant` nodes for a `Reshape`'s shape.
//!
//! Anything else on the chain is refused, naming the node, its op and what netcalc cannot
//! represent: an op it has no layer for (`BatchNormalization`, …), an attribute it does not
//! support, or a second computed input (a residual `Add`).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use prost::Message;
use tract_onnx::pb;

use super::META_PREFIX;
use crate::app::data::DataInfo;
use crate::error::{Error, Result};
use crate::functional::activation::Activation;
use crate::functional::pool::PoolKind;
use crate::model::{Cnn, CnnConfig, FeatureExtractorConfig};
use crate::nn::conv::Conv2dBlockConfig;
use crate::nn::dense::ClassifierConfig;
use crate::nn::pool::Pool2dConfig;

/// A graph read as a netcalc model.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The network the graph computes.
    pub config: CnnConfig,
    /// The data contract of its `metadata_props` (netcalc's own export), if any.
    pub info: Option<DataInfo>,
    /// Each block's convolution weight `[out, in, k, k]` and bias.
    convs: Vec<(Weights, Option<Weights>)>,
    /// Each dense layer's weight `[out, in]` and bias.
    dense: Vec<(Weights, Option<Weights>)>,
}

/// A tensor's shape and values.
#[derive(Debug, Clone)]
struct Weights {
    dims: Vec<usize>,
    values: Vec<f32>,
}

/// A block or layer as the chain builds it.
struct Block {
    weight: Weights,
    bias: Option<Weights>,
    stride: usize,
    padding: usize,
    activation: Option<Activation>,
    pool: Option<Pool2dConfig>,
}

struct Layer {
    weight: Weights,
    bias: Option<Weights>,
    activation: Option<Activation>,
}

impl OnnxModel {
    /// Reads the ONNX file `bytes` (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let model = pb::ModelProto::decode(bytes)
            .map_err(|e| Error::data(path, format!("is not an ONNX model: {e}")))?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version);
        let info = contract(&model, path)?;
        let graph = model
            .graph
            .ok_or_else(|| Error::data(path, "has no graph"))?;
        Reader::new(path, &graph, opset)?.read(info)
    }

    /// The model with the graph's weights, on `device`.
    pub fn build(&self, device: &Device) -> Result<Cnn> {
        let mut model = self.config.init(device)?;
        let tensor1 = |w: &Weights| -> Tensor<1> {
            Tensor::from_data(TensorData::new(w.values.clone(), [w.dims[0]]), device)
        };
        for (block, (w, b)) in model.features.blocks.iter_mut().zip(&self.convs) {
            let dims: [usize; 4] = w.dims.clone().try_into().expect("checked: 4 dims");
            block.conv.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(w.values.clone(), dims),
                device,
            ));
            let bias = match b {
                Some(b) => tensor1(b),
                None => Tensor::zeros([dims[0]], device),
            };
            block.conv.bias = Some(Param::from_tensor(bias));
        }
        for (layer, (w, b)) in model.classifier.layers.iter_mut().zip(&self.dense) {
            let (out, inp) = (w.dims[0], w.dims[1]);
            // the file's [out, in] is burn's [in, out] transposed
            let t: Tensor<2> =
                Tensor::from_data(TensorData::new(w.values.clone(), [out, inp]), device);
            layer.weight = Param::from_tensor(t.transpose());
            let bias = match b {
                Some(b) => tensor1(b),
                None => Tensor::zeros([out], device),
            };
            layer.bias = Some(Param::from_tensor(bias));
        }
        Ok(model)
    }
}

/// netcalc's contract from `metadata_props` (`netcalc.json`), when the file has one.
fn contract(model: &pb::ModelProto, path: &Path) -> Result<Option<DataInfo>> {
    let key = format!("{META_PREFIX}json");
    match model.metadata_props.iter().find(|p| p.key == key) {
        None => Ok(None),
        Some(p) => {
            let m: crate::app::interop::ExportManifest =
                serde_json::from_str(&p.value).map_err(|e| {
                    Error::data(path, format!("its metadata `{key}` cannot be read: {e}"))
                })?;
            Ok(Some(m.data))
        }
    }
}

struct Reader<'a> {
    path: &'a Path,
    graph: &'a pb::GraphProto,
    opset: i64,
    tensors: HashMap<String, &'a pb::TensorProto>,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, graph: &'a pb::GraphProto, opset: i64) -> Result<Self> {
        let mut tensors: HashMap<String, &pb::TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        for n in graph.node.iter().filter(|n| n.op_type == "Constant") {
            if let (Some(out), Some(t)) = (
                n.output.first(),
                n.attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref()),
            ) {
                tensors.insert(out.clone(), t);
            }
        }
        Ok(Self {
            path,
            graph,
            opset,
            tensors,
        })
    }

    fn refuse(&self, node: &pb::NodeProto, what: impl std::fmt::Display) -> Error {
        Error::data(
            self.path,
            format!(
                "node `{}` ({}): {what}; netcalc cannot represent it, and nothing was written",
                node.name, node.op_type
            ),
        )
    }

    fn read(&self, info: Option<DataInfo>) -> Result<OnnxModel> {
        let inputs: Vec<&pb::ValueInfoProto> = self
            .graph
            .input
            .iter()
            .filter(|i| !self.tensors.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(Error::data(
                self.path,
                format!(
                    "has {} inputs besides its weights; netcalc's models take one image batch",
                    inputs.len()
                ),
            ));
        };
        let shape = input_shape(input).ok_or_else(|| {
            Error::data(
                self.path,
                format!(
                    "its input `{}` is not [N, C, H, W] f32 with C, H and W fixed",
                    input.name
                ),
            )
        })?;
        let target = self
            .graph
            .output
            .iter()
            .find(|o| o.name == "logits")
            .or_else(|| self.graph.output.first())
            .map(|o| o.name.clone())
            .ok_or_else(|| Error::data(self.path, "has no output"))?;
        let mut cur = input.name.clone();
        let mut blocks: Vec<Block> = Vec::new();
        let mut layers: Vec<Layer> = Vec::new();
        let mut flat = false;
        for node in &self.graph.node {
            if cur == target {
                break;
            }
            if node.op_type == "Constant" {
                continue;
            }
            if node.input.first() != Some(&cur) {
                if node.input.contains(&cur) {
                    return Err(self.refuse(node, "it takes the chain's tensor as a second input"));
                }
                // not on the chain (a branch that never comes back is not the model's)
                continue;
            }
            let out = node
                .output
                .first()
                .cloned()
                .ok_or_else(|| self.refuse(node, "it has no output"))?;
            match node.op_type.as_str() {
                "Identity" | "Dropout" => {}
                "Conv" if !flat => blocks.push(self.conv(node)?),
                "Relu" | "Sigmoid" | "Tanh" | "Softmax" => {
                    let act = self.activation(node, flat)?;
                    let slot = if flat {
                        layers.last_mut().map(|l| &mut l.activation)
                    } else {
                        match blocks.last_mut() {
                            Some(b) if b.pool.is_none() => Some(&mut b.activation),
                            _ => None,
                        }
                    };
                    match slot {
                        Some(s) if s.is_none() => *s = Some(act),
                        _ => {
                            return Err(self.refuse(
                                node,
                                "an activation that does not follow a convolution or a dense layer (netcalc applies one after each, before pooling)",
                            ));
                        }
                    }
                }
                "MaxPool" | "AveragePool" if !flat => {
                    let pool = self.pool(node)?;
                    match blocks.last_mut() {
                        Some(b) if b.pool.is_none() => b.pool = Some(pool),
                        _ => {
                            return Err(
                                self.refuse(node, "pooling that does not follow a convolution")
                            );
                        }
                    }
                }
                "Flatten" | "Reshape" if !flat => {
                    self.flatten(node)?;
                    flat = true;
                }
                "Gemm" | "MatMul" if flat => layers.push(self.dense(node)?),
                "Add" => {
                    // a residual connection is named as such wherever it is
                    let bias = self.bias_of(node)?;
                    if !flat {
                        return Err(
                            self.refuse(node, "an addition before the feature maps are flattened")
                        );
                    }
                    match layers.last_mut() {
                        Some(l) if l.bias.is_none() && l.activation.is_none() => {
                            if bias.values.len() != l.weight.dims[0] {
                                return Err(self.refuse(
                                    node,
                                    format!(
                                        "a bias of {} values after a layer of {} outputs",
                                        bias.values.len(),
                                        l.weight.dims[0]
                                    ),
                                ));
                            }
                            l.bias = Some(bias);
                        }
                        _ => {
                            return Err(
                                self.refuse(node, "an addition that is not a dense layer's bias")
                            );
                        }
                    }
                }
                "Conv" | "MaxPool" | "AveragePool" => {
                    return Err(self.refuse(node, "a convolution or pooling after the flatten"));
                }
                "Gemm" | "MatMul" => {
                    return Err(
                        self.refuse(node, "a dense layer before the feature maps are flattened")
                    );
                }
                "Flatten" | "Reshape" => {
                    return Err(self.refuse(node, "a second flatten or reshape"));
                }
                other => {
                    return Err(self.refuse(node, format!("netcalc has no layer for `{other}`")));
                }
            }
            cur = out;
        }
        if cur != target {
            return Err(Error::data(
                self.path,
                format!(
                    "its output `{target}` is not reached by one chain of ops from its input; netcalc's models are a chain"
                ),
            ));
        }
        if layers.is_empty() {
            return Err(Error::data(
                self.path,
                "has no dense layer after the flatten; netcalc's classifier needs at least one",
            ));
        }
        self.assemble(shape, blocks, layers, info)
    }

    fn assemble(
        &self,
        input: [usize; 3],
        blocks: Vec<Block>,
        layers: Vec<Layer>,
        info: Option<DataInfo>,
    ) -> Result<OnnxModel> {
        let mut cfg_blocks = Vec::new();
        let mut convs = Vec::new();
        for b in blocks {
            cfg_blocks.push(Conv2dBlockConfig {
                in_channels: Some(b.weight.dims[1]),
                filters: b.weight.dims[0],
                kernel: b.weight.dims[2],
                stride: b.stride,
                padding: b.padding,
                activation: b.activation.unwrap_or(Activation::Identity),
                pool: b.pool,
            });
            convs.push((b.weight, b.bias));
        }
        let hidden: Vec<Activation> = layers[..layers.len() - 1]
            .iter()
            .map(|l| l.activation.unwrap_or(Activation::Identity))
            .collect();
        let hidden_activation = hidden.first().copied().unwrap_or(Activation::Relu);
        if hidden.iter().any(|a| *a != hidden_activation) {
            return Err(Error::data(
                self.path,
                format!(
                    "its hidden dense layers have different activations ({hidden:?}); netcalc's classifier has one for all of them"
                ),
            ));
        }
        for pair in layers.windows(2) {
            if pair[1].weight.dims[1] != pair[0].weight.dims[0] {
                return Err(Error::data(
                    self.path,
                    format!(
                        "a dense layer of {} inputs follows one of {} outputs",
                        pair[1].weight.dims[1], pair[0].weight.dims[0]
                    ),
                ));
            }
        }
        let classifier = ClassifierConfig {
            n_inputs: layers[0].weight.dims[1],
            n_neurons: layers.iter().map(|l| l.weight.dims[0]).collect(),
            hidden_activation,
            output_activation: layers
                .last()
                .and_then(|l| l.activation)
                .unwrap_or(Activation::Identity),
            input_dropout: 0.0,
            hidden_dropout: 0.0,
        };
        let dense = layers.into_iter().map(|l| (l.weight, l.bias)).collect();
        let name = match self.graph.name.as_str() {
            "" | "main_graph" | "torch_jit" | "main" => "onnx".to_string(),
            n => n.to_string(),
        };
        let config = CnnConfig {
            name,
            features: FeatureExtractorConfig {
                input,
                blocks: cfg_blocks,
            },
            classifier,
        };
        config.validate().map_err(|e| {
            Error::data(
                self.path,
                format!("its layers do not fit together as a netcalc model: {e}"),
            )
        })?;
        Ok(OnnxModel {
            config,
            info,
            convs,
            dense,
        })
    }

    fn tensor(&self, node: &pb::NodeProto, name: &str) -> Result<Weights> {
        let t = self.tensors.get(name).ok_or_else(|| {
            self.refuse(
                node,
                format!("its input `{name}` is computed, not a constant weight"),
            )
        })?;
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n: usize = dims.iter().product();
        let external;
        let raw: &[u8] = if t.data_location == Some(1) {
            external = self.external(node, t, n)?;
            &external
        } else {
            &t.raw_data
        };
        let values = if t.data_type == pb::tensor_proto::DataType::Float as i32 {
            if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            } else {
                t.float_data.clone()
            }
        } else if t.data_type == pb::tensor_proto::DataType::Int64 as i32 {
            if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect()
            } else {
                t.int64_data.iter().map(|&v| v as f32).collect()
            }
        } else {
            return Err(self.refuse(
                node,
                format!(
                    "its tensor `{name}` is of data type {}, not f32",
                    t.data_type
                ),
            ));
        };
        if values.len() != n {
            return Err(self.refuse(
                node,
                format!(
                    "its tensor `{name}` has {} values for the shape {dims:?}",
                    values.len()
                ),
            ));
        }
        Ok(Weights { dims, values })
    }

    /// The bytes of a tensor kept in an external file (`location`, `offset`, `length`, as
    /// `torch.onnx.export` writes them beside the model): a relative path under the model's
    /// directory, read for exactly the tensor's `n` values.
    fn external(&self, node: &pb::NodeProto, t: &pb::TensorProto, n: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.as_str())
        };
        let name = &t.name;
        let location = get("location").ok_or_else(|| {
            self.refuse(
                node,
                format!("its tensor `{name}` is external with no location"),
            )
        })?;
        let rel = Path::new(location);
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(self.refuse(
                node,
                format!("its tensor `{name}` is in `{location}`, not a file beside the model"),
            ));
        }
        let size = match t.data_type {
            d if d == pb::tensor_proto::DataType::Float as i32 => 4,
            d if d == pb::tensor_proto::DataType::Int64 as i32 => 8,
            d => {
                return Err(self.refuse(node, format!("its tensor `{name}` is of data type {d}")));
            }
        };
        let want = (n * size) as u64;
        let number = |k: &str, default: u64| -> Result<u64> {
            get(k).map_or(Ok(default), |v| {
                v.parse().map_err(|_| {
                    self.refuse(node, format!("its tensor `{name}` has the {k} `{v}`"))
                })
            })
        };
        let (offset, length) = (number("offset", 0)?, number("length", want)?);
        if length != want {
            return Err(self.refuse(
                node,
                format!("its tensor `{name}` has {length} external bytes for {n} values"),
            ));
        }
        let file = self
            .path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(rel);
        let mut f = std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?;
        let len = f.metadata().map_err(|e| Error::io(&file, e))?.len();
        if offset.checked_add(length).is_none_or(|end| end > len) {
            return Err(Error::data(
                &file,
                format!("is {len} bytes; the tensor `{name}` needs {length} from {offset}"),
            ));
        }
        let mut buf = vec![0u8; length as usize];
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| Error::io(&file, e))?;
        Ok(buf)
    }

    fn conv(&self, node: &pb::NodeProto) -> Result<Block> {
        self.only_attributes(
            node,
            &[
                "kernel_shape",
                "strides",
                "pads",
                "dilations",
                "group",
                "auto_pad",
            ],
        )?;
        let name = node
            .input
            .get(1)
            .ok_or_else(|| self.refuse(node, "a convolution without a weight"))?;
        let weight = self.tensor(node, name)?;
        if weight.dims.len() != 4 || weight.dims[2] != weight.dims[3] {
            return Err(self.refuse(node, "a convolution whose weight is not [out, in, k, k]"));
        }
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(b) => Some(self.tensor(node, b)?),
            None => None,
        };
        self.auto_pad_notset(node)?;
        let strides = ints_of(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = ints_of(node, "pads").unwrap_or_else(|| vec![0; 4]);
        let dil = ints_of(node, "dilations").unwrap_or_else(|| vec![1, 1]);
        let group = int_of(node, "group").unwrap_or(1);
        if dil.iter().any(|&d| d != 1) {
            return Err(self.refuse(node, format!("dilations {dil:?}")));
        }
        if group != 1 {
            return Err(self.refuse(node, format!("group {group} (grouped convolution)")));
        }
        if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
            return Err(self.refuse(node, format!("strides {strides:?} (netcalc's are square)")));
        }
        if pads.len() != 4 || pads.iter().any(|&p| p != pads[0]) || pads[0] < 0 {
            return Err(self.refuse(
                node,
                format!("pads {pads:?} (netcalc pads every side alike)"),
            ));
        }
        if let Some(k) = ints_of(node, "kernel_shape")
            && k.iter().any(|&k| k as usize != weight.dims[2])
        {
            return Err(self.refuse(node, format!("kernel_shape {k:?} differs from its weight")));
        }
        Ok(Block {
            weight,
            bias,
            stride: strides[0] as usize,
            padding: pads[0] as usize,
            activation: None,
            pool: None,
        })
    }

    fn activation(&self, node: &pb::NodeProto, flat: bool) -> Result<Activation> {
        Ok(match node.op_type.as_str() {
            "Relu" => Activation::Relu,
            "Sigmoid" => Activation::Sigmoid,
            "Tanh" => Activation::Tanh,
            _ => {
                self.only_attributes(node, &["axis"])?;
                let last = if flat { 1 } else { 3 };
                let axis = int_of(node, "axis").unwrap_or(if self.opset >= 13 { -1 } else { 1 });
                if !(axis == -1 || axis == last) || (!flat && self.opset < 13) {
                    return Err(self.refuse(
                        node,
                        format!("softmax along axis {axis} (netcalc's runs along the last)"),
                    ));
                }
                Activation::Softmax
            }
        })
    }

    fn pool(&self, node: &pb::NodeProto) -> Result<Pool2dConfig> {
        self.only_attributes(
            node,
            &[
                "kernel_shape",
                "strides",
                "pads",
                "dilations",
                "ceil_mode",
                "count_include_pad",
                "storage_order",
                "auto_pad",
            ],
        )?;
        self.auto_pad_notset(node)?;
        let k = ints_of(node, "kernel_shape").unwrap_or_default();
        if k.len() != 2 || k.iter().any(|&k| k < 1) {
            return Err(self.refuse(node, format!("kernel_shape {k:?}")));
        }
        let strides = ints_of(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = ints_of(node, "pads").unwrap_or_else(|| vec![0; 4]);
        if strides.len() != 2 || strides.iter().any(|&s| s < 1) {
            return Err(self.refuse(node, format!("strides {strides:?}")));
        }
        if pads.len() != 4 || pads[0] != pads[2] || pads[1] != pads[3] || pads[0] < 0 || pads[1] < 0
        {
            return Err(self.refuse(
                node,
                format!("pads {pads:?} (netcalc pads both ends of an axis alike)"),
            ));
        }
        if int_of(node, "ceil_mode").unwrap_or(0) != 0 {
            return Err(self.refuse(node, "ceil_mode 1"));
        }
        if ints_of(node, "dilations").is_some_and(|d| d.iter().any(|&d| d != 1)) {
            return Err(self.refuse(node, "dilations"));
        }
        let kind = if node.op_type == "MaxPool" {
            if node.output.len() > 1 {
                return Err(self.refuse(node, "the indices output"));
            }
            PoolKind::Max
        } else {
            if pads.iter().any(|&p| p > 0) && int_of(node, "count_include_pad").unwrap_or(0) != 1 {
                return Err(self.refuse(
                    node,
                    "count_include_pad 0 with padding (netcalc averages over the padding too)",
                ));
            }
            PoolKind::Avg
        };
        Ok(Pool2dConfig {
            kind,
            kernel: [k[0] as usize, k[1] as usize],
            stride: Some([strides[0] as usize, strides[1] as usize]),
            padding: [pads[0] as usize, pads[1] as usize],
        })
    }

    fn flatten(&self, node: &pb::NodeProto) -> Result<()> {
        if node.op_type == "Flatten" {
            let axis = int_of(node, "axis").unwrap_or(1);
            if axis != 1 {
                return Err(self.refuse(node, format!("flatten from axis {axis}, not 1")));
            }
            return Ok(());
        }
        let shape = node
            .input
            .get(1)
            .map(|s| self.tensor(node, s))
            .transpose()?
            .ok_or_else(|| self.refuse(node, "a reshape without a shape"))?;
        let v: Vec<i64> = shape.values.iter().map(|&v| v as i64).collect();
        if !(v.len() == 2 && (v[1] == -1 || v[1] > 0) && (v[0] == -1 || v[0] == 0 || v[0] > 0)) {
            return Err(self.refuse(
                node,
                format!("a reshape to {v:?} (netcalc flattens each image to [N, C·H·W])"),
            ));
        }
        Ok(())
    }

    fn dense(&self, node: &pb::NodeProto) -> Result<Layer> {
        let name = node
            .input
            .get(1)
            .ok_or_else(|| self.refuse(node, "no weight"))?;
        let w = self.tensor(node, name)?;
        if w.dims.len() != 2 {
            return Err(self.refuse(node, format!("a weight of shape {:?}", w.dims)));
        }
        let mut bias = None;
        let trans_b = if node.op_type == "Gemm" {
            self.only_attributes(node, &["alpha", "beta", "transA", "transB"])?;
            for (a, default) in [("alpha", 1.0), ("beta", 1.0)] {
                let v = node
                    .attribute
                    .iter()
                    .find(|x| x.name == a)
                    .map_or(default, |x| x.f);
                if v != 1.0 {
                    return Err(self.refuse(node, format!("{a} {v}")));
                }
            }
            if int_of(node, "transA").unwrap_or(0) != 0 {
                return Err(self.refuse(node, "transA 1"));
            }
            if let Some(c) = node.input.get(2).filter(|c| !c.is_empty()) {
                bias = Some(self.tensor(node, c)?);
            }
            int_of(node, "transB").unwrap_or(0) == 1
        } else {
            false
        };
        // [out, in] as PyTorch keeps it
        let weight = if trans_b {
            w
        } else {
            let (inp, out) = (w.dims[0], w.dims[1]);
            let mut t = vec![0.0; inp * out];
            for i in 0..inp {
                for o in 0..out {
                    t[o * inp + i] = w.values[i * out + o];
                }
            }
            Weights {
                dims: vec![out, inp],
                values: t,
            }
        };
        if let Some(b) = &bias
            && b.values.len() != weight.dims[0]
        {
            return Err(self.refuse(
                node,
                format!(
                    "a bias of {} values for {} outputs",
                    b.values.len(),
                    weight.dims[0]
                ),
            ));
        }
        Ok(Layer {
            weight,
            bias,
            activation: None,
        })
    }

    fn bias_of(&self, node: &pb::NodeProto) -> Result<Weights> {
        let other = node
            .input
            .get(1)
            .ok_or_else(|| self.refuse(node, "an addition of one input"))?;
        if !self.tensors.contains_key(other) {
            return Err(self.refuse(
                node,
                format!(
                    "it adds the computed tensor `{other}` (a residual connection: netcalc's models are a chain)"
                ),
            ));
        }
        let b = self.tensor(node, other)?;
        let n = b.values.len();
        Ok(Weights {
            dims: vec![n],
            values: b.values,
        })
    }

    fn only_attributes(&self, node: &pb::NodeProto, known: &[&str]) -> Result<()> {
        match node
            .attribute
            .iter()
            .find(|a| !known.contains(&a.name.as_str()))
        {
            Some(a) => Err(self.refuse(node, format!("the attribute `{}`", a.name))),
            None => Ok(()),
        }
    }

    fn auto_pad_notset(&self, node: &pb::NodeProto) -> Result<()> {
        match node.attribute.iter().find(|a| a.name == "auto_pad") {
            Some(a) if !(a.s.is_empty() || a.s == b"NOTSET") => {
                Err(self.refuse(node, format!("auto_pad {}", String::from_utf8_lossy(&a.s))))
            }
            _ => Ok(()),
        }
    }
}

fn ints_of(node: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

fn int_of(node: &pb::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// `[C, H, W]` of an `[N, C, H, W]` f32 input with C, H and W fixed.
fn input_shape(v: &pb::ValueInfoProto) -> Option<[usize; 3]> {
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    if t.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return None;
    }
    let dims = &t.shape.as_ref()?.dim;
    if dims.len() != 4 {
        return None;
    }
    let fixed = |d: &pb::tensor_shape_proto::Dimension| match d.value {
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Some(v as usize),
        _ => None,
    };
    Some([fixed(&dims[1])?, fixed(&dims[2])?, fixed(&dims[3])?])
}
