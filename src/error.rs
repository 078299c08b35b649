//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in netcalc, each variant naming the file, field or layer at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backend name that netcalc does not know.
    #[error(
        "unknown backend `{name}`: expected one of ndarray, flex, wgpu (alias vulkan); compiled into this build: {compiled}"
    )]
    UnknownBackend {
        /// The name that was asked for.
        name: String,
        /// The backends compiled into this build, comma-separated.
        compiled: String,
    },
    /// A backend that exists but whose Cargo feature is off in this build.
    #[error(
        "backend `{name}` is not compiled into this build (compiled in: {compiled}); rebuild with `--features {name}`"
    )]
    BackendNotCompiled {
        /// The backend that was asked for.
        name: String,
        /// The backends compiled into this build, comma-separated.
        compiled: String,
    },
    /// wgpu is compiled in but no adapter (GPU or software Vulkan/GL device) can be found.
    #[error(
        "wgpu: no graphics adapter found; install a GPU driver with Vulkan support (on Debian/Ubuntu without a GPU: `apt-get install mesa-vulkan-drivers libvulkan1` for the lavapipe software device) or choose a CPU backend with `--device flex`{alt}"
    )]
    NoGpuAdapter {
        /// Extra advice naming the compiled-in CPU backends.
        alt: String,
    },
    /// A model or layer configuration that cannot work.
    #[error("invalid configuration: {layer}: {message}")]
    InvalidConfig {
        /// The layer (or field) at fault, e.g. `features.blocks[1].conv`.
        layer: String,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// A tensor argument with the wrong shape.
    #[error("shape mismatch in {what}: {message}")]
    Shape {
        /// The function or layer that was called.
        what: String,
        /// The expected and actual shapes.
        message: String,
    },
    /// A data file whose content is not what it must be.
    #[error("{}: {message}", path.display())]
    Data {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O failure on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A failed download (all mirrors tried).
    #[error("download of {file} failed: {message}")]
    Download {
        /// The file that was being fetched.
        file: String,
        /// Each mirror's failure.
        message: String,
    },
    /// A model or checkpoint file that cannot be read or written.
    #[error("{}: {message}: {source}", path.display())]
    Record {
        /// The record file.
        path: PathBuf,
        /// What was being done (`cannot load model`, `cannot save optimizer state`).
        message: String,
        /// burn's error.
        #[source]
        source: BoxError,
    },
    /// A JSON (config, metrics) file that cannot be parsed or written.
    #[error("{}{}{source}", path_prefix(path), field_prefix(field))]
    Json {
        /// The file (empty for JSON text that came from no file).
        path: PathBuf,
        /// The path of the field at fault inside the document (`model.classifier.n_neurons[1]`),
        /// empty when the error is not inside a field.
        field: String,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// An image that cannot be decoded or is not usable.
    #[error("{}: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong, with the decoder's message.
        message: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An image that declares more pixels than it may have: refused before it is decoded.
    #[error(
        "{}: the image declares {width}×{height} pixels; at most {max_side} a side and {max_pixels} in all are accepted",
        path.display()
    )]
    ImageTooLarge {
        /// The image file (or "request body").
        path: PathBuf,
        /// The width its header declares.
        width: u32,
        /// The height its header declares.
        height: u32,
        /// The most pixels a side.
        max_side: u32,
        /// The most pixels in all.
        max_pixels: u64,
    },
    /// A bad training or evaluation setting.
    #[error("invalid setting `{field}`: {message}")]
    Setting {
        /// The setting, as named on the command line / in the config.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Training diverged: the loss of a batch was NaN or infinite. The last checkpoint (of the
    /// epoch before) is kept.
    #[error(
        "training diverged: the loss of epoch {epoch}, batch {batch} is {loss} (learning rate {lr:e}); the learning rate is probably too high (try a tenth of it). The last checkpoint is kept"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss (NaN or ±∞).
        loss: f64,
        /// The learning rate of that step.
        lr: f64,
    },
    /// The processes of a distributed run (`mpirun -np N netcalc train`) disagree, or MPI
    /// failed: a rank's config or data differs from rank 0's, the parameters drifted apart, or
    /// the run cannot start under MPI (a build without the `mpi` feature).
    #[error("distributed training: {message}")]
    Distributed {
        /// What differs or failed, naming the ranks.
        message: String,
    },
    /// Other ranks of a distributed job failed (each prints its own error with its rank); this
    /// rank stopped with them.
    #[error("distributed training: {message}")]
    RanksFailed {
        /// How many ranks failed, and where.
        message: String,
    },
    /// An error that every rank of a distributed job reached at the same point, as a vote
    /// among the ranks (in a step's all-reduce, or a gather after a phase) or values they all
    /// share decided: each rank can end normally instead of aborting the job. Shown as the
    /// error it holds.
    #[error(transparent)]
    Agreed(Box<Error>),
    /// A fault injected through a named fail point (Cargo feature `failpoints`, the
    /// `FAILPOINTS` environment variable).
    #[error("injected fault at fail point `{point}`: {message}")]
    Fault {
        /// The fail point.
        point: String,
        /// The message it was configured with.
        message: String,
    },
    /// Training was interrupted (Ctrl-C): a checkpoint was written after the current batch.
    #[error(
        "interrupted after {epoch} epochs and {batches} batches of the next; the checkpoint in {} resumes from there",
        run.display()
    )]
    Interrupted {
        /// Epochs completed.
        epoch: usize,
        /// Batches completed in the epoch after those.
        batches: usize,
        /// The run directory.
        run: PathBuf,
    },
    /// The web server could not listen on its address.
    #[error("cannot listen on {addr}: {source}")]
    Serve {
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A failure while drawing a plot.
    #[error("plot {}: {source}", path.display())]
    Plot {
        /// The PNG being drawn.
        path: PathBuf,
        /// The drawing backend's error.
        #[source]
        source: BoxError,
    },
}

/// A boxed error kept as the [`std::error::Error::source`] of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn path_prefix(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}: ", path.display())
    }
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Parses JSON text into `T`; an error names `path`, the field path inside the document
/// (`model.classifier.n_neurons[1]`), the line and the column. Unknown fields are errors in
/// every config type of this crate.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &std::path::Path, text: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(de).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })?;
    Ok(value)
}

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(layer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            layer: layer.into(),
            message: message.into(),
        }
    }

    /// The same error with its layer (or field) path put under `parent`: `classifier.n_inputs`
    /// within `model` becomes `model.classifier.n_inputs`.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Self::InvalidConfig { layer, message } => Self::InvalidConfig {
                layer: format!("{parent}.{layer}"),
                message,
            },
            other => other,
        }
    }

    /// The error itself, or the one an [`Error::Agreed`] holds.
    pub fn root(&self) -> &Error {
        match self {
            Self::Agreed(e) => e.root(),
            e => e,
        }
    }

    /// Shorthand for [`Error::Setting`].
    pub fn setting(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Setting {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Data`].
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Data {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `Result` with netcalc's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
