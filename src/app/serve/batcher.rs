//! The inference worker and its bounded queue.
//!
//! One thread owns the model (no mutex on the hot path). Handlers put a [`Job`] on a bounded
//! queue ([`Queue::submit`]; a full queue is refused at once) and wait for its [`Answer`] on a
//! oneshot channel. The worker takes whatever is queued, up to `max_batch` jobs of any kind,
//! waiting at most `max_wait` for more (0: never wait, so a lone client is not slowed), and
//! runs one forward pass for all of them, keeping the stages of the jobs that ask for their
//! stages or for a picture ([`Cnn::forward_with_stages`]: the batch on the fast path, the maps
//! before pooling computed again for those jobs alone). The worker only computes: pictures
//! are drawn by the painter ([`super::painter`]), off its thread.
//!
//! Every job gets a typed answer: [`Answer::Done`], [`Answer::Failed`] (inference returned an
//! error: 500), [`Answer::Expired`] (still queued at its deadline: 503) or
//! [`Answer::ShuttingDown`] (still queued when the shutdown timeout passed: 503). A panic in
//! inference drops that batch's reply channels unanswered: their handlers answer 500, the
//! worker starts again from a fresh copy of the model, and `netcalc_worker_restarts_total`
//! counts it.
//!
//! Fail points (feature `failpoints`): `serve-inference` (before each forward pass: `panic`,
//! `sleep(MS)`, or `return(MESSAGE)` for an inference error) and `serve-restart` (before the
//! worker restarts after a panic, e.g. `sleep(1000)`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::app::predict::images_tensor;
use crate::model::{Cnn, Stage};

use super::Meta;
use super::metrics::Metrics;
use super::routes::StageOut;

/// Consecutive failed batches after which `/readyz` answers 503, until a batch succeeds.
pub const UNREADY_AFTER_FAILURES: usize = 3;

/// While unready and idle, how often the worker tries a probe batch (one blank image through
/// the same path as requests): a server that no client sends to any more (a load balancer
/// stopped routing to it) becomes ready again once its model answers.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What a request asks of the model.
pub(crate) enum Work {
    /// Class probabilities, with every stage's values when `stages`.
    Predict {
        /// The input, `C·H·W` bytes.
        image: Vec<u8>,
        /// Whether to return the stages.
        stages: bool,
    },
    /// The stages, for the painter to draw.
    Explain {
        /// The input, `C·H·W` bytes.
        image: Vec<u8>,
    },
}

impl Work {
    fn wants_stages(&self) -> bool {
        matches!(
            self,
            Work::Predict { stages: true, .. } | Work::Explain { .. }
        )
    }

    fn into_image(self) -> Vec<u8> {
        match self {
            Work::Predict { image, .. } | Work::Explain { image } => image,
        }
    }
}

/// What the model computed for one job.
pub(crate) enum Done {
    /// Class probabilities, and the stages when asked for.
    Predict {
        /// One per class.
        probabilities: Vec<f32>,
        /// Every stage's values for this image.
        stages: Option<Vec<StageOut>>,
    },
    /// The batch's stages and this image's row in them, to be drawn by the painter (which
    /// reads its row there, off the inference thread).
    Explain {
        /// Every stage of the batch's forward pass, for the images that asked.
        stages: Arc<Vec<Stage>>,
        /// This image's row.
        row: usize,
    },
}

/// The worker's answer to one job.
pub(crate) enum Answer {
    /// Computed, in a forward pass of `batch` images.
    Done {
        /// The result.
        done: Done,
        /// How many images the forward pass that answered it had.
        batch: usize,
    },
    /// Inference returned an error (500).
    Failed(String),
    /// The job was still queued at its deadline (503).
    Expired,
    /// The job was still queued when the server's shutdown timeout passed (503).
    ShuttingDown,
}

/// One request waiting for the worker.
pub(crate) struct Job {
    work: Work,
    reply: oneshot::Sender<Answer>,
    deadline: Instant,
}

/// Why a job was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The queue holds `max_queue` jobs.
    Full,
    /// The worker has stopped for good.
    Stopped,
}

/// The sending side of the bounded queue, shared by the handlers.
pub(crate) struct Queue {
    tx: SyncSender<Job>,
    /// Jobs queued and not yet taken by the worker: the one counter of record, read by
    /// `/metrics` when it renders (a moment below 0 when the worker takes a job before its
    /// sender has counted it; read as 0).
    depth: AtomicIsize,
    /// Whether a worker is running (cleared while it restarts after a panic, and when it stops).
    pub alive: AtomicBool,
    /// Batches that failed (a panic or an error) since the last one that succeeded.
    pub failures: AtomicUsize,
    /// No more jobs are taken: the worker answers what is queued [`Answer::ShuttingDown`].
    halt: AtomicBool,
}

/// How the worker batches.
#[derive(Clone, Debug)]
pub(crate) struct BatchPolicy {
    pub max_batch: usize,
    pub max_wait: Duration,
}

impl Queue {
    /// A queue of at most `max_queue` jobs, and its receiving end for the worker.
    pub fn new(max_queue: usize) -> (Self, Receiver<Job>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(max_queue.max(1));
        let q = Self {
            tx,
            depth: AtomicIsize::new(0),
            alive: AtomicBool::new(false),
            failures: AtomicUsize::new(0),
            halt: AtomicBool::new(false),
        };
        (q, rx)
    }

    /// Queues `work`, to be answered by `deadline` ([`Answer::Expired`] after it); refused at
    /// once when full.
    pub fn submit(
        &self,
        work: Work,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Answer>, Refused> {
        if self.halt.load(Ordering::Acquire) {
            return Err(Refused::Stopped);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job {
            work,
            reply,
            deadline,
        }) {
            Ok(()) => {
                self.depth.fetch_add(1, Ordering::AcqRel);
                Ok(rx)
            }
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }

    /// Jobs waiting for the worker.
    pub fn depth(&self) -> usize {
        usize::try_from(self.depth.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Whether the last [`UNREADY_AFTER_FAILURES`] batches or more all failed.
    pub fn failing(&self) -> bool {
        self.failures.load(Ordering::Acquire) >= UNREADY_AFTER_FAILURES
    }

    fn taken(&self) {
        self.depth.fetch_sub(1, Ordering::AcqRel);
    }

    /// Makes the worker finish its current batch and answer every job still queued
    /// [`Answer::ShuttingDown`]; new jobs are refused.
    pub fn halt(&self) {
        self.halt.store(true, Ordering::Release);
    }
}

/// Starts the worker thread: it owns `model` and answers jobs from `rx` until
/// [`Queue::halt`], restarting after a panic.
pub(crate) fn spawn(
    model: Cnn,
    meta: Arc<Meta>,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    rx: Receiver<Job>,
    policy: BatchPolicy,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netcalc-inference".into())
        .spawn(move || {
            let mut pending = None;
            loop {
                // each generation starts from the loaded weights
                let generation = model.clone();
                queue.alive.store(true, Ordering::Release);
                let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    serve(
                        &generation,
                        &meta,
                        &queue,
                        &metrics,
                        &rx,
                        &policy,
                        &mut pending,
                    )
                }));
                queue.alive.store(false, Ordering::Release);
                match run {
                    Ok(()) => break,
                    Err(_) => {
                        metrics.restarts.increment(1);
                        queue.failures.fetch_add(1, Ordering::AcqRel);
                        fail::fail_point!("serve-restart");
                    }
                }
            }
            // halted: whatever is still queued is answered at once rather than left hanging
            if let Some(job) = pending.take() {
                let _ = job.reply.send(Answer::ShuttingDown);
            }
            while let Ok(job) = rx.try_recv() {
                queue.taken();
                let _ = job.reply.send(Answer::ShuttingDown);
            }
        })
}

/// Whether `job` is answered without being computed: its client left (dropped), or its
/// deadline passed ([`Answer::Expired`]).
fn settled(job: Job, now: Instant) -> Option<Job> {
    if job.reply.is_closed() {
        return None;
    }
    if now >= job.deadline {
        let _ = job.reply.send(Answer::Expired);
        return None;
    }
    Some(job)
}

fn serve(
    model: &Cnn,
    meta: &Meta,
    queue: &Queue,
    metrics: &Metrics,
    rx: &Receiver<Job>,
    policy: &BatchPolicy,
    pending: &mut Option<Job>,
) {
    let max_batch = policy.max_batch.max(1);
    let mut last_probe = Instant::now();
    loop {
        if queue.halt.load(Ordering::Acquire) {
            return;
        }
        let first = match pending.take() {
            Some(job) => job,
            None => match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(job) => {
                    queue.taken();
                    job
                }
                Err(RecvTimeoutError::Timeout) => {
                    if queue.failing() && last_probe.elapsed() >= PROBE_EVERY {
                        last_probe = Instant::now();
                        probe(model, meta, queue);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let Some(first) = settled(first, Instant::now()) else {
            continue;
        };
        let mut batch = vec![first];
        let until = Instant::now() + policy.max_wait;
        while batch.len() < max_batch {
            let next = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Empty) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        rx.recv_timeout(left).ok()
                    }
                }
                Err(TryRecvError::Disconnected) => None,
            };
            let Some(job) = next else { break };
            queue.taken();
            if let Some(job) = settled(job, Instant::now()) {
                batch.push(job);
            }
        }
        run(model, meta, queue, metrics, batch);
    }
}

/// An inference error injected by the `serve-inference` fail point (`return(MESSAGE)`).
fn injected_error() -> Option<String> {
    fail::fail_point!("serve-inference", |m: Option<String>| Some(
        m.unwrap_or_else(|| "injected inference error".into())
    ));
    None
}

/// A blank image through the path requests take (the `serve-inference` fail point
/// included): when it succeeds, the failures are forgotten and `/readyz` answers 200 again.
fn probe(model: &Cnn, meta: &Meta, queue: &Queue) {
    let [c, h, w] = meta.info.shape;
    let blank = Work::Predict {
        image: vec![0; c * h * w],
        stages: false,
    };
    if injected_error().is_none() && forward(model, meta, vec![blank]).is_ok() {
        queue.failures.store(0, Ordering::Release);
    }
}

/// One forward pass for `jobs`; each gets its answer. A panic here drops the jobs' reply
/// channels: their handlers answer 500.
fn run(model: &Cnn, meta: &Meta, queue: &Queue, metrics: &Metrics, jobs: Vec<Job>) {
    let n = jobs.len();
    metrics.batch_size.record(n as f64);
    let start = Instant::now();
    let (works, replies): (Vec<Work>, Vec<_>) = jobs.into_iter().map(|j| (j.work, j.reply)).unzip();
    let result = match injected_error() {
        Some(e) => Err(e),
        None => forward(model, meta, works).map_err(|e| e.to_string()),
    };
    metrics.inference.record(start.elapsed().as_secs_f64());
    match result {
        Ok(done) => {
            queue.failures.store(0, Ordering::Release);
            for (done, reply) in done.into_iter().zip(replies) {
                let _ = reply.send(Answer::Done { done, batch: n });
            }
        }
        Err(e) => {
            queue.failures.fetch_add(1, Ordering::AcqRel);
            for reply in replies {
                let _ = reply.send(Answer::Failed(e.clone()));
            }
        }
    }
}

/// One forward pass for `works`, keeping the stages of those that want them
/// ([`Cnn::forward_with_stages`]: the batch on the fast path, whoever asks or not).
fn forward(model: &Cnn, meta: &Meta, works: Vec<Work>) -> crate::Result<Vec<Done>> {
    let n = works.len();
    let asking: Vec<usize> = (0..n).filter(|&i| works[i].wants_stages()).collect();
    let explain: Vec<bool> = works
        .iter()
        .map(|w| matches!(w, Work::Explain { .. }))
        .collect();
    let images: Vec<Vec<u8>> = works.into_iter().map(Work::into_image).collect();
    let x = images_tensor(&meta.info, &images, &meta.device)?;
    let (probs, stages) = if asking.is_empty() {
        let p = crate::functional::prob::softmax(model.try_forward(x)?, 1);
        (p, None)
    } else {
        let (p, stages) = model.forward_with_stages(x, &asking)?;
        (p, Some(Arc::new(stages)))
    };
    let [rows, classes] = probs.dims();
    let values: Vec<f32> = probs
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .map_err(|e| crate::Error::Shape {
            what: "probabilities".into(),
            message: format!("{e:?}"),
        })?;
    if rows != n || values.len() != rows * classes {
        return Err(crate::Error::Shape {
            what: "probabilities".into(),
            message: format!("the model answered {rows} of {n} images"),
        });
    }
    let mut out = Vec::with_capacity(n);
    for (i, p) in values.chunks_exact(classes.max(1)).enumerate() {
        // this image's row in the stages, when it asked for them
        let row = asking.binary_search(&i).ok();
        let done = match (&stages, row) {
            (Some(stages), Some(row)) if explain[i] => Done::Explain {
                stages: stages.clone(),
                row,
            },
            (Some(stages), Some(row)) => Done::Predict {
                probabilities: p.to_vec(),
                stages: Some(
                    stages
                        .iter()
                        .map(|s| {
                            Ok(StageOut {
                                name: s.name.clone(),
                                kind: s.kind,
                                shape: s.shape.clone(),
                                values: s.row(row)?,
                            })
                        })
                        .collect::<crate::Result<Vec<_>>>()?,
                ),
            },
            _ => Done::Predict {
                probabilities: p.to_vec(),
                stages: None,
            },
        };
        out.push(done);
    }
    Ok(out)
}
