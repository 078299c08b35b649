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
    assert_eq!(written.len(), 4);
    for name in [
        "model.safetensors",
        "model.py",
        "classes.json",
        "netcalc.json",
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
