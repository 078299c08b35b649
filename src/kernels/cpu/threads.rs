//! How the kernels use the threads: whether work is worth spreading over them, how images are
//! split between them, the loops over output chunks (parallel or not), and the sum of the
//! per-thread gradients.

use rayon::prelude::*;

/// Work below this many multiply-adds (or values visited) runs on the calling thread: handing
/// it to the thread pool and waiting for the pool costs more than the second thread saves
/// (see docs/performance.md, Why the kernels choose what they choose).
const PARALLEL_MACS: usize = 1 << 22;

#[cfg(test)]
thread_local! {
    /// The threshold [`parallel`] uses on this thread (tests lower it to 0 to run the parallel
    /// paths on small tensors).
    static PARALLEL_FROM: std::cell::Cell<usize> = const { std::cell::Cell::new(PARALLEL_MACS) };
}

/// Whether work of `macs` multiply-adds is worth spreading over the threads.
pub(super) fn parallel(macs: usize) -> bool {
    #[cfg(test)]
    let from = PARALLEL_FROM.with(|f| f.get());
    #[cfg(not(test))]
    let from = PARALLEL_MACS;
    macs >= from && rayon::current_num_threads() > 1
}

/// Runs `f` on this thread with every kernel that `f` calls here taking its parallel path
/// (`all_parallel`) or its default choice.
#[cfg(test)]
pub(crate) fn with_parallel<R>(all_parallel: bool, f: impl FnOnce() -> R) -> R {
    let from = if all_parallel { 0 } else { PARALLEL_MACS };
    let before = PARALLEL_FROM.with(|c| c.replace(from));
    let out = f();
    PARALLEL_FROM.with(|c| c.set(before));
    out
}

/// The images `0..n` split evenly over the threads: images per task, and each task's first
/// image with its part of the input gradient `gx` (`chw` values per image; empty parts when
/// `gx` is empty, no input gradient asked for).
pub(super) fn image_tasks(
    n: usize,
    chw: usize,
    gx: &mut [f32],
) -> (usize, Vec<(usize, &mut [f32])>) {
    let per_task = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let starts = (0..n).step_by(per_task);
    let tasks = if gx.is_empty() {
        starts.map(|s| (s, <&mut [f32]>::default())).collect()
    } else {
        starts.zip(gx.chunks_mut(per_task * chw)).collect()
    };
    (per_task, tasks)
}

/// Runs `task(t, ys)` for each chunk `t` of `y` (`chunk` values): in parallel when `parallel`,
/// else one after the other on the calling thread.
pub(super) fn for_each_chunk(
    y: &mut [f32],
    chunk: usize,
    parallel: bool,
    task: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if parallel {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, ys)| task(t, ys));
    } else {
        y.chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, ys)| task(t, ys));
    }
}

/// Runs `task(t, ys, is)` for each chunk `t` of `y` (`chunk` values) and the matching chunk of
/// the window positions `idx` — in parallel when `parallel`, else in order on the calling
/// thread; `is` is empty when `idx` is (no positions asked for).
pub(super) fn for_each_output_chunk(
    y: &mut [f32],
    idx: &mut [u32],
    chunk: usize,
    parallel: bool,
    task: impl Fn(usize, &mut [f32], &mut [u32]) + Sync + Send,
) {
    if !parallel {
        let mut is = idx.chunks_mut(chunk.max(1));
        for (t, ys) in y.chunks_mut(chunk.max(1)).enumerate() {
            task(t, ys, is.next().unwrap_or(&mut []));
        }
    } else if idx.is_empty() {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, ys)| task(t, ys, &mut []));
    } else {
        y.par_chunks_mut(chunk)
            .zip(idx.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, (ys, is))| task(t, ys, is));
    }
}

/// The sum of per-thread (weight, bias) gradients.
pub(super) fn sum_partials(
    partials: Vec<(Vec<f32>, Vec<f32>)>,
    nw: usize,
    nb: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut parts = partials.into_iter();
    let (mut gw, mut gb) = parts
        .next()
        .unwrap_or_else(|| (vec![0.0; nw], vec![0.0; nb]));
    for (w2, b2) in parts {
        gw.iter_mut().zip(&w2).for_each(|(a, b)| *a += b);
        gb.iter_mut().zip(&b2).for_each(|(a, b)| *a += b);
    }
    (gw, gb)
}
