//! `UploadQueue`: the write-back upload queue. Owns staging files handed over by the fs core,
//! journals them before accepting, uploads them through the `ObjectStore` (PUT or parallel
//! multipart, see `worker.rs` / `multipart.rs`), and lets users watch and steer tasks
//! (list/pause/restart/cancel). Crash recovery lives in `recover.rs`.
//!
//! Invariants:
//! - a task's staging file is deleted only after COS acknowledged it (or the user discarded the
//!   file / a newer upload of the key superseded it; a user cancel moves it to the recovery dir);
//! - its journal entry is removed only after that, and was fsync'd before `enqueue` returned
//!   (a lazy task's, `Durability::Lazy`: within `LAZY_WINDOW`, unless COS has it by then);
//! - at most one worker uploads a given key at a time, oldest task first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::early::EarlyUpload;
use super::journal::{sync_dir, Base, Entry};
use super::staging::{lock, CacheDir};
pub use super::task::{
    Durability, Handover, PendingFile, RecoveryReport, TaskId, TaskInfo, TaskState, UploadConfig,
};
use super::task::{Outcome, Signal, Table, Task};
use crate::store::{ObjectStore, PutOptions};

/// How long a lazy task's data may rest in the page cache alone (safe from a daemon crash,
/// not from a power loss) before the queue fsyncs it, as a local file system commits its
/// journal every few seconds.
pub const LAZY_WINDOW: Duration = Duration::from_secs(1);

/// State shared by the queue handle and its workers.
pub(crate) struct Inner {
    /// Where uploads go.
    pub store: Arc<dyn ObjectStore>,
    /// Staging files and journal.
    pub cache: Arc<CacheDir>,
    /// Tunables.
    pub cfg: UploadConfig,
    /// Next task id / seq (both drawn from this counter; above every id in the journal).
    pub next_id: AtomicU64,
    /// The task table. Lock order: this first, then `cache.journal()`. Never held across
    /// `.await`.
    pub table: Mutex<Table>,
    /// Bumped after every change of the table; `wait_key`, `drain` and the queue's viewers
    /// watch it.
    pub changes: watch::Sender<u64>,
    /// Wakes one idle worker after a change of the table (`worker::worker_loop`). One, not
    /// all: with every worker watching `changes`, each change woke them all to scan the table
    /// for nothing, several times per small file closed.
    pub work: tokio::sync::Notify,
    /// Runtime for background cleanups started from sync methods.
    pub rt: Option<tokio::runtime::Handle>,
    /// Where a finished upload's metadata is remembered by its new ETag (set by the fs core),
    /// so later listings know it without a HEAD. Leaf lock.
    pub metadb: Mutex<Option<Arc<super::metadb::MetaDb>>>,
    /// Woken when a lazy task is journaled: the persister makes it durable after
    /// `LAZY_WINDOW` unless it landed.
    pub lazy: tokio::sync::Notify,
}

impl Inner {
    /// The task table (see the lock order on the field).
    pub fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Wakes everyone watching the table, and one idle worker.
    pub fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
        self.work.notify_one();
    }

    /// A fresh id/seq.
    pub fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Makes the lazy (not yet fsync'd) tasks of `key` durable: staging files, their directory,
    /// then the journal. `None`: every lazy task but the held ones (`Durability::Held`, whose
    /// waiter persists them by key). Blocking I/O. A task that finished meanwhile needs
    /// nothing (its staging file may be gone already).
    pub fn persist(&self, key: Option<&str>) -> std::io::Result<()> {
        let files: Vec<PathBuf> = {
            let mut table = self.table();
            table
                .tasks
                .values_mut()
                .filter(|t| t.lazy() && t.state != TaskState::Done)
                .filter(|t| key.map_or(t.durability != Durability::Held, |k| t.key == k))
                .map(|t| {
                    t.durability = Durability::Durable;
                    t.path.clone()
                })
                .collect()
        };
        if files.is_empty() {
            return Ok(());
        }
        let mut dirs = Vec::new();
        for f in &files {
            match std::fs::File::open(f) {
                Ok(h) => h.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            if let Some(d) = f.parent() {
                if !dirs.iter().any(|x: &PathBuf| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        self.cache.journal().sync()
    }

    /// Aborts multipart uploads in the background (best effort: a leftover upload only costs
    /// storage until the bucket's lifecycle rule cleans it).
    pub fn abort_later(&self, uploads: Vec<(String, String)>) {
        if uploads.is_empty() {
            return;
        }
        let Some(rt) = &self.rt else { return };
        let store = self.store.clone();
        rt.spawn(async move {
            for (key, id) in uploads {
                if let Err(e) = store.abort_multipart(&key, &id).await {
                    log::debug!("abort of multipart upload {id} of {key}: {e}");
                }
            }
        });
    }
}

/// True when a live task other than `except` still uses `path` (never delete it then).
pub(crate) fn file_in_use(table: &Table, path: &Path, except: TaskId) -> bool {
    // Cheap tests first, and the paths as bytes: every staging path is built the same way,
    // and `Path`'s component-wise equality was a visible cost of each finished upload.
    table.tasks.values().any(|t| {
        t.id != except
            && t.state != TaskState::Done
            && t.removed.is_none()
            && t.path.as_os_str() == path.as_os_str()
    })
}

/// Removes a staging file, logging (not failing) when that is impossible.
pub(crate) fn remove_file_logged(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("could not remove staging file {}: {e}", path.display());
        }
    }
}

/// What superseding older tasks of a key produced.
#[derive(Default)]
pub(crate) struct Superseded {
    /// Task ids removed (their journal entries must go).
    pub ids: Vec<TaskId>,
    /// Staging files to delete.
    pub files: Vec<PathBuf>,
    /// Multipart uploads to abort.
    pub aborts: Vec<(String, String)>,
    /// One of them was paused by the user (the newer task inherits the hold).
    pub paused: bool,
}

/// Replaces every not-running task of `key` (Queued, Paused, Waiting, Failed) by task `by`. A task a
/// worker is still finishing (pausing) is told to cancel and removed when the worker exits.
pub(crate) fn supersede(table: &mut Table, key: &str, by: TaskId, by_path: &Path) -> Superseded {
    let mut out = Superseded::default();
    let mut forget = Vec::new();
    for t in table.tasks.values_mut() {
        if t.key != key || t.id == by || t.removed.is_some() {
            continue;
        }
        if !matches!(
            t.state,
            TaskState::Queued
                | TaskState::Paused
                | TaskState::Waiting { .. }
                | TaskState::Failed { .. }
        ) {
            continue;
        }
        out.paused |= t.state == TaskState::Paused;
        out.ids.push(t.id);
        if t.path != by_path {
            out.files.push(t.path.clone());
        }
        out.aborts.append(&mut t.to_abort);
        if t.active {
            t.signal.send_replace(Signal::Cancel);
            t.removed = Some(Outcome::Superseded(by));
        } else {
            if let Some(p) = t.progress.take() {
                out.aborts.push((p.key, p.upload_id));
            }
            forget.push(t.id);
        }
    }
    for id in forget {
        table.forget(id, Outcome::Superseded(by));
    }
    out
}

/// Fsyncs lazy tasks that are still pending `LAZY_WINDOW` after they were journaled (one
/// pass for all that arrived meanwhile, off the runtime's workers).
async fn persist_loop(inner: Arc<Inner>) {
    loop {
        inner.lazy.notified().await;
        tokio::time::sleep(LAZY_WINDOW).await;
        let i = inner.clone();
        let done = tokio::task::spawn_blocking(move || i.persist(None)).await;
        if let Err(e) = done.map_err(std::io::Error::other).and_then(|r| r) {
            log::error!("could not make closed files durable: {e}");
        }
    }
}

/// The write-back upload queue (see the module doc).
pub struct UploadQueue {
    /// Shared state.
    pub(crate) inner: Arc<Inner>,
    /// Worker tasks; aborted when the queue is dropped.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for UploadQueue {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

impl UploadQueue {
    /// Starts worker tasks on the current tokio runtime.
    ///
    /// Called outside a runtime it logs an error and starts none (nothing would upload).
    pub fn new(store: Arc<dyn ObjectStore>, cache: Arc<CacheDir>, cfg: UploadConfig) -> Arc<Self> {
        let first_id = cache.journal().max_id() + 1;
        let rt = tokio::runtime::Handle::try_current().ok();
        let (changes, _) = watch::channel(0u64);
        let n = cfg.max_concurrent_uploads.max(1);
        let inner = Arc::new(Inner {
            store,
            cache,
            cfg,
            next_id: AtomicU64::new(first_id),
            table: Mutex::new(Table::default()),
            changes,
            work: tokio::sync::Notify::new(),
            rt: rt.clone(),
            metadb: Mutex::new(None),
            lazy: tokio::sync::Notify::new(),
        });
        let workers = match &rt {
            Some(rt) => (0..n)
                .map(|_| rt.spawn(super::worker::worker_loop(inner.clone())))
                .chain(std::iter::once(rt.spawn(persist_loop(inner.clone()))))
                .collect(),
            None => {
                log::error!("UploadQueue::new called outside a tokio runtime: no upload workers");
                Vec::new()
            }
        };
        Arc::new(UploadQueue { inner, workers })
    }

    /// Hands a finished staging file to the queue (the queue now owns the file; it is deleted
    /// only after COS has it), journaled and made durable as `h.durability` says; an early
    /// upload continues when it fits the file as handed off, else it is aborted. A queued (not
    /// yet running) task for the same key is superseded (its file dropped); a running one is
    /// allowed to finish and the new one runs after it (uploads of one key are serialized). A
    /// superseded Paused task passes its hold on to the new one.
    ///
    /// `Durability::Durable` is blocking I/O (fsync of the file, its directory and the
    /// journal): async callers on a busy runtime may wrap it in `spawn_blocking`.
    pub fn enqueue(&self, mut h: Handover) -> std::io::Result<TaskId> {
        let Some(early) = h.early.take() else {
            return self.enqueue_as(h, None);
        };
        let (key, jid) = (h.key.clone(), early.journal_id());
        let progress = early.take(&h.key, h.size, &h.opts);
        let abort = progress
            .as_ref()
            .map(|p| (p.key.clone(), p.upload_id.clone()));
        let used = progress.is_some();
        match self.enqueue_as(h, progress) {
            Ok(id) => {
                if used {
                    log::debug!("{key}: upload continues the early multipart upload");
                    EarlyUpload::taken(&self.inner, &key, jid);
                }
                Ok(id)
            }
            Err(e) => {
                if let Some(a) = abort {
                    self.inner.abort_later(vec![a]);
                    EarlyUpload::taken(&self.inner, &key, jid);
                }
                Err(e)
            }
        }
    }

    /// Journals and queues `h` (its early upload already taken: `progress` is that upload's
    /// saved multipart progress, journaled with the task).
    fn enqueue_as(
        &self,
        h: Handover,
        progress: Option<super::task::MultipartProgress>,
    ) -> std::io::Result<TaskId> {
        let how = h.durability;
        let durable = how == Durability::Durable;
        if durable {
            // The journal entry is only worth something if the data it points at is durable too.
            std::fs::File::open(&h.file)?.sync_all()?;
            if let Some(dir) = h.file.parent() {
                sync_dir(dir)?;
            }
        }
        let id = self.inner.fresh_id();
        let entry = Entry {
            id,
            seq: id,
            key: h.key.clone(),
            file: h.file.clone(),
            size: h.size,
            opts: (&h.opts).into(),
            base: Base::from_etag(h.base_etag),
            upload_id: progress.as_ref().map(|p| p.upload_id.clone()),
            unclosed: false,
        };
        self.inner.cache.journal().put(entry, durable)?;
        let mut task = new_task(id, &h.key, h.file, h.size, h.opts, SystemTime::now());
        task.durability = how;
        task.progress = progress;
        self.insert_task(task);
        if how == Durability::Lazy {
            self.inner.lazy.notify_one();
        }
        Ok(id)
    }

    /// Makes the lazy (not yet fsync'd) tasks of `key` durable (`None`: all of them): staging
    /// files, their directory, then the journal. Blocking I/O.
    pub fn persist(&self, key: Option<&str>) -> std::io::Result<()> {
        self.inner.persist(key)
    }

    /// Inserts a journaled task, superseding older not-running tasks of its key.
    pub(crate) fn insert_task(&self, mut task: Task) {
        let sup = {
            let mut table = self.inner.table();
            let sup = supersede(&mut table, &task.key, task.id, &task.path);
            if sup.paused {
                task.state = TaskState::Paused;
            }
            table.tasks.insert(task.id, task);
            sup
        };
        self.finish_supersede(sup);
        self.inner.bump();
    }

    /// Journal and disk cleanup after `supersede` (outside the table lock).
    pub(crate) fn finish_supersede(&self, sup: Superseded) {
        if !sup.ids.is_empty() {
            // Not synced: replay re-derives the supersession from the newer entry.
            if let Err(e) = self.inner.cache.journal().remove(&sup.ids, false) {
                log::warn!("journal: could not record superseded uploads: {e}");
            }
        }
        for f in &sup.files {
            remove_file_logged(f);
        }
        self.inner.abort_later(sup.aborts);
    }

    /// Waits until nothing is Queued/Running (Paused/Failed tasks stay journaled for next mount).
    ///
    /// Tasks waiting for a retry get one more attempt now (the backend may be back), and none
    /// after that while the drain runs: a task whose attempt fails again stays Waiting, is not
    /// waited for, and stays journaled, so the next mount uploads it. So unmount waits for at
    /// most one attempt per task (each bounded by the client's retry policy), never for an
    /// outage to end; a warn! line names what is left. Retries resume when the drain returns.
    pub async fn drain(&self) {
        /// Lets retries resume even when the drain is dropped half-way.
        struct Draining<'a>(&'a Inner);
        impl Drop for Draining<'_> {
            fn drop(&mut self) {
                let mut table = self.0.table();
                table.draining = table.draining.saturating_sub(1);
                drop(table);
                self.0.bump();
            }
        }
        {
            let mut table = self.inner.table();
            table.draining += 1;
            for t in table.tasks.values_mut() {
                if matches!(t.state, TaskState::Waiting { .. }) && t.removed.is_none() {
                    t.state = TaskState::Queued;
                    t.retry_at = None;
                }
            }
        }
        let _guard = Draining(&self.inner);
        self.inner.bump();
        loop {
            let mut rx = self.inner.changes.subscribe();
            if !self.inner.table().busy() {
                break;
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        // What stays journaled for the next mount must not depend on the page cache.
        if let Err(e) = self.inner.persist(None) {
            log::error!("drain: could not make the queued uploads durable: {e}");
        }
        let waiting: Vec<String> = self
            .inner
            .table()
            .tasks
            .values()
            .filter(|t| t.removed.is_none())
            .filter_map(|t| match &t.state {
                TaskState::Waiting { error } => Some(format!("{} ({error})", t.key)),
                _ => None,
            })
            .collect();
        if !waiting.is_empty() {
            log::warn!(
                "drain: {} upload(s) still failing after their last attempt, not waited for; \
                 they stay journaled in {} and are uploaded at the next mount: {}",
                waiting.len(),
                self.inner.cache.root().display(),
                waiting.join(", ")
            );
        }
    }

    /// The cache directory this queue stages in.
    pub fn cache_dir(&self) -> &Arc<CacheDir> {
        &self.inner.cache
    }
}

/// A new Queued task.
pub(crate) fn new_task(
    id: TaskId,
    key: &str,
    path: PathBuf,
    size: u64,
    opts: PutOptions,
    enqueued: SystemTime,
) -> Task {
    let (signal, _) = watch::channel(Signal::Run);
    Task {
        id,
        seq: id,
        key: key.to_string(),
        path,
        size,
        opts,
        enqueued,
        state: TaskState::Queued,
        loaded: 0,
        speed: 0,
        attempts: 0,
        active: false,
        signal,
        progress: None,
        to_abort: Vec::new(),
        removed: None,
        delete_after: false,
        run_start: None,
        error: None,
        retry_at: None,
        last_error: None,
        durability: Durability::Durable,
        landed: false,
    }
}
