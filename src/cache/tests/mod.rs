//! Tests of the upload queue against `MemoryStore`: uploads (PUT and parallel multipart),
//! superseding, waiting, pause/restart/cancel, retries, failures, drain, pending views, and
//! crash recovery with and without conflicts. Synchronisation is by store gates and by polling
//! the queue with bounded deadlines, never by sleeping.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::upload::{Durability, Handover};
use super::*;
use crate::store::{MemoryStore, ObjectStore, PutOptions, StoreError};

const PART: u64 = 64 * 1024;

fn cfg() -> UploadConfig {
    UploadConfig {
        part_size: PART,
        multipart_threshold: 2 * PART,
        part_parallelism: 3,
        max_concurrent_uploads: 2,
        // Small, so tests of self-healing take milliseconds.
        retry_initial: Duration::from_millis(1),
        retry_max_delay: Duration::from_millis(5),
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn staged(cache: &CacheDir, bytes: &[u8]) -> PathBuf {
    let (path, _f) = cache.new_staging_file().unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

struct Fx {
    _dir: tempfile::TempDir,
    cache: Arc<CacheDir>,
    store: Arc<MemoryStore>,
    q: Arc<UploadQueue>,
}

fn fixture(cfg: UploadConfig) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::open(&dir.path().join("cache")).unwrap();
    let store = MemoryStore::new();
    store.set_min_part_size(1);
    let q = UploadQueue::new(store.clone(), cache.clone(), cfg);
    Fx {
        _dir: dir,
        cache,
        store,
        q,
    }
}

impl Fx {
    fn put(&self, key: &str, bytes: &[u8]) -> (TaskId, PathBuf) {
        let path = staged(&self.cache, bytes);
        let id = self
            .q
            .enqueue(Handover::durable(
                key,
                path.clone(),
                bytes.len() as u64,
                PutOptions::default(),
                None,
            ))
            .unwrap();
        (id, path)
    }

    fn info(&self, id: TaskId) -> Option<TaskInfo> {
        self.q.list().into_iter().find(|t| t.id == id)
    }

    fn journaled(&self) -> usize {
        self.cache.journal().live_files().len()
    }
}

/// Files in the staging directory besides untaken spares (anything here is a leak).
fn staging_left(cache: &CacheDir) -> Vec<PathBuf> {
    std::fs::read_dir(cache.staging_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !cache.is_untaken_spare(p))
        .collect()
}

/// Polls `cond` until true; false after a 10 s deadline.
async fn until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// `wait_key` with a deadline, so a bug fails the test instead of hanging it.
async fn wait_key(q: &UploadQueue, key: &str) -> Result<(), StoreError> {
    tokio::time::timeout(Duration::from_secs(10), q.wait_key(key))
        .await
        .expect("wait_key timed out")
}

async fn drain(q: &UploadQueue) {
    tokio::time::timeout(Duration::from_secs(10), q.drain())
        .await
        .expect("drain timed out")
}

fn unavailable() -> StoreError {
    StoreError::Unavailable {
        status: 503,
        code: "SlowDown".into(),
        message: "slow down".into(),
        request_id: "r1".into(),
    }
}

/// Runs `f` on a fresh runtime that is dropped afterwards: dropping it kills the workers like a
/// crashed daemon (nothing drains, nothing is cleaned up), and releases the cache lock.
pub(super) fn on_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(f);
    drop(rt);
    out
}

mod control;
mod early;
mod edges;
mod pending;
mod recovery;
mod retries;
mod uploads;
