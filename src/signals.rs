//! The signals that cancel a run, and the exit code of the one that did.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use sluice::runtime::CancelToken;

/// What was caught: 0 nothing (yet), else the exit code (128 + the signal number).
#[derive(Clone)]
pub struct Caught(Arc<AtomicU8>);

impl Caught {
    /// The exit code of a cancelled run: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
    pub fn exit_code(&self) -> u8 {
        match self.0.load(Ordering::SeqCst) {
            0 => 130,
            c => c,
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (so in every thread started after
/// it) and takes them on a thread of their own: the first cancels the run, a second one
/// ends the process at once (what it leaves is cleaned by the next run or `sluice clean`).
#[cfg(unix)]
pub fn catch(cancel: CancelToken) -> anyhow::Result<Caught> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()?;
    let caught = Caught(Arc::new(AtomicU8::new(0)));
    let c = caught.clone();
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                let code = 128 + sig as u8;
                if c.0.swap(code, Ordering::SeqCst) != 0 {
                    std::process::exit(i32::from(code));
                }
                cancel.cancel();
            }
        })?;
    Ok(caught)
}

/// Ctrl-C (and, with the crate's `termination` feature, termination) cancels the run.
#[cfg(not(unix))]
pub fn catch(cancel: CancelToken) -> anyhow::Result<Caught> {
    let caught = Caught(Arc::new(AtomicU8::new(0)));
    ctrlc::set_handler(move || cancel.cancel())?;
    Ok(caught)
}
