//! Heap allocations in the steady state of a training step and of an inference batch, counted
//! by [`CountingAlloc`]: after the warm-up steps every step allocates the same (nothing grows
//! from step to step: the kernels reuse their scratch memory, the optimizer its state), and the
//! counts are printed (`cargo test --release --test allocations -- --nocapture`).
//! One test function: the counter is global to the process, so tests running side by side on
//! other threads would add their allocations to it.

use std::alloc::System;

use netcalc::app::train::allocs::{AllocCount, CountingAlloc, allocations};
use netcalc::app::train::bench::{Inferer, TrainStepper};
use netcalc::{BackendKind, CnnConfig};

#[global_allocator]
static GLOBAL: CountingAlloc<System> = CountingAlloc::new(System);

/// What each of `steps` calls of `f` allocates, after `warmup` calls.
fn per_call(warmup: usize, steps: usize, mut f: impl FnMut()) -> Vec<AllocCount> {
    for _ in 0..warmup {
        f();
    }
    (0..steps)
        .map(|_| {
            let before = allocations().expect("this binary counts allocations");
            f();
            allocations().unwrap().since(before)
        })
        .collect()
}

/// The same from call to call: every call but at most one allocates as the typical call does
/// (counts and bytes within 1 % and 2 allocations; the thread pool's bookkeeping may add one
/// now and then), and so do the last two. The one exception is a pool thread that runs a
/// kernel for the first time after the warm-up (work stealing decides which thread runs what)
/// and sizes its reusable scratch once; growth from step to step would show in every call.
fn assert_steady(what: &str, calls: &[AllocCount]) {
    let mut sorted: Vec<AllocCount> = calls.to_vec();
    sorted.sort_by_key(|c| (c.count, c.bytes));
    let typical = sorted[sorted.len() / 2];
    assert!(typical.count > 0, "{what}: nothing allocated? {calls:?}");
    let steady = |c: &AllocCount| {
        c.count.abs_diff(typical.count) <= 2 + typical.count / 100
            && c.bytes.abs_diff(typical.bytes) <= 4096 + typical.bytes / 100
    };
    let off = calls.iter().filter(|c| !steady(c)).count();
    assert!(
        off <= 1 && calls[calls.len() - 2..].iter().all(steady),
        "{what}: allocations change from step to step: {calls:?}"
    );
}

#[test]
fn steps_allocate_the_same_every_time() {
    for kind in [BackendKind::Flex, BackendKind::NdArray] {
        if !kind.is_compiled() {
            continue;
        }
        let dev = netcalc::device_of(kind).expect("CPU device");
        for preset in ["keras-cnn", "mlp"] {
            let cfg = CnnConfig::preset(preset).expect("preset");
            let mut t = TrainStepper::new(&cfg, 32, &dev).expect("model");
            let train = per_call(3, 6, || {
                t.step();
            });
            assert_steady(&format!("{kind} {preset} training step"), &train);
            let inf = Inferer::new(&cfg, 100, &dev).expect("model");
            let infer = per_call(3, 6, || {
                inf.step();
            });
            assert_steady(&format!("{kind} {preset} inference"), &infer);
            println!(
                "{kind} {preset}: {} allocations ({:.2} MB) per training step of 32, {} ({:.2} MB) per inference batch of 100",
                train[5].count,
                train[5].bytes as f64 / 1e6,
                infer[5].count,
                infer[5].bytes as f64 / 1e6
            );
        }
    }
}
