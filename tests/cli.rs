//! The `mnist` example's command line: bad input gives a one-line error and exit code 2 before
//! any training starts. (cargo builds the examples before it runs the tests.)

use std::path::PathBuf;
use std::process::{Command, Output};

fn example() -> PathBuf {
    // target/<profile>/deps/cli-<hash> -> target/<profile>/examples/mnist
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    dir.join("examples")
        .join(format!("mnist{}", std::env::consts::EXE_SUFFIX))
}

fn run(args: &[&str]) -> Output {
    Command::new(example())
        .args(args)
        .env(
            "NETCALC_CACHE_DIR",
            std::env::temp_dir().join("netcalc-cli-test-cache"),
        )
        .output()
        .expect("run the mnist example")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn summary_prints_the_keras_numbers() {
    let o = run(&["summary", "--model", "keras-cnn"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for n in ["320", "18,496", "16,010", "Total params: 34,826"] {
        assert!(s.contains(n), "{n} missing from\n{s}");
    }
}

#[test]
fn invalid_flags_exit_2() {
    let o = run(&["--epochs", "many"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--epochs", "0", "--offline"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("epochs"), "{e}");
    let o = run(&["--device", "cuda", "--offline"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown backend `cuda`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--optimizer", "adagrad", "--offline"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn missing_or_corrupt_data_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&[
        "--data-dir",
        "/nonexistent/mnist",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("/nonexistent/mnist"), "{e}");

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "test-images-idx3-ubyte.gz",
    ] {
        std::fs::copy(sample.join(f), data.join(f)).unwrap();
    }
    // a truncated label file
    let labels = std::fs::read(sample.join("test-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(
        data.join("test-labels-idx1-ubyte.gz"),
        &labels[..labels.len() / 2],
    )
    .unwrap();
    let o = run(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("test-labels-idx1-ubyte.gz") && e.contains("corrupt"),
        "{e}"
    );
    assert!(!out.join("checkpoint.json").exists());
}

#[test]
fn unwritable_out_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("run");
    let o = run(&["--offline", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("not writable"), "{e}");
}

#[test]
fn predict_with_a_missing_model_exits_2() {
    let o = run(&["predict", "--model", "/nonexistent/run", "x.png"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
}
