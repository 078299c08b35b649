//! End-to-end training on the bundled sample, resume, determinism and prediction from PNG.
//! Runs on flex when it is compiled in (the fastest CPU backend), else on the first backend.

use std::sync::Mutex;

use netcalc::burn::tensor::Device;
use netcalc::data::Mnist;
use netcalc::predict::{class_probabilities, load_digit, save_digit_png};
use netcalc::train::{
    ProgressMode, RunOptions, TrainConfig, evaluate, load_model, locate_model, train,
};
use netcalc::{BackendKind, CnnConfig};

/// burn's device RNG is global per backend: runs that must be reproducible take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn device() -> (BackendKind, Device) {
    let kind = if BackendKind::Flex.is_compiled() {
        BackendKind::Flex
    } else {
        netcalc::compiled_backends()[0]
    };
    (kind, netcalc::device_of(kind).expect("device"))
}

fn opts(out: &std::path::Path, kind: BackendKind) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        resume: false,
        stop_after: None,
        progress: ProgressMode::Plain,
        backend: kind,
    }
}

#[test]
fn trains_to_90_percent_and_predicts_from_png() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Mnist::bundled().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        limit: Some(4000),
        ..TrainConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = train(&cfg, &data, &d, &opts(dir.path(), kind)).unwrap();
    let acc = run.evaluation.accuracy;
    eprintln!(
        "held-out accuracy after 2 epochs on 4000 images: {:.2}%",
        100.0 * acc
    );
    assert!(acc >= 0.90, "held-out accuracy {acc}");
    assert_eq!(run.history.len(), 2);
    assert!(run.history[1].train_loss < run.history[0].train_loss);
    for f in [
        "config.json",
        "metrics.csv",
        "metrics.json",
        "model.bpk",
        "confusion.csv",
        "loss.png",
        "accuracy.png",
        "confusion.png",
        "checkpoint.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert!(
        dir.path()
            .join("checkpoint-epoch-002/optimizer.bpk")
            .is_file()
    );
    assert!(
        !dir.path().join("checkpoint-epoch-001").exists(),
        "old checkpoint kept"
    );
    let confusion_total: u64 = run.evaluation.confusion.iter().flatten().sum();
    assert_eq!(confusion_total, 2000);

    // the saved model gives the same evaluation
    let (mcfg, path) = locate_model(dir.path()).unwrap();
    let model = load_model(&mcfg, &path, &d).unwrap();
    let again = evaluate(&model, &data.test, &d, 500).unwrap();
    assert!((again.accuracy - acc).abs() < 1e-9);

    // held-out digits written to PNG and read back predict their class
    let png_dir = tempfile::tempdir().unwrap();
    let mut digits = Vec::new();
    for i in 0..10 {
        let p = png_dir.path().join(format!("digit{i}.png"));
        save_digit_png(data.test.image(i), &p).unwrap();
        let loaded = load_digit(&p).unwrap();
        assert_eq!(loaded, data.test.image(i), "PNG round trip of digit {i}");
        digits.push(loaded);
    }
    let probs = class_probabilities(&model, &digits, &d);
    let hits = probs
        .iter()
        .zip(&data.test.labels[..10])
        .filter(|(p, l)| netcalc::predict::top_k(p, 1)[0].0 == **l as usize)
        .count();
    assert!(hits >= 9, "{hits}/10 PNG digits classified correctly");
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Mnist::bundled().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 50,
        limit: Some(600),
        seed: 11,
        ..TrainConfig::default()
    };
    let full = tempfile::tempdir().unwrap();
    let a = train(&cfg, &data, &d, &opts(full.path(), kind)).unwrap();

    // the same seed gives the same run
    let again = tempfile::tempdir().unwrap();
    let b = train(&cfg, &data, &d, &opts(again.path(), kind)).unwrap();

    // stopped after epoch 1, then resumed to epoch 2
    let part = tempfile::tempdir().unwrap();
    let mut o = opts(part.path(), kind);
    o.stop_after = Some(1);
    let first = train(&cfg, &data, &d, &o).unwrap();
    assert_eq!(first.history.len(), 1);
    o.stop_after = None;
    o.resume = true;
    let c = train(&cfg, &data, &d, &o).unwrap();
    assert_eq!(c.history.len(), 2);

    let key = |h: &[netcalc::train::metrics::EpochMetrics]| -> Vec<(f64, f64, f64, f64, f64)> {
        h.iter()
            .map(|m| {
                (
                    m.train_loss,
                    m.train_accuracy,
                    m.test_loss,
                    m.test_accuracy,
                    m.lr,
                )
            })
            .collect()
    };
    eprintln!(
        "uninterrupted {:?}\nrepeat        {:?}\nresumed       {:?}",
        key(&a.history),
        key(&b.history),
        key(&c.history)
    );
    assert_eq!(
        key(&a.history),
        key(&b.history),
        "same seed, different metrics"
    );
    assert_eq!(key(&a.history), key(&c.history), "resumed run differs");
    assert_eq!(a.evaluation, c.evaluation);
}

#[test]
fn bad_settings_fail_before_training() {
    let (kind, d) = device();
    let data = Mnist::bundled().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        batch_size: 0,
        ..TrainConfig::default()
    };
    let err = train(&cfg, &data, &d, &opts(dir.path(), kind))
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch-size"), "{err}");
    let mut cfg = TrainConfig::default();
    cfg.optimizer.lr = -1.0;
    assert!(train(&cfg, &data, &d, &opts(dir.path(), kind)).is_err());
    let mut model = CnnConfig::keras_mnist();
    model.classifier.n_inputs = 7;
    let cfg = TrainConfig {
        model,
        ..TrainConfig::default()
    };
    let err = train(&cfg, &data, &d, &opts(dir.path(), kind))
        .unwrap_err()
        .to_string();
    assert!(err.contains("classifier.n_inputs"), "{err}");
    assert!(!dir.path().join("checkpoint.json").exists());
    // resuming where there is no checkpoint names the missing file
    let mut o = opts(dir.path(), kind);
    o.resume = true;
    let err = train(&TrainConfig::default(), &data, &d, &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checkpoint.json"), "{err}");
    // a model file that is not a model
    let bad = dir.path().join("model.bpk");
    std::fs::write(&bad, b"garbage").unwrap();
    let err = load_model(&CnnConfig::keras_mnist(), &bad, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.bpk"), "{err}");
}
