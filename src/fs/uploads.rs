//! The fs core's view of the upload queue: the `Uploads` trait (the subset of
//! `cache::upload::UploadQueue` + `cache::staging::CacheDir` the core calls, per
//! /work/wt/API-upload.md) and `ManualUploads`, a deterministic implementation for tests that
//! uploads only when waited on.
//!
//! Keeping the core behind this trait lets it compile and be tested before (and independently
//! of) the real queue; `Fs::new` takes any `Arc<impl Uploads>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

pub use crate::cache::task::{Durability, Handover};
use crate::store::{ObjectStore, PutOptions, StoreError};

/// A pending (not yet uploaded) local copy of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The staging file holding the data.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Metadata the upload will send.
    pub opts: PutOptions,
}

/// A namespace change journaled until COS has carried it out (`cache::intents`), so a crash
/// neither resurrects a deleted name nor loses a renamed one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// `key` is to be deleted.
    Delete {
        /// The key.
        key: String,
    },
    /// `from` is to become `to` (copy when `copy`, else the upload journal has `to`'s
    /// bytes), then `from` is deleted.
    Rename {
        /// Old key.
        from: String,
        /// New key.
        to: String,
        /// Whether COS must copy `from` to `to`.
        copy: bool,
    },
    /// Every key under prefix `from` is to move under prefix `to`.
    RenameDir {
        /// Old prefix (`a/`).
        from: String,
        /// New prefix (`b/`).
        to: String,
    },
}

/// Staging files and the upload queue, as the fs core uses them.
#[async_trait::async_trait]
pub trait Uploads: Send + Sync + 'static {
    /// A new empty staging file (read-write) and its path.
    fn new_staging_file(&self) -> std::io::Result<(PathBuf, std::fs::File)>;
    /// A new staging file labelled with the key it is for (so crash recovery can name it).
    fn new_staging_file_for(&self, key: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
        let (path, file) = self.new_staging_file()?;
        crate::cache::label::set(&file, key);
        Ok((path, file))
    }
    /// Hands a finished staging file to the queue (which now owns it). `Durability::Lazy` and
    /// `Held` let the implementation leave it undurable until [`Uploads::persist`]; an early
    /// upload is continued when it fits (an implementation without them may drop it, which
    /// aborts it).
    fn enqueue(&self, h: Handover) -> std::io::Result<u64>;
    /// Makes the uploads of `key` handed over as `Durability::Lazy` or `Held` durable (the wait for
    /// them ended without the object in COS). Blocking I/O. The default has nothing to do.
    fn persist(&self, _key: &str) -> std::io::Result<()> {
        Ok(())
    }
    /// The size from which a sequentially written file starts an early multipart upload
    /// (`cache::early`); None: never (the default).
    fn early_start_size(&self) -> Option<u64> {
        None
    }
    /// Starts an early multipart upload of a staging file still being written (None: not
    /// started; the default).
    fn start_early(
        &self,
        _key: &str,
        _path: PathBuf,
        _file: Arc<std::fs::File>,
        _opts: &PutOptions,
        _written_end: u64,
    ) -> Option<crate::cache::early::EarlyUpload> {
        None
    }
    /// Waits until every upload of `key` enqueued so far is done, its last steps included
    /// (an operation that changes the object next must not be overtaken by them).
    async fn wait_key(&self, key: &str) -> Result<(), StoreError>;
    /// Waits until the data of every upload of `key` enqueued so far is in COS (fsync,
    /// close). The default waits for the whole upload.
    async fn wait_landed(&self, key: &str) -> Result<(), StoreError> {
        self.wait_key(key).await
    }
    /// The newest pending local copy of `key`.
    fn pending(&self, key: &str) -> Option<PendingUpload>;
    /// Keys with pending uploads under `prefix`.
    fn pending_under(&self, prefix: &str) -> Vec<(String, PendingUpload)>;
    /// Changes the metadata a pending upload will send; false when nothing is pending.
    fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool;
    /// Cancels pending uploads of `key` and deletes their files (unlink).
    fn discard(&self, key: &str);
    /// Re-targets queued (not running) uploads of `from` to `to` (rename of a pending file);
    /// false when nothing was moved. The default moves nothing (rename then waits and copies).
    fn retarget(&self, _from: &str, _to: &str) -> bool {
        false
    }
    /// Journals a namespace change; returns its id for [`Uploads::intent_end`]. The default
    /// journals nothing (id 0).
    fn intent_begin(&self, _intent: Intent) -> u64 {
        0
    }
    /// Ends a journaled namespace change.
    fn intent_end(&self, _id: u64) {}
    /// Gives the queue the persistent metadata cache, so a finished upload is remembered by
    /// its ETag (the default forgets).
    fn attach_metadb(&self, _db: Arc<crate::cache::metadb::MetaDb>) {}
}

/// Test implementation: `enqueue` only records; `wait_key`/[`ManualUploads::upload_all`] PUT.
pub struct ManualUploads {
    /// Where uploads go.
    store: Arc<dyn ObjectStore>,
    /// Directory for staging files (a test's temporary directory).
    dir: PathBuf,
    /// Pending uploads by key (newest last).
    pending: Mutex<BTreeMap<String, PendingUpload>>,
    /// Counter for unique staging names.
    next: Mutex<u64>,
}

impl ManualUploads {
    /// Uploads to `store`, staging files under `dir` (which must exist).
    pub fn new(store: Arc<dyn ObjectStore>, dir: PathBuf) -> Arc<ManualUploads> {
        Arc::new(ManualUploads {
            store,
            dir,
            pending: Mutex::default(),
            next: Mutex::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PendingUpload>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Uploads every pending file.
    pub async fn upload_all(&self) -> Result<(), StoreError> {
        let keys: Vec<String> = self.lock().keys().cloned().collect();
        for k in keys {
            self.wait_key(&k).await?;
        }
        Ok(())
    }

    /// Number of pending uploads.
    pub fn pending_count(&self) -> usize {
        self.lock().len()
    }
}

#[async_trait::async_trait]
impl Uploads for ManualUploads {
    fn new_staging_file(&self) -> std::io::Result<(PathBuf, std::fs::File)> {
        let n = {
            let mut g = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let path = self.dir.join(format!("staging-{n}"));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, f))
    }

    fn enqueue(&self, h: Handover) -> std::io::Result<u64> {
        // No durability to defer, no multipart: an early upload is dropped (aborted).
        let old = self.lock().insert(
            h.key,
            PendingUpload {
                path: h.file,
                size: h.size,
                opts: h.opts,
            },
        );
        if let Some(o) = old {
            let _ = std::fs::remove_file(o.path);
        }
        Ok(0)
    }

    async fn wait_key(&self, key: &str) -> Result<(), StoreError> {
        let p = self.lock().get(key).cloned();
        if let Some(p) = p {
            let data = std::fs::read(&p.path)?;
            self.store
                .put_object(key, Bytes::from(data).into(), &p.opts)
                .await?;
            let mut g = self.lock();
            if g.get(key).map(|q| &q.path) == Some(&p.path) {
                g.remove(key);
                let _ = std::fs::remove_file(&p.path);
            }
        }
        Ok(())
    }

    fn pending(&self, key: &str) -> Option<PendingUpload> {
        self.lock().get(key).cloned()
    }

    fn pending_under(&self, prefix: &str) -> Vec<(String, PendingUpload)> {
        self.lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool {
        match self.lock().get_mut(key) {
            Some(p) => {
                f(&mut p.opts);
                true
            }
            None => false,
        }
    }

    fn discard(&self, key: &str) {
        if let Some(p) = self.lock().remove(key) {
            let _ = std::fs::remove_file(p.path);
        }
    }

    fn retarget(&self, from: &str, to: &str) -> bool {
        let mut g = self.lock();
        match g.remove(from) {
            Some(p) => {
                if let Some(old) = g.insert(to.to_string(), p) {
                    let _ = std::fs::remove_file(old.path);
                }
                true
            }
            None => false,
        }
    }
}

/// The real queue: `cache::upload::UploadQueue` with its `CacheDir` for staging files.
#[async_trait::async_trait]
impl Uploads for crate::cache::upload::UploadQueue {
    fn new_staging_file(&self) -> std::io::Result<(PathBuf, std::fs::File)> {
        self.cache_dir().new_staging_file()
    }

    fn enqueue(&self, h: Handover) -> std::io::Result<u64> {
        crate::cache::upload::UploadQueue::enqueue(self, h)
    }

    fn persist(&self, key: &str) -> std::io::Result<()> {
        crate::cache::upload::UploadQueue::persist(self, Some(key))
    }

    fn early_start_size(&self) -> Option<u64> {
        Some(crate::cache::upload::UploadQueue::early_start_size(self))
    }

    fn start_early(
        &self,
        key: &str,
        path: PathBuf,
        file: Arc<std::fs::File>,
        opts: &PutOptions,
        written_end: u64,
    ) -> Option<crate::cache::early::EarlyUpload> {
        crate::cache::upload::UploadQueue::start_early(self, key, path, file, opts, written_end)
    }

    async fn wait_key(&self, key: &str) -> Result<(), StoreError> {
        crate::cache::upload::UploadQueue::wait_key(self, key).await
    }

    async fn wait_landed(&self, key: &str) -> Result<(), StoreError> {
        crate::cache::upload::UploadQueue::wait_landed(self, key).await
    }

    fn pending(&self, key: &str) -> Option<PendingUpload> {
        crate::cache::upload::UploadQueue::pending(self, key).map(|p| PendingUpload {
            path: p.path,
            size: p.size,
            opts: p.opts,
        })
    }

    fn pending_under(&self, prefix: &str) -> Vec<(String, PendingUpload)> {
        crate::cache::upload::UploadQueue::pending_under(self, prefix)
            .into_iter()
            .map(|(k, p)| {
                (
                    k,
                    PendingUpload {
                        path: p.path,
                        size: p.size,
                        opts: p.opts,
                    },
                )
            })
            .collect()
    }

    fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool {
        crate::cache::upload::UploadQueue::update_pending_opts(self, key, f)
    }

    fn discard(&self, key: &str) {
        crate::cache::upload::UploadQueue::discard(self, key)
    }

    fn retarget(&self, from: &str, to: &str) -> bool {
        crate::cache::upload::UploadQueue::retarget(self, from, to)
    }

    fn intent_begin(&self, intent: Intent) -> u64 {
        match self.cache_dir().intents().begin(intent) {
            Ok(id) => id,
            Err(e) => {
                log::error!("namespace journal: could not record a change: {e}");
                0
            }
        }
    }

    fn attach_metadb(&self, db: Arc<crate::cache::metadb::MetaDb>) {
        *crate::cache::staging::lock(&self.inner.metadb) = Some(db);
    }

    fn intent_end(&self, id: u64) {
        if id != 0 {
            if let Err(e) = self.cache_dir().intents().end(id) {
                log::warn!("namespace journal: could not record the end of a change: {e}");
            }
        }
    }
}
