//! `netcalc`: train, evaluate, explain, serve and export CNNs from the command line. The
//! command is defined and carried out in the library ([`netcalc::app::cli`]); this file only
//! installs the allocator.

/// mimalloc, counted: `netcalc bench` reports the heap allocations per training step and per
/// inference batch.
#[global_allocator]
static GLOBAL: netcalc::app::train::allocs::CountingAlloc<mimalloc::MiMalloc> =
    netcalc::app::train::allocs::CountingAlloc::new(mimalloc::MiMalloc);

fn main() -> std::process::ExitCode {
    netcalc::app::cli::main()
}
