//! A trained model as an ONNX graph (`model.onnx`): opset 17, a dynamic batch, the input
//! `input` `[N, C, H, W]` (normalised as the model expects), the outputs `logits` (the class
//! scores netcalc computes) and `probabilities` (their softmax), and the data contract in
//! `metadata_props`.
//!
//! Each block becomes `Conv` → its activation → its pooling (`MaxPool`, or `AveragePool`
//! with `count_include_pad = 1`, as netcalc and PyTorch count padding); then `Flatten`
//! (axis 1, the `C·H·W` order netcalc flattens in); then each dense layer a `Gemm` with the
//! weight in PyTorch's `[out, in]` layout (`transB = 1`), its activation after it. Dropout is
//! an identity at inference and has no node. The tensors are named as netcalc's parameters
//! (`features.blocks.0.conv.weight`, `classifier.layers.1.bias`).

use prost::Message;
use tract_onnx::pb;

use super::{IR_VERSION, META_PREFIX, OPSET};
use crate::app::data::DataInfo;
use crate::error::{Error, Result};
use crate::functional::activation::Activation;
use crate::functional::pool::PoolKind;
use crate::model::{Cnn, CnnConfig};

/// The ONNX file of `model` (built from `config`, trained on data `info`), as bytes.
pub fn to_onnx(model: &Cnn, config: &CnnConfig, info: &DataInfo) -> Result<Vec<u8>> {
    let mut g = Graph::default();
    let [c, h, w] = config.features.input;
    let mut x = "input".to_string();
    for (i, (block, cfg)) in model
        .features
        .blocks
        .iter()
        .zip(&config.features.blocks)
        .enumerate()
    {
        let prefix = format!("features.blocks.{i}");
        let weight = values(block.conv.weight.val())?;
        let wdims = block.conv.weight.dims();
        let wname = format!("{prefix}.conv.weight");
        g.initializer(&wname, &wdims, weight);
        let mut inputs = vec![x.clone(), wname];
        if let Some(b) = &block.conv.bias {
            let bname = format!("{prefix}.conv.bias");
            g.initializer(&bname, &b.dims(), values(b.val())?);
            inputs.push(bname);
        }
        let (k, s, p) = (cfg.kernel as i64, cfg.stride as i64, cfg.padding as i64);
        x = g.node(
            "Conv",
            &format!("{prefix}.conv"),
            inputs,
            vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[s, s]),
                ints("pads", &[p, p, p, p]),
                ints("dilations", &[1, 1]),
                int("group", 1),
            ],
        );
        x = g.activation(cfg.activation, &format!("{prefix}.activation"), x);
        if let Some(pool) = &block.pool {
            let [kh, kw] = pool.kernel.map(|v| v as i64);
            let [sh, sw] = pool.stride.map(|v| v as i64);
            let [ph, pw] = pool.padding.map(|v| v as i64);
            let mut attrs = vec![
                ints("kernel_shape", &[kh, kw]),
                ints("strides", &[sh, sw]),
                ints("pads", &[ph, pw, ph, pw]),
            ];
            let op = match pool.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Avg => {
                    attrs.push(int("count_include_pad", 1));
                    "AveragePool"
                }
            };
            x = g.node(op, &format!("{prefix}.pool"), vec![x], attrs);
        }
    }
    x = g.node("Flatten", "features.flatten", vec![x], vec![int("axis", 1)]);
    let layers = &model.classifier.layers;
    let cls = &config.classifier;
    for (i, layer) in layers.iter().enumerate() {
        let prefix = format!("classifier.layers.{i}");
        // burn keeps [in, out]; the file has PyTorch's [out, in] and transB = 1
        let [n_in, n_out] = layer.weight.dims();
        let wname = format!("{prefix}.weight");
        g.initializer(
            &wname,
            &[n_out, n_in],
            values(layer.weight.val().transpose())?,
        );
        let mut inputs = vec![x.clone(), wname];
        if let Some(b) = &layer.bias {
            let bname = format!("{prefix}.bias");
            g.initializer(&bname, &b.dims(), values(b.val())?);
            inputs.push(bname);
        }
        x = g.node("Gemm", &prefix, inputs, vec![int("transB", 1)]);
        let act = if i + 1 == layers.len() {
            cls.output_activation
        } else {
            cls.hidden_activation
        };
        x = g.activation(act, &format!("{prefix}.activation"), x);
    }
    let classes = model.num_classes();
    // the class scores under their public name
    g.nodes.push(pb::NodeProto {
        input: vec![x],
        output: vec!["logits".into()],
        name: "logits".into(),
        op_type: "Identity".into(),
        ..Default::default()
    });
    g.nodes.push(pb::NodeProto {
        input: vec!["logits".into()],
        output: vec!["probabilities".into()],
        name: "probabilities".into(),
        op_type: "Softmax".into(),
        attribute: vec![int("axis", -1)],
        ..Default::default()
    });
    let batch = || dim_param("N");
    let graph = pb::GraphProto {
        node: g.nodes,
        name: config.name.clone(),
        initializer: g.initializers,
        input: vec![value_info("input", vec![batch(), dim(c), dim(h), dim(w)])],
        output: vec![
            value_info("logits", vec![batch(), dim(classes)]),
            value_info("probabilities", vec![batch(), dim(classes)]),
        ],
        doc_string: format!(
            "netcalc {}: input [N, {c}, {h}, {w}] f32, normalised per channel ((p / 255 - mean) / std, see metadata_props); outputs logits and probabilities [N, {classes}]",
            config.name
        ),
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "netcalc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: 1,
        doc_string: format!("{} trained by netcalc", config.name),
        graph: Some(graph),
        metadata_props: metadata(config, info)?,
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// The data contract as `metadata_props`: each part under its own key, plus the whole
/// contract (`netcalc.json`, what `import --onnx` reads back).
fn metadata(config: &CnnConfig, info: &DataInfo) -> Result<Vec<pb::StringStringEntryProto>> {
    let manifest = crate::app::interop::ExportManifest {
        model: config.clone(),
        data: info.clone(),
    };
    let entries = [
        ("classes", json(&info.classes)?),
        ("input_shape", json(&info.shape)?),
        ("mean", json(&info.normalization.mean)?),
        ("std", json(&info.normalization.std)?),
        (
            "normalization",
            "(p / 255 - mean[c]) / std[c] for each pixel p of channel c".into(),
        ),
        ("preprocess", json(&info.preprocess)?),
        ("version", env!("CARGO_PKG_VERSION").into()),
        ("json", json(&manifest)?),
    ];
    Ok(entries
        .into_iter()
        .map(|(k, v)| pb::StringStringEntryProto {
            key: format!("{META_PREFIX}{k}"),
            value: v,
        })
        .collect())
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::setting("onnx", e.to_string()))
}

/// Nodes and initializers as they are added.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl Graph {
    /// Adds `op` named `name` on `inputs`; returns its output's name (the node's name).
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        self.nodes.push(pb::NodeProto {
            input: inputs,
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        name.to_string()
    }

    /// The activation's node on `x` (none for the identity).
    fn activation(&mut self, a: Activation, name: &str, x: String) -> String {
        match a {
            Activation::Identity => x,
            Activation::Relu => self.node("Relu", name, vec![x], vec![]),
            Activation::Sigmoid => self.node("Sigmoid", name, vec![x], vec![]),
            Activation::Tanh => self.node("Tanh", name, vec![x], vec![]),
            // netcalc's softmax runs along the last dimension
            Activation::Softmax => self.node("Softmax", name, vec![x], vec![int("axis", -1)]),
        }
    }

    fn initializer(&mut self, name: &str, dims: &[usize], data: Vec<f32>) {
        self.initializers.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            name: name.to_string(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
    }
}

fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::setting("onnx", format!("cannot read a tensor: {e:?}")))
}

fn int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn dim(v: usize) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v as i64)),
        ..Default::default()
    }
}

fn dim_param(name: &str) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
            name.into(),
        )),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<pb::tensor_shape_proto::Dimension>) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
