//! Train, evaluate and use a CNN on MNIST. The logic lives in the `netcalc` library; this file
//! only parses the command line.
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
use netcalc::data::{DataOptions, Mnist, load_mnist};
use netcalc::fsio::read_json;
use netcalc::train::{
    ProgressMode, RunDir, RunOptions, Schedule, TrainConfig, check_model_fits_data, evaluate,
    load_model, locate_model,
};
use netcalc::{BackendKind, CnnConfig, compiled_backends, select_device};

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
    /// adam, adamw or sgd [default: adam].
    #[arg(long)]
    optimizer: Option<String>,
    /// Learning-rate schedule: cosine, step or constant [default: cosine].
    #[arg(long)]
    schedule: Option<String>,
    /// Random shift augmentation in pixels, 0 to disable [default: 2].
    #[arg(long)]
    augment_shift: Option<usize>,
    /// Seed for initialization, shuffling, augmentation and dropout [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: ndarray, flex, wgpu (alias vulkan) or auto [default: auto; $NETCALC_DEVICE].
    #[arg(long)]
    device: Option<String>,
    /// Model preset: cnn, keras-cnn or mlp [default: cnn].
    #[arg(long, conflicts_with = "config")]
    model: Option<String>,
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

#[derive(Args, Debug)]
struct EvalArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    device: Option<String>,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    device: Option<String>,
    /// The PNG to write (one image only) [default: <image>-explain.png in the current directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images to explain (PNG/JPEG, any size).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    device: Option<String>,
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
    /// Model preset: cnn, keras-cnn or mlp.
    #[arg(long, default_value = "cnn", conflicts_with = "config")]
    model: String,
    /// A training config JSON.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Model preset: cnn, keras-cnn or mlp.
    #[arg(long, default_value = "keras-cnn")]
    model: String,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 1000)]
    infer_batch_size: usize,
    /// Timed steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Backend(s): a name, or `all` for every compiled-in one [default: auto].
    #[arg(long)]
    device: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cfg!(feature = "wgpu") && std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa's Vulkan/GL drivers print "XDG_RUNTIME_DIR is invalid" to stderr for every
        // adapter they open without it; nothing here needs a runtime directory.
        // Mesa wants a private (0700) directory.
        let dir = std::env::temp_dir().join("netcalc-xdg-runtime");
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let _ = std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(&dir);
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: called on the main thread before any other thread is started.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            exit_code(&e)
        }
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

/// Chooses the device, and makes it burn's default device too (`BURN_DEVICE`): burn's optimizer
/// loads checkpointed state onto `Device::default()`, which with wgpu compiled in is wgpu
/// (`backend::tests::default_device_prefers_wgpu_when_compiled_in`) — starting a GPU backend
/// just to read a checkpoint, or failing on a machine without one.
fn device(name: Option<&str>) -> Result<(BackendKind, netcalc::burn::tensor::Device)> {
    let (kind, device) = select_device(name)?;
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: called on the main thread before any other thread is started.
        unsafe { std::env::set_var("BURN_DEVICE", kind.name()) };
    }
    Ok((kind, device))
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

fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = if let Some(dir) = &a.resume {
        RunDir::open(dir)?.read_config()?
    } else if let Some(path) = &a.config {
        read_json(path)?
    } else {
        TrainConfig::default()
    };
    if let Some(m) = &a.model {
        cfg.model = CnnConfig::preset(m)?;
    }
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = a.lr {
        cfg.optimizer.lr = v;
        if let Schedule::Cosine { min_lr } = &mut cfg.schedule {
            *min_lr = min_lr.min(v);
        }
    }
    if let Some(v) = &a.optimizer {
        cfg.optimizer.kind = v.parse()?;
    }
    if let Some(v) = &a.schedule {
        cfg.schedule = match v.as_str() {
            "cosine" => Schedule::Cosine {
                min_lr: 1e-5f64.min(cfg.optimizer.lr),
            },
            "step" => Schedule::Step {
                every_epochs: (cfg.epochs / 3).max(1),
                gamma: 0.1,
            },
            "constant" => Schedule::Constant,
            other => bail!(
                "invalid setting `schedule`: unknown schedule `{other}`; expected cosine, step or constant"
            ),
        };
    }
    if let Some(v) = a.augment_shift {
        cfg.augment_shift = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if a.limit.is_some() {
        cfg.limit = a.limit;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn train(a: TrainArgs) -> Result<()> {
    let cfg = train_config(&a)?;
    let (kind, dev) = device(a.device.as_deref())?;
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
    let run = match netcalc::train::train(&cfg, &data, &dev, &opts) {
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
    let (cfg, model_path) = locate_model(&a.model)?;
    let (kind, dev) = device(a.device.as_deref())?;
    let model = load_model(&cfg, &model_path, &dev)?;
    let data = load_data(&a.data)?;
    println!("{}", data.describe());
    let e = evaluate(&model, &data.test, &dev, 1000)?;
    println!(
        "{} on {kind}: test accuracy {:.2}%, test loss {:.4}",
        model_path.display(),
        100.0 * e.accuracy,
        e.loss
    );
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let (cfg, model_path) = locate_model(&a.model)?;
    let (_, dev) = device(a.device.as_deref())?;
    let model = load_model(&cfg, &model_path, &dev)?;
    let digits = a
        .images
        .iter()
        .map(|p| netcalc::predict::load_digit(p))
        .collect::<Result<Vec<_>, _>>()?;
    let probs = netcalc::predict::class_probabilities(&model, &digits, &dev)?;
    for (path, p) in a.images.iter().zip(&probs) {
        let top: Vec<String> = netcalc::predict::top_k(p, 3)
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
    let (cfg, model_path) = locate_model(&a.model)?;
    let (_, dev) = device(a.device.as_deref())?;
    let model = load_model(&cfg, &model_path, &dev)?;
    for image in &a.images {
        let digit = netcalc::predict::load_digit(image)?;
        let out = match &a.out {
            Some(out) => out.clone(),
            None => {
                let stem = image.file_stem().unwrap_or_default().to_string_lossy();
                PathBuf::from(format!("{stem}-explain.png"))
            }
        };
        let png = netcalc::explain::explain_digit(&model, &digit, &dev)?;
        netcalc::fsio::write_atomic(&out, &png)?;
        println!("{}: {}", image.display(), out.display());
    }
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    let (cfg, model_path) = locate_model(&a.model)?;
    let (_, dev) = device(a.device.as_deref())?;
    let model = load_model(&cfg, &model_path, &dev)?;
    let run_dir = model_path.parent().map(Path::to_path_buf);
    let app = netcalc::serve::App::new(model, cfg, dev, run_dir);
    let server = netcalc::serve::Server::bind(app, a.addr)?;
    if !a.addr.ip().is_loopback() {
        eprintln!(
            "note: listening on {} — reachable from other machines on this network",
            a.addr
        );
    }
    println!(
        "serving {} on http://{}/ (Ctrl-C to stop)",
        model_path.display(),
        server.addr()
    );
    server.run(a.threads);
    Ok(())
}

fn summary(a: SummaryArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => read_json::<TrainConfig>(p)?.model,
        None => CnnConfig::preset(&a.model)?,
    };
    println!("{}", cfg.summary()?);
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let cfg = CnnConfig::preset(&a.model)?;
    let kinds: Vec<BackendKind> = match a.device.as_deref() {
        Some("all") => compiled_backends(),
        other => vec![netcalc::select_backend(other)?],
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
        let dev = match netcalc::device_of(kind) {
            Ok(d) => d,
            Err(e) => {
                println!("{kind:>8}: skipped ({e})");
                continue;
            }
        };
        let t = netcalc::train::bench::measure(
            &cfg,
            &dev,
            a.batch_size,
            a.infer_batch_size,
            a.steps,
            3,
        )?;
        println!(
            "{kind:>8}: train {:>8.0} img/s ({:.1} ms/step)   inference {:>8.0} img/s ({:.1} ms/batch)",
            t.train_images_per_sec, t.train_step_ms, t.infer_images_per_sec, t.infer_batch_ms
        );
        results.push(serde_json::json!({"backend": kind.name(), "model": cfg.name, "train_batch": a.batch_size, "infer_batch": a.infer_batch_size, "result": t}));
    }
    if let Some(p) = &a.json {
        write_json(p, &results)?;
    }
    Ok(())
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<()> {
    netcalc::fsio::write_json(path, v)?;
    Ok(())
}
