//! A prefetching reader: a thread of its own builds the next batches (gathers their images
//! from memory or from a packed file's map, normalises and shifts them) while the training
//! step runs, at most [`DEPTH`] batches ahead.
//!
//! Each batch is built from its indices and its own augmentation seed, exactly as the step
//! would build it, so a run reads the same batches with or without the reader ahead of it.

use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::app::data::{HostBatch, Split};
use crate::error::{Error, Result};

/// How many batches the reader builds ahead of the step.
pub const DEPTH: usize = 3;

/// One batch to build: the images' indices, and the seed and most pixels of the random shift
/// when augmenting.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// Indices into the split, in batch order.
    pub indices: Vec<usize>,
    /// `(seed, shift)`: each image shifted by up to `shift` pixels, drawn from `seed`.
    pub augment: Option<(u64, usize)>,
}

/// The batches of a list of [`BatchJob`]s, in order, built ahead on a thread.
pub struct Prefetch {
    rx: Option<Receiver<HostBatch>>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts building `jobs` from `split` (a cheap clone: the pixels are shared).
    pub fn start(split: Split, jobs: Vec<BatchJob>) -> Result<Self> {
        let (tx, rx) = sync_channel(DEPTH);
        let handle = std::thread::Builder::new()
            .name("netcalc-prefetch".into())
            .spawn(move || {
                for job in jobs {
                    let batch = build(&split, &job);
                    if tx.send(batch).is_err() {
                        // the step stopped early and dropped the reader
                        return;
                    }
                }
            })
            .map_err(|e| Error::setting("data", format!("cannot start the batch reader: {e}")))?;
        Ok(Self {
            rx: Some(rx),
            handle: Some(handle),
        })
    }

    /// The next batch, in the jobs' order; an error when the reader ended early (it
    /// panicked).
    pub fn next_batch(&mut self) -> Result<HostBatch> {
        self.rx
            .as_ref()
            .and_then(|rx| rx.recv().ok())
            .ok_or_else(|| {
                Error::setting("data", "the batch reader stopped before the epoch ended")
            })
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // closing the channel ends a reader blocked on a full one
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One job's batch, as [`Split::host_batch`] builds it in the step.
pub fn build(split: &Split, job: &BatchJob) -> HostBatch {
    match job.augment {
        Some((seed, shift)) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            split.host_batch(&job.indices, Some((&mut rng, shift)))
        }
        None => split.host_batch(&job.indices, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::data::Dataset;

    #[test]
    fn the_reader_gives_the_batches_the_step_would_build_in_order() {
        let data = Dataset::bundled().unwrap();
        let split = data.train.take(300);
        let jobs: Vec<BatchJob> = (0..10)
            .map(|b| BatchJob {
                indices: (b * 29..b * 29 + 17).collect(),
                augment: (b % 2 == 1).then_some((b as u64 * 7 + 1, 2)),
            })
            .collect();
        let mut reader = Prefetch::start(split.clone(), jobs.clone()).unwrap();
        for job in &jobs {
            let got = reader.next_batch().unwrap();
            let mut rng = job.augment.map(|(s, _)| ChaCha8Rng::seed_from_u64(s));
            let want = split.host_batch(
                &job.indices,
                rng.as_mut()
                    .zip(job.augment)
                    .map(|(r, (_, shift))| (r, shift)),
            );
            assert_eq!(got, want);
            assert_eq!(got.dims, [17, 1, 28, 28]);
        }
        assert!(reader.next_batch().is_err());
        // dropped before it is drained: the reader thread ends, nothing hangs
        let early = Prefetch::start(split, jobs).unwrap();
        drop(early);
    }
}
