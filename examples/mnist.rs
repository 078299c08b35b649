//! `cargo run --release --example mnist [-- ARGS]`: the `netcalc` command without installing
//! it. It trains the default CNN on MNIST's bundled sample when given no arguments (offline),
//! and takes every subcommand and flag of `netcalc` (`netcalc --help`):
//!
//! ```text
//! cargo run --release --example mnist                      # train the default CNN (offline OK)
//! cargo run --release --example mnist -- predict --model runs/<run> digit.png
//! cargo run --release --example mnist -- bench --steps 50
//! ```
//!
//! The command lives in the library (`netcalc::app::cli`); `cargo install --path .` installs
//! it as `netcalc`.

/// mimalloc, counted, as the `netcalc` binary has it: `bench` reports heap allocations.
#[global_allocator]
static GLOBAL: netcalc::app::train::allocs::CountingAlloc<mimalloc::MiMalloc> =
    netcalc::app::train::allocs::CountingAlloc::new(mimalloc::MiMalloc);

fn main() -> std::process::ExitCode {
    netcalc::app::cli::main()
}
