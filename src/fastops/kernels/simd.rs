//! Run-time choice of instruction set for the kernels that are not matrix products (gemm
//! chooses its own): the same Rust code compiled three times, for AVX-512, for AVX2 + FMA and
//! for the x86-64 baseline (SSE2), and run as the best one this CPU has, so that one binary
//! is fast on every x86-64 CPU and correct on all of them. Other architectures run the
//! baseline build.

/// Which build of a `multiversion!` function runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX-512 (F).
    Avx512,
    /// AVX2 and FMA.
    Avx2,
    /// The target's baseline.
    Baseline,
}

/// The best [`Level`] this CPU has; `NETCALC_SIMD=avx2|baseline` caps it (to test and time
/// the other paths on a CPU that has AVX-512).
pub(crate) fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("NETCALC_SIMD").unwrap_or_default();
        detected(&cap)
    })
}

fn detected(cap: &str) -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        let avx512 = avx2 && std::arch::is_x86_feature_detected!("avx512f");
        match cap {
            "baseline" => Level::Baseline,
            "avx2" if avx2 => Level::Avx2,
            _ if avx512 => Level::Avx512,
            _ if avx2 => Level::Avx2,
            _ => Level::Baseline,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = cap;
        Level::Baseline
    }
}

/// Defines `fn name(args) -> R { body }` three times, for AVX-512, for AVX2 + FMA and for the
/// baseline, and a function `name` that runs the best one for [`level`]. The functions the body
/// calls must be `#[inline(always)]` to be compiled for each instruction set too.
///
/// `multiversion! { avx512 = path; fn … }` calls `path` (an `unsafe fn` with the same
/// arguments, written with AVX-512 intrinsics) on AVX-512 instead of compiling the body for it.
macro_rules! multiversion {
    (@build { $($avx512_item:item)* } $avx512:path;
     $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            $($avx512_item)*
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            match $crate::fastops::kernels::simd::level() {
                // SAFETY: `level` returns these only when the CPU has the features.
                $crate::fastops::kernels::simd::Level::Avx512 => return unsafe { $avx512($($arg),*) },
                $crate::fastops::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::fastops::kernels::simd::Level::Baseline => {}
            }
            body($($arg),*)
        }
    };
    (avx512 = $fast:path; $($function:tt)*) => {
        $crate::fastops::kernels::simd::multiversion! { @build {} $fast; $($function)* }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $crate::fastops::kernels::simd::multiversion! {
            @build {
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
            } avx512;
            $(#[$meta])* $vis fn $name($($arg: $ty),*) $(-> $ret)? $body
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::{Level, detected};

    #[test]
    fn the_cap_only_lowers_the_level() {
        let best = detected("");
        assert_eq!(detected("baseline"), Level::Baseline);
        let capped = detected("avx2");
        assert!(capped == best || (best == Level::Avx512 && capped == Level::Avx2));
        assert_eq!(detected("nonsense"), best);
    }
}
