//! End-to-end training on the bundled sample, resume, determinism and prediction from PNG.
//! Runs on flex when it is compiled in (the fastest CPU backend), else on the first backend.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use netcalc::app::data::{DataInfo, Dataset};
use netcalc::app::predict::{class_probabilities, load_digit, save_digit_png};
use netcalc::app::train::{CheckpointInfo, RunDir};
use netcalc::app::train::{
    ProgressMode, RunOptions, TrainConfig, evaluate, load_model, locate_model, train,
};
use netcalc::burn::tensor::Device;
use netcalc::{BackendKind, CnnConfig, Error};

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
        interrupt: None,
        data_record: None,
    }
}

#[test]
fn trains_to_90_percent_and_predicts_from_png() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Dataset::bundled().unwrap();
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
    let probs = class_probabilities(&model, &DataInfo::mnist(), &digits, &d).unwrap();
    let hits = probs
        .iter()
        .zip(&data.test.labels[..10])
        .filter(|(p, l)| netcalc::app::predict::top_k(p, 1)[0].0 == **l as usize)
        .count();
    assert!(hits >= 9, "{hits}/10 PNG digits classified correctly");
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Dataset::bundled().unwrap();
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

    let key = |h: &[netcalc::app::train::metrics::EpochMetrics]| -> Vec<(f64, f64, f64, f64, f64)> {
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

    // interrupted (the flag a Ctrl-C handler sets) after the first batch of epoch 1, and after
    // the first batch of epoch 2: each stops with a checkpoint of the unfinished epoch, and
    // resuming from it gives the uninterrupted run's metrics exactly
    for stop_first in [None, Some(1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), kind);
        if stop_first.is_some() {
            o.stop_after = stop_first;
            train(&cfg, &data, &d, &o).unwrap();
            o.stop_after = None;
            o.resume = true;
        }
        o.interrupt = Some(Arc::new(AtomicBool::new(true)));
        let err = train(&cfg, &data, &d, &o).unwrap_err();
        let done = stop_first.unwrap_or(0);
        assert!(
            matches!(err, Error::Interrupted { epoch, batches: 1, .. } if epoch == done),
            "{err}"
        );
        let info: CheckpointInfo =
            netcalc::app::fsio::read_json(&dir.path().join(RunDir::CHECKPOINT)).unwrap();
        assert_eq!(
            (info.epoch, info.in_epoch.map(|p| p.batches)),
            (done, Some(1))
        );
        o.interrupt = None;
        o.resume = true;
        let r = train(&cfg, &data, &d, &o).unwrap();
        assert_eq!(
            key(&a.history),
            key(&r.history),
            "run interrupted in epoch {} differs",
            done + 1
        );
        assert_eq!(a.evaluation, r.evaluation);
    }
}

/// An absurd learning rate makes the loss infinite or NaN: training stops naming the epoch,
/// the batch and the learning rate, and the last checkpoint stays the one of the last good
/// epoch, loadable.
#[test]
fn a_diverging_loss_stops_training_and_keeps_the_last_checkpoint() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Dataset::bundled().unwrap();
    let mut cfg = TrainConfig {
        model: CnnConfig::keras_mnist(),
        epochs: 2,
        batch_size: 50,
        limit: Some(500),
        schedule: netcalc::app::train::Schedule::Constant,
        ..TrainConfig::default()
    };
    cfg.optimizer.kind = netcalc::app::train::OptimizerKind::Sgd;
    cfg.optimizer.lr = 0.01;
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), kind);
    o.stop_after = Some(1);
    train(&cfg, &data, &d, &o).unwrap();
    let before = std::fs::read(dir.path().join(RunDir::CHECKPOINT)).unwrap();

    let mut absurd = cfg.clone();
    absurd.optimizer.lr = 1e8;
    o.stop_after = None;
    o.resume = true;
    let err = train(&absurd, &data, &d, &o).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Diverged { epoch: 2, lr, .. } if lr == 1e8),
        "{msg}"
    );
    assert!(
        msg.contains("epoch 2, batch") && msg.contains("learning rate"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(RunDir::CHECKPOINT)).unwrap(),
        before,
        "the checkpoint pointer changed"
    );
    let ckpt = RunDir::open(dir.path())
        .unwrap()
        .read_checkpoint(&cfg, &d.autodiff())
        .unwrap();
    assert_eq!(ckpt.info.epoch, 1);
    assert_eq!(ckpt.history.len(), 1);
}

#[test]
fn bad_settings_fail_before_training() {
    let (kind, d) = device();
    let data = Dataset::bundled().unwrap();
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

/// A checkpoint that cannot be written (here: its temporary directory's name is taken by a
/// file, as root ignores read-only permissions) is a clear error naming the path, and the
/// previous checkpoint stays the one `checkpoint.json` points to; once the cause is gone the
/// run resumes from it.
#[test]
fn a_failed_checkpoint_write_keeps_the_previous_checkpoint() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (kind, d) = device();
    let data = Dataset::bundled().unwrap();
    let cfg = TrainConfig {
        model: CnnConfig::mlp(),
        epochs: 2,
        batch_size: 100,
        limit: Some(300),
        ..TrainConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), kind);
    o.stop_after = Some(1);
    train(&cfg, &data, &d, &o).unwrap();
    let before = std::fs::read(dir.path().join(RunDir::CHECKPOINT)).unwrap();
    let blocker = dir.path().join(".checkpoint-epoch-002.tmp");
    std::fs::write(&blocker, b"in the way").unwrap();
    o.stop_after = None;
    o.resume = true;
    let err = train(&cfg, &data, &d, &o).unwrap_err().to_string();
    assert!(err.contains(".checkpoint-epoch-002.tmp"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(RunDir::CHECKPOINT)).unwrap(),
        before
    );
    std::fs::remove_file(&blocker).unwrap();
    let r = train(&cfg, &data, &d, &o).unwrap();
    assert_eq!(r.history.len(), 2);
}

/// A model file of another architecture: the error names the file, the layer and both shapes.
#[test]
fn a_model_of_another_architecture_names_the_layer_and_shapes() {
    let (_, d) = device();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    let mut small = CnnConfig::keras_mnist();
    small.classifier = netcalc::ClassifierConfig::new(1600, [20]);
    use netcalc::burn::module::Module;
    small.init(&d).unwrap().save_file(&path).unwrap();
    let err = load_model(&CnnConfig::keras_mnist(), &path, &d)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.bpk")
            && err.contains("classifier.layers.0.weight")
            && err.contains("[1600, 10]")
            && err.contains("[1600, 20]"),
        "{err}"
    );
}
