//! The gradient all-reduce alone, as training calls it (netcalc's `MpiGroup`): the time to sum
//! a buffer of the `cnn`'s gradient size (225,034 parameters + 3 values) over every rank, in
//! one call and split into buckets. Needs the `mpi` feature and mpirun:
//!
//! ```text
//! cargo build --release --features mpi --example allreduce
//! mpirun -np 2 target/release/examples/allreduce [FLOATS [REPEATS]]
//! ```
//!
//! Rank 0 prints, per bucket count, the median time of one step's all-reduce, the bytes each
//! rank sends in a ring all-reduce (2(N−1)/N of the buffer) and the bandwidth that implies.

use netcalc::app::distributed::{Collective, MpiGroup};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let floats: usize = args.next().map_or(Ok(225_037), |a| a.parse())?;
    let repeats: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let mut group = MpiGroup::init()?;
    let n = group.size();
    let mut buf: Vec<f32> = (0..floats).map(|i| (i % 7) as f32).collect();
    if group.rank() == 0 {
        println!(
            "{n} ranks, {floats} floats ({:.2} MB) per step, {repeats} steps per row",
            floats as f64 * 4e-6
        );
        println!("buckets   median ms   min ms   sent per rank   implied GB/s");
    }
    for buckets in [1, 4, 16, 64] {
        group = group.with_buckets(buckets);
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats + 10 {
            let start = std::time::Instant::now();
            group.sum_in_place(&mut buf);
            times.push(start.elapsed().as_secs_f64());
            // keep the values finite and the same on every rank
            buf.iter_mut().for_each(|v| *v /= n as f32);
        }
        // every rank's times, the slowest rank's counted: the step waits for it
        let mut worst: Vec<f64> = times[10..]
            .iter()
            .map(|t| {
                let all = group.gather(t.to_bits());
                all.into_iter().map(f64::from_bits).fold(0.0, f64::max)
            })
            .collect();
        worst.sort_by(f64::total_cmp);
        let median = worst[worst.len() / 2];
        let sent = 2.0 * (n as f64 - 1.0) / n as f64 * floats as f64 * 4.0;
        if group.rank() == 0 {
            println!(
                "{buckets:>7}   {:>9.3}   {:>6.3}   {:>10.2} MB   {:>12.2}",
                1e3 * median,
                1e3 * worst[0],
                sent * 1e-6,
                sent / median * 1e-9
            );
        }
    }
    Ok(())
}
