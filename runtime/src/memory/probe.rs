//! Probes of the process and the machine: resident memory and total memory.

/// Resident set size of this process in bytes (0 if it cannot be read).
pub fn current_rss() -> u64 {
    #[cfg(target_os = "linux")]
    {
        if let Ok(s) = std::fs::read_to_string("/proc/self/statm")
            && let Some(pages) = s
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        {
            return pages * 4096;
        }
    }
    let pid = match sysinfo::get_current_pid() {
        Ok(p) => p,
        Err(_) => return 0,
    };
    let Ok(mut sys) = sysinfo::System::new() else {
        return 0;
    };
    sys.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
    sys.process(pid).map_or(0, |p| p.memory())
}

/// Total memory of the machine in bytes.
pub fn total_memory() -> u64 {
    let Ok(mut sys) = sysinfo::System::new() else {
        return 0;
    };
    sys.refresh_memory();
    sys.total_memory()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_read() {
        assert!(super::current_rss() > 0);
    }
}
