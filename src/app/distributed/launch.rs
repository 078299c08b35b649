//! How this process was started: alone, or as one rank of an MPI job (`mpirun -np N`), read
//! from the environment the launcher sets; and how many CPU threads a rank should use.

use crate::error::{Error, Result};

/// Whether this build can train over MPI (the Cargo feature `mpi`).
pub const MPI_COMPILED: bool = cfg!(feature = "mpi");

/// How the process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// On its own (or by `mpirun -np 1`): trains in this process.
    Single,
    /// As rank `rank` of `size` processes started by an MPI launcher.
    Mpi {
        /// Processes in the job (at least 2).
        size: usize,
        /// This process's rank, `0..size`.
        rank: usize,
        /// The job's processes on this host, when the launcher says.
        local_size: Option<usize>,
    },
}

impl Launch {
    /// The processes in the job (1 alone).
    pub fn size(&self) -> usize {
        match self {
            Launch::Single => 1,
            Launch::Mpi { size, .. } => *size,
        }
    }

    /// Whether the job's processes are on more than one host (the launcher says fewer of them
    /// are on this one than in the job).
    pub fn spans_hosts(&self) -> bool {
        self.local_size() < self.size()
    }

    /// How many all-reduce calls a gradient sum is split into by default: 1 on one host
    /// (shared memory: one call is fastest), 16 across hosts (over TCP, one large call leaves
    /// the link idle between its phases; 16 reached the link's rate in docs/distributed.md).
    pub fn default_buckets(&self) -> usize {
        if self.spans_hosts() { 16 } else { 1 }
    }

    /// The job's processes on this host (1 alone; all of them when the launcher does not
    /// say).
    pub fn local_size(&self) -> usize {
        match self {
            Launch::Single => 1,
            Launch::Mpi {
                size, local_size, ..
            } => local_size.unwrap_or(*size),
        }
    }
}

/// The variables that give the job's size, its rank and its ranks on this host: OpenMPI's,
/// then MPICH's (Hydra, PMI).
const SIZE_VARS: [&str; 2] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"];
const RANK_VARS: [&str; 3] = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"];
const LOCAL_SIZE_VARS: [&str; 2] = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"];

/// Reads the launch from the environment (`var` looks a variable up: `std::env::var(..).ok()`
/// in a program, a table in a test). `mpi_compiled` says whether this build has MPI
/// ([`MPI_COMPILED`]).
///
/// A job of 2 or more processes in a build without MPI is an [`Error::Distributed`] that says
/// how to build with it: training N independent copies into one run directory is never what
/// was meant. A job of one process trains as a single one.
///
/// # Examples
/// ```
/// use netcalc::app::distributed::{Launch, detect_launch};
/// let env = |name: &str| match name {
///     "OMPI_COMM_WORLD_SIZE" => Some("2".to_string()),
///     "OMPI_COMM_WORLD_RANK" => Some("1".to_string()),
///     _ => None,
/// };
/// let launch = detect_launch(env, true)?;
/// assert_eq!(launch, Launch::Mpi { size: 2, rank: 1, local_size: None });
/// let refused = detect_launch(env, false).unwrap_err().to_string();
/// assert!(refused.contains("--features mpi"), "{refused}");
/// assert_eq!(detect_launch(|_| None, false)?, Launch::Single);
/// # Ok::<(), netcalc::Error>(())
/// ```
pub fn detect_launch(var: impl Fn(&str) -> Option<String>, mpi_compiled: bool) -> Result<Launch> {
    let number = |names: &[&str]| -> Result<Option<usize>> {
        for name in names {
            if let Some(text) = var(name) {
                return text.trim().parse::<usize>().map(Some).map_err(|_| {
                    Error::setting(
                        *name,
                        format!("the MPI launcher set it to `{text}`, which is not a count"),
                    )
                });
            }
        }
        Ok(None)
    };
    let size = number(&SIZE_VARS)?;
    let rank = number(&RANK_VARS)?;
    let Some(size) = size.filter(|&s| s > 1) else {
        return Ok(Launch::Single);
    };
    if !mpi_compiled {
        return Err(Error::Distributed {
            message: format!(
                "started by an MPI launcher as one of {size} processes, but this netcalc was built without MPI; build it with `cargo build --release --features mpi` (it would otherwise train {size} separate copies into one run directory)"
            ),
        });
    }
    let rank = rank.unwrap_or(0);
    if rank >= size {
        return Err(Error::Distributed {
            message: format!("the MPI launcher gave rank {rank} of {size} processes"),
        });
    }
    Ok(Launch::Mpi {
        size,
        rank,
        local_size: number(&LOCAL_SIZE_VARS)?,
    })
}

/// [`detect_launch`] on this process's environment and build.
pub fn this_launch() -> Result<Launch> {
    detect_launch(|name| std::env::var(name).ok(), MPI_COMPILED)
}

/// The CPU threads a rank uses by default: the CPUs it may run on (`allowed`, its affinity
/// mask) when the launcher bound it to fewer than the host's `online` CPUs (OpenMPI binds each
/// rank to its own cores: that binding already shares the host out), else those CPUs divided
/// among the job's `local_ranks` on this host; at least 1.
///
/// # Examples
/// ```
/// use netcalc::app::distributed::default_threads;
/// assert_eq!(default_threads(2, Some(2), 1), 2); // alone on 2 cores
/// assert_eq!(default_threads(2, Some(2), 2), 1); // 2 ranks, unbound (`--bind-to none`)
/// assert_eq!(default_threads(1, Some(2), 2), 1); // 2 ranks, each bound to a core
/// assert_eq!(default_threads(8, Some(16), 2), 8); // `--map-by slot:PE=8`
/// ```
pub fn default_threads(allowed: usize, online: Option<usize>, local_ranks: usize) -> usize {
    let allowed = allowed.max(1);
    if online.is_some_and(|o| allowed < o) {
        allowed
    } else {
        (allowed / local_ranks.max(1)).max(1)
    }
}

/// The number of CPUs in a Linux CPU list such as `0-3,8-11` (the format of
/// `/sys/devices/system/cpu/online`); `None` when it is not one.
pub fn count_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                b.checked_sub(a)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// [`default_threads`] for this process: its affinity mask (`available_parallelism`), the
/// host's online CPUs, and `launch`'s ranks on this host.
pub fn threads_for(launch: &Launch) -> usize {
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpu_list(&s));
    default_threads(allowed, online, launch.local_size())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::cli::exit_code;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_build_without_mpi_started_by_mpirun_refuses_with_exit_2() {
        for vars in [
            &[("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "0")][..],
            &[("PMI_SIZE", "4"), ("PMI_RANK", "3")][..],
        ] {
            let e = detect_launch(env(vars), false).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, Error::Distributed { .. }), "{e:?}");
            assert!(text.contains("--features mpi"), "{text}");
            assert!(text.contains("without MPI"), "{text}");
            assert_eq!(exit_code(&e), 2);
        }
    }

    #[test]
    fn the_same_environment_with_mpi_compiled_in_is_a_rank_of_the_job() {
        let vars = [
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"),
        ];
        let launch = detect_launch(env(&vars), true).unwrap();
        assert_eq!(
            launch,
            Launch::Mpi {
                size: 2,
                rank: 1,
                local_size: Some(2)
            }
        );
        assert_eq!(launch.size(), 2);
        assert_eq!(launch.local_size(), 2);
        assert!(!launch.spans_hosts());
        assert_eq!(launch.default_buckets(), 1);
        let mpich = detect_launch(env(&[("PMI_SIZE", "3"), ("PMI_RANK", "2")]), true).unwrap();
        assert_eq!(
            mpich,
            Launch::Mpi {
                size: 3,
                rank: 2,
                local_size: None
            }
        );
        assert_eq!(mpich.local_size(), 3);
        let two_hosts = detect_launch(
            env(&[
                ("OMPI_COMM_WORLD_SIZE", "4"),
                ("OMPI_COMM_WORLD_RANK", "3"),
                ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"),
            ]),
            true,
        )
        .unwrap();
        assert!(two_hosts.spans_hosts());
        assert_eq!(two_hosts.default_buckets(), 16);
    }

    #[test]
    fn one_process_or_no_launcher_trains_alone_with_or_without_mpi() {
        for compiled in [false, true] {
            assert_eq!(detect_launch(env(&[]), compiled).unwrap(), Launch::Single);
            let one = [("OMPI_COMM_WORLD_SIZE", "1"), ("OMPI_COMM_WORLD_RANK", "0")];
            assert_eq!(detect_launch(env(&one), compiled).unwrap(), Launch::Single);
            // a PMIx rank without a size: nothing says there are others
            assert_eq!(
                detect_launch(env(&[("PMIX_RANK", "0")]), compiled).unwrap(),
                Launch::Single
            );
        }
        assert_eq!(Launch::Single.size(), 1);
    }

    #[test]
    fn a_garbled_launcher_environment_is_named() {
        let e = detect_launch(env(&[("OMPI_COMM_WORLD_SIZE", "two")]), true).unwrap_err();
        assert!(e.to_string().contains("OMPI_COMM_WORLD_SIZE"), "{e}");
        let e = detect_launch(
            env(&[("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "2")]),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rank 2 of 2"), "{e}");
    }

    #[test]
    fn threads_share_the_host_unless_the_launcher_bound_the_rank() {
        assert_eq!(default_threads(16, Some(16), 1), 16);
        assert_eq!(default_threads(16, Some(16), 4), 4);
        assert_eq!(default_threads(16, Some(16), 32), 1);
        assert_eq!(default_threads(4, Some(16), 4), 4);
        assert_eq!(default_threads(1, Some(16), 4), 1);
        assert_eq!(default_threads(3, None, 2), 1);
        assert_eq!(default_threads(0, None, 0), 1);
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8-11"), Some(8));
        assert_eq!(count_cpu_list("0,2,4-5"), Some(4));
        assert_eq!(count_cpu_list("5-3"), None);
        assert_eq!(count_cpu_list("x"), None);
    }
}
