//! The f32 kernels on row-major slices, independent of burn: convolution (im2col + gemm) and
//! tiled max pooling, each with its backward, and the fused block. Parallel over images or
//! planes with rayon.

#[macro_use]
pub(crate) mod simd;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod conv;
#[cfg(target_arch = "x86_64")]
mod dense;
#[cfg(target_arch = "x86_64")]
mod direct;
pub(crate) mod fused;
mod gemm;
pub(crate) mod linear;
pub(crate) mod pool;
mod scratch;
#[cfg(target_arch = "x86_64")]
mod winners;

use rayon::prelude::*;

/// Work below this many multiply-adds (or values visited) runs on the calling thread: handing
/// it to the thread pool and waiting for the pool costs more than the second thread saves
/// (measured on the Xeon: one image through the default CNN is about twice as fast serial).
const PARALLEL_MACS: usize = 1 << 22;

#[cfg(test)]
thread_local! {
    /// The threshold [`parallel`] uses on this thread (tests lower it to 0 to run the parallel
    /// paths on small tensors).
    static PARALLEL_FROM: std::cell::Cell<usize> = const { std::cell::Cell::new(PARALLEL_MACS) };
}

/// Whether work of `macs` multiply-adds is worth spreading over the threads.
fn parallel(macs: usize) -> bool {
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
fn image_tasks(n: usize, chw: usize, gx: &mut [f32]) -> (usize, Vec<(usize, &mut [f32])>) {
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
fn for_each_chunk(
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
fn for_each_output_chunk(
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
