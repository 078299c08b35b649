//! `mpirun -np 2 netcalc train` on loopback (OpenMPI over TCP): two processes train the
//! parameters one process trains; a killed rank ends the job and the run resumes to the
//! uninterrupted run's metrics; Ctrl-C on mpirun checkpoints and prints the resume command; a
//! rank with another config, other data or another bucket count is refused; a panic or an
//! error on one rank (fail points, feature `failpoints`) ends the job, and the run resumes to
//! the uninterrupted run's metrics. The jobs run one at a time (2 cores).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use netcalc::app::train::{TrainConfig, load_model};

#[path = "common/runs.rs"]
mod runs;
#[path = "common/shapes.rs"]
mod shapes;
use runs::metrics;

const NETCALC: &str = env!("CARGO_BIN_EXE_netcalc");

/// One MPI job at a time: each takes both cores.
static JOBS: Mutex<()> = Mutex::new(());

/// mpirun on loopback over TCP, allowed to run as root, ranks not bound to cores (tests may
/// share the machine), `np` copies of `netcalc args`.
fn mpirun(np: usize, args: &[&str]) -> Command {
    let found = Command::new("mpirun").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "mpirun not found: these tests need OpenMPI (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    );
    let mut cmd = Command::new("mpirun");
    cmd.args(LAUNCHER)
        .args(["-np", &np.to_string(), NETCALC])
        .args(args);
    env(&mut cmd);
    cmd
}

/// mpirun's options for these tests.
const LAUNCHER: [&str; 9] = [
    "--oversubscribe",
    "--bind-to",
    "none",
    "--mca",
    "btl",
    "self,tcp",
    "--mca",
    "btl_tcp_if_include",
    "lo",
];

fn env(cmd: &mut Command) {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env(
            "NETCALC_CACHE_DIR",
            std::env::temp_dir().join("netcalc-mpi-test-cache"),
        );
}

fn single(args: &[&str]) -> Output {
    let mut cmd = Command::new(NETCALC);
    cmd.args(args);
    env(&mut cmd);
    cmd.output().expect("run netcalc")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `train --offline FLAGS --device flex --threads 1 --plain --out OUT`.
fn train_args(flags: &[&str], out: &Path) -> Vec<String> {
    let tail = ["--device", "flex", "--threads", "1", "--plain", "--out"];
    ["train", "--offline"]
        .iter()
        .chain(flags)
        .chain(&tail)
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every float parameter tensor of a model, in visiting order.
fn tensors(model: &impl Module) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(
                param
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec()
                    .unwrap(),
            );
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// With dropout and augmentation off, 2 processes give the parameters 1 process gives at the
/// same global batch, to float-summation tolerance, after 20 steps of the defaults (`cnn`,
/// batch 64, Adam, seed 0); the last step's batch has one image, so rank 0 has none and sends
/// zeros.
#[test]
fn two_processes_train_the_parameters_of_one() {
    let _job = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TrainConfig::default();
    cfg.model.classifier.input_dropout = 0.0;
    cfg.model.classifier.hidden_dropout = 0.0;
    cfg.augment_shift = 0;
    cfg.epochs = 1;
    cfg.limit = Some(19 * cfg.batch_size + 1);
    let cfg_path = dir.path().join("config.json");
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let cfg_arg = cfg_path.to_str().unwrap();
    let args = |out: &Path| train_args(&["--config", cfg_arg], out);
    let one = dir.path().join("one");
    let o = single(&strs(&args(&one)));
    assert!(o.status.success(), "{}", text(&o));
    let two = dir.path().join("two");
    let o = mpirun(2, &strs(&args(&two))).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("distributed: 2 processes"), "{}", text(&o));
    assert!(stdout.contains("all-reduce: 225038 floats"), "{}", text(&o));
    // rank 0 alone printed: one summary line
    assert_eq!(stdout.matches("test accuracy").count(), 1, "{}", text(&o));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(two.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(info["steps"], 20);
    assert_eq!(info["ranks"], 2);

    let device = netcalc::testing::device(netcalc::BackendKind::Flex);
    let a = tensors(&load_model(&cfg.model, &one.join("model.bpk"), &device).unwrap());
    let b = tensors(&load_model(&cfg.model, &two.join("model.bpk"), &device).unwrap());
    // the initial parameters: the same run stopped before its first step
    let init = dir.path().join("init");
    let mut stop = args(&init);
    stop.extend(["--stop-after".to_string(), "0".to_string()]);
    let o = single(&strs(&stop));
    assert!(o.status.success(), "{}", text(&o));
    let start = tensors(&load_model(&cfg.model, &init.join("model.bpk"), &device).unwrap());
    assert_eq!(a.len(), 8);
    for (i, ((x, y), s)) in a.iter().zip(&b).zip(&start).enumerate() {
        let norm =
            |v: &mut dyn Iterator<Item = f32>| v.map(|t| f64::from(t).powi(2)).sum::<f64>().sqrt();
        let diff = norm(&mut x.iter().zip(y).map(|(p, q)| p - q));
        let moved = norm(&mut x.iter().zip(s).map(|(p, q)| p - q));
        let rel = diff / norm(&mut x.iter().copied());
        eprintln!("tensor {i}: |θ2 − θ1| / |θ1| = {rel:.3e} (moved {moved:.3e})");
        assert!(rel <= 1e-5, "tensor {i}: relative difference {rel:e}");
        assert!(
            moved > 1e3 * diff,
            "tensor {i} barely trained: moved {moved:e}"
        );
    }
}

/// Processes of a running job whose command line mentions `needle`, with their rank.
fn ranks_of(needle: &str) -> Vec<(u32, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = environ
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("OMPI_COMM_WORLD_RANK="))
            .and_then(|r| r.parse().ok());
        if let Some(rank) = rank {
            found.push((pid, rank));
        }
    }
    found
}

/// `mpirun -np 2 netcalc ARGS` started, once run directory `run` holds its first checkpoint.
fn start_until_first_checkpoint(args: &[String], run: &Path) -> Child {
    let child = mpirun(2, &strs(args))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first checkpoint", || {
        run.join("checkpoint.json").exists()
    });
    child
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill {sig} {pid} failed");
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait_within(mut child: Child, limit: Duration, what: &str) -> (Output, Duration) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let elapsed = start.elapsed();
            return (child.wait_with_output().unwrap(), elapsed);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("{what}: still running after {limit:?}\n{}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `keras-cnn` at batch 50 on `limit` images for `epochs` epochs, seeded.
fn keras_flags<'a>(limit: &'a str, epochs: &'a str, seed: &'a str) -> [&'a str; 10] {
    [
        "--model",
        "keras-cnn",
        "--limit",
        limit,
        "--epochs",
        epochs,
        "--batch-size",
        "50",
        "--seed",
        seed,
    ]
}

/// The metrics of an uninterrupted 2-process run of `args`, which trains into `out`.
fn uninterrupted(args: &[String], out: &Path, epochs: usize) -> Vec<[f64; 5]> {
    let o = mpirun(2, &strs(args)).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m = metrics(out);
    assert_eq!(m.len(), epochs);
    m
}

/// `mpirun -np 2 netcalc train --resume RUN` on flex, one thread a rank.
fn resume_on_two(run: &Path) -> Output {
    let run = run.to_str().unwrap();
    let args = [
        "train",
        "--resume",
        run,
        "--device",
        "flex",
        "--threads",
        "1",
    ];
    mpirun(2, &args).output().unwrap()
}

/// `kill -9` of rank 1 ends the whole job within 10 s with a non-zero exit and a
/// message; Ctrl-C on mpirun stops both ranks after the same batch, rank 0 checkpoints and
/// prints `mpirun -np 2 … train --resume DIR`; each run, resumed by `mpirun -np 2 … --resume`,
/// ends with exactly the metrics of an uninterrupted 2-process run. Resuming on one process is
/// refused.
#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes_to_the_uninterrupted_metrics() {
    let _job = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let flags = keras_flags("2000", "16", "5");
    let args = |out: &Path| train_args(&flags, out);
    let full = dir.path().join("full");
    let expected = uninterrupted(&args(&full), &full, 16);

    // kill -9 of rank 1 once the first checkpoint is there
    let killed = dir.path().join("killed");
    let child = start_until_first_checkpoint(&args(&killed), &killed);
    let needle = killed.to_str().unwrap().to_string();
    let ranks = ranks_of(&needle);
    let (pid, _) = *ranks
        .iter()
        .find(|(_, r)| *r == 1)
        .unwrap_or_else(|| panic!("no rank 1 among {ranks:?}"));
    signal(pid, "-KILL");
    let (o, took) = wait_within(child, Duration::from_secs(10), "the job after kill -9");
    let out = text(&o);
    eprintln!("kill -9 of rank 1: the job ended after {took:?}\n{out}");
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("signal 9") || out.contains("Killed"),
        "no message about the killed rank: {out}"
    );
    assert!(ranks_of(&needle).is_empty(), "ranks left running");
    let on_one = single(&["train", "--resume", &needle, "--device", "flex"]);
    assert_eq!(on_one.status.code(), Some(2), "{}", text(&on_one));
    assert!(
        text(&on_one).contains("2 processes (`mpirun -np 2`)"),
        "{}",
        text(&on_one)
    );
    let o = resume_on_two(&killed);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(metrics(&killed), expected, "resumed after kill -9");

    // Ctrl-C on mpirun
    let stopped = dir.path().join("stopped");
    let child = start_until_first_checkpoint(&args(&stopped), &stopped);
    signal(child.id(), "-INT");
    let (o, took) = wait_within(child, Duration::from_secs(30), "the job after Ctrl-C");
    let out = text(&o);
    eprintln!("Ctrl-C on mpirun: the job ended after {took:?}\n{out}");
    assert!(!o.status.success(), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("--resume"))
        .unwrap_or_else(|| panic!("no resume command: {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..3], &["mpirun", "-np", "2"], "{out}");
    assert_eq!(
        &words[4..],
        &[
            "train",
            "--resume",
            stopped.to_str().unwrap(),
            "--device",
            "flex"
        ],
        "{out}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stopped.join("checkpoint.json")).unwrap())
            .unwrap();
    eprintln!("checkpoint after Ctrl-C: {info}");
    let mut resume: Vec<&str> = words[4..].to_vec();
    resume.extend(["--threads", "1"]);
    let o = mpirun(2, &resume).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(metrics(&stopped), expected, "resumed after Ctrl-C");
}

/// mpirun's MPMD form starts rank 0 and rank 1 with different command lines: another config
/// value, or a copy of the data without one image, stops both ranks before anything is
/// written, naming the difference.
#[test]
fn a_rank_with_another_config_or_other_data_is_refused() {
    let _job = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    shapes::write_shapes(&data, 20, 5);
    let copy = dir.path().join("copy");
    for split in ["train", "test"] {
        for class in ["circle", "cross", "square"] {
            let from = data.join(split).join(class);
            let to = copy.join(split).join(class);
            std::fs::create_dir_all(&to).unwrap();
            for e in std::fs::read_dir(&from).unwrap().flatten() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    std::fs::remove_file(copy.join("train/cross/0003.png")).unwrap();

    let out = dir.path().join("run");
    let job = |rank0: &[&str], rank1: &[&str]| -> Output {
        let base = [
            "train",
            "--model",
            "cnn",
            "--device",
            "flex",
            "--threads",
            "1",
            "--plain",
            "--out",
            out.to_str().unwrap(),
        ];
        let mut cmd = Command::new("mpirun");
        cmd.args(LAUNCHER).args(["-np", "1", NETCALC]);
        cmd.args(base).args(rank0).args([":", "-np", "1", NETCALC]);
        cmd.args(base).args(rank1);
        env(&mut cmd);
        cmd.output().unwrap()
    };
    let d = data.to_str().unwrap();
    let o = job(
        &["--data", d, "--epochs", "2"],
        &["--data", d, "--epochs", "3"],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(
            "rank 1 does not train the same run as rank 0: `config.epochs` is 3 here, 2 on rank 0"
        ),
        "{t}"
    );
    assert!(!out.exists(), "nothing written: {t}");

    // ranks that would split each gradient sum differently
    let o = job(
        &["--data", d, "--allreduce-buckets", "1"],
        &["--data", d, "--allreduce-buckets", "4"],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("`allreduce_buckets` is 4 here, 1 on rank 0"),
        "{t}"
    );
    assert!(!out.exists(), "nothing written: {t}");

    let c = copy.to_str().unwrap();
    let o = job(&["--data", d], &["--data", c]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("its data differs: 74 files"), "{t}");
    assert!(t.contains("75 files"), "{t}");
    assert!(t.contains("on rank 0"), "{t}");
    assert!(!out.exists(), "nothing written: {t}");

    // packed files: each rank maps the file it is given, and the fingerprints (the files'
    // own) are compared as the folders' are
    let pack = |from: &str, to: &Path| {
        let o = single(&[
            "pack",
            "--data",
            from,
            "--input-shape",
            "1x28x28",
            "--out",
            to.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    };
    let (dp, cp) = (
        dir.path().join("data.ncpack"),
        dir.path().join("copy.ncpack"),
    );
    pack(d, &dp);
    pack(c, &cp);
    let (dp, cp) = (dp.to_str().unwrap(), cp.to_str().unwrap());
    let o = job(&["--data", dp], &["--data", cp]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("its data differs: 1 files"), "{t}");
    assert!(t.contains("on rank 0"), "{t}");
    assert!(!out.exists(), "nothing written: {t}");
    let o = job(
        &["--data", dp, "--epochs", "1"],
        &["--data", dp, "--epochs", "1"],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("source.json")).unwrap()).unwrap();
    assert_eq!(record["source"]["kind"], "pack", "{record}");
}

/// `mpirun` with rank 0 running `netcalc ARGS` and rank 1 the same with `FAILPOINTS=points`.
#[cfg(feature = "failpoints")]
fn job_with_faulty_rank_1(points: &str, args: &[String]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(LAUNCHER).args(["-np", "1", NETCALC]).args(args);
    cmd.args([":", "-np", "1", "env"])
        .arg(format!("FAILPOINTS={points}"))
        .arg(NETCALC)
        .args(args);
    env(&mut cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A panic at a training step of rank 1 (`train-step=…->panic`) ends the whole job within
/// 10 s, non-zero, naming the rank and the panic; an error there
/// (`train-step=…->return(…)`) stops both ranks at the same step; an error unpacking the
/// shipped run directory on rank 1 (`ship-unpack`) stops a resume. After each, the last
/// checkpoint is intact and `mpirun -np 2 … --resume` ends with the uninterrupted run's
/// metrics.
#[cfg(feature = "failpoints")]
#[test]
fn a_panic_or_an_error_on_one_rank_ends_the_job_and_the_run_resumes() {
    let _job = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // 8 steps an epoch: step 13 is in the second epoch, after the first checkpoint
    let flags = keras_flags("400", "3", "11");
    let args = |out: &Path| train_args(&flags, out);
    let full = dir.path().join("full");
    let expected = uninterrupted(&args(&full), &full, 3);
    for (name, points, wanted) in [
        (
            "panic",
            "train-step=12*off->panic",
            vec!["error (rank 1 of 2): panicked", "aborting the MPI job"],
        ),
        (
            "error",
            "train-step=12*off->return(the disk is on fire)",
            vec![
                "error (rank 1 of 2): injected fault at fail point `train-step`: the disk is on fire",
                "error: distributed training: 1 of 2 ranks failed at epoch 2, batch 5",
            ],
        ),
    ] {
        let run = dir.path().join(name);
        let child = job_with_faulty_rank_1(points, &args(&run)).spawn().unwrap();
        wait_until("the first checkpoint", || {
            run.join("checkpoint.json").exists()
        });
        let (o, took) = wait_within(child, Duration::from_secs(10), name);
        let out = text(&o);
        eprintln!("{name} on rank 1: the job ended {took:?} after the first checkpoint\n{out}");
        assert!(!o.status.success(), "{out}");
        for w in &wanted {
            assert!(out.contains(w), "no `{w}` in:\n{out}");
        }
        assert!(
            ranks_of(run.to_str().unwrap()).is_empty(),
            "ranks left running"
        );
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint.json")).unwrap())
                .unwrap();
        assert_eq!(info["epoch"], 1, "{info}");
        if name == "error" {
            // a resume whose copy of the run cannot be unpacked on rank 1
            let mut cmd = Command::new("mpirun");
            let tail = [
                "train",
                "--resume",
                run.to_str().unwrap(),
                "--device",
                "flex",
            ];
            cmd.args(LAUNCHER).args(["-np", "1", NETCALC]).args(tail);
            cmd.args([
                ":",
                "-np",
                "1",
                "env",
                "FAILPOINTS=ship-unpack=return",
                NETCALC,
            ])
            .args(tail);
            env(&mut cmd);
            let start = Instant::now();
            let o = cmd.output().unwrap();
            let out = text(&o);
            assert!(start.elapsed() < Duration::from_secs(10), "{out}");
            assert_eq!(o.status.code(), Some(2), "{out}");
            assert!(
                out.contains("error (rank 1 of 2): injected fault at fail point `ship-unpack`"),
                "{out}"
            );
            assert!(
                out.contains("1 of 2 ranks could not receive the run directory"),
                "{out}"
            );
        }
        let o = resume_on_two(&run);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(metrics(&run), expected, "resumed after the {name}");
    }
}
