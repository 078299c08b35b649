//! The `netcalc` command: its definition ([`args`]), and [`run`], which carries out a parsed
//! command line by calling the library and printing what it returns. The binary
//! (`src/main.rs`) and the `mnist` example only install the allocator and call [`main`].
//!
//! Exit codes ([`exit_code`]): 0 success, 2 bad input (every [`Error`] but the two below), 3
//! training diverged (the last checkpoint is kept), 130 interrupted by Ctrl-C or SIGTERM (a
//! checkpoint was written and the command to continue printed).

pub mod args;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Parser;

pub use args::Cli;
use args::{
    BenchArgs, Cmd, EvalArgs, ExplainArgs, ExportArgs, ImportArgs, ModelArgs, PackArgs,
    PredictArgs, ServeArgs, SummaryArgs, TrainArgs,
};

use crate::app::data::Normalization;
use crate::app::distributed::{self, Collective, Launch};
use crate::app::fsio::{read_json, write_atomic, write_json};
use crate::app::interop::{ImportOptions, export, import};
use crate::app::session::TrainedModel;
use crate::app::train::bench::{BenchRecord, MeasureOptions, measure};
use crate::app::train::{
    ProgressMode, RunOptions, TrainConfig, class_scores, evaluate, metrics, plan,
};
use crate::app::{explain, predict, serve};
use crate::backend::{BackendKind, device_of, select_backend, select_device, selected_backends};
use crate::error::{Error, Result};

/// Parses the process's arguments, runs the command, prints an error as one line and returns
/// the exit code. Call it from a program's `main`, before that program starts any thread (for
/// `train --resume` it sets `BURN_DEVICE`: [`crate::backend::pin_burn_default_device`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = configure_fail_points(std::env::var("FAILPOINTS").ok().as_deref()) {
        eprintln!("error: {}", one_line(&e));
        return ExitCode::from(exit_code(&e));
    }
    if let Some(args) = cli.train_args()
        && args.resume.is_some()
        && let Ok(kind) = select_backend(args.device.choice)
    {
        // SAFETY: `main`'s contract: called first thing in a program's `main`, before it
        // starts any thread, so nothing else reads or writes the environment.
        unsafe { crate::backend::pin_burn_default_device(kind) };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Configures the fail points that `spec` (the `FAILPOINTS` environment variable) names, in
/// the `fail` crate's syntax: `name=actions` separated by `;`, e.g.
/// `train-step=5*off->panic` or `serve-inference=sleep(200)`. The points are `serve-inference`,
/// `serve-restart`, `serve-paint`, `train-step` and `ship-unpack`. A build without the Cargo feature
/// `failpoints` has none: it says so on stderr and goes on.
pub fn configure_fail_points(spec: Option<&str>) -> Result<()> {
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return Ok(());
    };
    if !cfg!(feature = "failpoints") {
        eprintln!(
            "warning: FAILPOINTS is set, but this build has no fail points (Cargo feature `failpoints`)"
        );
        return Ok(());
    }
    for item in spec.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, actions)) = item.split_once('=') else {
            return Err(Error::setting(
                "FAILPOINTS",
                format!("`{item}` is not NAME=ACTIONS"),
            ));
        };
        fail::cfg(name.trim(), actions.trim())
            .map_err(|e| Error::setting("FAILPOINTS", format!("`{item}`: {e}")))?;
    }
    Ok(())
}

impl Cli {
    /// The training flags, when the command trains.
    pub fn train_args(&self) -> Option<&TrainArgs> {
        match &self.cmd {
            None => Some(&self.train),
            Some(Cmd::Train(a)) => Some(a),
            Some(_) => None,
        }
    }
}

/// The exit code for an error: 3 when training diverged (the last checkpoint is kept), 130
/// after Ctrl-C or SIGTERM (a checkpoint was written), 2 for every other error.
pub fn exit_code(e: &Error) -> u8 {
    match e.root() {
        Error::Diverged { .. } => 3,
        Error::Interrupted { .. } => 130,
        _ => 2,
    }
}

/// The error and its causes on one line, each cause once: netcalc's messages already end with
/// their source's text (`x.png: No such file or directory`).
pub fn one_line(e: &Error) -> String {
    let mut line = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}

/// Carries out a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        None => train(cli.train),
        Some(Cmd::Train(a)) => train(*a),
        Some(Cmd::Eval(a)) => eval(a),
        Some(Cmd::Predict(a)) => predict_images(a),
        Some(Cmd::Explain(a)) => explain_images(a),
        Some(Cmd::Serve(a)) => serve_model(a),
        Some(Cmd::Summary(a)) => summary(a),
        Some(Cmd::Bench(a)) => bench(a),
        Some(Cmd::Export(a)) => export_model(a),
        Some(Cmd::Import(a)) => import_model(a),
        Some(Cmd::Pack(a)) => pack_folder(a),
    }
}

/// A flag that the first Ctrl-C (SIGINT) or SIGTERM sets, so that training stops at the end
/// of the current batch and writes a checkpoint; a second one ends the program at once (130).
pub fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    let fail = |e: std::io::Error| {
        Error::setting("signals", format!("cannot install the Ctrl-C handler: {e}"))
    };
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so that it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone()).map_err(fail)?;
        signal_hook::flag::register(sig, flag.clone()).map_err(fail)?;
    }
    Ok(flag)
}

/// The command that continues an interrupted run: this program, `train --resume DIR` and the
/// backend, under `mpirun -np N` for a run of `ranks` processes; the data comes from the run
/// directory's record.
pub fn resume_command(run: &Path, kind: BackendKind, ranks: usize) -> String {
    let exe = std::env::args().next().unwrap_or_else(|| "netcalc".into());
    let mpirun = if ranks > 1 {
        format!("mpirun -np {ranks} ")
    } else {
        String::new()
    };
    format!(
        "{mpirun}{exe} train --resume {} --device {kind}",
        run.display()
    )
}

fn open_model(a: &ModelArgs) -> Result<TrainedModel> {
    TrainedModel::open(&a.model, a.device.choice)
}

fn train(a: TrainArgs) -> Result<()> {
    let launch = distributed::this_launch()?;
    if a.threads.is_some() || launch != Launch::Single {
        let threads = a
            .threads
            .map_or_else(|| distributed::threads_for(&launch), usize::from);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| {
                Error::setting("threads", format!("cannot start {threads} threads: {e}"))
            })?;
    }
    let group = distributed::join(&launch, a.allreduce_buckets.map(usize::from))?;
    match train_as_rank(&a, group.as_ref()) {
        // An error that every rank reached together (a vote or shared values decided it) ends
        // each of them normally; one that only this rank saw would leave the others waiting in
        // the next collective operation: it ends the job.
        Err(e) if group.size() > 1 => {
            let together = distributed::reached_together(&e);
            // a rank > 0 says what it saw itself; what every rank knows (an interrupt,
            // divergence, the failure of other ranks), rank 0 says (below)
            let own = !matches!(
                e.root(),
                Error::Interrupted { .. } | Error::Diverged { .. } | Error::RanksFailed { .. }
            );
            if !together || (group.rank() > 0 && own) {
                eprintln!(
                    "error (rank {} of {}): {}",
                    group.rank(),
                    group.size(),
                    one_line(&e)
                );
            }
            if !together {
                group.abort(i32::from(exit_code(&e)))
            }
            if group.rank() > 0 {
                // rank 0 has said what the job stopped on: finalise MPI, then end with the
                // same code
                let code = exit_code(&e);
                drop(group);
                std::process::exit(i32::from(code));
            }
            Err(e)
        }
        other => other,
    }
}

/// `train` as rank `group.rank()`: rank 0 prints, the others only train.
fn train_as_rank(a: &TrainArgs, group: &dyn Collective) -> Result<()> {
    let lead = group.rank() == 0;
    let mut request = a.request();
    // a resume: the other ranks read rank 0's run directory from a copy it sends them
    let shipped = match (&request.resume, group.size()) {
        (Some(dir), n) if n > 1 => distributed::settle(
            group,
            distributed::share_run_dir(group, dir),
            "receive the run directory to resume",
        )?,
        _ => None,
    };
    if let Some(copy) = &shipped {
        request.resume = Some(copy.path().to_path_buf());
    }
    // each rank reads the data and opens its device; a vote says whether all could. Rank 0
    // reads first: an image folder is decoded once, by it, into the packed file that the
    // other ranks then map (from the same cache path, shared or copied)
    let plan_here = || {
        plan(&request, |w| {
            if lead {
                eprintln!("note: {w}")
            }
        })
        .and_then(|p| select_device(a.device.choice).map(|d| (p, d)))
    };
    let reading = Instant::now();
    let planned = if group.size() == 1 {
        plan_here()
    } else if lead {
        let planned = plan_here();
        distributed::vote(group, planned.is_err());
        planned
    } else if distributed::vote(group, false) > 0 {
        Err(Error::Distributed {
            message: "rank 0 could not read the data or start".into(),
        })
    } else {
        plan_here()
    };
    let (p, (kind, dev)) = distributed::settle(group, planned, "read the data and start")?;
    let cfg = &p.config;
    if lead {
        for (path, why) in &p.data.skipped {
            eprintln!("skipped {}: {why}", path.display());
        }
        println!(
            "{} (read in {:.2} s)",
            p.data.describe(),
            reading.elapsed().as_secs_f64()
        );
        println!(
            "model: {} ({} parameters), backend: {kind}, {} epochs of batch {}, {:?} lr {} ({:?}), augment ±{} px, seed {}",
            cfg.model.name,
            cfg.model.summary()?.total_params(),
            cfg.epochs,
            cfg.batch_size,
            cfg.optimizer.kind,
            cfg.optimizer.lr,
            cfg.schedule,
            cfg.augment_shift,
            cfg.seed
        );
        if group.size() > 1 {
            println!(
                "distributed: {} processes (MPI), {} threads each on rank 0, a share of every batch of {} each",
                group.size(),
                rayon::current_num_threads(),
                cfg.batch_size
            );
        }
        println!("run directory: {}", p.out.display());
    }
    let opts = RunOptions {
        out: p.out.clone(),
        resume: p.resume,
        stop_after: a.stop_after,
        progress: if a.plain {
            ProgressMode::Plain
        } else {
            ProgressMode::Auto
        },
        backend: kind,
        interrupt: Some(ctrl_c_flag()?),
        data_record: Some(p.record.clone()),
    };
    let start = Instant::now();
    let run = match crate::app::train::train_in(cfg, &p.data, &dev, &opts, group) {
        Err(e) if matches!(e.root(), Error::Interrupted { .. }) => {
            let Error::Interrupted { epoch, batches, .. } = e.root() else {
                return Err(e);
            };
            if lead {
                eprintln!(
                    "interrupted: checkpoint written after {epoch} epochs and {batches} batches; continue with:"
                );
                eprintln!("  {}", resume_command(&p.out, kind, group.size()));
            }
            return Err(e);
        }
        other => other?,
    };
    let Some(run) = run else {
        return Ok(());
    };
    let e = &run.evaluation;
    println!(
        "test accuracy {:.2}% ({} of {}), test loss {:.4}, {:.1} s",
        100.0 * e.accuracy,
        e.confusion
            .iter()
            .enumerate()
            .map(|(i, r)| r[i])
            .sum::<u64>(),
        p.data.test.len(),
        e.loss,
        start.elapsed().as_secs_f64()
    );
    if let Some(d) = &run.distributed
        && d.steps > 0
    {
        println!(
            "all-reduce: {} floats ({:.2} MB) per step, {:.2} ms of {:.2} ms per step ({:.0}%), over {} steps",
            d.floats_per_step,
            d.floats_per_step as f64 * 4e-6,
            1e3 * d.all_reduce_seconds / d.steps as f64,
            1e3 * d.step_seconds / d.steps as f64,
            100.0 * d.all_reduce_seconds / d.step_seconds.max(1e-12),
            d.steps
        );
    }
    println!(
        "wrote {0}/model.bpk, config.json, data.json, source.json, metrics.csv, metrics.json, confusion.csv, loss.png, accuracy.png, confusion.png",
        run.out.display()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let m = open_model(&a.model)?;
    let data = eval_data(&a, &m)?;
    for (path, why) in &data.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    println!("{}", data.describe());
    let test = data.test_for(&m.info)?;
    let batch = crate::app::train::evaluate::eval_batch_size(m.info.shape);
    let e = evaluate(&m.model, &test, &m.device, batch)?;
    if let Some(path) = &a.scores {
        let scores = class_scores(&m.model, &test, &m.device, batch)?;
        let csv = metrics::scores_csv(&test.labels, &scores, &m.info.classes);
        write_atomic(path, csv.as_bytes())?;
    }
    println!(
        "{} on {}: test accuracy {:.2}%, test loss {:.4}",
        m.path.display(),
        m.backend,
        100.0 * e.accuracy,
        e.loss
    );
    Ok(())
}

/// The data `eval` measures `m` on: the run's own (its `source.json`: the same source,
/// held-out split and fingerprint check as a resume) unless a data flag names other data; the
/// default (MNIST) for a model that records none. Says which on stdout.
fn eval_data(a: &EvalArgs, m: &TrainedModel) -> Result<crate::app::data::Dataset> {
    let flags = [
        a.data
            .data
            .as_ref()
            .map(|d| format!("--data {}", d.display())),
        a.data.dataset.map(|d| format!("--dataset {d:?}")),
        a.data
            .data_dir
            .as_ref()
            .map(|d| format!("--data-dir {}", d.display())),
    ];
    let named: Vec<String> = flags.into_iter().flatten().collect();
    let run = crate::app::train::RunDir::open(&m.run_dir).ok();
    let record = match &run {
        Some(r) => r.read_data_record()?,
        None => None,
    };
    let note = |w: &str| eprintln!("note: {w}");
    match record {
        Some(rec) if named.is_empty() => {
            let seed = run
                .as_ref()
                .map_or(Ok(0), |r| r.read_config().map(|c| c.seed))?;
            println!(
                "evaluating on the run's own held-out data: {}",
                rec.describe()
            );
            rec.load(m.info.shape, seed, true)
        }
        Some(rec) => {
            println!(
                "evaluating on {} (given), not on the run's own data: {}",
                named.join(" "),
                rec.describe()
            );
            a.data.choice().load(m.info.shape, 0, note)
        }
        None => {
            if named.is_empty() {
                println!(
                    "{} records no data (no source.json): evaluating on the default, MNIST (downloaded, or the bundled sample)",
                    m.run_dir.display()
                );
            }
            a.data.choice().load(m.info.shape, 0, note)
        }
    }
}

fn predict_images(a: PredictArgs) -> Result<()> {
    let m = open_model(&a.model)?;
    let files = predict::expand_inputs(&a.images)?;
    predict::predict_files(&m.model, &m.info, &files, &m.device, |path, p| {
        let top: Vec<String> = predict::top_k(p, 3)
            .iter()
            .map(|(c, p)| format!("{} ({:.1}%)", m.info.class_name(*c), 100.0 * p))
            .collect();
        println!("{}: {}", path.display(), top.join(", "));
    })
}

fn explain_images(a: ExplainArgs) -> Result<()> {
    if a.out.is_some() && a.images.len() > 1 {
        return Err(Error::setting(
            "out",
            "--out names one PNG; give one image, or leave --out out",
        ));
    }
    let m = open_model(&a.model)?;
    for image in &a.images {
        let input = predict::load_image(image, &m.info)?;
        let out = match &a.out {
            Some(out) => out.clone(),
            None => {
                let stem = image.file_stem().unwrap_or_default().to_string_lossy();
                PathBuf::from(format!("{stem}-explain.png"))
            }
        };
        write_atomic(
            &out,
            &explain::explain_image(&m.model, &m.info, &input, &m.device)?,
        )?;
        println!("{}: {}", image.display(), out.display());
    }
    Ok(())
}

fn serve_model(a: ServeArgs) -> Result<()> {
    let seconds = |name: &str, v: f64| {
        std::time::Duration::try_from_secs_f64(v)
            .map_err(|_| Error::setting(name, format!("{v} is not a number of seconds")))
    };
    let config = serve::ServeConfig {
        max_batch: a.max_batch,
        max_wait: std::time::Duration::from_millis(a.max_wait_ms),
        max_queue: a.max_queue,
        max_connections: a.max_connections,
        header_timeout: seconds("header-timeout", a.header_timeout)?,
        body_timeout: seconds("body-timeout", a.body_timeout)?,
        request_timeout: seconds("request-timeout", a.request_timeout)?,
        drain_delay: seconds("drain-delay", a.drain_delay)?,
        shutdown_timeout: seconds("shutdown-timeout", a.shutdown_timeout)?,
        max_image_pixels: a.max_image_pixels,
    };
    config.check()?;
    let m = open_model(&a.model)?;
    let shown = m.path.display().to_string();
    let app = serve::App::of(m);
    let server = serve::Server::bind_with(app, a.addr, config)?;
    if !a.addr.ip().is_loopback() {
        eprintln!(
            "note: listening on {} — reachable from other machines on this network",
            a.addr
        );
    }
    serve::init_logging(a.quiet);
    println!(
        "serving {shown} on http://{}/ (Ctrl-C or SIGTERM to stop)",
        server.addr()
    );
    server.run_until_signal(a.threads)
}

fn export_model(a: ExportArgs) -> Result<()> {
    let m = open_model(&a.model)?;
    for path in export(&m, &a.out, a.force)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn pack_folder(a: PackArgs) -> Result<()> {
    let opts = crate::app::data::folder::FolderOptions {
        val_split: a.val_split,
        seed: a.seed,
        skip_bad: a.skip_bad,
        progress: true,
        ..crate::app::data::folder::FolderOptions::new(a.input_shape)
    };
    let start = Instant::now();
    let h = crate::app::data::pack::pack_folder(&a.data, &opts, &a.out)?;
    for (path, why) in &h.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    let [c, hh, w] = h.shape;
    println!(
        "wrote {}: {} train / {} test images of {c}x{hh}x{w}, {} classes, in {:.1} s",
        a.out.display(),
        h.train,
        h.test,
        h.classes.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn import_model(a: ImportArgs) -> Result<()> {
    let normalization = match (a.mean, a.std) {
        (None, None) => None,
        (Some(mean), Some(std)) => Some(Normalization { mean, std }),
        _ => {
            return Err(Error::setting(
                "mean/std",
                "give both --mean and --std, or neither",
            ));
        }
    };
    let (_, device) = select_device(a.device.choice)?;
    let contract = crate::app::interop::ContractFlags {
        classes: a.classes,
        normalization,
        preprocess: a.preprocess,
    };
    let done = match (a.onnx, a.config, a.weights) {
        (Some(onnx), config, _) => crate::app::onnx::import_onnx(
            &crate::app::onnx::OnnxImportOptions {
                onnx,
                config,
                contract,
                out: a.out,
            },
            &device,
        )?,
        (None, Some(config), Some(weights)) => import(
            &ImportOptions {
                config,
                weights,
                classes: contract.classes,
                normalization: contract.normalization,
                preprocess: contract.preprocess,
                out: a.out,
            },
            &device,
        )?,
        _ => {
            return Err(Error::setting(
                "import",
                "give --onnx FILE, or --config and --weights",
            ));
        }
    };
    for d in &done.defaults {
        println!("default {d}");
    }
    println!("wrote the run directory {}", done.out.display());
    Ok(())
}

fn summary(a: SummaryArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => read_json::<TrainConfig>(p)?.model,
        None => a.model.config(),
    };
    println!("{}", cfg.summary()?);
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let cfg = a.model.config();
    let kinds = selected_backends(a.device)?;
    let opts = MeasureOptions {
        train_batch: a.batch_size,
        infer_batch: a.infer_batch_size,
        train_steps: a.steps,
        infer_steps: a.steps,
        ..MeasureOptions::default()
    };
    println!(
        "{}: train batch {}, inference batch {}, {} timed steps, {} threads",
        cfg.name,
        a.batch_size,
        a.infer_batch_size,
        a.steps,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut results = Vec::new();
    for kind in kinds {
        let dev = match device_of(kind) {
            Ok(d) => d,
            Err(e) => {
                println!("{kind:>8}: skipped ({e})");
                continue;
            }
        };
        let t = measure(&cfg, &dev, &opts)?;
        println!(
            "{kind:>8}: train {:>8.0} img/s ({:.1} ms/step)   inference {:>8.0} img/s ({:.1} ms/batch)",
            t.train_images_per_sec, t.train_step_ms, t.infer_images_per_sec, t.infer_batch_ms
        );
        if let (Some(tr), Some(inf)) = (t.train_allocs_per_step, t.infer_allocs_per_batch) {
            println!(
                "{:>8}  heap allocations: {} per training step ({:.2} MB), {} per inference batch ({:.2} MB)",
                "",
                tr.count,
                tr.bytes as f64 / 1e6,
                inf.count,
                inf.bytes as f64 / 1e6
            );
        }
        results.push(BenchRecord {
            backend: kind.name().to_string(),
            model: cfg.name.clone(),
            train_batch: a.batch_size,
            infer_batch: a.infer_batch_size,
            result: t,
        });
    }
    if let Some(p) = &a.json {
        write_json(p, &results)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error() {
        let diverged = Error::Diverged {
            epoch: 1,
            batch: 2,
            loss: f64::NAN,
            lr: 1.0,
        };
        let interrupted = Error::Interrupted {
            epoch: 0,
            batches: 3,
            run: "r".into(),
        };
        assert_eq!(exit_code(&diverged), 3);
        assert_eq!(exit_code(&interrupted), 130);
        assert_eq!(exit_code(&Error::setting("x", "y")), 2);
        let io = Error::io("a.png", std::io::Error::other("gone"));
        assert_eq!(one_line(&io), "a.png: gone");
    }

    #[test]
    fn every_subcommand_parses_and_the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "train", "eval", "predict", "explain", "serve", "summary", "bench", "export",
                "import", "pack"
            ]
        );
        let cli = Cli::try_parse_from([
            "netcalc",
            "pack",
            "--data",
            "leaves",
            "--input-shape",
            "3x64x64",
            "--out",
            "leaves.ncpack",
            "--val-split",
            "0.2",
        ])
        .unwrap();
        let Some(Cmd::Pack(p)) = cli.cmd else {
            panic!("not pack");
        };
        assert_eq!(
            (p.input_shape, p.val_split, p.seed, p.skip_bad),
            ([3, 64, 64], Some(0.2), 0, false)
        );
        assert!(Cli::try_parse_from(["netcalc", "pack", "--data", "d", "--out", "f"]).is_err());
        let cli = Cli::try_parse_from(["netcalc", "train", "--resume", "runs/x"]).unwrap();
        let req = cli.train_args().unwrap().request();
        assert_eq!(req.resume, Some(PathBuf::from("runs/x")));
        assert_eq!(
            req.data,
            crate::app::train::DataChoice {
                progress: true,
                ..Default::default()
            }
        );
        let cli = Cli::try_parse_from([
            "netcalc",
            "import",
            "--config",
            "e",
            "--weights",
            "w.pt",
            "--out",
            "o",
            "--preprocess",
            "digit",
        ])
        .unwrap();
        assert!(cli.train_args().is_none());
    }
}
