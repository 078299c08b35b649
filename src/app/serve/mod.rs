//! A web server for a trained model: a draw-a-digit page (or, for a model of other
//! images, an upload page) and the JSON API behind it.
//!
//! - `GET /` — the page (embedded in the binary, no CDN): a canvas to draw a digit on (a model
//!   of 1×28×28 digits) or a file to upload (any other model), the top-3 classes by name, the
//!   picture of every stage ([`crate::app::explain`]), the run's curves and confusion matrix.
//! - `POST /api/predict` — an image as the bytes of a PNG/JPEG (`Content-Type: image/png`;
//!   `?stages=1` for the stages), or as JSON `{"pixels": [...], "stages": false}`: for a digit
//!   model 784 grey values 0–255 row by row, for any other its `C·H·W` input values. Answer:
//!   `{"predicted", "name", "probabilities", "top", "digit"?, "stages"?}` (`digit`: the input
//!   the network saw, with `?digit=1` or `"digit": true`). Preprocessed exactly as `predict`
//!   does ([`crate::app::images::prepare`]); an image that declares more than
//!   [`ServeConfig::max_image_pixels`] pixels gets 422 before it is decoded.
//! - `POST /api/explain` — the same input; answer: the PNG of
//!   [`crate::app::explain::explain_png`].
//! - `GET /api/info` — model name, summary, class names, input shape, limits, the run's name.
//! - `GET /run/loss.png`, `/run/accuracy.png`, `/run/confusion.png` — the run's plots.
//!
//! A bad request (malformed JSON, wrong pixel count, a body above [`MAX_BODY_BYTES`], not an
//! image, unknown path or method) gets a 4xx answer `{"error": "<one line>"}`; the server keeps
//! serving. It binds where it is told; the example binds to loopback unless asked otherwise.
//! - `GET /healthz` — 200 while the process runs.
//! - `GET /readyz` — 200 when the model is loaded and the inference worker runs and answers;
//!   503 while starting, draining, while the worker restarts after a panic, and after
//!   [`UNREADY_AFTER_FAILURES`] failed batches in a row, until a batch succeeds (an idle
//!   worker tries a blank image every [`PROBE_EVERY`], so a server that no longer gets
//!   traffic recovers too).
//! - `GET /metrics` — Prometheus text format (see [Metrics](#metrics)).
//!
//! # How it works
//! An axum router on tokio and hyper, as text-embeddings-inference is built:
//! - Connections are capped (`max_connections`; more wait in the
//!   backlog), headers and bodies have a total time ([`ServeConfig::header_timeout`],
//!   [`ServeConfig::body_timeout`]), a declared body over [`MAX_BODY_BYTES`] gets 413 unread
//!   with `Connection: close` (and `Expect: 100-continue` is never asked for it).
//! - At most `threads` requests read and decode their bodies at once (a permit taken before
//!   the body is read; waiting for it counts against the request timeout); decoding runs on
//!   a pool of `threads` decoder threads (rayon's, apart from the kernels' pool), never on
//!   the runtime's threads. The image is queued for the one
//!   inference worker, which owns the model and batches what is queued, predictions with or
//!   without stages and explanations alike (up to [`ServeConfig::max_batch`], waiting at most
//!   [`ServeConfig::max_wait`] for more), into one forward pass on the fast kernels;
//!   explanations are drawn by the painter, one thread that runs when a core would otherwise
//!   idle ([`run_when_idle`]), from a queue of at most [`MAX_PICTURES`]. Each request is
//!   answered over its own oneshot channel. A full queue ([`ServeConfig::max_queue`]) is
//!   answered 503 with `Retry-After` at once; a request still queued after
//!   [`ServeConfig::request_timeout`] gets 503. A panic in inference answers 500
//!   to that batch and restarts the worker; after [`UNREADY_AFTER_FAILURES`] failed batches in
//!   a row `/readyz` answers 503 until one succeeds.
//! - [`Server::stop`] (or SIGTERM / Ctrl-C with [`Server::run_until_signal`]) drains: `/readyz`
//!   turns 503, the listener stays open [`ServeConfig::drain_delay`], then takes every
//!   connection still in the accept queue and closes; each accepted connection gets its first
//!   request read (within [`FIRST_REQUEST_GRACE`]) and answered with `Connection: close`.
//!   Requests still queued for the worker when [`ServeConfig::shutdown_timeout`] passes are
//!   answered 503 at once, and [`Server::run`] returns about a second later at most.
//! - Each request is logged as one `tracing` line at info level (method, path, status,
//!   duration, batch size) under the target `netcalc::serve`; [`init_logging`] prints them.
//!
//! # Metrics
//! `netcalc_requests_total{path,status}` (`path`: the matched route, `other` for unknown
//! paths), `netcalc_request_duration_seconds{path}`, `netcalc_batch_size`,
//! `netcalc_queue_depth`, `netcalc_inference_duration_seconds`,
//! `netcalc_worker_restarts_total`.
//!
//! # Limits
//! See [`ServeConfig`]; the defaults are those of `netcalc serve`.
mod batcher;
mod limits;
mod metrics;
mod painter;
mod routes;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::tensor::Device;
use tokio::sync::{Semaphore, watch};

use crate::app::data::{DataInfo, IMAGE_SHAPE, Preprocess};
use crate::error::{Error, Result};
use crate::model::{Cnn, CnnConfig};

pub use batcher::{PROBE_EVERY, UNREADY_AFTER_FAILURES};
pub use limits::{FIRST_REQUEST_GRACE, LINGER, LINGER_BYTES};
pub use painter::{MAX_PICTURES, run_when_idle};

/// The largest request body accepted: 4 MiB (a 28×28 JSON digit is ~3 KB, a canvas PNG
/// ~10–30 KB). Larger bodies get `413` without being read.
pub const MAX_BODY_BYTES: usize = 4 << 20;

const PAGE: &str = include_str!("../../../assets/serve.html");

/// After the shutdown timeout: how long the answers to the jobs still queued (503) have to be
/// written, and a running batch to finish, before the process goes on without them.
const AFTER_HALT: Duration = Duration::from_secs(1);

/// What the server serves: a model, its config and data, and optionally the run directory it
/// came from.
pub struct App {
    model: Cnn,
    meta: Meta,
}

/// Everything about the model the handlers need, without the model itself (which the
/// inference worker owns).
pub(crate) struct Meta {
    config: CnnConfig,
    info: DataInfo,
    device: Device,
    run_dir: Option<PathBuf>,
}

impl App {
    /// A model to serve on `device`, reading images as `info` says; `run_dir` (the model's run
    /// directory) adds its plots to the page.
    pub fn new(
        model: Cnn,
        config: CnnConfig,
        info: DataInfo,
        device: Device,
        run_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            model,
            meta: Meta {
                config,
                info,
                device,
                run_dir,
            },
        }
    }

    /// The model of a trained run, with its run directory's plots.
    pub fn of(m: crate::app::session::TrainedModel) -> Self {
        Self::new(m.model, m.config, m.info, m.device, Some(m.run_dir))
    }
}

impl Meta {
    /// Whether the model reads drawn digits (1×28×28, MNIST's preprocessing).
    fn draws_digits(&self) -> bool {
        self.info.preprocess == Preprocess::Digit && self.info.shape == IMAGE_SHAPE
    }

    fn info_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.config.name,
            "summary": self.config.summary().map(|s| s.to_string()).unwrap_or_default(),
            "classes": self.info.classes,
            "num_classes": self.config.num_classes(),
            "input": self.config.features.input,
            "draw": self.draws_digits(),
            "max_body_bytes": MAX_BODY_BYTES,
            // the run's name, not where it lies on this machine
            "run": self
                .run_dir
                .as_ref()
                .and_then(|d| d.canonicalize().ok())
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())),
        })
    }
}

/// The server's limits and batching; [`Default`] gives those of `netcalc serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The most images in one forward pass (default 64).
    pub max_batch: usize,
    /// How long the worker waits for more requests to fill a batch (default 0: it takes what
    /// queued while the previous batch ran, and never waits).
    pub max_wait: Duration,
    /// The most requests waiting for the worker (default 1024); a full queue is answered 503
    /// with `Retry-After` at once.
    pub max_queue: usize,
    /// The most open connections (default 1024); more wait in the listen backlog.
    pub max_connections: usize,
    /// The total time a client has to send a request's headers (default 10 s).
    pub header_timeout: Duration,
    /// The total time a client has to send a request's body (default 10 s).
    pub body_timeout: Duration,
    /// How long a request may wait for the worker before it gets 503 (default 30 s).
    pub request_timeout: Duration,
    /// How long the listener stays open after a stop request, with `/readyz` at 503
    /// (default 0).
    pub drain_delay: Duration,
    /// How long accepted requests have to be answered after the listener closes (default
    /// 30 s); requests still queued for the worker then are answered 503 at once.
    pub shutdown_timeout: Duration,
    /// The most pixels an uploaded image may declare (default
    /// [`crate::app::images::DEFAULT_MAX_IMAGE_PIXELS`]); more is refused with 422 before it
    /// is decoded.
    pub max_image_pixels: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_wait: Duration::ZERO,
            max_queue: 1024,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            max_image_pixels: crate::app::images::DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

impl ServeConfig {
    /// Refuses limits that cannot work (a zero batch, queue or connection count, a zero
    /// timeout).
    pub fn check(&self) -> Result<()> {
        let zero = |name: &str, what: &str| Err(Error::setting(name, what));
        if self.max_batch == 0 {
            return zero("max-batch", "must be at least 1");
        }
        if self.max_queue == 0 {
            return zero("max-queue", "must be at least 1");
        }
        if self.max_image_pixels == 0 {
            return zero("max-image-pixels", "must be at least 1");
        }
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize >> 4 {
            return zero("max-connections", "must be between 1 and 268435455");
        }
        for (name, d) in [
            ("header-timeout", self.header_timeout),
            ("body-timeout", self.body_timeout),
            ("request-timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return zero(name, "must be above 0 seconds");
            }
        }
        Ok(())
    }
}

/// What the handlers share.
pub(crate) struct Shared {
    meta: Arc<Meta>,
    queue: Arc<batcher::Queue>,
    metrics: Arc<metrics::Metrics>,
    limits: HandlerLimits,
    /// What an uploaded image may be.
    image_limits: crate::app::images::ImageLimits,
    /// One permit per request reading and decoding its image; `threads` of them.
    decode_permits: Arc<Semaphore>,
    /// The threads that decode uploads (`threads` of them, started by [`Server::run`]): a
    /// rayon pool of its own, apart from the runtime's threads and from the kernels' pool.
    decoders: std::sync::OnceLock<rayon::ThreadPool>,
    /// Draws the pictures of explanations.
    painter: Arc<painter::Painter>,
    /// Set when a stop was requested: `/readyz` answers 503.
    draining: AtomicBool,
}

/// The limits the handlers apply.
pub(crate) struct HandlerLimits {
    body_timeout: Duration,
    request_timeout: Duration,
    max_queue: usize,
}

/// The listener, the model, and the receiving ends of the worker's and the painter's queues.
type Parts = (
    std::net::TcpListener,
    Cnn,
    std::sync::mpsc::Receiver<batcher::Job>,
    std::sync::mpsc::Receiver<painter::Order>,
);

/// A listening server; [`Server::run`] answers requests until [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    /// What [`Server::run`] takes to start: the listener, the model and the two queues'
    /// receiving ends (`None` once it has run).
    listener: Mutex<Option<Parts>>,
    shared: Arc<Shared>,
    config: ServeConfig,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Listens on `addr` (port 0: any free port; see [`Server::addr`]) with the default
    /// limits.
    pub fn bind(app: App, addr: SocketAddr) -> Result<Arc<Self>> {
        Self::bind_with(app, addr, ServeConfig::default())
    }

    /// Listens on `addr` with the limits and batching of `config`.
    pub fn bind_with(app: App, addr: SocketAddr, config: ServeConfig) -> Result<Arc<Self>> {
        config.check()?;
        let serve_error = |source: std::io::Error| Error::Serve {
            addr: addr.to_string(),
            source: Box::new(source),
        };
        let listener = std::net::TcpListener::bind(addr).map_err(serve_error)?;
        listener.set_nonblocking(true).map_err(serve_error)?;
        let bound = listener.local_addr().unwrap_or(addr);
        let (queue, rx) = batcher::Queue::new(config.max_queue);
        let (painter, orders) = painter::Painter::new();
        let shared = Arc::new(Shared {
            meta: Arc::new(app.meta),
            queue: Arc::new(queue),
            metrics: Arc::new(metrics::Metrics::new()),
            limits: HandlerLimits {
                body_timeout: config.body_timeout,
                request_timeout: config.request_timeout,
                max_queue: config.max_queue,
            },
            image_limits: crate::app::images::ImageLimits::with_max_pixels(config.max_image_pixels),
            // the permits are added by `run`, which knows the thread count
            decode_permits: Arc::new(Semaphore::new(0)),
            decoders: std::sync::OnceLock::new(),
            painter: Arc::new(painter),
            draining: AtomicBool::new(false),
        });
        Ok(Arc::new(Self {
            addr: bound,
            listener: Mutex::new(Some((listener, app.model, rx, orders))),
            shared,
            config,
            stop: watch::channel(false).0,
        }))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests until [`Server::stop`] is called, then drains (see the module docs)
    /// and returns. `threads`: the runtime's threads, which parse HTTP and decode and
    /// preprocess images in parallel (the model runs on its own worker thread and its kernels'
    /// threads). A second call returns an error.
    pub fn run(&self, threads: usize) -> Result<()> {
        self.run_inner(threads, false)
    }

    /// [`Server::run`], also stopping on SIGTERM or Ctrl-C.
    pub fn run_until_signal(&self, threads: usize) -> Result<()> {
        self.run_inner(threads, true)
    }

    /// Makes [`Server::run`] drain and return; `/readyz` answers 503 from now on.
    pub fn stop(&self) {
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        self.stop.send_replace(true);
    }

    fn run_inner(&self, threads: usize, signals: bool) -> Result<()> {
        let serve_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Serve {
            addr: self.addr.to_string(),
            source,
        };
        let (listener, model, rx, orders) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| serve_error("the server is already running or has run".into()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("netcalc-http")
            .enable_all()
            .build()
            .map_err(|e| serve_error(e.into()))?;
        let shared = self.shared.clone();
        let decoders = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("netcalc-decode-{i}"))
            .build()
            .map_err(|e| serve_error(e.into()))?;
        let _ = shared.decoders.set(decoders);
        shared.decode_permits.add_permits(threads.max(1));
        let worker = batcher::spawn(
            model,
            shared.meta.clone(),
            shared.queue.clone(),
            shared.metrics.clone(),
            rx,
            batcher::BatchPolicy {
                max_batch: self.config.max_batch,
                max_wait: self.config.max_wait,
            },
        )
        .map_err(|e| serve_error(e.into()))?;
        let painter = painter::spawn(
            shared.painter.clone(),
            orders,
            shared.meta.info.classes.clone(),
        )
        .map_err(|e| serve_error(e.into()))?;
        let config = &self.config;
        let stop = self.stop.subscribe();
        let result = runtime.block_on(async {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|e| serve_error(e.into()))?;
            let (closing, closing_rx) = watch::channel(false);
            let permits = Arc::new(Semaphore::new(config.max_connections));
            let router = routes::router(shared.clone());
            let accept = tokio::spawn(limits::accept_loop(
                listener,
                router,
                limits::ConnLimits {
                    header_timeout: config.header_timeout,
                },
                permits.clone(),
                closing_rx,
            ));
            shutdown::requested(stop, signals).await;
            let drained = shutdown::drain(
                &shared,
                config.drain_delay,
                config.shutdown_timeout,
                &closing,
                &permits,
                config.max_connections,
            )
            .await;
            let _ = accept.await;
            // the worker and the painter answer what is still queued 503 at once; the
            // connections waiting for those answers get a moment to write them
            shared.queue.halt();
            shared.painter.halt();
            if !drained {
                let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
                let closed = tokio::time::timeout(AFTER_HALT, permits.acquire_many(all))
                    .await
                    .is_ok_and(|p| p.is_ok());
                if !closed {
                    tracing::warn!(
                        target: "netcalc::serve",
                        "some connections were still open after the shutdown timeout"
                    );
                }
            }
            Ok(())
        });
        shared.queue.halt();
        shared.painter.halt();
        // a batch or a picture still running is waited for a bounded time
        let until = std::time::Instant::now() + AFTER_HALT;
        while !(worker.is_finished() && painter.is_finished()) && std::time::Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for thread in [worker, painter] {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        // connections still open after the timeout are dropped with the runtime
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }
}

/// Prints the request log (one line per request, `tracing`'s format) and warnings on stderr;
/// `quiet`: warnings only. Does nothing if a subscriber is already installed.
pub fn init_logging(quiet: bool) {
    let level = if quiet {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::routes::query_flag;

    #[test]
    fn query_flags_are_parsed_not_searched_for() {
        assert!(query_flag("stages=1", "stages"));
        assert!(query_flag("x=2&stages=TRUE", "stages"));
        assert!(query_flag("st%61ges=on", "stages"));
        assert!(!query_flag("", "stages"));
        assert!(!query_flag("stages=0", "stages"));
        assert!(!query_flag("nostages=1", "stages"));
        assert!(!query_flag("x=stages=1", "stages"));
        // the last occurrence wins
        assert!(!query_flag("stages=1&stages=0", "stages"));
    }
}
