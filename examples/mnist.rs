//! Train, evaluate and use a CNN on MNIST. The logic lives in the `netcalc` library; this file
//! parses the command line and prints what the library returns.
//!
//! ```text
//! cargo run --release --example mnist                      # train the default CNN (offline OK)
//! cargo run --release --example mnist -- predict --model runs/<run> digit.png
//! cargo run --release --example mnist -- bench --steps 50
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use netcalc::app::data::{DataOptions, Mnist, load_mnist};
use netcalc::app::fsio::{read_json, write_atomic, write_json};
use netcalc::app::session::TrainedModel;
use netcalc::app::train::bench::{MeasureOptions, measure};
use netcalc::app::train::{
    OptimizerKind, ProgressMode, RunDir, RunOptions, ScheduleKind, TrainConfig, TrainOverrides,
    check_model_fits_data, evaluate,
};
use netcalc::app::{explain, predict, serve};
use netcalc::backend::{DeviceChoice, selected_backends};
use netcalc::{BackendKind, ModelPreset, device_of, select_backend, select_device};

#[derive(Parser, Debug)]
#[command(
    name = "mnist",
    about = "Train, evaluate and use netcalc's CNN on MNIST",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a model (the default when no subcommand is given).
    Train(Box<TrainArgs>),
    /// Evaluate a trained model on the held-out split.
    Eval(EvalArgs),
    /// Classify image files (PNG/JPEG, any size) with a trained model.
    Predict(PredictArgs),
    /// Draw every stage of the network for images: feature maps, feature vector, class scores.
    Explain(ExplainArgs),
    /// Serve a draw-a-digit web page and a JSON API for a trained model.
    Serve(ServeArgs),
    /// Print the Keras-like summary of a model.
    Summary(SummaryArgs),
    /// Measure training and inference throughput (images/second) on synthetic batches.
    Bench(BenchArgs),
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// Directory with the four MNIST IDX files (raw or .gz); also $NETCALC_MNIST_DIR.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Never download full MNIST; use the cache or the bundled sample.
    #[arg(long)]
    offline: bool,
}

/// `--device`: the backend to run on.
#[derive(Args, Debug, Clone, Copy)]
struct DeviceArg {
    /// Backend [default: auto; $NETCALC_DEVICE].
    #[arg(long = "device", value_name = "DEVICE", value_enum, ignore_case = true)]
    choice: Option<DeviceChoice>,
}

#[derive(Args, Debug, Clone)]
struct TrainArgs {
    /// Passes over the training data [default: 12].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step [default: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate [default: 0.002].
    #[arg(long)]
    lr: Option<f64>,
    /// The optimizer [default: adam].
    #[arg(long, value_enum, ignore_case = true)]
    optimizer: Option<OptimizerKind>,
    /// Learning-rate schedule [default: cosine].
    #[arg(long, value_enum, ignore_case = true)]
    schedule: Option<ScheduleKind>,
    /// Random shift augmentation in pixels, 0 to disable [default: 2].
    #[arg(long)]
    augment_shift: Option<usize>,
    /// Seed for initialization, shuffling, augmentation and dropout [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    device: DeviceArg,
    /// Model preset [default: cnn].
    #[arg(long, value_enum, conflicts_with = "config")]
    model: Option<ModelPreset>,
    /// A training config JSON (as written to <run>/config.json) instead of the flags' defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Run directory [default: runs/<model>-<unix time>].
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Stop after this epoch, as if interrupted (the run stays resumable).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
}

impl TrainArgs {
    fn overrides(&self) -> TrainOverrides {
        TrainOverrides {
            model: self.model,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer,
            schedule: self.schedule,
            augment_shift: self.augment_shift,
            seed: self.seed,
            limit: self.limit,
        }
    }
}

/// `--model RUN` and `--device`: a trained model to load.
#[derive(Args, Debug)]
struct ModelArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

impl ModelArgs {
    fn open(&self) -> Result<TrainedModel> {
        Ok(TrainedModel::open(&self.model, self.device.choice)?)
    }
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The PNG to write (one image only) [default: <image>-explain.png in the current directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images to explain (PNG/JPEG, any size).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to listen. Loopback by default; any other address is reachable from other
    /// machines, so it has to be asked for explicitly.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Threads answering requests.
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

#[derive(Args, Debug)]
struct SummaryArgs {
    /// Model preset.
    #[arg(long, value_enum, default_value_t = ModelPreset::Cnn, conflicts_with = "config")]
    model: ModelPreset,
    /// A training config JSON.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Model preset.
    #[arg(long, value_enum, default_value_t = ModelPreset::KerasCnn)]
    model: ModelPreset,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 1000)]
    infer_batch_size: usize,
    /// Timed steps of training and of inference (after 3 warm-up steps of each).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Backend, or `all` for every one compiled in [default: auto; $NETCALC_DEVICE].
    #[arg(long, value_name = "DEVICE", value_enum, ignore_case = true)]
    device: Option<DeviceChoice>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    pin_burn_default_device(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            exit_code(&e)
        }
    }
}

/// Makes the backend a resumed run trains on burn's default device too (`BURN_DEVICE`), before
/// any thread starts. burn's `ModuleOptimizer::load` puts checkpointed optimizer state on
/// `Device::default()` and takes no device; with wgpu compiled in that is wgpu
/// (`backend::tests::default_device_prefers_wgpu_when_compiled_in`), which would start a GPU
/// backend just to read a checkpoint, or fail on a machine without one. burn offers no other
/// way to choose that device, so this one environment variable stays, set only to resume.
fn pin_burn_default_device(cli: &Cli) {
    let args = match &cli.cmd {
        None => &cli.train,
        Some(Cmd::Train(a)) => a,
        Some(_) => return,
    };
    if args.resume.is_none() || std::env::var_os("BURN_DEVICE").is_some() {
        return;
    }
    if let Ok(kind) = select_backend(args.device.choice) {
        // SAFETY: the first thing `main` does after parsing: no other thread exists yet.
        unsafe { std::env::set_var("BURN_DEVICE", kind.name()) };
    }
}

/// The error and its causes on one line, each cause once: netcalc's messages already end with
/// their source's text (`x.png: No such file or directory`), which `{:#}` would repeat.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// 3 when training diverged (the last checkpoint is kept), 130 after Ctrl-C (a checkpoint was
/// written), 2 for every other error.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.is::<Interrupted>() {
        return ExitCode::from(130);
    }
    match e.downcast_ref::<netcalc::Error>() {
        Some(netcalc::Error::Diverged { .. }) => ExitCode::from(3),
        _ => ExitCode::from(2),
    }
}

/// Training stopped by Ctrl-C after writing a checkpoint (exit code 130, as after SIGINT).
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A flag that the first Ctrl-C (SIGINT) or SIGTERM sets, so that training stops at the end
/// of the current batch and writes a checkpoint; a second one ends the program at once (130).
fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so that it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())
            .context("cannot install the Ctrl-C handler")?;
        signal_hook::flag::register(sig, flag.clone())
            .context("cannot install the Ctrl-C handler")?;
    }
    Ok(flag)
}

/// The command that continues an interrupted run: this program, `train --resume DIR`, the same
/// backend and data flags.
fn resume_command(run: &Path, kind: BackendKind, data: &DataArgs) -> String {
    let exe = std::env::args().next().unwrap_or_else(|| "mnist".into());
    let mut cmd = format!("{exe} train --resume {} --device {kind}", run.display());
    if let Some(d) = &data.data_dir {
        cmd.push_str(&format!(" --data-dir {}", d.display()));
    }
    if data.offline {
        cmd.push_str(" --offline");
    }
    cmd
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        None => train(cli.train),
        Some(Cmd::Train(a)) => train(*a),
        Some(Cmd::Eval(a)) => eval(a),
        Some(Cmd::Predict(a)) => predict(a),
        Some(Cmd::Explain(a)) => explain(a),
        Some(Cmd::Serve(a)) => serve(a),
        Some(Cmd::Summary(a)) => summary(a),
        Some(Cmd::Bench(a)) => bench(a),
    }
}

fn load_data(a: &DataArgs) -> Result<Mnist> {
    let opts = DataOptions {
        data_dir: a.data_dir.clone(),
        offline: a.offline,
        progress: true,
        ..DataOptions::default()
    };
    Ok(load_mnist(&opts, |w| eprintln!("note: {w}"))?)
}

/// The run's config: the resumed run's, a `--config` file or the defaults, with the flags put in.
fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    let cfg = if let Some(dir) = &a.resume {
        RunDir::open(dir)?.read_config()?
    } else if let Some(path) = &a.config {
        read_json(path)?
    } else {
        TrainConfig::default()
    };
    Ok(cfg.with_overrides(&a.overrides())?)
}

fn train(a: TrainArgs) -> Result<()> {
    let cfg = train_config(&a)?;
    let (kind, dev) = select_device(a.device.choice)?;
    let out = match (&a.resume, &a.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out.clone(),
        (None, None) => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from(format!("runs/{}-{secs}", cfg.model.name))
        }
    };
    check_model_fits_data(&cfg.model)?;
    if a.resume.is_none() {
        // Fail on an unwritable --out before loading (or downloading) any data; the directory
        // is made by `train` once everything is checked.
        RunDir::check_can_create(&out)
            .with_context(|| format!("--out {} is not writable", out.display()))?;
    }
    let data = load_data(&a.data)?;
    println!("{}", data.describe());
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
    println!("run directory: {}", out.display());
    let opts = RunOptions {
        out,
        resume: a.resume.is_some(),
        stop_after: a.stop_after,
        progress: if a.plain {
            ProgressMode::Plain
        } else {
            ProgressMode::Auto
        },
        backend: kind,
        interrupt: Some(ctrl_c_flag()?),
    };
    let start = Instant::now();
    let run = match netcalc::app::train::train(&cfg, &data, &dev, &opts) {
        Err(netcalc::Error::Interrupted {
            epoch,
            batches,
            run,
        }) => {
            eprintln!(
                "interrupted: checkpoint written after {epoch} epochs and {batches} batches; continue with:"
            );
            eprintln!("  {}", resume_command(&run, kind, &a.data));
            return Err(Interrupted.into());
        }
        other => other?,
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
        data.test.len(),
        e.loss,
        start.elapsed().as_secs_f64()
    );
    println!(
        "wrote {0}/model.bpk, config.json, metrics.csv, metrics.json, confusion.csv, loss.png, accuracy.png, confusion.png",
        run.out.display()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let m = a.model.open()?;
    let data = load_data(&a.data)?;
    println!("{}", data.describe());
    let e = evaluate(&m.model, &data.test, &m.device, 1000)?;
    println!(
        "{} on {}: test accuracy {:.2}%, test loss {:.4}",
        m.path.display(),
        m.backend,
        100.0 * e.accuracy,
        e.loss
    );
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let m = a.model.open()?;
    let digits = a
        .images
        .iter()
        .map(|p| predict::load_digit(p))
        .collect::<Result<Vec<_>, _>>()?;
    let probs = predict::class_probabilities(&m.model, &digits, &m.device)?;
    for (path, p) in a.images.iter().zip(&probs) {
        let top: Vec<String> = predict::top_k(p, 3)
            .iter()
            .map(|(c, p)| format!("{c} ({:.1}%)", 100.0 * p))
            .collect();
        println!("{}: {}", path.display(), top.join(", "));
    }
    Ok(())
}

fn explain(a: ExplainArgs) -> Result<()> {
    if a.out.is_some() && a.images.len() > 1 {
        bail!("--out names one PNG; give one image, or leave --out out");
    }
    let m = a.model.open()?;
    for image in &a.images {
        let digit = predict::load_digit(image)?;
        let out = match &a.out {
            Some(out) => out.clone(),
            None => {
                let stem = image.file_stem().unwrap_or_default().to_string_lossy();
                PathBuf::from(format!("{stem}-explain.png"))
            }
        };
        write_atomic(&out, &explain::explain_digit(&m.model, &digit, &m.device)?)?;
        println!("{}: {}", image.display(), out.display());
    }
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    let m = a.model.open()?;
    let shown = m.path.display().to_string();
    let app = serve::App::new(m.model, m.config, m.device, Some(m.run_dir));
    let server = serve::Server::bind(app, a.addr)?;
    if !a.addr.ip().is_loopback() {
        eprintln!(
            "note: listening on {} — reachable from other machines on this network",
            a.addr
        );
    }
    println!(
        "serving {shown} on http://{}/ (Ctrl-C to stop)",
        server.addr()
    );
    server.run(a.threads);
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
        results.push(serde_json::json!({
            "backend": kind.name(),
            "model": cfg.name,
            "train_batch": a.batch_size,
            "infer_batch": a.infer_batch_size,
            "result": t,
        }));
    }
    if let Some(p) = &a.json {
        write_json(p, &results)?;
    }
    Ok(())
}
