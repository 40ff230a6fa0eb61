//! The element-wise kernels compiled twice: for the build's target (x86-64-v3: AVX2 and
//! FMA, 8 lanes) and for AVX-512 (16 lanes), picked at run time.

/// Runs `f` compiled for AVX-512 when this CPU has it (checked once), else as built.
/// `f` and what it calls must be inlined into it to be compiled for the wider vectors:
/// mark the closure itself `#[inline(always)]` (`widest(#[inline(always)] || ..)`), and
/// the functions it calls. Without the mark LLVM leaves a large closure out of line, and
/// it runs as built (found 2026-12-07: every kernel here had run without AVX-512).
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU was checked to have every feature `avx512` is compiled for.
        #[allow(unsafe_code)]
        return unsafe { avx512(f) };
    }
    f()
}

/// Whether this CPU runs [`widest`]'s closures with AVX-512.
#[cfg(not(target_arch = "x86_64"))]
pub fn has_avx512() -> bool {
    false
}

/// Whether this CPU runs [`widest`]'s closures with AVX-512 (checked once).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
