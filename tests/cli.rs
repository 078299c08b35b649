//! The `mnist` example's command line: bad input gives a one-line error and exit code 2 before
//! any training starts.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `mnist` example's executable, as Cargo reports it: `cargo build --example mnist
/// --message-format json` with this test's profile and features (already built by `cargo test`,
/// so nothing is rebuilt), reading the artifact's `executable` path.
fn example() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let features: Vec<&str> = [
            ("ndarray", cfg!(feature = "ndarray")),
            ("flex", cfg!(feature = "flex")),
            ("wgpu", cfg!(feature = "wgpu")),
            ("mnist", cfg!(feature = "mnist")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args([
            "build",
            "--example",
            "mnist",
            "--message-format",
            "json",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .args(["--no-default-features", "--features", &features.join(",")]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build --example mnist");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "mnist")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable for the mnist example")
    })
    .clone()
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
    // a failed run leaves no run directory behind
    assert!(!out.exists(), "{} was left behind", out.display());
}

/// A run's `config.json`, edited by hand as a user would: each mistake is a one-line error
/// naming the field, exit code 2, and no run directory.
#[test]
fn hand_edited_configs_exit_2_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/config-main-6e7affd.json"
    ))
    .unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit, &[&str]); 4] = [
        (
            "misspelled key",
            Box::new(|v| {
                let c = v["model"]["classifier"].as_object_mut().unwrap();
                let d = c.remove("hidden_dropout").unwrap();
                c.insert("hiden_dropout".into(), d);
            }),
            &["model.classifier", "unknown field `hiden_dropout`"],
        ),
        (
            "5 classes",
            Box::new(|v| v["model"]["classifier"]["n_neurons"][1] = 5.into()),
            &["model.classifier.n_neurons[1]", "5 output classes", "10"],
        ),
        (
            "32x32 input",
            Box::new(|v| {
                v["model"]["features"]["input"] = serde_json::json!([1, 32, 32]);
                v["model"]["classifier"]["n_inputs"] = (64 * 6 * 6).into();
            }),
            &["model.features.input", "[1, 32, 32]", "[1, 28, 28]"],
        ),
        (
            "3 channels",
            Box::new(|v| v["model"]["features"]["input"] = serde_json::json!([3, 28, 28])),
            &["model.features.input", "[3, 28, 28]"],
        ),
    ];
    for (i, (what, edit, expect)) in cases.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        edit(&mut v);
        let cfg = dir.path().join(format!("c{i}.json"));
        std::fs::write(&cfg, v.to_string()).unwrap();
        let out = dir.path().join(format!("run{i}"));
        let o = run(&[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--offline",
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {e}");
        assert_eq!(e.lines().count(), 1, "{what}: {e}");
        for s in *expect {
            assert!(e.contains(s), "{what}: `{s}` missing from {e}");
        }
        assert!(!out.exists(), "{what}: a run directory was written");
    }
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
