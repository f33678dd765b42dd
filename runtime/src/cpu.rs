//! CPU time of the calling thread, for the per-node busy time of run reports.

/// Nanoseconds of CPU the calling thread has used (user and system), or 0 where the
/// platform cannot say.
pub fn thread_cpu_ns() -> u64 {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        (t.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    /// A thread's CPU clock advances with work it does and not while it sleeps on a
    /// channel.
    #[cfg(unix)]
    #[test]
    fn the_thread_clock_counts_work_not_waiting() {
        let start = super::thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let worked = super::thread_cpu_ns() - start;
        assert!(worked > 1_000_000, "20 M steps took {worked} ns of CPU");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            let t = std::time::Instant::now();
            // Busy on the other thread for a while, then release the receiver.
            while t.elapsed() < std::time::Duration::from_millis(200) {
                std::hint::spin_loop();
            }
            let _ = tx.send(());
        });
        let before = super::thread_cpu_ns();
        rx.recv().unwrap();
        let waited = super::thread_cpu_ns() - before;
        sender.join().unwrap();
        assert!(
            waited < 50_000_000,
            "waiting 200 ms took {waited} ns of CPU"
        );
    }
}
