//! The `netcalc` command line: bad input gives a one-line error and exit code 2 before any
//! training starts; interrupted runs resume; bench, import and export from the outside.

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "common/runs.rs"]
mod runs;
#[path = "common/shapes.rs"]
mod shapes;
use runs::metrics;
use shapes::write_shapes;

/// The `netcalc` binary Cargo built for these tests.
const NETCALC: &str = env!("CARGO_BIN_EXE_netcalc");

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(NETCALC);
    cmd.args(args).env(
        "NETCALC_CACHE_DIR",
        std::env::temp_dir().join("netcalc-cli-test-cache"),
    );
    cmd
}

fn run(args: &[&str]) -> Output {
    command(args).output().expect("run netcalc")
}

/// The CPU backend that the `bench` runs below use: flex when it is compiled in.
fn cpu_backend() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else {
        "ndarray"
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
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
    let e = stderr(&o);
    assert!(
        e.contains("invalid value 'cuda' for '--device <DEVICE>'")
            && e.contains("[possible values: auto, ndarray, flex, wgpu]"),
        "{e}"
    );
    let o = run(&["--optimizer", "adagrad", "--offline"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("[possible values: adam, adamw, sgd]"), "{e}");
    // every spelling of before keeps working: aliases and any case
    for (flag, value) in [
        ("--device", "nd"),
        ("--device", "FLEX"),
        ("--device", "vulkan"),
        ("--device", "gpu"),
        ("--device", "auto"),
        ("--model", "keras"),
        ("--model", "keras-cnn"),
        ("--optimizer", "AdamW"),
        ("--schedule", "constant"),
    ] {
        // `--epochs 0` stops the run right after the flags are parsed
        let o = run(&[flag, value, "--epochs", "0", "--offline"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {e}");
        assert!(
            e.contains("invalid setting `epochs`"),
            "{flag} {value}: {e}"
        );
    }
    // `all` is for `bench`
    let o = run(&["--device", "all", "--offline"]);
    assert!(
        stderr(&o).contains("`all` names every backend"),
        "{}",
        stderr(&o)
    );
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
    // the cause once, on one line (not `…: No such file…: No such file…`)
    let err = stderr(&o);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// Waits (at most two minutes) until `done` says yes, polling every `every` (zero: without
/// pause, to catch a state that lasts only milliseconds).
fn wait_until(what: &str, every: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill {sig} failed");
}

/// A real child process: Ctrl-C (SIGINT) after the first checkpoint stops at the end of the
/// batch with a checkpoint, prints the `--resume` command and exits 130; `kill -9` in the
/// middle of writing the second checkpoint leaves the first one loadable. Both, resumed, end
/// with exactly the metrics of an uninterrupted run (same seed, same backend).
#[test]
fn sigint_and_kill_9_leave_a_checkpoint_that_resumes_to_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    let args = |run: &std::path::Path| -> Vec<String> {
        [
            "train",
            "--offline",
            "--model",
            "keras-cnn",
            "--limit",
            "3000",
            "--epochs",
            "3",
            "--batch-size",
            "50",
            "--seed",
            "5",
            "--device",
            "flex",
            "--plain",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([run.display().to_string()])
        .collect()
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    let full = out("full");
    let o = run(&strs(&args(&full)));
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = metrics(&full);
    assert_eq!(expected.len(), 3);

    // Ctrl-C as soon as the first checkpoint is there (epoch 2 has started)
    let b = out("sigint");
    let child = command(&strs(&args(&b)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first checkpoint", ms(1), || {
        b.join("checkpoint.json").exists()
    });
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    let resume_line = e
        .lines()
        .find(|l| l.contains("--resume"))
        .unwrap_or_else(|| panic!("no --resume command in {e}"));
    let printed: Vec<&str> = resume_line.split_whitespace().collect();
    assert_eq!(
        &printed[1..],
        &["train", "--resume", b.to_str().unwrap(), "--device", "flex"],
        "{e}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("checkpoint.json")).unwrap()).unwrap();
    eprintln!("checkpoint after SIGINT: {info}");
    let o = run(&printed[1..]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&b), expected, "resumed after SIGINT");

    // kill -9 while the second checkpoint is being written (its temporary directory exists)
    let c = out("kill9");
    let mut child = command(&strs(&args(&c)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = c.join(".checkpoint-epoch-002.tmp");
    wait_until("the second checkpoint's write", ms(0), || {
        tmp.exists() || c.join("checkpoint-epoch-002").exists()
    });
    signal(&child, "-KILL");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    let during = tmp.exists();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.join("checkpoint.json")).unwrap()).unwrap();
    eprintln!(
        "killed {} the write; checkpoint.json: {info}",
        if during { "during" } else { "after" }
    );
    let o = run(&["train", "--resume", c.to_str().unwrap(), "--device", "flex"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&c), expected, "resumed after kill -9");
}

/// An absurd learning rate: the loss becomes NaN or infinite, training stops with one line
/// naming the epoch, the batch and the learning rate, exit code 3. (Diverging in the first
/// epoch, before any checkpoint, it leaves no run directory.)
#[test]
fn a_diverging_run_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&[
        "train",
        "--offline",
        "--model",
        "keras-cnn",
        "--optimizer",
        "sgd",
        "--lr",
        "1e8",
        "--schedule",
        "constant",
        "--limit",
        "500",
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--device",
        "flex",
        "--plain",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("training diverged") && e.contains("epoch 1, batch") && e.contains("1e8"),
        "{e}"
    );
    assert!(!out.exists());
}

/// An unknown `NETCALC_SIMD` value is said once on standard error, and the kernels run at the
/// best level this CPU has.
#[test]
fn an_unknown_simd_level_is_a_warning_on_stderr() {
    let device = cpu_backend();
    let args = [
        "bench",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--infer-batch-size",
        "4",
        "--device",
        device,
    ];
    let o = command(&args)
        .env("NETCALC_SIMD", "nonsense")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let warning =
        "netcalc: warning: NETCALC_SIMD=\"nonsense\" is not one of avx512, avx2, baseline; ignored";
    assert_eq!(e.matches(warning).count(), 1, "{e}");
    // a known value: no warning
    let o = command(&args).env("NETCALC_SIMD", "avx2").output().unwrap();
    assert!(
        o.status.success() && !stderr(&o).contains("warning"),
        "{}",
        stderr(&o)
    );
}

/// `bench` counts the binary's heap allocations and prints them per training step and per
/// inference batch, next to the throughput (and in its JSON).
#[test]
fn bench_reports_heap_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let device = cpu_backend();
    let o = command(&[
        "bench",
        "--device",
        device,
        "--model",
        "mlp",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--infer-batch-size",
        "4",
        "--json",
        json.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("heap allocations:") && out.contains("per training step"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &v[0]["result"];
    assert!(
        r["train_allocs_per_step"]["count"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(
        r["infer_allocs_per_batch"]["bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
}

/// Training flushes subnormal floats to zero unless `NETCALC_DENORMALS=keep`: both settings
/// train the same model to the same metrics; an unknown value exits 2 naming the variable,
/// before a run directory is written.
#[test]
fn denormal_flushing_trains_the_same_model_and_bad_settings_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let train = |setting: &str, out: &std::path::Path| {
        let args = [
            "train",
            "--offline",
            "--model",
            "keras-cnn",
            "--epochs",
            "2",
            "--limit",
            "256",
            "--out",
            out.to_str().unwrap(),
        ];
        command(&args)
            .env("NETCALC_DENORMALS", setting)
            .output()
            .unwrap()
    };
    let bad = dir.path().join("bad");
    let o = train("sometimes", &bad);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("NETCALC_DENORMALS") && e.contains("sometimes"),
        "{e}"
    );
    assert!(!bad.exists(), "a run directory was written");
    let (flush, keep) = (dir.path().join("flush"), dir.path().join("keep"));
    for (setting, out) in [("flush", &flush), ("keep", &keep)] {
        let o = train(setting, out);
        assert!(o.status.success(), "{setting}: {}", stderr(&o));
    }
    let (f, k) = (metrics(&flush), metrics(&keep));
    assert_eq!(f.len(), 2);
    for (a, b) in f.iter().zip(&k) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                "flush {a:?} vs keep {b:?}"
            );
        }
    }
}

/// A run on an image folder, interrupted with Ctrl-C, continues with `netcalc train --resume
/// DIR` alone (the folder, its options and the model come from the run directory) to exactly
/// the metrics of an uninterrupted run; data flags that contradict the record, or a folder
/// that changed, are refused with exit 2 and a line that says what differs.
#[test]
fn an_image_folder_run_interrupted_by_ctrl_c_resumes_with_the_run_directory_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_shapes(&data, 300, 20);
    let args = |run: &std::path::Path| -> Vec<String> {
        let data = data.display().to_string();
        let run = run.display().to_string();
        [
            "train",
            "--data",
            &data,
            "--model",
            "cnn",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--plain",
            "--out",
            &run,
        ]
        .map(String::from)
        .to_vec()
    };
    let with_backend = |args: &[String]| {
        let mut c = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.env("NETCALC_DEVICE", cpu_backend());
        c
    };
    let full = dir.path().join("full");
    let o = with_backend(&args(&full)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = metrics(&full);
    assert_eq!(expected.len(), 4);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(full.join("source.json")).unwrap()).unwrap();
    assert_eq!(record["source"]["kind"], "folder");
    assert_eq!(record["fingerprint"]["files"], 3 * 320);

    let run = dir.path().join("interrupted");
    let child = with_backend(&args(&run))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first checkpoint", ms(1), || {
        run.join("checkpoint.json").exists()
    });
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    assert!(
        metrics(&run).len() < 4,
        "the run was interrupted before its end"
    );
    let line = e.lines().find(|l| l.contains("--resume")).unwrap();
    assert!(
        line.trim_start().ends_with(&format!(
            "train --resume {} --device {}",
            run.display(),
            cpu_backend()
        )),
        "{e}"
    );

    // contradicting data flags are refused, naming them and the record
    let o = run_in(&run, &["--val-split", "0.3"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--val-split 0.3 contradicts the run's recorded data, the image folder"),
        "{e}"
    );

    let o = run_in(&run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&run), expected, "resumed with --resume alone");

    // the folder changes: a resume is refused, saying how
    std::fs::remove_file(data.join("test/cross/0000.png")).unwrap();
    let o = run_in(&run, &["--epochs", "5"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("has changed since the run started (960 files then, 959 now"),
        "{e}"
    );
}

/// `netcalc train --resume RUN EXTRA…` on the CPU backend.
fn run_in(run: &std::path::Path, extra: &[&str]) -> Output {
    let mut a = vec!["train", "--resume", run.to_str().unwrap()];
    a.extend_from_slice(extra);
    command(&a)
        .env("NETCALC_DEVICE", cpu_backend())
        .output()
        .unwrap()
}

/// The data contract travels: a model exported from a run on a folder of shapes (classes
/// `circle`, `cross`, `square`, not digits), its `build()` trained for one epoch in PyTorch
/// (`tests/data/roundtrip_torch.py`, which wrote `roundtrip-torch.pt` and its own accuracy on
/// the held-out images into `roundtrip-torch.json`), imported with `--config EXPORT_DIR` and
/// nothing else, evaluates on the folder to PyTorch's own accuracy, class by class.
/// `NETCALC_KEEP_ROUNDTRIP=DIR` keeps the folder and the export there, for the script.
#[test]
fn export_pytorch_import_eval_gives_pytorchs_own_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("NETCALC_KEEP_ROUNDTRIP")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let data = dir.join("shapes");
    let _ = std::fs::remove_dir_all(&data);
    write_shapes(&data, 40, 20);
    let run_dir = dir.join("run");
    let exported = dir.join("export");
    let imported = dir.join("imported");
    for d in [&run_dir, &exported, &imported] {
        let _ = std::fs::remove_dir_all(d);
    }
    let (r, d, e, i) = (
        run_dir.to_str().unwrap(),
        data.to_str().unwrap(),
        exported.to_str().unwrap(),
        imported.to_str().unwrap(),
    );
    let cpu = cpu_backend();
    let o = run(&[
        "train",
        "--data",
        d,
        "--model",
        "keras-cnn",
        "--epochs",
        "1",
        "--plain",
        "--device",
        cpu,
        "--out",
        r,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["export", "--model", r, "--out", e, "--device", cpu]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("netcalc.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["data"]["classes"],
        serde_json::json!(["circle", "cross", "square"])
    );
    assert_eq!(manifest["data"]["preprocess"], "resize");

    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/roundtrip-torch.pt");
    let o = run(&[
        "import",
        "--config",
        e,
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        i,
        "--device",
        cpu,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.contains("default"), "no default was needed: {out}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(imported.join("data.json")).unwrap())
            .unwrap();
    assert_eq!(info, manifest["data"], "the data contract came along");

    let scores = dir.join("scores.csv");
    let o = run(&[
        "eval",
        "--model",
        i,
        "--data",
        d,
        "--device",
        cpu,
        "--scores",
        scores.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut correct = [0u64; 3];
    for line in std::fs::read_to_string(&scores).unwrap().lines().skip(1) {
        let mut f = line.split(',');
        let (label, predicted) = (f.next().unwrap(), f.next().unwrap());
        if label == predicted {
            correct[label.parse::<usize>().unwrap()] += 1;
        }
    }
    let torch: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/roundtrip-torch.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let expected: Vec<u64> = torch["correct_per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        correct.to_vec(),
        expected,
        "netcalc's and PyTorch's hits per class"
    );
    let total: u64 = expected.iter().sum();
    let line = String::from_utf8_lossy(&o.stdout);
    let pct = format!("test accuracy {:.2}%", 100.0 * total as f64 / 60.0);
    assert!(line.contains(&pct), "{line} (PyTorch: {pct})");

    // the hits per class of `eval --model RUN --data d`
    let hits = |run: &std::path::Path| -> Vec<u64> {
        let scores = dir.join("hits.csv");
        let o = run_eval(run, d, cpu, &scores);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut correct = vec![0u64; 3];
        for line in std::fs::read_to_string(&scores).unwrap().lines().skip(1) {
            let mut f = line.split(',');
            let (label, predicted) = (f.next().unwrap(), f.next().unwrap());
            if label == predicted {
                correct[label.parse::<usize>().unwrap()] += 1;
            }
        }
        correct
    };
    // netcalc -> ONNX -> import --onnx -> eval: the run's own hits, and its data contract
    // from the file's metadata alone
    let from_onnx = dir.join("from-onnx");
    let _ = std::fs::remove_dir_all(&from_onnx);
    let onnx = exported.join("model.onnx");
    let o = run(&[
        "import",
        "--onnx",
        onnx.to_str().unwrap(),
        "--out",
        from_onnx.to_str().unwrap(),
        "--device",
        cpu,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("default"), "{}", stdout(&o));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from_onnx.join("data.json")).unwrap())
            .unwrap();
    assert_eq!(info, manifest["data"], "the data contract came along");
    assert_eq!(hits(&from_onnx), hits(&run_dir));
    // PyTorch's build() trained an epoch -> torch.onnx.export -> import --onnx -> eval:
    // PyTorch's own hits (the file has no contract: --config gives it)
    let torch_onnx = dir.join("torch-onnx");
    let _ = std::fs::remove_dir_all(&torch_onnx);
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/roundtrip-torch.onnx");
    let o = run(&[
        "import",
        "--onnx",
        file.to_str().unwrap(),
        "--config",
        e,
        "--out",
        torch_onnx.to_str().unwrap(),
        "--device",
        cpu,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(hits(&torch_onnx), expected, "PyTorch's hits through ONNX");

    // without a data file, each default is said
    let config = dir.join("model.json");
    std::fs::write(&config, serde_json::to_string(&manifest["model"]).unwrap()).unwrap();
    let bare = dir.join("bare");
    let _ = std::fs::remove_dir_all(&bare);
    let o = run(&[
        "import",
        "--config",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        bare.to_str().unwrap(),
        "--device",
        cpu,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for said in [
        "default classes: 0 … 2",
        "default normalisation: MNIST's",
        "default preprocessing: resize",
    ] {
        assert!(out.contains(said), "{said}: {out}");
    }
}

/// `netcalc eval --model run --data data --device cpu --scores scores`.
fn run_eval(run_dir: &std::path::Path, data: &str, cpu: &str, scores: &std::path::Path) -> Output {
    run(&[
        "eval",
        "--model",
        run_dir.to_str().unwrap(),
        "--data",
        data,
        "--device",
        cpu,
        "--scores",
        scores.to_str().unwrap(),
    ])
}

/// Another IDX dataset in `dir`: the bundled sample with its images inverted and every label
/// moved by 3 (so an MNIST model reads it badly, and a model trained on it reads MNIST badly).
fn other_idx_dataset(dir: &std::path::Path) {
    use std::io::Read;
    std::fs::create_dir_all(dir).unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
    for (name, header) in [
        ("train-images-idx3-ubyte", 16),
        ("train-labels-idx1-ubyte", 8),
        ("test-images-idx3-ubyte", 16),
        ("test-labels-idx1-ubyte", 8),
    ] {
        let gz = std::fs::read(sample.join(format!("{name}.gz"))).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        for b in &mut raw[header..] {
            *b = if header == 16 {
                255 - *b
            } else {
                (*b + 3) % 10
            };
        }
        std::fs::write(dir.join(name), raw).unwrap();
    }
}

/// The accuracy in percent on a line of `text` that has `what` and "test accuracy X%".
fn accuracy_after(text: &str, what: &str) -> f64 {
    text.lines()
        .filter(|l| l.contains(what))
        .find_map(|l| {
            l.split("test accuracy ")
                .nth(1)?
                .split('%')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `{what} … test accuracy` in {text}"))
}

/// `eval --model RUN` measures the run on what it was trained and tested on (its
/// `source.json`), and says so; a data flag evaluates other data instead, and says that; data
/// of other classes is refused with exit 2, naming both lists.
#[test]
fn eval_measures_a_run_on_its_own_held_out_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("other");
    other_idx_dataset(&data);
    let run_dir = dir.path().join("run");
    let backend = ["--device", cpu_backend()];
    let mut train = vec![
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--plain",
        "--out",
        run_dir.to_str().unwrap(),
    ];
    train.extend(backend);
    let o = run(&train);
    assert!(o.status.success(), "{}", stderr(&o));
    let trained = accuracy_after(&String::from_utf8_lossy(&o.stdout), "");
    assert!(trained > 40.0, "{trained}");

    let mut eval = vec!["eval", "--model", run_dir.to_str().unwrap()];
    eval.extend(backend);
    let o = run(&eval);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(
        out.contains("evaluating on the run's own held-out data")
            && out.contains(data.to_str().unwrap()),
        "{out}"
    );
    assert_eq!(accuracy_after(&out, "on "), trained, "{out}");

    // MNIST, asked for: evaluated, and said to be other data than the run's
    let mut other = eval.clone();
    other.extend(["--dataset", "mnist", "--offline"]);
    let o = run(&other);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(out.contains("not on the run's own data"), "{out}");
    assert!(accuracy_after(&out, "on ") < trained / 2.0, "{out}");

    // a folder of other classes: refused, naming both lists
    let shapes = dir.path().join("shapes");
    write_shapes(&shapes, 3, 3);
    let mut wrong = eval.clone();
    wrong.extend(["--data", shapes.to_str().unwrap()]);
    let o = run(&wrong);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("\"circle\", \"cross\", \"square\"") && e.contains("\"0\", \"1\""),
        "{e}"
    );
}

/// A folder read from its packed file (made in the cache on the first run, or by
/// `netcalc pack`) trains to the metrics of the folder decoded into memory, bit for bit, with
/// augmentation on; a run on a packed file records it and resumes from the record.
#[test]
fn a_packed_folder_trains_to_the_in_memory_metrics_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_shapes(&data, 100, 20);
    let cache = dir.path().join("cache");
    let d = data.display().to_string();
    let train = |source: &str, extra: &[&str], run: &std::path::Path| -> Output {
        let run = run.display().to_string();
        let mut args = vec![
            "train",
            "--data",
            source,
            "--model",
            "cnn",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--augment-shift",
            "2",
            "--seed",
            "5",
            "--plain",
            "--out",
            &run,
        ];
        args.extend_from_slice(extra);
        let o = command(&args)
            .env("NETCALC_CACHE_DIR", &cache)
            .env("NETCALC_DEVICE", cpu_backend())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let memory = dir.path().join("memory");
    let o = train(&d, &["--in-memory"], &memory);
    assert!(!stdout(&o).contains("decoded once"), "{}", stdout(&o));
    assert!(!cache.join("packs").exists());
    let expected = metrics(&memory);
    assert_eq!(expected.len(), 2);

    // the first run packs the folder into the cache, the second maps the same file
    let first = dir.path().join("first");
    let o = train(&d, &[], &first);
    assert!(stdout(&o).contains("decoded once into"), "{}", stdout(&o));
    assert_eq!(metrics(&first), expected);
    let packs: Vec<_> = std::fs::read_dir(cache.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let written = std::fs::metadata(&packs[0]).unwrap().modified().unwrap();
    let second = dir.path().join("second");
    train(&d, &[], &second);
    assert_eq!(metrics(&second), expected);
    assert_eq!(
        std::fs::metadata(&packs[0]).unwrap().modified().unwrap(),
        written
    );

    // `netcalc pack` into a file, then `--data FILE` (the preset takes the file's shape)
    let file = dir.path().join("shapes.ncpack");
    let f = file.display().to_string();
    let o = command(&[
        "pack",
        "--data",
        &d,
        "--input-shape",
        "1x28x28",
        "--out",
        &f,
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("300 train / 60 test images of 1x28x28, 3 classes"),
        "{}",
        stdout(&o)
    );
    let given = dir.path().join("given");
    let o = train(&f, &[], &given);
    assert!(
        stdout(&o).contains(&format!("images packed in {f}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(metrics(&given), expected);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(given.join("source.json")).unwrap()).unwrap();
    assert_eq!(record["source"]["kind"], "pack");
    assert_eq!(record["fingerprint"]["files"], 1);

    // predict on a folder: every image of it, in path order, one line each
    let test_dir = data.join("test");
    let o = command(&[
        "predict",
        "--model",
        given.to_str().unwrap(),
        test_dir.to_str().unwrap(),
    ])
    .env("NETCALC_DEVICE", cpu_backend())
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 60, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{}/circle/0000.png: ", test_dir.display())));
    assert!(lines[59].starts_with(&format!("{}/square/0019.png: ", test_dir.display())));
    let right = lines
        .iter()
        .filter(|l| {
            let (path, top) = l.split_once(": ").unwrap();
            let class = path.rsplit('/').nth(1).unwrap();
            top.starts_with(&format!("{class} ("))
        })
        .count();
    let acc = expected.last().unwrap()[3];
    assert_eq!(right, (acc * 60.0).round() as usize, "{lines:?}");

    // stopped after one epoch, resumed from the run directory alone
    let stopped = dir.path().join("stopped");
    train(&f, &["--stop-after", "1"], &stopped);
    assert_eq!(metrics(&stopped).len(), 1);
    let o = command(&["train", "--resume", stopped.to_str().unwrap(), "--plain"])
        .env("NETCALC_CACHE_DIR", &cache)
        .env("NETCALC_DEVICE", cpu_backend())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&stopped), expected);

    // a damaged file given by name is refused with exit 2, naming it
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes.truncate(last);
    std::fs::write(&file, bytes).unwrap();
    let o = command(&["eval", "--model", given.to_str().unwrap()])
        .env("NETCALC_DEVICE", cpu_backend())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&f) && stderr(&o).contains("not a sound netcalc packed file"),
        "{}",
        stderr(&o)
    );
}
