//! Runtime selection of AVX for the per-frame loops.
//!
//! A loop is written once as an `#[inline(always)]` function and [`multiversion!`] wraps it
//! twice: compiled for the baseline target and with AVX enabled, picked at run time. Rust
//! never contracts `a * b + c` into an FMA on its own, so both copies perform exactly the
//! same floating-point operations in the same order and give bit-identical results; AVX only
//! processes more lanes per instruction.

/// `multiversion!(pub fn name<T: Bound>(args) -> Ret => implementation);` (the type
/// parameter is optional).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$g:ident : $bound:path>)?
        ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty => $implementation:ident) => {
        $(#[$meta])*
        $vis fn $name $(<$g: $bound>)? ($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx")]
                unsafe fn with_avx $(<$g: $bound>)? ($($arg: $ty),*) -> $ret {
                    $implementation $(::<$g>)? ($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx") {
                    // SAFETY: the CPU supports AVX, checked just above.
                    return unsafe { with_avx $(::<$g>)? ($($arg),*) };
                }
            }
            $implementation $(::<$g>)? ($($arg),*)
        }
    };
}

pub(crate) use multiversion;
