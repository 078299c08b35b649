//! [`Collective`] over MPI (rsmpi, the Cargo feature `mpi`): `MPI_Allreduce`, `MPI_Bcast` and
//! `MPI_Allgather` on `MPI_COMM_WORLD`.

use std::cell::RefCell;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use super::group::Collective;
use crate::error::{Error, Result};

/// `MPI_COMM_WORLD` of an MPI job. MPI is initialised with `MPI_THREAD_FUNNELED`: rayon's
/// threads compute, only the thread that made the group calls MPI. Dropping it finalises MPI.
pub struct MpiGroup {
    world: SimpleCommunicator,
    /// `sum_in_place` splits its buffer into this many all-reduce calls.
    buckets: usize,
    /// A copy of the buffer being summed (`MPI_Allreduce` reads one buffer, writes another).
    send: RefCell<Vec<f32>>,
    // Declared last: dropped (MPI_Finalize) after the communicator.
    _universe: Universe,
}

impl MpiGroup {
    /// Initialises MPI (once per process); every sum is one `MPI_Allreduce` call.
    pub fn init() -> Result<Self> {
        let (universe, _provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::Distributed {
                message: "MPI is already initialised in this process".into(),
            })?;
        let world = universe.world();
        if world.size() > 1 {
            abort_on_panic(world.rank() as usize, world.size() as usize);
        }
        Ok(Self {
            world,
            buckets: 1,
            send: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }
}

impl MpiGroup {
    /// Splits every sum into `buckets` all-reduce calls of equal parts (at least 1). Over a
    /// network, several calls keep the link busy where one large call leaves it idle between
    /// its phases (docs/distributed.md measures both).
    pub fn with_buckets(mut self, buckets: usize) -> Self {
        self.buckets = buckets.max(1);
        self
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_in_place(&self, buf: &mut [f32]) {
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(buf);
        let part = buf.len().div_ceil(self.buckets).max(1);
        for (s, r) in send.chunks(part).zip(buf.chunks_mut(part)) {
            self.world.all_reduce_into(s, r, SystemOperation::sum());
        }
    }

    fn broadcast(&self, buf: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        buf.resize(len as usize, 0);
        root.broadcast_into(&mut buf[..]);
    }

    fn gather(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn buckets(&self) -> usize {
        self.buckets
    }
}

/// With more than one rank: a panic on any thread prints the panic with the rank, then ends
/// the whole job (`MPI_Abort`, exit code 101, Rust's for a panic). Without it, the panicking
/// rank would unwind into `MPI_Finalize`, which waits for ranks that sit in an all-reduce for
/// it, and the job would hang.
fn abort_on_panic(rank: usize, size: usize) {
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("error (rank {rank} of {size}): {info}; aborting the MPI job");
        SimpleCommunicator::world().abort(101)
    }));
}
