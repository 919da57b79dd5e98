//! Empty staging files made ahead of need by a short-lived background thread, so that creating
//! a file on the mount costs no inode creation on its path: on a slow disk that is most of a
//! create's time, and `tar x` or `cp -r` of many small files waits for it once per file.
//!
//! A spare is an empty file named like any staging file of this instance. One left behind by a
//! crash is empty, so the next mount's orphan scan deletes it; dropping the pool deletes the
//! spares it still holds.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::staging::{create_numbered, lock};

/// A refill starts when fewer spares than this are left.
const LOW: usize = 16;
/// A refill stops at this many spares.
const HIGH: usize = 64;

/// State shared with the refill thread.
struct Pool {
    /// The staging directory.
    dir: PathBuf,
    /// Name prefix of this instance's staging files (`SESSION-`).
    prefix: String,
    /// Counter for unique spare names.
    counter: AtomicU64,
    /// Ready spares.
    files: Mutex<Vec<(PathBuf, File)>>,
    /// A refill thread is running.
    refilling: AtomicBool,
    /// The pool was dropped: the refill thread deletes what it makes and stops.
    closed: AtomicBool,
}

/// The pool of spare staging files (see the module doc).
pub(crate) struct Spares {
    /// Shared with the refill thread.
    pool: Arc<Pool>,
}

impl Spares {
    /// A pool making spares in `dir`, named `PREFIX-sN`; empty until the first `take`.
    pub fn new(dir: PathBuf, prefix: &str) -> Spares {
        Spares {
            pool: Arc::new(Pool {
                dir,
                prefix: format!("{prefix}-s"),
                counter: AtomicU64::new(0),
                files: Mutex::new(Vec::new()),
                refilling: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// A ready spare, if any; starts a refill when few are left. None: the caller creates
    /// the file itself (and so meets any error, a full disk say, on its own path).
    pub fn take(&self) -> Option<(PathBuf, File)> {
        let (spare, left) = {
            let mut files = lock(&self.pool.files);
            let spare = files.pop();
            (spare, files.len())
        };
        if left < LOW && !self.pool.refilling.swap(true, Ordering::AcqRel) {
            let pool = self.pool.clone();
            let started = std::thread::Builder::new()
                .name("cosfuse-spares".into())
                .spawn(move || refill(&pool));
            if started.is_err() {
                self.pool.refilling.store(false, Ordering::Release);
            }
        }
        spare
    }
}

#[cfg(test)]
impl Spares {
    /// True when `path` is one of this pool's spares by name (taken or not).
    pub fn is_spare(&self, path: &std::path::Path) -> bool {
        path.parent() == Some(self.pool.dir.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&self.pool.prefix))
    }
}

/// Makes spares up to `HIGH`; stops at the first error (the next `take` tries again).
fn refill(pool: &Pool) {
    while !pool.closed.load(Ordering::Acquire) && lock(&pool.files).len() < HIGH {
        match create_numbered(&pool.dir, &pool.prefix, &pool.counter) {
            Ok(spare) => lock(&pool.files).push(spare),
            Err(e) => {
                log::debug!("spare staging file in {}: {e}", pool.dir.display());
                break;
            }
        }
    }
    pool.refilling.store(false, Ordering::Release);
    if pool.closed.load(Ordering::Acquire) {
        remove_all(pool);
    }
}

/// Deletes the spares the pool holds.
fn remove_all(pool: &Pool) {
    for (path, _) in lock(&pool.files).drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

impl std::fmt::Debug for Spares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spares")
            .field("ready", &lock(&self.pool.files).len())
            .finish()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.pool.closed.store(true, Ordering::Release);
        remove_all(&self.pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_are_made_ahead_taken_once_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::new(dir.path().to_path_buf(), "sess");
        assert!(spares.take().is_none(), "empty until the first take");
        let mut got = Vec::new();
        // The refill thread started by the first take makes them; bounded polling.
        for _ in 0..10_000 {
            if let Some((p, _)) = spares.take() {
                got.push(p);
                if got.len() == 3 {
                    break;
                }
            } else {
                std::thread::yield_now();
            }
        }
        assert_eq!(got.len(), 3, "no spares were made");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 3, "a spare was handed out twice");
        for p in &got {
            assert!(p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sess-s"));
            assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
        }
        drop(spares);
        // What the pool held is gone (a refill still running when the pool was dropped
        // deletes what it makes as it stops); the taken ones belong to their takers.
        let others = || -> Vec<PathBuf> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| !got.contains(p))
                .collect()
        };
        let gone = (0..100_000).any(|_| {
            std::thread::yield_now();
            others().is_empty()
        });
        let left = others();
        assert!(gone, "spares left behind: {left:?}");
    }
}
