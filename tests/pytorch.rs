//! Whole networks against PyTorch: state dicts written by `tests/data/pytorch_reference.py`
//! (PyTorch, float64) for the Keras convnet and the default `cnn` are read through the import
//! path; on every backend compiled in, the logits, the mean cross-entropy and every
//! parameter's gradient on 16 real held-out digits agree with PyTorch's within 1e-4 relative.
//! And an export gives back, through the safetensors file, exactly PyTorch's names, shapes and
//! values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use netcalc::app::data::{DataInfo, Normalization};
use netcalc::app::interop::{ImportOptions, import, load_weights, safetensors_bytes};
use netcalc::app::predict::images_tensor;
use netcalc::burn::nn::loss::CrossEntropyLossConfig;
use netcalc::burn::tensor::{Int, Tensor, TensorData};
use netcalc::testing::{all_devices, values};
use netcalc::{CnnConfig, ModelPreset};
use safetensors::SafeTensors;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Every tensor of a safetensors file, as f32 (or, for `images`, the u8 bytes as f32).
fn read_all(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let raw = view.data();
            let v: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                safetensors::Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                safetensors::Dtype::U8 => raw.iter().map(|&b| b as f32).collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), v))
        })
        .collect()
}

/// Within `tol` relative to the largest magnitude of `expected` (so that values near zero are
/// held to the same absolute standard as the large ones).
#[track_caller]
fn assert_rel(what: &str, got: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let worst = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0f32, f32::max);
    assert!(worst <= tol, "{what}: relative error {worst:e} > {tol:e}");
}

/// The preset without dropout: PyTorch's reference runs in eval mode, and dropout has no
/// parameters, so the weights are the same.
fn without_dropout(preset: ModelPreset) -> CnnConfig {
    let mut cfg = preset.config();
    cfg.classifier.input_dropout = 0.0;
    cfg.classifier.hidden_dropout = 0.0;
    cfg
}

#[test]
fn logits_loss_and_every_gradient_equal_pytorchs() {
    for preset in [ModelPreset::KerasCnn, ModelPreset::Cnn] {
        let name = preset.name();
        let expected = read_all(&data(&format!("pytorch-{name}-expected.safetensors")));
        let cfg = without_dropout(preset);
        let (_, images) = &expected["images"];
        let digits: Vec<Vec<u8>> = images
            .chunks(784)
            .map(|c| c.iter().map(|&v| v as u8).collect())
            .collect();
        let labels: Vec<i64> = expected["labels"].1.iter().map(|&v| v as i64).collect();
        for (kind, device) in all_devices() {
            let ad = device.autodiff();
            let model = load_weights(&cfg, &data(&format!("pytorch-{name}.safetensors")), &ad)
                .unwrap_or_else(|e| panic!("{name} on {kind}: {e}"));
            let x = images_tensor(&DataInfo::mnist(), &digits, &ad).unwrap();
            let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(labels.clone(), [16]), &ad);
            let logits = model.forward(x);
            let loss = CrossEntropyLossConfig::new()
                .init(&ad)
                .forward(logits.clone(), y);
            let case = format!("{name} on {kind}");
            assert_rel(
                &format!("{case}: logits"),
                &values(logits),
                &expected["logits"].1,
                1e-4,
            );
            assert_rel(
                &format!("{case}: loss"),
                &values(loss.clone()),
                &expected["loss"].1,
                1e-4,
            );
            let grads = loss.backward();
            let mut checked = 0;
            for (key, (shape, want)) in expected.iter().filter(|(k, _)| k.starts_with("grad.")) {
                let param = key.trim_start_matches("grad.");
                let got = gradient(&model, &grads, param);
                assert_eq!(got.0, *shape, "{case}: {param} shape");
                assert_rel(&format!("{case}: gradient of {param}"), &got.1, want, 1e-4);
                checked += 1;
            }
            let params = 2 * (model.features.blocks.len() + model.classifier.layers.len());
            assert_eq!(checked, params, "{case}: every parameter");
        }
    }
}

/// The gradient of parameter `name` (a PyTorch state-dict key), in PyTorch's layout (a linear
/// layer's weight transposed to `[out, in]`).
fn gradient(
    model: &netcalc::Cnn,
    grads: &netcalc::burn::tensor::Gradients,
    name: &str,
) -> (Vec<usize>, Vec<f32>) {
    let parts: Vec<&str> = name.split('.').collect();
    let of = |t: Tensor<4>| (t.dims().to_vec(), values(t));
    let of1 = |t: Tensor<1>| (t.dims().to_vec(), values(t));
    match parts.as_slice() {
        ["features", "blocks", i, "conv", "weight"] => of(model.features.blocks
            [i.parse::<usize>().unwrap()]
        .conv
        .weight
        .grad(grads)
        .unwrap()),
        ["features", "blocks", i, "conv", "bias"] => of1(model.features.blocks
            [i.parse::<usize>().unwrap()]
        .conv
        .bias
        .as_ref()
        .unwrap()
        .grad(grads)
        .unwrap()),
        ["classifier", "layers", i, "weight"] => {
            let g = model.classifier.layers[i.parse::<usize>().unwrap()]
                .weight
                .grad(grads)
                .unwrap();
            let t = g.transpose();
            (t.dims().to_vec(), values(t))
        }
        ["classifier", "layers", i, "bias"] => of1(model.classifier.layers
            [i.parse::<usize>().unwrap()]
        .bias
        .as_ref()
        .unwrap()
        .grad(grads)
        .unwrap()),
        _ => panic!("unexpected parameter {name}"),
    }
}

/// The import path: the state dict, as safetensors and as `torch.save`, becomes a run
/// directory whose model gives PyTorch's logits; the export of that model is the state dict
/// again, key for key, shape for shape, value for value.
#[test]
fn import_then_export_gives_pytorchs_state_dict_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("model.json");
    std::fs::write(
        &config,
        serde_json::to_string(&ModelPreset::KerasCnn.config()).unwrap(),
    )
    .unwrap();
    let state = read_all(&data("pytorch-keras-cnn.safetensors"));
    let expected = read_all(&data("pytorch-keras-cnn-expected.safetensors"));
    let device = netcalc::testing::test_device();
    for weights in ["pytorch-keras-cnn.safetensors", "pytorch-keras-cnn.pt"] {
        let out = dir.path().join(format!("run-{weights}"));
        let opts = ImportOptions {
            config: config.clone(),
            weights: data(weights),
            classes: None,
            normalization: Some(Normalization::mnist(1)),
            preprocess: None,
            out: out.clone(),
        };
        import(&opts, &device).unwrap_or_else(|e| panic!("{weights}: {e}"));
        let m = netcalc::app::session::TrainedModel::open(&out, None).unwrap();
        let digits: Vec<Vec<u8>> = expected["images"]
            .1
            .chunks(784)
            .map(|c| c.iter().map(|&v| v as u8).collect())
            .collect();
        let x = images_tensor(&m.info, &digits, &m.device).unwrap();
        assert_rel(
            weights,
            &values(m.model.forward(x)),
            &expected["logits"].1,
            1e-4,
        );
        // exported: exactly the keys, shapes and values of PyTorch's state dict
        let bytes = safetensors_bytes(&m.model, Path::new("model.safetensors")).unwrap();
        let path = dir.path().join("exported.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let exported = read_all(&path);
        assert_eq!(
            exported.keys().collect::<Vec<_>>(),
            state.keys().collect::<Vec<_>>(),
            "{weights}: the names"
        );
        for (k, (shape, v)) in &state {
            assert_eq!(&exported[k].0, shape, "{weights}: {k}");
            assert_eq!(&exported[k].1, v, "{weights}: {k}");
        }
    }
}

/// The state dict's tensors as (name, shape, f32 values), to be changed and written again.
fn state_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    read_all(&data("pytorch-keras-cnn.safetensors"))
        .into_iter()
        .map(|(k, (s, v))| (k, s, v))
        .collect()
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, s, v)| {
            (
                k.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, s, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (k.clone(), view)
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Every bad import is one line naming what is wrong, and writes nothing.
#[test]
fn bad_imports_name_the_tensor_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("model.json");
    std::fs::write(
        &config,
        serde_json::to_string(&ModelPreset::KerasCnn.config()).unwrap(),
    )
    .unwrap();
    let device = netcalc::testing::test_device();
    let out = dir.path().join("run");
    let try_import = |weights: &Path, classes: Option<PathBuf>| {
        let opts = ImportOptions {
            config: config.clone(),
            weights: weights.to_path_buf(),
            classes,
            normalization: None,
            preprocess: None,
            out: out.clone(),
        };
        let e = import(&opts, &device).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!out.exists(), "nothing written: {e}");
        e
    };
    let state = state_tensors();
    // a key the model has no place for
    let mut extra = state.clone();
    extra.push(("classifier.layers.7.weight".into(), vec![2], vec![0.0, 1.0]));
    let p = dir.path().join("extra.safetensors");
    write_safetensors(&p, &extra);
    let e = try_import(&p, None);
    assert!(
        e.contains("has tensor `classifier.layers.7.weight`, which the model has no parameter for"),
        "{e}"
    );
    // a missing tensor
    let missing: Vec<_> = state
        .iter()
        .filter(|(k, _, _)| k != "classifier.layers.0.bias")
        .cloned()
        .collect();
    let p = dir.path().join("missing.safetensors");
    write_safetensors(&p, &missing);
    let e = try_import(&p, None);
    assert!(
        e.contains("has no tensor `classifier.layers.0.bias`"),
        "{e}"
    );
    // a wrong shape: the message names the tensor and both shapes
    let mut wrong = state.clone();
    for t in &mut wrong {
        if t.0 == "classifier.layers.0.weight" {
            t.1 = vec![10, 1601];
            t.2.extend(std::iter::repeat_n(0.0, 10));
        }
    }
    let p = dir.path().join("wrong.safetensors");
    write_safetensors(&p, &wrong);
    let e = try_import(&p, None);
    assert!(
        e.contains(
            "tensor `classifier.layers.0.weight` has shape [10, 1601], the model needs [10, 1600]"
        ),
        "{e}"
    );
    // a truncated file, a file of neither format
    let bytes = std::fs::read(data("pytorch-keras-cnn.safetensors")).unwrap();
    let p = dir.path().join("truncated.safetensors");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = try_import(&p, None);
    assert!(
        e.contains("truncated.safetensors: cannot read the safetensors file"),
        "{e}"
    );
    let pt = std::fs::read(data("pytorch-keras-cnn.pt")).unwrap();
    let p = dir.path().join("truncated.pt");
    std::fs::write(&p, &pt[..pt.len() / 2]).unwrap();
    let e = try_import(&p, None);
    assert!(
        e.contains("truncated.pt: cannot read the PyTorch file"),
        "{e}"
    );
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "not weights at all").unwrap();
    let e = try_import(&p, None);
    assert!(
        e.contains("notes.txt: is neither safetensors nor a PyTorch state dict"),
        "{e}"
    );
    // class names that do not match the model's outputs
    let classes = dir.path().join("classes.json");
    std::fs::write(&classes, r#"["a", "b", "c"]"#).unwrap();
    let e = try_import(&data("pytorch-keras-cnn.safetensors"), Some(classes));
    assert!(
        e.contains("classes.json: names 3 classes, the config's model has 10 outputs"),
        "{e}"
    );
}

/// `export` refuses a directory that exists unless told to write into it.
#[test]
fn export_refuses_an_existing_directory_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let opts = ImportOptions {
        config: data("config-main-6e7affd.json"),
        weights: data("pytorch-cnn.safetensors"),
        classes: None,
        normalization: None,
        preprocess: None,
        out: run.clone(),
    };
    import(&opts, &netcalc::testing::test_device()).unwrap();
    let m = netcalc::app::session::TrainedModel::open(&run, None).unwrap();
    let out = dir.path().join("exported");
    std::fs::create_dir(&out).unwrap();
    let e = netcalc::app::interop::export(&m, &out, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists; give --force to write into it"), "{e}");
    let written = netcalc::app::interop::export(&m, &out, true).unwrap();
    assert_eq!(written.len(), 5);
    for name in [
        "model.safetensors",
        "model.py",
        "classes.json",
        "netcalc.json",
        "model.onnx",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }
    let py = std::fs::read_to_string(out.join("model.py")).unwrap();
    assert!(
        py.contains("def build()") && py.contains("def preprocess(images)"),
        "{py}"
    );
    assert!(
        py.contains("MEAN = [0.1307]") && py.contains("INPUT = [1, 28, 28]"),
        "{py}"
    );
}

// ---------------------------------------------------------------------------------------------
// ONNX: netcalc's export run by tract (an independent runtime), read back by `import --onnx`,
// and graphs netcalc cannot represent refused.

use netcalc::app::onnx::{OnnxModel, to_onnx};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::{Framework, InferenceModelExt, Tensor as TractTensor, tvec};

/// A data contract for a model of `config` (classes `c0…`, per-channel normalisation).
fn contract(config: &CnnConfig) -> DataInfo {
    let [c, _, _] = config.features.input;
    DataInfo {
        classes: (0..config.num_classes()).map(|i| format!("c{i}")).collect(),
        shape: config.features.input,
        normalization: Normalization {
            mean: vec![0.25; c],
            std: vec![0.5; c],
        },
        preprocess: netcalc::app::data::Preprocess::Resize,
    }
}

/// A 3-channel config with what the presets do not use: stride 2, padding, tanh, sigmoid,
/// average pooling with padding, a softmax output activation.
fn three_channel() -> CnnConfig {
    CnnConfig::from_json(
        r#"{
          "name": "rgb-test",
          "features": {"input": [3, 20, 18], "blocks": [
            {"filters": 6, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh",
             "pool": {"kind": "avg", "kernel": [2, 2], "stride": [1, 1], "padding": [1, 0]}},
            {"filters": 5, "kernel": 3, "padding": 1, "activation": "sigmoid",
             "pool": {"kind": "max", "kernel": [3, 2], "stride": [2, 2], "padding": [1, 1]}}
          ]},
          "classifier": {"n_inputs": 150, "n_neurons": [12, 4], "hidden_activation": "relu",
                         "output_activation": "softmax"}
        }"#,
    )
    .unwrap()
}

/// The logits tract computes for `x` `[n, C, H, W]` from the ONNX file `bytes`, and its
/// probabilities.
fn tract_run(bytes: &[u8], x: &[f32], dims: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = TractTensor::from_shape(&dims, x).unwrap();
    let out = model.run(tvec!(input.into())).unwrap();
    let v = |i: usize| -> Vec<f32> { out[i].as_slice::<f32>().unwrap().to_vec() };
    (v(0), v(1))
}

#[test]
fn tract_runs_every_exported_preset_and_a_3_channel_config_with_netcalcs_logits() {
    let d = netcalc::testing::test_device();
    let sample = netcalc::app::data::Dataset::bundled().unwrap();
    let mut configs: Vec<CnnConfig> = ModelPreset::ALL.iter().map(|p| p.config()).collect();
    configs.push(three_channel());
    for config in configs {
        let model = config.init(&d).unwrap();
        let info = contract(&config);
        let bytes = to_onnx(&model, &config, &info).unwrap();
        let [c, h, w] = config.features.input;
        let n = 16;
        // real digits for the MNIST presets, random pixels for the 3-channel model
        let images: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                if [c, h, w] == [1, 28, 28] {
                    sample.test.image(i).to_vec()
                } else {
                    (0..c * h * w)
                        .map(|j| ((i * 131 + j * 17) % 256) as u8)
                        .collect()
                }
            })
            .collect();
        let x = images_tensor(&info, &images, &d).unwrap();
        let input = values(x.clone());
        let logits = values(model.forward(x.clone()));
        let probs = values(netcalc::functional::prob::softmax(model.forward(x), 1));
        let (t_logits, t_probs) = tract_run(&bytes, &input, [n, c, h, w]);
        assert_rel(&format!("{} logits", config.name), &t_logits, &logits, 1e-5);
        assert_rel(
            &format!("{} probabilities", config.name),
            &t_probs,
            &probs,
            1e-5,
        );

        // and read back: the same network, the same numbers
        let back = OnnxModel::from_bytes(&bytes, Path::new("model.onnx")).unwrap();
        assert_eq!(back.info.as_ref(), Some(&info), "{}", config.name);
        assert_eq!(
            back.config.summary().unwrap().total_params(),
            config.summary().unwrap().total_params()
        );
        let again = back.build(&d).unwrap();
        let x = images_tensor(&info, &images, &d).unwrap();
        assert_eq!(values(again.forward(x)), logits, "{}", config.name);
    }
}

/// The file of a model of `config`, decoded, to be edited into graphs netcalc cannot read.
fn exported_proto(config: &CnnConfig) -> pb::ModelProto {
    let d = netcalc::testing::test_device();
    let model = config.init(&d).unwrap();
    pb::ModelProto::decode(&to_onnx(&model, config, &contract(config)).unwrap()[..]).unwrap()
}

fn import_err(proto: &pb::ModelProto) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.onnx");
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    let out = dir.path().join("run");
    let e = netcalc::app::onnx::import_onnx(
        &netcalc::app::onnx::OnnxImportOptions {
            onnx: path,
            config: None,
            contract: Default::default(),
            out: out.clone(),
        },
        &netcalc::testing::test_device(),
    )
    .unwrap_err()
    .to_string();
    assert!(!out.exists(), "nothing written: {e}");
    e
}

#[test]
fn graphs_netcalc_cannot_represent_are_refused_naming_node_and_op() {
    let config = ModelPreset::KerasCnn.config();
    // a BatchNormalization after the first convolution
    let mut bn = exported_proto(&config);
    let g = bn.graph.as_mut().unwrap();
    let at = g.node.iter().position(|n| n.op_type == "Conv").unwrap();
    let conv_out = g.node[at].output[0].clone();
    let mut norm = pb::NodeProto {
        input: vec![conv_out.clone()],
        output: vec!["bn".into()],
        name: "bn1".into(),
        op_type: "BatchNormalization".into(),
        ..Default::default()
    };
    for p in ["scale", "b", "mean", "var"] {
        g.initializer.push(pb::TensorProto {
            dims: vec![32],
            data_type: 1,
            name: format!("bn.{p}"),
            float_data: vec![1.0; 32],
            ..Default::default()
        });
        norm.input.push(format!("bn.{p}"));
    }
    g.node[at + 1].input[0] = "bn".into();
    g.node.insert(at + 1, norm);
    let e = import_err(&bn);
    assert!(
        e.contains(
            "node `bn1` (BatchNormalization): netcalc has no layer for `BatchNormalization`"
        ),
        "{e}"
    );
    // a residual connection: the second block's output plus its input
    let mut res = exported_proto(
        &CnnConfig::from_json(
            r#"{"name": "res", "features": {"input": [1, 8, 8], "blocks": [
              {"filters": 4, "kernel": 3, "padding": 1},
              {"filters": 4, "kernel": 3, "padding": 1}]},
            "classifier": {"n_inputs": 256, "n_neurons": [3]}}"#,
        )
        .unwrap(),
    );
    let g = res.graph.as_mut().unwrap();
    let relus: Vec<usize> = (0..g.node.len())
        .filter(|&i| g.node[i].op_type == "Relu")
        .collect();
    let (first, second) = (g.node[relus[0]].output[0].clone(), relus[1]);
    let add = pb::NodeProto {
        input: vec![g.node[second].output[0].clone(), first],
        output: vec!["sum".into()],
        name: "skip".into(),
        op_type: "Add".into(),
        ..Default::default()
    };
    g.node[second + 1].input[0] = "sum".into();
    g.node.insert(second + 1, add);
    let e = import_err(&res);
    assert!(e.contains("node `skip` (Add):"), "{e}");
    assert!(e.contains("residual"), "{e}");
    // an op netcalc has no layer for
    let mut leaky = exported_proto(&config);
    let g = leaky.graph.as_mut().unwrap();
    let relu = g.node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    relu.op_type = "LeakyRelu".into();
    let name = relu.name.clone();
    let e = import_err(&leaky);
    assert!(
        e.contains(&format!(
            "node `{name}` (LeakyRelu): netcalc has no layer for `LeakyRelu`"
        )),
        "{e}"
    );
    // an attribute it does not support: a dilated convolution
    let mut dilated = exported_proto(&config);
    let g = dilated.graph.as_mut().unwrap();
    let conv = g.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.attribute
        .iter_mut()
        .find(|a| a.name == "dilations")
        .unwrap()
        .ints = vec![2, 2];
    let e = import_err(&dilated);
    assert!(e.contains("(Conv): dilations [2, 2]"), "{e}");
    // not ONNX at all
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\xff\xff\xff not protobuf").unwrap();
    let e = OnnxModel::from_bytes(&std::fs::read(&junk).unwrap(), &junk)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not an ONNX model"), "{e}");
}
