//! A counter of deep copies, so tests can prove that forwarding copies nothing.
//!
//! Compiled only with the `testing` feature (and in this crate's own tests); in other builds
//! [`record`] is an empty inline function.

#[cfg(any(test, feature = "testing"))]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    static DEEP_COPIES: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn record() {
        DEEP_COPIES.fetch_add(1, Ordering::Relaxed);
    }

    /// Deep copies of attributes or geometry made since the process started.
    pub fn deep_copies() -> u64 {
        DEEP_COPIES.load(Ordering::Relaxed)
    }
}

#[cfg(not(any(test, feature = "testing")))]
mod imp {
    #[inline(always)]
    pub(crate) fn record() {}
}

pub(crate) use imp::record;

#[cfg(any(test, feature = "testing"))]
pub use imp::deep_copies;
