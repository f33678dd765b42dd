//! Claims: one writer per output. A writer claims its output when it is created and gives
//! it back when committed or dropped, so two writers of one output in a process fail.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::error::StorageError;

thread_local! {
    static WRITER_NAME: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Names the writers this thread creates from now on (`node "save"`), for the message when
/// two writers claim one output. The executor calls it on each node thread.
pub fn set_writer_name(name: impl Into<String>) {
    WRITER_NAME.with(|n| *n.borrow_mut() = Some(name.into()));
}

fn claims() -> &'static Mutex<HashMap<String, String>> {
    static CLAIMS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    CLAIMS.get_or_init(Default::default)
}

/// An output claimed by a writer until it is committed or dropped.
#[derive(Default)]
pub(super) struct Claim {
    key: Option<String>,
}

impl Claim {
    /// Claims `key` (the output as the process knows it) for `location`'s writer.
    pub(super) fn take(key: String, location: &str) -> Result<Claim, StorageError> {
        let me = WRITER_NAME
            .with(|n| n.borrow().clone())
            .unwrap_or_else(|| "another writer".to_string());
        let mut map = claims().lock();
        if let Some(first) = map.get(&key) {
            let first = if *first == me {
                format!("{me} (twice)")
            } else {
                first.clone()
            };
            return Err(StorageError::Conflict {
                location: location.to_string(),
                first,
                second: me,
            });
        }
        map.insert(key.clone(), me);
        Ok(Claim { key: Some(key) })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            claims().lock().remove(&k);
        }
    }
}
