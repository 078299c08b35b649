//! The processes that train one model together, and the collective operations training needs
//! from them: [`Collective`]. [`Single`] is one process alone; `MpiGroup` (Cargo feature
//! `mpi`) is an MPI job.

use super::launch::Launch;
use crate::error::{Error, Result};

/// The collective operations of a training job: every rank calls each of them, in the same
/// order, with buffers of the same length. A failure inside MPI ends the whole job (MPI's
/// default error handler), so these return no errors.
pub trait Collective {
    /// This process's rank, `0..size()`; rank 0 prints and writes the run directory.
    fn rank(&self) -> usize;

    /// The processes in the job.
    fn size(&self) -> usize;

    /// Sums `buf` element-wise over every rank, in place: each rank ends with the sum.
    fn sum_in_place(&self, buf: &mut [f32]);

    /// Rank 0's `buf` to every rank (the others' contents and length are replaced).
    fn broadcast(&self, buf: &mut Vec<u8>);

    /// Every rank's `value`, in rank order, on every rank.
    fn gather(&self, value: u64) -> Vec<u64>;

    /// Ends every process of the job now with exit code `code` (`MPI_Abort`): for an error that
    /// only this rank saw, where the others would wait for it for ever.
    fn abort(&self, code: i32) -> !;

    /// The all-reduce calls each [`Collective::sum_in_place`] is split into.
    fn buckets(&self) -> usize {
        1
    }
}

/// Whether every rank of a job reached `e` at the same point, so that each can end normally:
/// an [`Error::Agreed`], which a vote among the ranks ([`settle`], the error flag of a step's
/// all-reduce) or values every rank shares (an interrupt, divergence, a disagreement) decided.
/// Any other error is this rank's alone, and the others would wait for it in the next
/// collective operation: it must end the job ([`Collective::abort`]).
pub fn reached_together(e: &Error) -> bool {
    matches!(e, Error::Agreed(_))
}

/// `e` as every rank's error ([`Error::Agreed`]) in a job of more than one process.
pub fn agreed(group: &dyn Collective, e: Error) -> Error {
    if group.size() > 1 && !matches!(e, Error::Agreed(_)) {
        Error::Agreed(Box::new(e))
    } else {
        e
    }
}

/// How many ranks failed, from each rank's word (every rank calls it at the same point).
pub fn vote(group: &dyn Collective, failed: bool) -> usize {
    group
        .gather(u64::from(failed))
        .iter()
        .filter(|&&v| v != 0)
        .count()
}

/// The result of a phase that every rank ran (`what`: what it does), settled by a vote: when
/// any rank failed, every rank returns an [`Error::Agreed`], its own error or one that counts
/// the ranks that failed, and the job ends normally on each. Alone: `result` as it is.
pub fn settle<T>(group: &dyn Collective, result: Result<T>, what: &str) -> Result<T> {
    if group.size() == 1 {
        return result;
    }
    let failed = vote(group, result.is_err());
    match result {
        Err(e) => Err(agreed(group, e)),
        Ok(_) if failed > 0 => Err(agreed(
            group,
            Error::RanksFailed {
                message: format!(
                    "{failed} of {} ranks could not {what} (their errors are printed with their ranks); the job stops",
                    group.size()
                ),
            },
        )),
        ok => ok,
    }
}

/// One process training alone: the operations do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_in_place(&self, _buf: &mut [f32]) {}
    fn broadcast(&self, _buf: &mut Vec<u8>) {}
    fn gather(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The group of `launch`: [`Single`] alone; for an MPI job, MPI initialised (with the
/// `mpi` feature; without it, [`super::detect_launch`] has already refused), each gradient sum
/// split into `buckets` all-reduce calls ([`Launch::default_buckets`] when `None`).
pub fn join(launch: &Launch, buckets: Option<usize>) -> Result<Box<dyn Collective>> {
    #[cfg(not(feature = "mpi"))]
    let _ = buckets;
    match launch {
        Launch::Single => Ok(Box::new(Single)),
        #[cfg(feature = "mpi")]
        Launch::Mpi { size, rank, .. } => {
            let group = super::mpi::MpiGroup::init()?
                .with_buckets(buckets.unwrap_or_else(|| launch.default_buckets()));
            if group.size() != *size || group.rank() != *rank {
                return Err(Error::Distributed {
                    message: format!(
                        "MPI says rank {} of {}, the launcher's environment rank {rank} of {size}",
                        group.rank(),
                        group.size()
                    ),
                });
            }
            Ok(Box::new(group))
        }
        #[cfg(not(feature = "mpi"))]
        Launch::Mpi { size, .. } => Err(Error::Distributed {
            message: format!(
                "started as one of {size} MPI processes, but this netcalc was built without MPI; build it with `--features mpi`"
            ),
        }),
    }
}
