//! Journals: what a reader has already fetched, kept on disk so that a run that was killed
//! can resume without fetching it again (`sluice run --job-dir DIR --resume`).
//!
//! With [`RunOptions::journal`](crate::executor::RunOptions::journal) set, every node gets
//! a folder of its own under `DIR/journal/` (named after the node id), reached through
//! [`NodeContext::journal`](crate::NodeContext::journal). A reader that supports resuming
//! stores each completed unit of work (a page of an API, say) there under a key of its
//! choosing, and on resume replays the stored units instead of fetching them again, so
//! that it yields the same features in the same order as an uninterrupted run.
//!
//! ```text
//!   DIR/journal/<node>/
//!     fingerprint          what the node's parameters were (resume refuses a mismatch)
//!     <key>                one completed unit, written to a temporary name, fsynced and
//!     <key>                renamed: a unit is either whole or absent, never half-written
//!     .tmp-<key>-<pid>     a unit being written (left behind by a crash, ignored, removed
//!                          when the node opens its journal again)
//! ```
//!
//! Without `--resume` a node's journal is emptied when it opens it, so a fresh run never
//! replays an older run's pages. With `--resume`, a journal written for other parameters
//! (its fingerprint differs) is refused with an error naming the folder, rather than
//! mixing two runs' data.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ActionError;

/// The file holding the fingerprint of the parameters a journal was written for.
pub const FINGERPRINT: &str = "fingerprint";

/// Where journals go, and whether a run resumes from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// The job folder: journals go to `DIR/journal/<node>/`.
    pub dir: PathBuf,
    /// Replay what the journals hold (`--resume`); otherwise they are emptied first.
    pub resume: bool,
}

impl JournalOptions {
    /// Journals under `dir` (a job folder); `resume` replays what they hold.
    pub fn new(dir: impl Into<PathBuf>, resume: bool) -> JournalOptions {
        JournalOptions {
            dir: dir.into(),
            resume,
        }
    }

    /// The journal folder of node `node_id` (the id made safe as a file name: characters
    /// other than letters, digits, `-` and `_` become `_`, followed by a short hash of the
    /// id so that two ids never share a folder).
    pub fn node_dir(&self, node_id: &str) -> PathBuf {
        let safe: String = node_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = node_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        self.dir
            .join("journal")
            .join(format!("{safe}-{:08x}", hash as u32))
    }

    /// Opens node `node_id`'s journal for parameters whose fingerprint is `fingerprint`:
    /// emptied (a fresh run), or kept when resuming with the same fingerprint.
    pub fn open(&self, node_id: &str, fingerprint: &str) -> Result<Journal, ActionError> {
        let dir = self.node_dir(node_id);
        let io = |what: &str, e: std::io::Error| {
            ActionError::io(format!("{what} journal {}", dir.display()), e)
        };
        let mut resumed = false;
        if dir.exists() {
            if self.resume {
                let found = std::fs::read_to_string(dir.join(FINGERPRINT)).unwrap_or_default();
                if found != fingerprint {
                    return Err(ActionError::Other(
                        format!(
                            "--resume: the journal {} was written for other parameters of node \
                             \"{node_id}\"; run without --resume to start over",
                            dir.display()
                        )
                        .into(),
                    ));
                }
                resumed = true;
            } else {
                std::fs::remove_dir_all(&dir).map_err(|e| io("emptying", e))?;
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| io("creating", e))?;
        let journal = Journal { dir, resumed };
        if resumed {
            journal.remove_temporaries();
        } else {
            journal.write_atomic(FINGERPRINT, fingerprint.as_bytes())?;
        }
        Ok(journal)
    }
}

/// One node's journal: completed units of work by key. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    resumed: bool,
}

impl Journal {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this journal was kept from an earlier run (`--resume`).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The file of the completed unit `key`, if it was recorded.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        let path = self.path(key).ok()?;
        path.is_file().then_some(path)
    }

    /// Where unit `key` lands once recorded (a key is letters, digits, `-`, `_` and `.`).
    pub fn path(&self, key: &str) -> Result<PathBuf, ActionError> {
        let ok = !key.is_empty()
            && !key.starts_with('.')
            && key != FINGERPRINT
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(self.dir.join(key))
        } else {
            Err(ActionError::Other(
                format!("journal key {key:?}: use letters, digits, '-', '_' and '.'").into(),
            ))
        }
    }

    /// A temporary file for unit `key`, to fill and then [`Journal::commit`].
    pub fn temp(&self, key: &str) -> Result<(PathBuf, File), ActionError> {
        self.path(key)?;
        let path = self.dir.join(format!(".tmp-{key}-{}", std::process::id()));
        let file = File::create(&path)
            .map_err(|e| ActionError::io(format!("creating {}", path.display()), e))?;
        Ok((path, file))
    }

    /// Records unit `key` from a filled temporary file: synced to disk, renamed into place,
    /// and the folder synced, so that after a crash the unit is whole or absent.
    pub fn commit(&self, key: &str, temp: &Path, file: File) -> Result<PathBuf, ActionError> {
        let target = self.path(key)?;
        file.sync_all()
            .map_err(|e| ActionError::io(format!("syncing {}", temp.display()), e))?;
        drop(file);
        std::fs::rename(temp, &target)
            .map_err(|e| ActionError::io(format!("recording {}", target.display()), e))?;
        self.sync_dir();
        Ok(target)
    }

    /// Records unit `key` with `bytes` as its content (see [`Journal::commit`]).
    pub fn write_atomic(&self, key: &str, bytes: &[u8]) -> Result<PathBuf, ActionError> {
        let (temp, mut file) = if key == FINGERPRINT {
            let path = self.dir.join(format!(".tmp-{key}-{}", std::process::id()));
            let file = File::create(&path)
                .map_err(|e| ActionError::io(format!("creating {}", path.display()), e))?;
            (path, file)
        } else {
            self.temp(key)?
        };
        file.write_all(bytes)
            .map_err(|e| ActionError::io(format!("writing {}", temp.display()), e))?;
        if key == FINGERPRINT {
            file.sync_all()
                .map_err(|e| ActionError::io(format!("syncing {}", temp.display()), e))?;
            drop(file);
            let target = self.dir.join(FINGERPRINT);
            std::fs::rename(&temp, &target)
                .map_err(|e| ActionError::io(format!("recording {}", target.display()), e))?;
            self.sync_dir();
            return Ok(target);
        }
        self.commit(key, &temp, file)
    }

    /// Syncs the folder, so that a rename in it survives a crash (best effort: not every
    /// file system can sync a folder).
    fn sync_dir(&self) {
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }

    /// Removes the temporary files a killed run left.
    fn remove_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_run_empties_and_a_resume_keeps_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = JournalOptions::new(dir.path(), false);
        let j = fresh.open("read/a b", "p1").unwrap();
        assert!(!j.resumed());
        j.write_atomic("page-0", b"zero").unwrap();
        let (temp, mut f) = j.temp("page-1").unwrap();
        f.write_all(b"one").unwrap();
        // A crash here leaves the temporary file: not a recorded unit.
        drop(f);
        assert_eq!(j.get("page-1"), None);

        let resume = JournalOptions::new(dir.path(), true);
        let j2 = resume.open("read/a b", "p1").unwrap();
        assert!(j2.resumed());
        assert_eq!(
            std::fs::read(j2.get("page-0").unwrap()).unwrap(),
            b"zero".to_vec()
        );
        assert!(!temp.exists(), "temporaries of a killed run are removed");

        let err = resume.open("read/a b", "p2").unwrap_err().to_string();
        assert!(err.contains("other parameters"), "{err}");

        let j3 = fresh.open("read/a b", "p2").unwrap();
        assert_eq!(j3.get("page-0"), None, "a fresh run starts empty");
        assert_ne!(fresh.node_dir("a/b"), fresh.node_dir("a_b"));
    }

    #[test]
    fn keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let j = JournalOptions::new(dir.path(), false)
            .open("n", "f")
            .unwrap();
        assert!(j.path("../x").is_err());
        assert!(j.path(".hidden").is_err());
        assert!(j.path(FINGERPRINT).is_err());
        assert!(j.path("c0-p12.json").is_ok());
    }
}
