//! Run-time choice of instruction set for the kernels that are not matrix products (gemm
//! chooses its own): the same Rust code compiled three times, for AVX-512, for AVX2 + FMA and
//! for the x86-64 baseline (SSE2), and run as the best one this CPU has, so that one binary
//! is fast on every x86-64 CPU and correct on all of them. Other architectures run the
//! baseline build. AVX-512 is also a type, [`Avx512`]: the proof that this CPU has it, which
//! every AVX-512 function of the kernels takes.

// Other architectures run the baseline build only: nothing reads the level there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

/// Which build of a `multiversion!` function runs on this CPU, from the lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// The target's baseline.
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 (F).
    Avx512,
}

/// Proof that this CPU has every instruction set the AVX-512 kernels use (AVX-512F, and AVX2
/// and FMA, which the `multiversion!` builds enable with it) and that `NETCALC_SIMD` does not
/// cap the kernels below AVX-512 (compare pulp's `x86::V4`).
///
/// Zero-sized, so passing it costs nothing. Only [`Avx512::try_new`] makes one, after run-time
/// detection: every AVX-512 function of the kernels takes one, so a safe function cannot reach
/// AVX-512 code without it, and the `unsafe` call of a `#[target_feature]` function is sound
/// wherever a token is at hand.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx512 {
    _detected: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// The token, if this CPU has AVX-512F, AVX2 and FMA (detected at run time) and
    /// `NETCALC_SIMD` allows AVX-512 ([`level`]).
    #[inline]
    pub(crate) fn try_new() -> Option<Self> {
        let allowed = level() == Level::Avx512;
        let detected = allowed
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        detected.then_some(Self { _detected: () })
    }
}

/// The environment variable that caps the level.
const SIMD_ENV: &str = "NETCALC_SIMD";

/// The best [`Level`] this CPU has; `NETCALC_SIMD=avx2|baseline` caps it (to test and time
/// the other paths on a CPU that has AVX-512). Any other value is ignored with a warning on
/// standard error, once.
pub(crate) fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let value = std::env::var(SIMD_ENV).unwrap_or_default();
        let cap = parse_cap(&value).unwrap_or_else(|warning| {
            eprintln!("netcalc: warning: {warning}");
            None
        });
        detected(cap)
    })
}

/// What `NETCALC_SIMD` asks for: nothing (empty), a cap, or a warning for a value it does not
/// know.
fn parse_cap(value: &str) -> Result<Option<Level>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "avx512" => Ok(Some(Level::Avx512)),
        "avx2" => Ok(Some(Level::Avx2)),
        "baseline" => Ok(Some(Level::Baseline)),
        _ => Err(format!(
            "{SIMD_ENV}={value:?} is not one of avx512, avx2, baseline; ignored (the kernels use the best this CPU has)"
        )),
    }
}

/// The best level this CPU has, at most `cap`.
fn detected(cap: Option<Level>) -> Level {
    #[cfg(target_arch = "x86_64")]
    let best = {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        let avx512 = avx2 && std::arch::is_x86_feature_detected!("avx512f");
        if avx512 {
            Level::Avx512
        } else if avx2 {
            Level::Avx2
        } else {
            Level::Baseline
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let best = Level::Baseline;
    match cap {
        Some(cap) => best.min(cap),
        None => best,
    }
}

/// Defines `fn name(args) -> R { body }` three times, for AVX-512, for AVX2 + FMA and for the
/// baseline, and a function `name` that runs the best one for [`level`]. The functions the body
/// calls must be `#[inline(always)]` to be compiled for each instruction set too.
///
/// On AVX-512 the function runs only with the [`Avx512`] token in hand. `multiversion! { avx512 = path; fn … }` calls `path` there (a `#[target_feature]`
/// function taking the token and then the same arguments, written with AVX-512 intrinsics)
/// instead of compiling the body for AVX-512.
macro_rules! multiversion {
    (@build { $($avx512_item:item)* } $avx512:path;
     $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            $($avx512_item)*
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(token) = $crate::kernels::cpu::simd::Avx512::try_new() {
                // SAFETY: the `Avx512` token proves detection.
                return unsafe { $avx512(token, $($arg),*) };
            } else if $crate::kernels::cpu::simd::level() == $crate::kernels::cpu::simd::Level::Avx2 {
                // SAFETY: `level` returns `Avx2` only when the CPU has AVX2 and FMA.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
    (avx512 = $fast:path; $($function:tt)*) => {
        $crate::kernels::cpu::simd::multiversion! { @build {} $fast; $($function)* }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $crate::kernels::cpu::simd::multiversion! {
            @build {
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512(_: $crate::kernels::cpu::simd::Avx512, $($arg: $ty),*) $(-> $ret)? {
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
    use super::{Level, detected, parse_cap};

    #[test]
    fn the_cap_only_lowers_the_level() {
        let best = detected(None);
        assert_eq!(detected(Some(Level::Baseline)), Level::Baseline);
        assert_eq!(detected(Some(Level::Avx2)), best.min(Level::Avx2));
        assert_eq!(detected(Some(Level::Avx512)), best);
    }

    #[test]
    fn unknown_values_are_a_warning_not_a_silent_default() {
        assert_eq!(parse_cap(""), Ok(None));
        assert_eq!(parse_cap("AVX2"), Ok(Some(Level::Avx2)));
        assert_eq!(parse_cap(" baseline "), Ok(Some(Level::Baseline)));
        assert_eq!(parse_cap("avx512"), Ok(Some(Level::Avx512)));
        let warning = parse_cap("nonsense").unwrap_err();
        assert!(
            warning.contains(
                "NETCALC_SIMD=\"nonsense\" is not one of avx512, avx2, baseline; ignored"
            ),
            "{warning}"
        );
    }
}
