//! Background fill of randomly read objects: once a handle reads an object at random, the rest
//! of it is downloaded into the read cache in large ranges, so that later reads of any range
//! cost no request. Each random read is still served by its own small fetch meanwhile (the fill
//! never delays a read), and reads answer from the cache as soon as a range has landed.
//!
//! Who gets filled: objects of at most `read_fill_max` bytes that also fit in half the read
//! cache (a fill must not evict itself or flush everything else). A 256 MiB file read at random
//! is worth fetching whole: on a fast link, a few 4 MiB GETs beat hundreds of 128 KiB ones. A
//! 100 GiB object is not: it keeps block-sized fetches only.
//!
//! Bounds: one fill per key (`Fills::active`); `FILL_PARALLEL` ranges of `FILL_RANGE` bytes in
//! flight across all fills together (`Fills::slots`), so the memory is at most 16 MiB. A fill
//! stops when its handle's reader is dropped (the file closed, or the object changed under it:
//! the task is aborted), when a GET answers another ETag, on any error, and when the cache
//! declines a range (low disk space, or evicted at once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Fs;
use crate::store::ObjectStore;

/// Bytes of one fill GET (a multiple of any read block, 4K..64M, that divides it; others are
/// rounded up to a whole block).
const FILL_RANGE: u64 = 4 << 20;
/// Fill GETs in flight, all fills together.
const FILL_PARALLEL: usize = 4;

/// The running fills.
pub(crate) struct Fills {
    /// Keys being filled. Leaf lock.
    active: Mutex<HashSet<String>>,
    /// Fill GETs in flight, all fills together.
    slots: Arc<Semaphore>,
}

impl Default for Fills {
    fn default() -> Self {
        Fills {
            active: Mutex::default(),
            slots: Arc::new(Semaphore::new(FILL_PARALLEL)),
        }
    }
}

impl Fills {
    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fill's claim on its key; dropped with the task (also when aborted), it frees the key.
struct Claim {
    /// The filesystem (weak: a fill never keeps it alive).
    fs: Weak<Fs>,
    /// The key filled.
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.upgrade() {
            fs.fills.active().remove(&self.key);
        }
    }
}

impl Fs {
    /// Starts filling `key` at `etag` (`size` bytes) into the read cache, unless it is too
    /// large, already being filled, or already cached. The caller aborts the task to cancel it.
    pub(crate) fn start_fill(&self, key: &str, etag: &str, size: u64) -> Option<JoinHandle<()>> {
        let cap = self.cfg.read_fill_max.min(self.readcache.limit() / 2);
        if size == 0 || size > cap || self.readcache.contains(key, etag, 0..size) {
            return None;
        }
        if !self.fills.active().insert(key.to_string()) {
            return None;
        }
        let claim = Claim {
            fs: self.me.clone(),
            key: key.to_string(),
        };
        let store = self.store.clone();
        let etag = etag.to_string();
        let block = self.readcache.chunk();
        log::debug!("{key}: random reads; filling its {size} bytes into the read cache");
        Some(tokio::spawn(async move {
            let range = FILL_RANGE.div_ceil(block) * block;
            fill(&claim, store, &etag, size, range).await;
            drop(claim);
        }))
    }
}

/// Downloads the uncached ranges of `claim.key` at `etag` into the read cache.
async fn fill(claim: &Claim, store: Arc<dyn ObjectStore>, etag: &str, size: u64, range: u64) {
    let key = claim.key.as_str();
    let gets = stream::iter(0..size.div_ceil(range))
        .map(|i| {
            let store = store.clone();
            let fs = claim.fs.clone();
            async move {
                let r = i * range..((i + 1) * range).min(size);
                let slots = {
                    let fs = fs.upgrade()?;
                    if fs.readcache.contains(key, etag, r.clone()) {
                        return Some(true);
                    }
                    fs.fills.slots.clone()
                };
                let _slot = slots.acquire_owned().await.ok()?;
                let g = match store.get_object(key, Some(r.clone())).await {
                    Ok(g) => g,
                    Err(e) => {
                        log::debug!("{key}: fill stops: {e}");
                        return Some(false);
                    }
                };
                if g.etag.trim_matches('"') != etag {
                    log::debug!("{key}: fill stops: the object changed");
                    return Some(false);
                }
                // On the blocking pool: `put` may wait for the cache's writer thread.
                let (fs, k, e) = (fs.upgrade()?, key.to_string(), etag.to_string());
                let put = move || fs.readcache.put(&k, &e, r.start, &g.data, g.total_size);
                tokio::task::spawn_blocking(put).await.ok()
            }
        })
        .buffer_unordered(FILL_PARALLEL);
    futures::pin_mut!(gets);
    // Bounded by the object's ranges; the first refusal ends it (in-flight GETs are dropped).
    while let Some(ok) = gets.next().await {
        if ok != Some(true) {
            log::debug!("{key}: fill ends early");
            return;
        }
    }
    log::debug!("{key}: fill done");
}
