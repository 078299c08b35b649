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
    /// A copy of the buffer being summed (`MPI_Allreduce` reads one buffer, writes another).
    send: RefCell<Vec<f32>>,
    // Declared last: dropped (MPI_Finalize) after the communicator.
    _universe: Universe,
}

impl MpiGroup {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self> {
        let (universe, _provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::Distributed {
                message: "MPI is already initialised in this process".into(),
            })?;
        Ok(Self {
            world: universe.world(),
            send: RefCell::new(Vec::new()),
            _universe: universe,
        })
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
        self.world
            .all_reduce_into(&send[..], buf, SystemOperation::sum());
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
}
