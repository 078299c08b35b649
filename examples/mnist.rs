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
use netcalc::app::data::folder::{DEFAULT_MAX_MEMORY, FolderOptions};
use netcalc::app::data::{DataOptions, DataSpec, Dataset, NamedDataset, Normalization};
use netcalc::app::fsio::{read_json, write_atomic, write_json};
use netcalc::app::interop::{ImportOptions, export, import};
use netcalc::app::session::TrainedModel;
use netcalc::app::train::allocs::CountingAlloc;
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
    /// Measure training and inference throughput (images/second) on synthetic batches, and
    /// the heap allocations per training step and per inference batch.
    Bench(BenchArgs),
    /// Write a trained model for PyTorch: model.safetensors, model.py (build(), preprocess()),
    /// classes.json.
    Export(ExportArgs),
    /// Make a run directory from a config and weights from PyTorch (.pt/.pth) or safetensors.
    Import(ImportArgs),
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// A folder of your own images: DIR/train/<class>/*.png|jpg and DIR/test/<class>/…, or
    /// DIR/<class>/… with --val-split.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["data_dir", "dataset"])]
    data: Option<PathBuf>,
    /// An IDX dataset by name, downloaded (verified) and cached [default: mnist].
    #[arg(long, value_enum)]
    dataset: Option<NamedDataset>,
    /// Directory with the four IDX files (raw or .gz); also $NETCALC_MNIST_DIR for MNIST.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Never download; use the cache (or, for MNIST, the bundled sample).
    #[arg(long)]
    offline: bool,
    /// With --data and no train/ and test/: the share of each class held out, in (0, 1).
    #[arg(long, value_name = "F")]
    val_split: Option<f64>,
    /// With --data: the most memory the decoded images may take, e.g. 4G, 512M [default: 4G].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// With --data: leave unreadable images out (and list them) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
}

/// `4G`, `512M`, `64K` or a number of bytes.
fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("`{s}`: the unit must be K, M, G or T")),
            };
            (&t[..i], mul)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 4G or 512M"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("`{s}` must be above 0"));
    }
    Ok((n * mul as f64) as u64)
}

impl DataArgs {
    /// What to load; `seed` splits a folder without train/ and test/.
    fn spec(&self, seed: u64) -> DataSpec {
        let dataset = self.dataset.unwrap_or(NamedDataset::Mnist);
        DataSpec {
            folder: self.data.clone(),
            folder_options: FolderOptions {
                val_split: self.val_split,
                seed,
                max_memory: self.max_memory.unwrap_or(DEFAULT_MAX_MEMORY),
                skip_bad: self.skip_bad,
                progress: true,
                ..FolderOptions::new([1, 28, 28])
            },
            idx: DataOptions {
                data_dir: self.data_dir.clone(),
                offline: self.offline,
                progress: true,
                ..DataOptions::for_dataset(dataset)
            },
        }
    }
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
    /// Model preset [default: cnn]; its output layer takes the data's number of classes.
    #[arg(long, value_enum, conflicts_with = "config")]
    model: Option<ModelPreset>,
    /// The preset for images of this shape, CxHxW (e.g. 3x64x64) [default: 1x28x28].
    #[arg(long, value_name = "CxHxW", value_parser = parse_shape, conflicts_with = "config")]
    input_shape: Option<[usize; 3]>,
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
    /// Also write every held-out image's label, prediction and class scores (logits) as CSV.
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,
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
struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Write into a directory that exists (its three files are replaced).
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The model: a TrainConfig (a run's config.json) or a bare CnnConfig, as JSON.
    #[arg(long)]
    config: PathBuf,
    /// The weights: .safetensors, or a PyTorch state dict (torch.save) .pt/.pth.
    #[arg(long)]
    weights: PathBuf,
    /// A JSON list of class names, in output order [default: 0, 1, …].
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Per-channel means of the pixels in [0, 1], e.g. 0.485,0.456,0.406 [default: MNIST's 0.1307].
    #[arg(long, value_delimiter = ',')]
    mean: Option<Vec<f32>>,
    /// Per-channel standard deviations [default: MNIST's 0.3081].
    #[arg(long, value_delimiter = ',')]
    std: Option<Vec<f32>>,
    /// The run directory to write (must not exist).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

/// `3x64x64` as `[3, 64, 64]`.
fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split(['x', 'X', ',']).collect();
    let dims: Vec<usize> = parts
        .iter()
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{s}` is not a shape such as 3x64x64"))?;
    match dims[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "`{s}`: give channels x height x width, each at least 1"
        )),
    }
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

/// mimalloc, counted: `mnist bench` reports the allocations per training step and per batch.
#[global_allocator]
static GLOBAL: CountingAlloc<mimalloc::MiMalloc> = CountingAlloc::new(mimalloc::MiMalloc);

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
    if let Some(d) = &data.data {
        cmd.push_str(&format!(" --data {}", d.display()));
    }
    if let Some(v) = data.val_split {
        cmd.push_str(&format!(" --val-split {v}"));
    }
    if data.skip_bad {
        cmd.push_str(" --skip-bad");
    }
    if let Some(d) = data.dataset {
        cmd.push_str(&format!(" --dataset {d}"));
    }
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
        Some(Cmd::Export(a)) => export_model(a),
        Some(Cmd::Import(a)) => import_model(a),
    }
}

/// Loads the data for a model of input `shape`, and says what was left out.
fn load_data(a: &DataArgs, shape: [usize; 3], seed: u64) -> Result<Dataset> {
    let data = a.spec(seed).load(shape, |w| eprintln!("note: {w}"))?;
    for (path, why) in &data.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    Ok(data)
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
    let mut cfg = train_config(&a)?;
    // A preset (no --config, no --resume) is shaped to the data: --input-shape, and as many
    // outputs as the data has classes. A config given in full is trained as it is.
    let preset = a.config.is_none() && a.resume.is_none();
    if let Some(shape) = a.input_shape {
        cfg.model = cfg.model.for_data(shape, cfg.model.num_classes())?;
    }
    let spec = a.data.spec(cfg.seed);
    if let Some(info) = spec.known_info() {
        if preset {
            cfg.model = cfg
                .model
                .for_data(cfg.model.features.input, info.classes.len())?;
        }
        check_model_fits_data(&cfg.model, &info)?;
    }
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
    if a.resume.is_none() {
        // Fail on an unwritable --out before loading (or downloading) any data; the directory
        // is made by `train` once everything is checked.
        RunDir::check_can_create(&out)
            .with_context(|| format!("--out {} is not writable", out.display()))?;
    }
    let data = load_data(&a.data, cfg.model.features.input, cfg.seed)?;
    if preset && data.info.classes.len() != cfg.model.num_classes() {
        cfg.model = cfg
            .model
            .for_data(cfg.model.features.input, data.info.classes.len())?;
    }
    check_model_fits_data(&cfg.model, &data.info)?;
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
    let data = load_data(&a.data, m.info.shape, 0)?;
    println!("{}", data.describe());
    let test = data.test_for(&m.info)?;
    let e = evaluate(&m.model, &test, &m.device, 1000)?;
    if let Some(path) = &a.scores {
        let scores = netcalc::app::train::class_scores(&m.model, &test, &m.device, 1000)?;
        let csv = netcalc::app::train::metrics::scores_csv(&test.labels, &scores, &m.info.classes);
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

fn predict(a: PredictArgs) -> Result<()> {
    let m = a.model.open()?;
    let images = a
        .images
        .iter()
        .map(|p| predict::load_image(p, &m.info))
        .collect::<Result<Vec<_>, _>>()?;
    let probs = predict::class_probabilities(&m.model, &m.info, &images, &m.device)?;
    for (path, p) in a.images.iter().zip(&probs) {
        let top: Vec<String> = predict::top_k(p, 3)
            .iter()
            .map(|(c, p)| format!("{} ({:.1}%)", m.info.class_name(*c), 100.0 * p))
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

fn serve(a: ServeArgs) -> Result<()> {
    let m = a.model.open()?;
    let shown = m.path.display().to_string();
    let app = serve::App::of(m);
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

fn export_model(a: ExportArgs) -> Result<()> {
    let m = a.model.open()?;
    for path in export(&m, &a.out, a.force)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn import_model(a: ImportArgs) -> Result<()> {
    let normalization = match (a.mean, a.std) {
        (None, None) => None,
        (Some(mean), Some(std)) => Some(Normalization { mean, std }),
        _ => bail!("give both --mean and --std, or neither"),
    };
    let (_, device) = select_device(a.device.choice)?;
    let opts = ImportOptions {
        config: a.config,
        weights: a.weights,
        classes: a.classes,
        normalization,
        out: a.out,
    };
    let out = import(&opts, &device)?;
    println!("wrote the run directory {}", out.display());
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
