//! The command line's definition: every subcommand and flag of `netcalc` (clap), and the
//! parsers of their values. [`super::run`] carries them out.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::data::{NamedDataset, Preprocess};
use crate::app::train::{DataChoice, OptimizerKind, ScheduleKind, TrainOverrides, TrainRequest};
use crate::backend::DeviceChoice;
use crate::model::ModelPreset;

/// `netcalc`'s command line.
#[derive(Parser, Debug)]
#[command(
    name = "netcalc",
    version,
    about = "Train, evaluate, explain, serve and export netcalc's CNNs (MNIST built in, or your own images)",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (train when none is given).
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// `train`'s flags, when no subcommand is given.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
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
    /// Write a trained model for PyTorch and ONNX runtimes: model.safetensors, model.py
    /// (build(), preprocess()), classes.json, netcalc.json (the data contract `import` reads
    /// back), model.onnx (opset 17, the contract in its metadata).
    Export(ExportArgs),
    /// Make a run directory from a config and weights from PyTorch (.pt/.pth) or safetensors,
    /// or from an ONNX model.
    Import(ImportArgs),
    /// Decode a folder of images once into a packed file (`--data FILE` reads it, memory-mapped).
    Pack(PackArgs),
}

/// Where the data is and what shapes it (train, eval).
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Your own images: a folder DIR/train/CLASS/*.png|jpg and DIR/test/CLASS/…, or
    /// DIR/CLASS/… with --val-split (decoded once into a packed file in the cache); or a
    /// packed file written by `netcalc pack`.
    #[arg(long, value_name = "DIR|FILE", conflicts_with_all = ["data_dir", "dataset"])]
    pub data: Option<PathBuf>,
    /// An IDX dataset by name, downloaded (verified) and cached [default: mnist].
    #[arg(long, value_enum)]
    pub dataset: Option<NamedDataset>,
    /// Directory with the four IDX files (raw or .gz); also $NETCALC_MNIST_DIR for MNIST.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download; use the cache (or, for MNIST, the bundled sample).
    #[arg(long)]
    pub offline: bool,
    /// With --data and no train/ and test/: the share of each class held out, in (0, 1).
    #[arg(long, value_name = "F")]
    pub val_split: Option<f64>,
    /// With --in-memory: the most memory the decoded images may take, e.g. 4G, 512M
    /// [default: 4G].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// With --data DIR: leave unreadable images out (and list them) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// With --data DIR: decode the images into memory for this run (within --max-memory)
    /// instead of reading the folder's packed file from the cache.
    #[arg(long)]
    pub in_memory: bool,
}

/// `4G`, `512M`, `64K` or a number of bytes.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
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
    /// The data flags as the library takes them.
    pub fn choice(&self) -> DataChoice {
        DataChoice {
            folder: self.data.clone(),
            dataset: self.dataset,
            data_dir: self.data_dir.clone(),
            offline: self.offline,
            val_split: self.val_split,
            max_memory: self.max_memory,
            skip_bad: self.skip_bad,
            in_memory: self.in_memory,
            progress: true,
        }
    }
}

/// `--device`: the backend to run on.
#[derive(Args, Debug, Clone, Copy)]
pub struct DeviceArg {
    /// Backend [default: auto; $NETCALC_DEVICE].
    #[arg(long = "device", value_name = "DEVICE", value_enum, ignore_case = true)]
    pub choice: Option<DeviceChoice>,
}

/// Train a model (the default when no subcommand is given).
/// Train a model (the default when no subcommand is given).
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the training data [default: 12].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step [default: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate [default: 0.002].
    #[arg(long)]
    pub lr: Option<f64>,
    /// The optimizer [default: adam].
    #[arg(long, value_enum, ignore_case = true)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning-rate schedule [default: cosine].
    #[arg(long, value_enum, ignore_case = true)]
    pub schedule: Option<ScheduleKind>,
    /// Random shift augmentation in pixels, 0 to disable [default: 2].
    #[arg(long)]
    pub augment_shift: Option<usize>,
    /// Seed for initialization, shuffling, augmentation and dropout [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The backend (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
    /// Model preset [default: cnn]; its output layer takes the data's number of classes.
    #[arg(long, value_enum, conflicts_with = "config")]
    pub model: Option<ModelPreset>,
    /// The preset for images of this shape, CxHxW (e.g. 3x64x64) [default: 1x28x28].
    #[arg(long, value_name = "CxHxW", value_parser = parse_shape, conflicts_with = "config")]
    pub input_shape: Option<[usize; 3]>,
    /// A training config JSON (as written to RUN/config.json) instead of the flags' defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data flags.
    #[command(flatten)]
    pub data: DataArgs,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run directory [default: runs/MODEL-UNIXTIME].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Stop after this epoch, as if interrupted (the run stays resumable).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// CPU threads for this process's tensor work. Default: the CPUs it may run on; under
    /// mpirun, the host's CPUs divided among the job's ranks on it (or the CPUs mpirun bound
    /// the rank to).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Under mpirun: split each step's gradient sum into this many all-reduce calls. Default:
    /// 1 when every rank is on one host, 16 across hosts (faster over TCP).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub allreduce_buckets: Option<u16>,
}

impl TrainArgs {
    /// The flags that change a training config.
    pub fn overrides(&self) -> TrainOverrides {
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

    /// What these flags ask of a training run ([`crate::app::train::plan()`] decides the rest).
    pub fn request(&self) -> TrainRequest {
        TrainRequest {
            overrides: self.overrides(),
            input_shape: self.input_shape,
            config: self.config.clone(),
            data: self.data.choice(),
            out: self.out.clone(),
            resume: self.resume.clone(),
        }
    }
}

/// `--model RUN` and `--device`: a trained model to load.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// A run directory or a model.bpk with config.json beside it.
    #[arg(long)]
    pub model: PathBuf,
    /// The backend (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Evaluate a trained model on the held-out split.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The trained model (`--model`, `--device`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The data flags.
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write every held-out image's label, prediction and class scores (logits) as CSV.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
}

/// Classify image files (PNG/JPEG, any size) with a trained model.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The trained model (`--model`, `--device`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Images to classify (PNG/JPEG, any size), or folders of them (their images, two levels
    /// down, in path order, classified 256 at a time).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Draw every stage of the network for images: feature maps, feature vector, class scores.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The trained model (`--model`, `--device`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The PNG to write (one image only) [default: IMAGE-explain.png in the current directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images to explain (PNG/JPEG, any size).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Serve a draw-a-digit web page and a JSON API for a trained model.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The trained model (`--model`, `--device`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to listen. Loopback by default; any other address is reachable from other
    /// machines, so it has to be asked for explicitly.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Threads that parse HTTP and decode and preprocess images, in parallel (the model runs
    /// on its own inference worker).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// The most images in one forward pass of the inference worker.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// How long (milliseconds) the worker waits for more requests to fill a batch; 0: take
    /// what queued while the previous batch ran, never wait.
    #[arg(long, default_value_t = 0)]
    pub max_wait_ms: u64,
    /// The most requests waiting for the worker; a full queue is answered 503 with
    /// Retry-After.
    #[arg(long, default_value_t = 1024)]
    pub max_queue: usize,
    /// The most open connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (in total).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a client has to send a request's body (in total).
    #[arg(long, default_value_t = 10.0)]
    pub body_timeout: f64,
    /// Seconds a request may wait for the worker before it gets 503.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Seconds the listener stays open after SIGTERM/Ctrl-C, with /readyz at 503.
    #[arg(long, default_value_t = 0.0)]
    pub drain_delay: f64,
    /// Seconds accepted requests have to be answered after the listener closes.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_timeout: f64,
    /// The most pixels (width × height) an uploaded image may declare; larger ones get 422
    /// before they are decoded. The default, 24 million, takes a 12 MP phone photo with room
    /// to spare.
    #[arg(long, value_name = "PIXELS", default_value_t = crate::app::images::DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,
    /// No request log (one line per request on stderr otherwise).
    #[arg(long)]
    pub quiet: bool,
}

/// Print the Keras-like summary of a model.
#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Model preset.
    #[arg(long, value_enum, default_value_t = ModelPreset::Cnn, conflicts_with = "config")]
    pub model: ModelPreset,
    /// A training config JSON.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Write a trained model for PyTorch: model.safetensors, model.py (build(), preprocess()),
/// classes.json, netcalc.json (the data contract `import` reads back).
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The trained model (`--model`, `--device`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a directory that exists (its four files are replaced).
    #[arg(long)]
    pub force: bool,
}

/// Decode a folder of images once into a packed file.
#[derive(Args, Debug)]
pub struct PackArgs {
    /// The folder: DIR/train/CLASS/*.png|jpg and DIR/test/CLASS/…, or DIR/CLASS/… with
    /// --val-split.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The model's input the images are resized to, `CxHxW` (C is 1 or 3).
    #[arg(long, value_name = "CxHxW", value_parser = parse_shape)]
    pub input_shape: [usize; 3],
    /// The file to write (replaced atomically; by convention `.ncpack`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// A folder without train/ and test/: the share of each class held out, in (0, 1).
    #[arg(long, value_name = "F")]
    pub val_split: Option<f64>,
    /// Seeds the held-out split of --val-split (a training run's --seed does not change a
    /// packed file's split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave unreadable images out (and list them) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
}

/// Make a run directory from a config and weights from PyTorch (.pt/.pth) or safetensors.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The model and its data contract: an export directory (netcalc.json), a run directory
    /// (config.json, data.json), or a JSON file (netcalc.json, a run's config.json, or a bare
    /// CnnConfig). With --onnx: only the data contract, for a file that has none.
    #[arg(long, required_unless_present = "onnx")]
    pub config: Option<PathBuf>,
    /// The weights: .safetensors, or a PyTorch state dict (torch.save) .pt/.pth.
    #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
    pub weights: Option<PathBuf>,
    /// An ONNX model (netcalc's model.onnx, or PyTorch's torch.onnx.export of model.py's
    /// build()): the network is read from the graph, the weights from its initializers, the
    /// data contract from its metadata.
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,
    /// A JSON list of class names, in output order [default: the config's, else 0, 1, …].
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Per-channel means of the pixels in [0, 1], e.g. 0.485,0.456,0.406 [default: the
    /// config's, else MNIST's 0.1307].
    #[arg(long, value_delimiter = ',')]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviations [default: the config's, else MNIST's 0.3081].
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// How new images are read: `digit` (MNIST-style: cleaned, cropped to the ink, centred)
    /// or `resize` [default: the config's, else resize].
    #[arg(long, value_enum)]
    pub preprocess: Option<Preprocess>,
    /// The run directory to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// The backend (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `3x64x64` as `[3, 64, 64]`.
pub fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
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

/// Measure training and inference throughput (images/second) on synthetic batches, and
/// the heap allocations per training step and per inference batch.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model preset.
    #[arg(long, value_enum, default_value_t = ModelPreset::KerasCnn)]
    pub model: ModelPreset,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 1000)]
    pub infer_batch_size: usize,
    /// Timed steps of training and of inference (after 3 warm-up steps of each).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Backend, or `all` for every one compiled in [default: auto; $NETCALC_DEVICE].
    #[arg(long, value_name = "DEVICE", value_enum, ignore_case = true)]
    pub device: Option<DeviceChoice>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
