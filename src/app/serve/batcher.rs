//! The inference worker and its bounded queue.
//!
//! One thread owns the model (no mutex on the hot path). Handlers put a [`Job`] on a bounded
//! queue ([`Queue::submit`]; a full queue is refused at once) and wait for its answer on a
//! oneshot channel. The worker takes whatever is queued, up to `max_batch` plain predictions,
//! waiting at most `max_wait` for more (0: never wait, so a lone client is not slowed), and
//! runs one forward pass for all of them. A prediction with its stages and an explanation run
//! as batches of one. A panic in inference drops that batch's reply channels (its requests get
//! 500), and the worker starts again from a fresh copy of the model.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::app::predict::class_probabilities;
use crate::model::Cnn;

use super::Meta;
use super::metrics::Metrics;
use super::routes::StageOut;

/// What a request asks of the model.
pub(crate) enum Work {
    /// Class probabilities, with every stage's values when `stages`.
    Predict {
        /// The input, `C·H·W` bytes.
        image: Vec<u8>,
        /// Whether to return the stages (a batch of one).
        stages: bool,
    },
    /// The picture of the stages (a batch of one).
    Explain {
        /// The input, `C·H·W` bytes.
        image: Vec<u8>,
    },
}

impl Work {
    fn batchable(&self) -> bool {
        matches!(self, Work::Predict { stages: false, .. })
    }
}

/// What the model answered.
pub(crate) enum Done {
    /// Class probabilities, and the stages when asked for.
    Predict {
        /// One per class.
        probabilities: Vec<f32>,
        /// Every stage's values for this image.
        stages: Option<Vec<StageOut>>,
    },
    /// A PNG.
    Explain(Vec<u8>),
}

/// The worker's answer to one job.
pub(crate) struct Answer {
    /// The result, or why there is none (an internal error: 500).
    pub result: Result<Done, String>,
    /// How many images the forward pass that answered it had.
    pub batch: usize,
}

/// One request waiting for the worker.
pub(crate) struct Job {
    work: Work,
    reply: oneshot::Sender<Answer>,
    deadline: Instant,
}

/// Why a job was not queued.
pub(crate) enum Refused {
    /// The queue holds `max_queue` jobs.
    Full,
    /// The worker has stopped for good.
    Stopped,
}

/// The test-only fault hooks.
#[derive(Clone, Debug, Default)]
#[doc(hidden)]
pub struct Faults {
    /// The next this many batches panic in inference.
    pub panics: Arc<AtomicUsize>,
    /// How long the worker takes to come back after a panic.
    pub restart_delay: Duration,
    /// An extra pause before each forward pass (a slow model).
    pub inference_delay: Duration,
}

/// The sending side of the bounded queue, shared by the handlers.
pub(crate) struct Queue {
    tx: SyncSender<Job>,
    depth: AtomicIsize,
    /// Whether a worker is running (cleared while it restarts after a panic, and when it stops).
    pub alive: AtomicBool,
    stop: AtomicBool,
}

/// How the worker batches.
#[derive(Clone, Debug)]
pub(crate) struct BatchPolicy {
    pub max_batch: usize,
    pub max_wait: Duration,
    pub faults: Faults,
}

impl Queue {
    /// A queue of at most `max_queue` jobs, and its receiving end for the worker.
    pub fn new(max_queue: usize) -> (Self, Receiver<Job>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(max_queue.max(1));
        let q = Self {
            tx,
            depth: AtomicIsize::new(0),
            alive: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        };
        (q, rx)
    }

    /// Queues `work`, to be answered by `deadline` (or dropped); refused at once when full.
    pub fn submit(
        &self,
        work: Work,
        deadline: Instant,
        metrics: &Metrics,
    ) -> Result<oneshot::Receiver<Answer>, Refused> {
        if self.stop.load(Ordering::Acquire) {
            return Err(Refused::Stopped);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job {
            work,
            reply,
            deadline,
        }) {
            Ok(()) => {
                let d = self.depth.fetch_add(1, Ordering::AcqRel) + 1;
                metrics.queue_depth.set(d.max(0) as f64);
                Ok(rx)
            }
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }

    fn taken(&self, metrics: &Metrics) {
        let d = self.depth.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics.queue_depth.set(d.max(0) as f64);
    }

    /// Makes the worker return once the queue is empty.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Starts the worker thread: it owns `model` and answers jobs from `rx` until
/// [`Queue::stop`], restarting after a panic.
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
                        std::thread::sleep(policy.faults.restart_delay);
                    }
                }
            }
            // stopped: whatever is still queued is refused rather than left hanging
            while let Ok(job) = rx.try_recv() {
                queue.taken(&metrics);
                let _ = job.reply.send(Answer {
                    result: Err("the server is shutting down".into()),
                    batch: 0,
                });
            }
        })
}

/// Whether nobody waits for `job` any more (the client left or its deadline passed).
fn abandoned(job: &Job, now: Instant) -> bool {
    job.reply.is_closed() || now >= job.deadline
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
    loop {
        let first = match pending.take() {
            Some(job) => job,
            None => match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(job) => {
                    queue.taken(metrics);
                    job
                }
                Err(RecvTimeoutError::Timeout) => {
                    if queue.stop.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        if abandoned(&first, Instant::now()) {
            continue;
        }
        if !first.work.batchable() {
            run(model, meta, metrics, policy, vec![first]);
            continue;
        }
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
            queue.taken(metrics);
            if abandoned(&job, Instant::now()) {
                continue;
            }
            if !job.work.batchable() {
                *pending = Some(job);
                break;
            }
            batch.push(job);
        }
        run(model, meta, metrics, policy, batch);
    }
}

/// One forward pass for `jobs` (all plain predictions, or one job of any kind); each gets its
/// answer. A panic here drops the jobs' reply channels: their handlers answer 500.
fn run(model: &Cnn, meta: &Meta, metrics: &Metrics, policy: &BatchPolicy, jobs: Vec<Job>) {
    let n = jobs.len();
    metrics.batch_size.record(n as f64);
    let start = Instant::now();
    if !policy.faults.inference_delay.is_zero() {
        std::thread::sleep(policy.faults.inference_delay);
    }
    if policy
        .faults
        .panics
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |k| k.checked_sub(1))
        .is_ok()
    {
        panic!("injected inference panic (test hook)");
    }
    let answer = |result, reply: oneshot::Sender<Answer>| {
        let _ = reply.send(Answer { result, batch: n });
    };
    if n == 1 && !jobs[0].work.batchable() {
        let Some(job) = jobs.into_iter().next() else {
            return;
        };
        let result = match &job.work {
            Work::Explain { image } => {
                crate::app::explain::explain_image(model, &meta.info, image, &meta.device)
                    .map(Done::Explain)
            }
            Work::Predict { image, .. } => predict_stages(model, meta, image),
        };
        metrics.inference.record(start.elapsed().as_secs_f64());
        answer(result.map_err(|e| e.to_string()), job.reply);
        return;
    }
    let (images, replies): (Vec<Vec<u8>>, Vec<_>) = jobs
        .into_iter()
        .map(|j| match j.work {
            Work::Predict { image, .. } | Work::Explain { image } => (image, j.reply),
        })
        .unzip();
    let result = class_probabilities(model, &meta.info, &images, &meta.device);
    metrics.inference.record(start.elapsed().as_secs_f64());
    match result {
        Ok(rows) if rows.len() == n => {
            for (probabilities, reply) in rows.into_iter().zip(replies) {
                answer(
                    Ok(Done::Predict {
                        probabilities,
                        stages: None,
                    }),
                    reply,
                );
            }
        }
        Ok(rows) => {
            let e = format!("the model answered {} of {n} images", rows.len());
            for reply in replies {
                answer(Err(e.clone()), reply);
            }
        }
        Err(e) => {
            for reply in replies {
                answer(Err(e.to_string()), reply);
            }
        }
    }
}

fn predict_stages(model: &Cnn, meta: &Meta, image: &[u8]) -> crate::Result<Done> {
    let x = crate::app::predict::images_tensor(&meta.info, &[image.to_vec()], &meta.device)?;
    let stages = model
        .forward_stages(x)?
        .iter()
        .map(|s| {
            Ok(StageOut {
                name: s.name.clone(),
                kind: s.kind,
                shape: s.shape.clone(),
                values: s.row(0)?,
            })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    let probabilities = stages.last().map(|s| s.values.clone()).unwrap_or_default();
    Ok(Done::Predict {
        probabilities,
        stages: Some(stages),
    })
}
