//! Leftovers of processes that no longer run: finding and removing them.
//!
//! A run that is killed outright (SIGKILL, a power cut) cannot clean up after itself, so
//! everything it leaves is marked with the process that made it: its id and its start time
//! (the pair tells a dead process from a live one that got the same id later).
//!
//! - temporary outputs: `.<name>.<pid>-<start>-<n>.sluice-tmp`, beside the target;
//! - previous versions kept aside during a commit: `.<name>.<pid>-<start>-<n>.sluice-old`;
//! - spill folders: `sluice-spill-<pid>-<start>-<random>` in the spill base folder.
//!
//! [`clean_folder`] and [`clean_spill_base`] remove those of processes that are gone (a
//! `.sluice-old` whose target is missing is put back, since it is the only copy). Writers
//! clean the folder of their target once per process; the executor cleans the spill base
//! folder when a run starts; `sluice clean` does both on demand.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// Suffix of a temporary output.
pub(crate) const TEMP_SUFFIX: &str = ".sluice-tmp";
/// Suffix of a previous version kept aside while outputs are committed.
pub(crate) const ASIDE_SUFFIX: &str = ".sluice-old";
/// Prefix of a spill folder.
pub const SPILL_PREFIX: &str = "sluice-spill-";

/// When process `pid` started, in a unit that is stable for the life of the process (clock
/// ticks since boot on Linux, seconds since the epoch elsewhere).
enum Started {
    At(u64),
    /// No such process.
    NotRunning,
    /// The process table cannot be read: assume it runs.
    Unknown,
}

fn process_start(pid: u32) -> Started {
    #[cfg(target_os = "linux")]
    {
        if Path::new("/proc/self/stat").exists() {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return Started::NotRunning;
            };
            // The command name is in parentheses and may hold spaces: count from the last ')'.
            // Field 22 of stat is the start time; fields after the name start at field 3.
            let start = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(19))
                .and_then(|f| f.parse().ok());
            return start.map_or(Started::Unknown, Started::At);
        }
    }
    let Ok(mut sys) = sysinfo::System::new() else {
        return Started::Unknown;
    };
    let spid = sysinfo::Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[spid]),
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    sys.process(spid)
        .map_or(Started::NotRunning, |p| Started::At(p.start_time()))
}

/// `<pid>-<start>` of this process.
pub fn owner_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let pid = std::process::id();
        let start = match process_start(pid) {
            Started::At(s) => s,
            _ => 0,
        };
        format!("{pid}-{start}")
    })
}

/// Whether the process named by a `<pid>-<start>` token no longer runs.
fn is_dead(pid: u32, start: u64) -> bool {
    if pid == std::process::id() {
        return owner_token() != format!("{pid}-{start}");
    }
    match process_start(pid) {
        Started::NotRunning => true,
        Started::Unknown => false,
        // Start times in seconds computed from the boot time may wobble by one.
        Started::At(s) if cfg!(target_os = "linux") => s != start,
        Started::At(s) => s.abs_diff(start) > 1,
    }
}

/// Reads `<pid>-<start>` at the front of `token` (anything after a third `-` is ignored).
fn parse_token(token: &str) -> Option<(u32, u64)> {
    let mut it = token.split('-');
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    Some((pid, start))
}

/// The name of a temporary output (or, with [`ASIDE_SUFFIX`], of a copy kept aside) for the
/// file `name`, unique in this process by `n`.
pub(crate) fn marked_name(name: &str, n: u64, suffix: &str) -> String {
    format!(".{name}.{}-{n:x}{suffix}", owner_token())
}

/// For a marked name, the target's name and the maker's `(pid, start)`.
fn parse_marked<'a>(file_name: &'a str, suffix: &str) -> Option<(&'a str, u32, u64)> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(suffix)?;
    let (name, token) = inner.rsplit_once('.')?;
    let (pid, start) = parse_token(token)?;
    (!name.is_empty()).then_some((name, pid, start))
}

/// One thing [`clean_folder`] or [`clean_spill_base`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// The file or folder removed (or put back).
    pub path: PathBuf,
    /// What was done, in words (`removed temporary output of process 123`).
    pub what: String,
}

impl std::fmt::Display for Cleaned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// Removes, in `dir`, the temporary outputs of processes that no longer run, and settles
/// their copies kept aside (removed when the target exists, put back when it is missing).
/// Other files are not touched. A folder that cannot be read gives nothing.
pub fn clean_folder(dir: &Path) -> Vec<Cleaned> {
    let mut done = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return done;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let path = e.path();
        if let Some((_, pid, start)) = parse_marked(file_name, TEMP_SUFFIX) {
            if is_dead(pid, start) && std::fs::remove_file(&path).is_ok() {
                done.push(Cleaned {
                    path,
                    what: format!("removed the temporary output of process {pid}"),
                });
            }
        } else if let Some((name, pid, start)) = parse_marked(file_name, ASIDE_SUFFIX)
            && is_dead(pid, start)
        {
            let target = dir.join(name);
            if std::fs::symlink_metadata(&target).is_ok() {
                if std::fs::remove_file(&path).is_ok() {
                    done.push(Cleaned {
                        path,
                        what: format!(
                            "removed the previous version of {name} kept aside by process {pid}"
                        ),
                    });
                }
            } else if std::fs::rename(&path, &target).is_ok() {
                done.push(Cleaned {
                    path: target,
                    what: format!(
                        "put back the previous version kept aside by process {pid} (it was \
                         killed while committing)"
                    ),
                });
            }
        }
    }
    done.sort_by(|a, b| a.path.cmp(&b.path));
    done
}

/// [`clean_folder`] once per folder per process (writers call it beside their target).
pub(crate) fn clean_folder_once(dir: &Path) {
    static SEEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let first = SEEN
        .get_or_init(Default::default)
        .lock()
        .insert(dir.to_path_buf());
    if first {
        clean_folder(dir);
    }
}

/// Removes, in `base`, the spill folders of processes that no longer run.
pub fn clean_spill_base(base: &Path) -> Vec<Cleaned> {
    let mut done = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else {
        return done;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(token) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(SPILL_PREFIX))
        else {
            continue;
        };
        let Some((pid, start)) = parse_token(token) else {
            continue;
        };
        let path = e.path();
        if is_dead(pid, start)
            && e.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(&path).is_ok()
        {
            done.push(Cleaned {
                path,
                what: format!("removed the spill folder of process {pid}"),
            });
        }
    }
    done.sort_by(|a, b| a.path.cmp(&b.path));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that does not run: above the largest Linux pid_max.
    const DEAD: u32 = 4_194_304 + 17;

    #[test]
    fn names_round_trip_and_this_process_is_alive() {
        let name = marked_name("a.b.csv", 10, TEMP_SUFFIX);
        let (target, pid, start) = parse_marked(&name, TEMP_SUFFIX).unwrap();
        assert_eq!(target, "a.b.csv");
        assert_eq!(pid, std::process::id());
        assert!(!is_dead(pid, start));
        assert!(is_dead(pid, start + 1));
        assert!(is_dead(DEAD, 5));
        assert!(parse_marked(".x.csv.sluice-tmp", TEMP_SUFFIX).is_none());
        assert!(parse_marked("x.csv", TEMP_SUFFIX).is_none());
    }

    #[test]
    fn dead_processes_leftovers_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dead_tmp = format!(".a.csv.{DEAD}-5-0{TEMP_SUFFIX}");
        let live_tmp = marked_name("b.csv", 0, TEMP_SUFFIX);
        let dead_old_with_target = format!(".c.csv.{DEAD}-5-1{ASIDE_SUFFIX}");
        let dead_old_alone = format!(".d.csv.{DEAD}-5-2{ASIDE_SUFFIX}");
        for n in [
            &dead_tmp,
            &live_tmp,
            &dead_old_with_target,
            &dead_old_alone,
            &"c.csv".to_string(),
            &"keep.csv".to_string(),
        ] {
            std::fs::write(d.join(n), n).unwrap();
        }
        let done = clean_folder(d);
        assert_eq!(done.len(), 3, "{done:?}");
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![
            "c.csv".to_string(),
            "d.csv".to_string(),
            "keep.csv".to_string(),
            live_tmp,
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            std::fs::read_to_string(d.join("d.csv")).unwrap(),
            dead_old_alone
        );

        let spill_dead = d.join(format!("{SPILL_PREFIX}{DEAD}-5-xyz"));
        let spill_live = d.join(format!("{SPILL_PREFIX}{}-abc", owner_token()));
        for s in [&spill_dead, &spill_live] {
            std::fs::create_dir(s).unwrap();
            std::fs::write(s.join("run-0.parquet"), "x").unwrap();
        }
        let done = clean_spill_base(d);
        assert_eq!(done.len(), 1);
        assert!(!spill_dead.exists());
        assert!(spill_live.exists());
    }
}
