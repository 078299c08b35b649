//! The painter: the one thread that draws and PNG-encodes explanations, with the CPU time the
//! rest of the server leaves.
//!
//! An explanation is computed in a shared batch by the inference worker
//! ([`super::batcher`]); its picture ([`crate::app::explain::explain_png`], a few milliseconds
//! of CPU) is then queued here. One thread draws them in order under Linux's `SCHED_IDLE`
//! policy ([`run_when_idle`]; `nice` 19 where that is refused, the normal priority elsewhere),
//! the way RocksDB lowers the CPU priority of its compaction threads: it runs when a core
//! would otherwise idle, so predictions lose little to pictures, and under a load of
//! predictions that leaves no CPU, pictures wait (up to the request timeout). The queue holds
//! at most [`MAX_PICTURES`]; a full queue is refused at once (503). A picture still queued at
//! its request's deadline is answered [`Painted::Expired`]; after [`Painter::halt`] whatever
//! is queued is answered [`Painted::ShuttingDown`]. A panic while drawing answers that
//! request [`Painted::Failed`] and the thread goes on.
//!
//! Fail point (feature `failpoints`): `serve-paint`, before each picture (`sleep(MS)`,
//! `panic`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::model::Stage;

use super::batcher::Refused;

/// Pictures that may wait to be drawn.
pub const MAX_PICTURES: usize = 64;

/// The painter's answer to one picture.
pub(crate) enum Painted {
    /// The PNG.
    Done(Vec<u8>),
    /// Drawing failed or panicked (500).
    Failed(String),
    /// Still queued at the request's deadline (503).
    Expired,
    /// Still queued when the server stopped (503).
    ShuttingDown,
}

/// One picture to draw: row `row` of the batch's stages.
pub(crate) struct Order {
    stages: Arc<Vec<Stage>>,
    row: usize,
    reply: oneshot::Sender<Painted>,
    deadline: Instant,
}

/// The sending side of the painter's queue, shared by the handlers.
pub(crate) struct Painter {
    tx: SyncSender<Order>,
    halt: AtomicBool,
}

impl Painter {
    /// A painter's queue of at most [`MAX_PICTURES`], and its receiving end for [`spawn`].
    pub fn new() -> (Self, Receiver<Order>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(MAX_PICTURES);
        let painter = Self {
            tx,
            halt: AtomicBool::new(false),
        };
        (painter, rx)
    }

    /// Queues the picture of row `row` of `stages`, to be answered by `deadline`; refused at
    /// once when the queue is full or the painter has stopped.
    pub fn submit(
        &self,
        stages: Arc<Vec<Stage>>,
        row: usize,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Painted>, Refused> {
        if self.halt.load(Ordering::Acquire) {
            return Err(Refused::Stopped);
        }
        let (reply, rx) = oneshot::channel();
        let order = Order {
            stages,
            row,
            reply,
            deadline,
        };
        match self.tx.try_send(order) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }

    /// Makes the painter answer what is queued [`Painted::ShuttingDown`] and stop; new
    /// pictures are refused.
    pub fn halt(&self) {
        self.halt.store(true, Ordering::Release);
    }
}

/// Starts the painter's thread: it draws the pictures queued on `rx` with `classes` until
/// `painter` is halted.
pub(crate) fn spawn(
    painter: Arc<Painter>,
    rx: Receiver<Order>,
    classes: Vec<String>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netcalc-painter".into())
        .spawn(move || {
            run_when_idle();
            while !painter.halt.load(Ordering::Acquire) {
                let order = match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(order) => order,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                if order.reply.is_closed() {
                    continue;
                }
                if Instant::now() >= order.deadline {
                    let _ = order.reply.send(Painted::Expired);
                    continue;
                }
                let drawn = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    fail::fail_point!("serve-paint");
                    crate::app::explain::explain_png(&order.stages, order.row, &classes)
                }));
                let answer = match drawn {
                    Ok(Ok(png)) => Painted::Done(png),
                    Ok(Err(e)) => Painted::Failed(e.to_string()),
                    Err(_) => Painted::Failed("drawing the picture panicked".into()),
                };
                let _ = order.reply.send(answer);
            }
            while let Ok(order) = rx.try_recv() {
                let _ = order.reply.send(Painted::ShuttingDown);
            }
        })
}

/// Puts the calling thread under the `SCHED_IDLE` scheduling policy (Linux): it runs only
/// when no thread of a normal policy wants the core (the kernel still gives it a sliver, so
/// it is never starved for good). Where that is refused, its `nice` value becomes 19, the
/// lowest normal priority. Elsewhere it does nothing. Whether `SCHED_IDLE` took effect.
pub fn run_when_idle() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` has no preconditions and returns the calling thread's id. With a
        // thread id, `sched_setscheduler` and `setpriority` change that thread alone; the
        // parameter is a valid `sched_param` that lives across the call, and is only read.
        // A refused call returns -1 and changes nothing.
        unsafe {
            let tid = libc::gettid();
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) == 0 {
                return true;
            }
            if let Ok(id) = libc::id_t::try_from(tid) {
                libc::setpriority(libc::PRIO_PROCESS, id, 19);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functional::pool::PoolKind;
    use crate::model::{CnnConfig, FeatureExtractorConfig};
    use crate::nn::conv::Conv2dBlockConfig;
    use crate::nn::dense::ClassifierConfig;
    use crate::nn::pool::Pool2dConfig;
    use burn::tensor::Tensor;

    /// The stages of a tiny CNN (6×6 images, 3 classes) for a batch of two images.
    fn stages() -> Arc<Vec<Stage>> {
        let block =
            Conv2dBlockConfig::new(1, 2, 3).with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]));
        let config = CnnConfig::new(
            "tiny",
            FeatureExtractorConfig::new([1, 6, 6]).with_blocks(vec![block]),
            ClassifierConfig::new(8, [4, 3]),
        );
        let d = crate::testing::test_device();
        let model = config.init(&d).unwrap();
        let x: Vec<f32> = (0..72).map(|i| (i % 7) as f32 / 7.0).collect();
        let x = Tensor::<1>::from_floats(x.as_slice(), &d).reshape([2, 1, 6, 6]);
        Arc::new(model.forward_stages(x).unwrap())
    }

    fn answer(rx: oneshot::Receiver<Painted>) -> Painted {
        rx.blocking_recv()
            .expect("the painter answers every picture it took")
    }

    #[test]
    fn pictures_are_drawn_expired_refused_when_full_and_answered_at_a_halt() {
        let (stages, soon) = (stages(), Instant::now() + Duration::from_secs(30));
        let (painter, rx) = Painter::new();
        let painter = Arc::new(painter);
        // nobody draws yet: the queue fills, and the next picture is refused at once
        let queued: Vec<_> = (0..MAX_PICTURES)
            .map(|i| painter.submit(stages.clone(), i % 2, soon).unwrap())
            .collect();
        assert!(matches!(
            painter.submit(stages.clone(), 0, soon),
            Err(Refused::Full)
        ));
        let classes = vec!["a".to_string(), "b".into(), "c".into()];
        let thread = spawn(painter.clone(), rx, classes).unwrap();
        for (i, rx) in queued.into_iter().enumerate() {
            match answer(rx) {
                Painted::Done(png) => {
                    let classes = ["a".into(), "b".into(), "c".into()];
                    let want = crate::app::explain::explain_png(&stages, i % 2, &classes);
                    assert_eq!(png, want.unwrap(), "picture {i}");
                }
                _ => panic!("picture {i} was not drawn"),
            }
        }
        // a picture past its deadline is not drawn
        let late = painter.submit(stages.clone(), 0, Instant::now()).unwrap();
        assert!(matches!(answer(late), Painted::Expired));
        // a row the batch does not have fails with the drawing's error
        let bad = painter.submit(stages.clone(), 2, soon).unwrap();
        assert!(matches!(answer(bad), Painted::Failed(e) if e.contains("image 2 of a batch of 2")));
        painter.halt();
        assert!(matches!(
            painter.submit(stages.clone(), 0, soon),
            Err(Refused::Stopped)
        ));
        thread.join().unwrap();
        // pictures still queued when the painter halts are answered, not dropped
        let (painter, rx) = Painter::new();
        let painter = Arc::new(painter);
        let queued: Vec<_> = (0..3)
            .map(|_| painter.submit(stages.clone(), 0, soon).unwrap())
            .collect();
        painter.halt();
        spawn(painter, rx, Vec::new()).unwrap().join().unwrap();
        for rx in queued {
            assert!(matches!(answer(rx), Painted::ShuttingDown));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_painter_runs_when_a_core_would_otherwise_idle() {
        /// The scheduling policy of thread `tid`: field 41 of its `stat` (5 is `SCHED_IDLE`).
        fn policy(tid: libc::pid_t) -> i32 {
            let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
            // the fields from the third on follow the command, which ends at the last ')'
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            rest.split(' ').nth(38).unwrap().parse::<i32>().unwrap()
        }
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() };
        let before = policy(me);
        let (tid, idle, after) = std::thread::spawn(|| {
            // SAFETY: as above.
            let tid = unsafe { libc::gettid() };
            (tid, run_when_idle(), policy(tid))
        })
        .join()
        .unwrap();
        assert_ne!(tid, me);
        assert!(idle, "SCHED_IDLE is refused here");
        assert_eq!(after, libc::SCHED_IDLE);
        // the calling thread is not changed
        assert_eq!(policy(me), before);
        assert_eq!(before, libc::SCHED_OTHER);
    }
}
