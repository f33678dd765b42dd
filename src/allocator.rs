//! The process's allocator and how it is tuned.

/// mimalloc: features are allocated on reader threads and freed on sink threads; mimalloc is
/// fast at such cross-thread frees and, tuned by [`tune_allocator`], gives freed memory back
/// to the OS at once under a memory limit (after 50 ms without one), so resident memory
/// follows what the run really holds (when it was
/// chosen, W1 at 64 MB peaked at about 83 MiB RSS against about 98 MiB with glibc's
/// allocator; with transparent huge pages off and the memory plan, W1 at 64 MB now peaks at
/// about 60 MiB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_e`, the same in its v2 and v3 headers).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// `mi_option_allow_thp` (v3, the version built). Transparent huge pages make each node
/// thread's small pages 2 MiB of resident memory (a 200-node chain at 64 MB: about 160 MB
/// peak RSS with them, about 43 MB without). The option only stops later `madvise` calls; the
/// arena mimalloc made before `main` is covered by `PR_SET_THP_DISABLE`.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: std::ffi::c_int = 41;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}

/// How long freed memory stays with the process, in milliseconds, before it goes back to the
/// OS, when the run has no memory limit of its own: long enough that memory freed by one
/// batch is reused by the next without being faulted in and zeroed again (that was about a
/// seventh of W1's CPU with immediate purging), short enough that resident memory still
/// follows what the run holds.
pub const RELAXED_PURGE_DELAY_MS: std::ffi::c_long = 50;

/// Purge freed memory immediately and commit arena memory only when used.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // SAFETY: `mi_option_set` stores a plain option value; it has no pointer arguments and is
    // called first thing in `main`, before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, purge_delay_ms());
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
        // Plain integer arguments (all five: the kernel refuses non-zero unused ones);
        // failure (an old kernel) leaves THP as it was.
        #[cfg(target_os = "linux")]
        {
            let zero: std::ffi::c_ulong = 0;
            prctl(PR_SET_THP_DISABLE, 1 as std::ffi::c_ulong, zero, zero, zero);
        }
    }
}

/// The purge delay for this process: immediate when the command line sets a memory limit
/// (`--memory-limit`), so resident memory stays inside it, else
/// [`RELAXED_PURGE_DELAY_MS`]. Read from the arguments, since the allocator is tuned before
/// they are parsed (and before any thread starts).
fn purge_delay_ms() -> std::ffi::c_long {
    let limited = std::env::args_os().any(|a| {
        a.to_str()
            .is_some_and(|a| a == "--memory-limit" || a.starts_with("--memory-limit="))
    });
    if limited { 0 } else { RELAXED_PURGE_DELAY_MS }
}
