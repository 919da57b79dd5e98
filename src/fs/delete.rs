//! Batched deletes: `unlink` and `rmdir` record the key and return; keys go to COS in DELETE
//! Multiple Objects requests of at most 1000 keys — when 1000 are waiting, when no unlink came
//! for `delete_delay`, when an `rmdir` removes a directory that contained removed directories
//! (the way up of `rm -r`: so the tree is gone from COS when `rm -r` returns), before a
//! directory rename touching them, and at shutdown. So `rm -r` of 1 500 files spread over
//! subdirectories costs two requests and no single DELETEs (issue 3). A flat directory's keys
//! leave COS `delete_delay` after its rmdir.
//!
//! While a key waits, the fs treats it as gone (lookups and listings hide it); creating the same
//! key again takes it out of the batch first, so a late delete never removes new data.
//! Every waiting key is journaled (`cache::intents`) until its DELETE is answered, so a daemon
//! crash does not bring deleted files back: the next mount sends the deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::uploads::{Intent, Uploads};
use super::Fs;

/// Most keys in one DELETE Multiple Objects request (COS limit).
pub const DELETE_BATCH_MAX: usize = 1000;

/// Keys waiting for deletion. Leaf lock.
pub struct DeleteBatch {
    /// The keys, ordered, with their journal intent ids.
    keys: Mutex<BTreeMap<String, u64>>,
    /// Keys taken for a DELETE Multiple still in flight: still "gone" for lookups and
    /// listings (COS may list them until the request is answered).
    inflight: Mutex<BTreeSet<String>>,
    /// Bumped when a DELETE Multiple in flight is answered (see `wait_inflight_under`).
    landed: tokio::sync::watch::Sender<u64>,
    /// Where the intents are journaled.
    journal: Arc<dyn Uploads>,
    /// Bumped by each unlink; a debounce timer fires only if it is unchanged.
    generation: AtomicU64,
    /// Bumped by listings while keys wait (`rm -r` reading the next directory it empties):
    /// the timer waits another round.
    touches: AtomicU64,
    /// Marker keys (`dir/`) of directories removed while their keys wait here: hidden from
    /// listings, and an rmdir above one of them flushes the batch (see `Fs::rmdir`).
    removed_dirs: Mutex<BTreeSet<String>>,
}

impl DeleteBatch {
    /// An empty batch journaling through `journal`.
    pub fn new(journal: Arc<dyn Uploads>) -> DeleteBatch {
        DeleteBatch {
            keys: Mutex::default(),
            inflight: Mutex::default(),
            landed: tokio::sync::watch::channel(0).0,
            journal,
            generation: AtomicU64::new(0),
            touches: AtomicU64::new(0),
            removed_dirs: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the batch open a little longer while keys wait (a listing: `rm -r` is reading the
    /// next directory it will empty), so one `rm -r` stays one or two requests.
    pub fn touch(&self) {
        if !self.lock().is_empty() {
            self.touches.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// True while `key` waits for deletion.
    pub fn contains(&self, key: &str) -> bool {
        self.lock().contains_key(key) || self.flying().contains(key)
    }

    fn flying(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `key` out of the batch (it is being written again).
    pub fn cancel(&self, key: &str) {
        let id = self.lock().remove(key);
        if let Some(id) = id {
            self.journal.intent_end(id);
        }
    }

    /// Adds `key` (journaled); returns the number waiting.
    fn add(&self, key: String) -> usize {
        if self.contains(&key) {
            return self.lock().len();
        }
        let id = self
            .journal
            .intent_begin(Intent::Delete { key: key.clone() });
        let mut g = self.lock();
        g.insert(key, id);
        g.len()
    }

    fn dirs(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.removed_dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that directory `key` (`a/b/`) was removed with its deletes still waiting.
    pub fn mark_dir_removed(&self, key: &str) {
        self.dirs().insert(key.to_string());
    }

    /// True when directory `key` was removed and its deletes still wait.
    pub fn dir_removed(&self, key: &str) -> bool {
        self.dirs().contains(key)
    }

    /// True when a directory strictly under `key` was removed and its deletes still wait.
    pub fn has_removed_under(&self, key: &str) -> bool {
        self.dirs()
            .range(key.to_string()..)
            .take_while(|k| k.starts_with(key))
            .any(|k| k != key)
    }

    /// Directory `key` exists again (mkdir).
    pub fn unmark_dir(&self, key: &str) {
        self.dirs().remove(key);
    }

    /// Directory `key` and everything under it exist again (a directory renamed onto it).
    pub fn unmark_tree(&self, key: &str) {
        self.dirs().retain(|k| !k.starts_with(key));
    }

    fn take(&self, prefix: Option<&str>) -> Vec<(String, u64)> {
        {
            let mut d = self.dirs();
            match prefix {
                None => d.clear(),
                Some(p) => d.retain(|k| !k.starts_with(p)),
            }
        }
        let mut g = self.lock();
        let taken: Vec<(String, u64)> = match prefix {
            None => std::mem::take(&mut *g).into_iter().collect(),
            Some(p) => {
                let taken: Vec<(String, u64)> = g
                    .range(p.to_string()..)
                    .take_while(|(k, _)| k.starts_with(p))
                    .map(|(k, id)| (k.clone(), *id))
                    .collect();
                for (k, _) in &taken {
                    g.remove(k);
                }
                taken
            }
        };
        // Marked in flight before the batch lock goes, so no look-up sees them in neither.
        self.flying().extend(taken.iter().map(|(k, _)| k.clone()));
        drop(g);
        taken
    }
}

impl Fs {
    /// Queues `key` for a batched delete (see module doc).
    pub(crate) async fn queue_delete(&self, key: String) {
        // Its metadata goes with it (a directory of the same name later must not inherit it).
        self.metadb.remove(&key);
        let full = self.deletes.add(key) >= DELETE_BATCH_MAX;
        let generation = self.deletes.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if full {
            self.flush_deletes().await;
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let delay = self.cfg.delete_delay;
        tokio::spawn(async move {
            // Debounced, but bounded: keys never wait more than about ten delays.
            let mut touches = me.deletes.touches.load(Ordering::SeqCst);
            for _ in 0..10 {
                tokio::time::sleep(delay).await;
                if me.deletes.generation.load(Ordering::SeqCst) != generation {
                    return; // a later unlink's timer takes over
                }
                let now = me.deletes.touches.load(Ordering::SeqCst);
                if now == touches {
                    break;
                }
                touches = now;
            }
            me.flush_deletes().await;
        });
    }

    /// Sends every waiting delete now.
    pub async fn flush_deletes(&self) {
        let keys = self.deletes.take(None);
        self.send_journaled(keys).await;
    }

    /// Sends taken keys, then ends their intents (a failed batch stays journaled for the next
    /// mount).
    async fn send_journaled(&self, keys: Vec<(String, u64)>) {
        if keys.is_empty() {
            return;
        }
        let (names, ids): (Vec<String>, Vec<u64>) = keys.into_iter().unzip();
        let sent = self.send_deletes(names.clone()).await;
        {
            let mut f = self.deletes.flying();
            for n in &names {
                f.remove(n);
            }
        }
        self.deletes.landed.send_modify(|v| *v = v.wrapping_add(1));
        if sent {
            for id in ids {
                self.deletes.journal.intent_end(id);
            }
        }
    }

    /// Sends the waiting deletes of keys under `prefix` now, and waits for those another task
    /// already has in flight (so COS has none of them when this returns).
    pub(crate) async fn flush_deletes_under(&self, prefix: &str) {
        let keys = self.deletes.take(Some(prefix));
        self.send_journaled(keys).await;
        let mut rx = self.deletes.landed.subscribe();
        // Bounded: each in-flight request is bounded by the store's deadline.
        for _ in 0..1000 {
            let busy = self
                .deletes
                .flying()
                .range(prefix.to_string()..)
                .next()
                .is_some_and(|k| k.starts_with(prefix));
            if !busy || rx.changed().await.is_err() {
                break;
            }
        }
    }

    /// DELETE Multiple in batches of ≤ 1000; failures are logged (the unlink already
    /// succeeded for the caller), transient ones retried. True when every batch was answered.
    pub(crate) async fn send_deletes(&self, keys: Vec<String>) -> bool {
        let mut all = true;
        // A control character would not survive an XML body (CR becomes LF when parsed):
        // such keys are deleted one by one, their names URL-encoded.
        let (controls, keys): (Vec<String>, Vec<String>) = keys
            .into_iter()
            .partition(|k| k.chars().any(char::is_control));
        for k in controls {
            if let Err(e) = self.store.delete_object(&k).await {
                log::error!("delete of {k:?} failed: {e}");
                all = false;
            }
        }
        for chunk in keys.chunks(DELETE_BATCH_MAX) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.store.delete_objects(chunk).await {
                    Ok(failed) => {
                        for f in failed {
                            log::error!("delete of {} failed: {}: {}", f.key, f.code, f.message);
                        }
                        break;
                    }
                    Err(e) if e.is_transient() && attempt < 3 => {
                        log::warn!("DELETE Multiple of {} keys: {e}; retrying", chunk.len());
                    }
                    Err(e) => {
                        log::error!(
                            "DELETE Multiple of {} keys failed: {e}; first key {:?}",
                            chunk.len(),
                            chunk.first()
                        );
                        all = false;
                        break;
                    }
                }
            }
        }
        all
    }
}
