//! Data-parallel training on several processes over MPI: `mpirun -np N netcalc train …`
//! trains one model, the same as one process would at the same global batch.
//!
//! - [`launch`]: whether mpirun started this process (its environment), and the threads each
//!   rank uses; a build without the `mpi` feature started as one of several processes
//!   refuses.
//! - [`group`]: the collective operations training needs ([`Collective`]): [`Single`] alone,
//!   `MpiGroup` over MPI (feature `mpi`).
//! - [`agree`](mod@agree): every rank checks that it trains rank 0's run (config, data).
//! - [`params`]: parameters and gradients as one flat buffer, for the all-reduce, the initial
//!   broadcast and the per-epoch checksum.
//! - [`ship`]: a resume reads the run directory on rank 0 only; the other ranks get its files
//!   from rank 0 (no shared filesystem needed).
//!
//! The training loop ([`crate::app::train::train_in`]) splits every global batch into one
//! share per rank, weights each rank's mean gradient by its share of the batch, sums the
//! weighted gradients with one all-reduce per step and takes the same optimizer step on every
//! rank. See docs/distributed.md.

pub mod agree;
pub mod group;
pub mod launch;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod params;
pub mod ship;

pub use agree::{RunIdentity, agree};
pub use group::{Collective, Single, agreed, join, reached_together, settle, vote};
pub use launch::{Launch, MPI_COMPILED, default_threads, detect_launch, this_launch, threads_for};
#[cfg(feature = "mpi")]
pub use mpi::MpiGroup;
pub use ship::share_run_dir;

/// The part of a global batch of `len` examples that rank `rank` of `size` trains on: the
/// contiguous range `len·rank/size .. len·(rank+1)/size` (shares differ by at most one example;
/// a rank's share is empty when the batch has fewer examples than there are ranks).
///
/// # Examples
/// ```
/// use netcalc::app::distributed::share;
/// assert_eq!(share(128, 0, 2), 0..64);
/// assert_eq!(share(5, 1, 2), 2..5);
/// assert_eq!(share(1, 0, 2), 0..0); // the last batch of one image: rank 0 has none
/// assert_eq!(share(1, 1, 2), 0..1);
/// ```
pub fn share(len: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    len * rank / size..len * (rank + 1) / size
}

/// The seed of rank `rank`'s stream derived from `seed` (dropout, augmentation): rank 0 draws
/// what a single process draws, the others their own streams.
pub fn rank_seed(seed: u64, rank: usize) -> u64 {
    if rank == 0 {
        seed
    } else {
        crate::seed::stream(seed ^ 0xD15C_0DE5, rank as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_once_in_order() {
        for len in 0..40 {
            for size in 1..6 {
                let mut next = 0;
                for rank in 0..size {
                    let r = share(len, rank, size);
                    assert_eq!(r.start, next);
                    assert!(r.len() == len / size || r.len() == len / size + 1);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn rank_0_draws_the_single_process_stream_the_others_their_own() {
        assert_eq!(rank_seed(42, 0), 42);
        let seeds: Vec<u64> = (0..8).map(|r| rank_seed(42, r)).collect();
        let mut unique = seeds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8);
    }
}
