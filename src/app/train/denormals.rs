//! Subnormal ("denormal") floats flushed to zero while training, as TensorFlow does on the
//! CPU. Adam's moments of a parameter whose gradient has become zero or tiny decay by β₁ or
//! β₂ per step into the subnormal range (below 1.2·10⁻³⁸), where x86 CPUs take a slow
//! microcode path for every operation on them: late in the default MNIST run, burn's
//! element-wise optimizer ops on such values were a quarter of the run's time. With the
//! flush-to-zero and denormals-are-zero bits of MXCSR set, those values are 0 and the ops run
//! at full speed; nothing above 1.2·10⁻³⁸ changes.
//!
//! [`super::train`] holds a [`FlushDenormals`] for the whole run unless
//! `NETCALC_DENORMALS=keep`. Rust's documentation counts changing MXCSR as undefined
//! behaviour, because LLVM assumes the default floating-point environment: code compiled
//! under that assumption can give subnormal results where the CPU would flush (constant
//! folding), which is the same tiny difference the flag makes anyway; the guard changes
//! nothing else. Other architectures: a no-op.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Guards alive in the process; the rayon pool's threads flush while it is above zero.
/// No lock is held across the broadcasts to the pool (a pool thread waiting for a lock could
/// not run them); instead each pool thread looks at the count when the broadcast reaches it.
static GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Taken by the unit tests that hold guards (training runs) and by the one that checks that
/// the pool is back as before once no guard lives: they share the process, and a guard held by
/// one would otherwise be seen by the other.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

std::thread_local! {
    /// A pool thread's MXCSR from before it started flushing; `None` while it does not.
    static POOL_SAVED: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// Has every pool thread follow the count, after a guard took it from 0 to 1 or from 1 to 0:
/// flush while a guard lives, else go back to the setting from before. Each such broadcast
/// starts after its change of the count, so whichever runs last on a thread sees the latest.
fn pool_follows_the_count() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    rayon::broadcast(|_| {
        let flushing = GUARDS.load(Ordering::SeqCst) > 0;
        POOL_SAVED.with(|saved| match (flushing, saved.get()) {
            (true, None) => {
                let v = mxcsr();
                saved.set(Some(v));
                set_mxcsr(v | FTZ_DAZ);
            }
            (false, Some(v)) => {
                saved.set(None);
                set_mxcsr(v);
            }
            _ => {}
        });
    });
}

/// This thread's MXCSR (0 where there is none).
#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: `stmxcsr` stores the 4-byte register at the address given, a live `u32`. It
    // only reads MXCSR and changes none of the flags `preserves_flags` covers on x86 (EFLAGS'
    // status flags, the x87 status word, MXCSR's exception flags PE, UE, OE, ZE, DE, IE).
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    v
}

#[cfg(not(target_arch = "x86_64"))]
fn mxcsr() -> u32 {
    0
}

/// Sets this thread's MXCSR (nothing where there is none).
#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: `ldmxcsr` loads the register from a live `u32`; callers change only the FTZ and
    // DAZ bits of a value read from the register (no reserved bit is set). The block is not
    // `preserves_flags`: on x86 that option promises (Rust reference, inline assembly) that
    // MXCSR's exception flags (PE, UE, OE, ZE, DE, IE) come out unchanged, and loading the
    // whole register replaces them with those of `v`, read earlier. EFLAGS is left alone.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly)) };
}

#[cfg(not(target_arch = "x86_64"))]
fn set_mxcsr(_: u32) {}

/// While alive: subnormal inputs read as zero and subnormal results are zero, on the thread
/// that made it and on the threads of rayon's global pool (where burn's and netcalc's CPU
/// kernels run). Dropping it restores this thread's previous setting, and the pool's when
/// the last guard in the process goes; guards nest and may live on several threads at once.
///
/// # Examples
/// ```
/// use netcalc::app::train::FlushDenormals;
/// let tiny = std::hint::black_box(1e-38f32);
/// {
///     let _flush = FlushDenormals::new();
///     # #[cfg(target_arch = "x86_64")]
///     assert_eq!(tiny * std::hint::black_box(0.5), 0.0); // would be 5e-39, subnormal
/// }
/// assert!(tiny * std::hint::black_box(0.5) > 0.0);
/// ```
#[must_use = "denormals are flushed only while the guard lives"]
pub struct FlushDenormals {
    /// This thread's MXCSR before the guard.
    saved: u32,
    /// Not `Send`: the guard restores the thread that made it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl FlushDenormals {
    /// Flushes denormals on this thread and the pool's until dropped.
    pub fn new() -> Self {
        if GUARDS.fetch_add(1, Ordering::SeqCst) == 0 {
            pool_follows_the_count();
        }
        let saved = mxcsr();
        set_mxcsr(saved | FTZ_DAZ);
        Self {
            saved,
            _not_send: std::marker::PhantomData,
        }
    }

    /// A guard unless `NETCALC_DENORMALS` is `keep` (unset or `flush`: a guard); any other
    /// value is an error naming the variable.
    pub fn unless_kept() -> Result<Option<Self>> {
        match std::env::var("NETCALC_DENORMALS").as_deref() {
            Err(_) | Ok("flush") => Ok(Some(Self::new())),
            Ok("keep") => Ok(None),
            Ok(other) => Err(Error::setting(
                "NETCALC_DENORMALS",
                format!("must be `flush` or `keep`, got `{other}`"),
            )),
        }
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        set_mxcsr(self.saved);
        if GUARDS.fetch_sub(1, Ordering::SeqCst) == 1 {
            pool_follows_the_count();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FlushDenormals;

    /// `x · 0.5` for the subnormal-making `x = 1e-38`, as the CPU computes it.
    fn half_of_tiny() -> f32 {
        std::hint::black_box(1e-38f32) * std::hint::black_box(0.5f32)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn flushes_here_and_on_the_pool_while_alive_and_restores_this_thread() {
        let _alone = super::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = half_of_tiny();
        assert!(before > 0.0 && before < f32::MIN_POSITIVE, "{before}");
        {
            let _outer = FlushDenormals::new();
            {
                let _inner = FlushDenormals::new();
                assert_eq!(half_of_tiny(), 0.0);
            }
            // the outer guard still holds, here and on every pool thread
            assert_eq!(half_of_tiny(), 0.0);
            let pool: Vec<f32> = rayon::broadcast(|_| half_of_tiny());
            assert!(pool.iter().all(|&v| v == 0.0), "{pool:?}");
            // a subnormal input reads as zero too
            let sub = std::hint::black_box(f32::MIN_POSITIVE / 4.0);
            assert_eq!(sub * std::hint::black_box(4.0f32), 0.0);
        }
        assert_eq!(half_of_tiny(), before);

        // guards starting and ending at once on several threads, some of them the pool's own:
        // while any lives the pool flushes, and after the last it is back as before
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for _ in 0..200 {
                        if t % 2 == 0 {
                            let _g = FlushDenormals::new();
                            assert_eq!(half_of_tiny(), 0.0);
                        } else {
                            rayon::in_place_scope(|_| {
                                let _g = FlushDenormals::new();
                                assert_eq!(half_of_tiny(), 0.0);
                            });
                            rayon::join(
                                || {
                                    let _g = FlushDenormals::new();
                                    assert_eq!(half_of_tiny(), 0.0);
                                },
                                || {},
                            );
                        }
                    }
                    assert_eq!(half_of_tiny(), before);
                });
            }
        });
        let pool: Vec<f32> = rayon::broadcast(|_| half_of_tiny());
        assert!(pool.iter().all(|&v| v == before), "{pool:?}");
    }
}
