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

/// The same from call to call: counts and bytes within 1 % (and 2 allocations) of the first
/// call's — the thread pool's bookkeeping may add one now and then.
fn assert_steady(what: &str, calls: &[AllocCount]) {
    let first = calls[0];
    assert!(first.count > 0, "{what}: nothing allocated? {calls:?}");
    for c in calls {
        let dc = c.count.abs_diff(first.count);
        let db = c.bytes.abs_diff(first.bytes);
        assert!(
            dc <= 2 + first.count / 100 && db <= 4096 + first.bytes / 100,
            "{what}: allocations change from step to step: {calls:?}"
        );
    }
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
            let train = per_call(3, 5, || {
                t.step();
            });
            assert_steady(&format!("{kind} {preset} training step"), &train);
            let inf = Inferer::new(&cfg, 100, &dev).expect("model");
            let infer = per_call(3, 5, || {
                inf.step();
            });
            assert_steady(&format!("{kind} {preset} inference"), &infer);
            println!(
                "{kind} {preset}: {} allocations ({:.2} MB) per training step of 32, {} ({:.2} MB) per inference batch of 100",
                train[0].count,
                train[0].bytes as f64 / 1e6,
                infer[0].count,
                infer[0].bytes as f64 / 1e6
            );
        }
    }
}
