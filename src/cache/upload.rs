//! `UploadQueue`: the write-back upload queue. Owns staging files handed over by the fs core,
//! journals them before accepting, uploads them through the `ObjectStore` (PUT or parallel
//! multipart, see `worker.rs` / `multipart.rs`), and lets users watch and steer tasks
//! (list/pause/restart/cancel). Crash recovery lives in `recover.rs`.
//!
//! Invariants:
//! - a task's staging file is deleted only after COS acknowledged it (or the user discarded the
//!   file / a newer upload of the key superseded it; a user cancel moves it to the recovery dir);
//! - its journal entry is removed only after that, and was fsync'd before `enqueue` returned;
//! - at most one worker uploads a given key at a time, oldest task first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;

use super::journal::{sync_dir, Base, Entry};
use super::staging::{lock, CacheDir};
use super::task::{Outcome, Signal, Table, Task};
pub use super::task::{PendingFile, RecoveryReport, TaskId, TaskInfo, TaskState, UploadConfig};
use crate::store::{ObjectStore, PutOptions};

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
    /// Bumped after every change of the table; workers, `wait_key` and `drain` watch it.
    pub changes: watch::Sender<u64>,
    /// Runtime for background cleanups started from sync methods.
    pub rt: Option<tokio::runtime::Handle>,
    /// Where a finished upload's metadata is remembered by its new ETag (set by the fs core),
    /// so later listings know it without a HEAD. Leaf lock.
    pub metadb: Mutex<Option<Arc<super::metadb::MetaDb>>>,
}

impl Inner {
    /// The task table (see the lock order on the field).
    pub fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Wakes everyone watching the table.
    pub fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A fresh id/seq.
    pub fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
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
    table.tasks.values().any(|t| {
        t.id != except && t.path == path && t.removed.is_none() && t.state != TaskState::Done
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
            rt: rt.clone(),
            metadb: Mutex::new(None),
        });
        let workers = match &rt {
            Some(rt) => (0..n)
                .map(|_| rt.spawn(super::worker::worker_loop(inner.clone())))
                .collect(),
            None => {
                log::error!("UploadQueue::new called outside a tokio runtime: no upload workers");
                Vec::new()
            }
        };
        Arc::new(UploadQueue { inner, workers })
    }

    /// Hands a finished staging file to the queue (the queue now owns the file; it is deleted
    /// only after COS has it). Journaled (fsync'd, with the file's data) before returning. A
    /// queued (not yet running) task for the same key is superseded (its file dropped); a
    /// running one is allowed to finish and the new one runs after it (uploads of one key are
    /// serialized). A superseded Paused task passes its hold on to the new one.
    /// `base_etag`: ETag of the object the local copy started from (None = new file) — used by
    /// crash recovery to detect that COS changed meanwhile.
    ///
    /// Blocking I/O (fsync of the file, its directory and the journal): async callers on a busy
    /// runtime may wrap it in `spawn_blocking`.
    pub fn enqueue(
        &self,
        key: &str,
        file: PathBuf,
        size: u64,
        opts: PutOptions,
        base_etag: Option<String>,
    ) -> std::io::Result<TaskId> {
        self.enqueue_with(key, file, size, opts, base_etag, None)
    }

    /// `enqueue` of a file whose multipart upload already started (`early.rs`): `progress`
    /// becomes the task's saved progress and its upload id is journaled with the task.
    pub(crate) fn enqueue_with(
        &self,
        key: &str,
        file: PathBuf,
        size: u64,
        opts: PutOptions,
        base_etag: Option<String>,
        progress: Option<super::task::MultipartProgress>,
    ) -> std::io::Result<TaskId> {
        // The journal entry is only worth something if the data it points at is durable too.
        std::fs::File::open(&file)?.sync_all()?;
        if let Some(dir) = file.parent() {
            sync_dir(dir)?;
        }
        let id = self.inner.fresh_id();
        let entry = Entry {
            id,
            seq: id,
            key: key.to_string(),
            file: file.clone(),
            size,
            opts: (&opts).into(),
            base: Base::from_etag(base_etag),
            upload_id: progress.as_ref().map(|p| p.upload_id.clone()),
            unclosed: false,
        };
        self.inner.cache.journal().put(entry, true)?;
        let mut task = new_task(id, key, file, size, opts, SystemTime::now());
        task.progress = progress;
        self.insert_task(task);
        Ok(id)
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

    /// Every task (the last Done ones included), by id.
    pub fn list(&self) -> Vec<TaskInfo> {
        let table = self.inner.table();
        table
            .tasks
            .values()
            .filter(|t| t.removed.is_none())
            .map(Task::info)
            .collect()
    }

    /// Holds a task: a queued one does not start; a running multipart upload stops between
    /// parts; a single PUT in flight completes (pause takes effect before or after it). A
    /// running task turns Paused only once nothing of it is in flight.
    pub fn pause(&self, id: TaskId) -> Result<(), String> {
        let r = {
            let mut table = self.inner.table();
            match table.tasks.get_mut(&id) {
                Some(t) if t.removed.is_none() => match &t.state {
                    TaskState::Queued => {
                        t.signal.send_replace(Signal::Pause);
                        t.state = TaskState::Paused;
                        Ok(())
                    }
                    // A running task shows Running until its parts in flight have finished and
                    // the worker lets go (it then records Paused): "paused" promises that no
                    // data is moving.
                    TaskState::Running => {
                        t.signal.send_replace(Signal::Pause);
                        Ok(())
                    }
                    TaskState::Waiting { .. } => {
                        t.signal.send_replace(Signal::Pause);
                        t.state = TaskState::Paused;
                        t.retry_at = None;
                        Ok(())
                    }
                    TaskState::Paused => Ok(()),
                    TaskState::Failed { .. } => Err(format!(
                        "task {id} has failed; restart or cancel it instead"
                    )),
                    TaskState::Done => Err(format!("task {id} is already done")),
                },
                _ => Err(format!("no task {id}")),
            }
        };
        if r.is_ok() {
            self.inner.bump();
        }
        r
    }

    /// Resumes a Paused task (a multipart upload continues with the parts not yet sent), or
    /// retries a Failed one or a Waiting one at once (attempts start again at 0, and so does
    /// the backoff).
    pub fn restart(&self, id: TaskId) -> Result<(), String> {
        let r = {
            let mut table = self.inner.table();
            match table.tasks.get_mut(&id) {
                Some(t) if t.removed.is_none() => match &t.state {
                    TaskState::Paused => {
                        t.signal.send_replace(Signal::Run);
                        t.state = if t.active {
                            TaskState::Running
                        } else {
                            TaskState::Queued
                        };
                        Ok(())
                    }
                    TaskState::Failed { .. } | TaskState::Waiting { .. } => {
                        t.signal.send_replace(Signal::Run);
                        t.state = TaskState::Queued;
                        t.retry_at = None;
                        t.attempts = 0;
                        Ok(())
                    }
                    // Withdraws a pause that has not taken effect yet.
                    TaskState::Queued | TaskState::Running => {
                        t.signal.send_replace(Signal::Run);
                        Ok(())
                    }
                    TaskState::Done => Err(format!("task {id} is already done")),
                },
                _ => Err(format!("no task {id}")),
            }
        };
        if r.is_ok() {
            self.inner.bump();
        }
        r
    }

    /// Cancels; the local data is kept (moved to recovery_dir) and the path is returned.
    ///
    /// When the local file is already gone (deleted by hand, so the task could only fail), the
    /// task is still removed and the error says so.
    pub fn cancel(&self, id: TaskId) -> Result<PathBuf, String> {
        let (dest, key, aborts) = {
            let mut table = self.inner.table();
            let Some(t) = table.tasks.get_mut(&id).filter(|t| t.removed.is_none()) else {
                return Err(format!("no task {id}"));
            };
            if t.state == TaskState::Done {
                return Err(format!("task {id} is already done"));
            }
            // The worker (if any) keeps reading through its open descriptor; the rename only
            // moves the name.
            let dest = match self.inner.cache.keep_in_recovery(&t.path, &t.key) {
                Ok(d) => Ok(d),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                    "task {id} cancelled, but its local file {} was already gone",
                    t.path.display()
                )),
                Err(e) => return Err(format!("could not keep {}: {e}", t.path.display())),
            };
            let key = t.key.clone();
            let mut aborts = std::mem::take(&mut t.to_abort);
            if t.active {
                t.signal.send_replace(Signal::Cancel);
                t.removed = Some(Outcome::Cancelled);
            } else {
                if let Some(p) = t.progress.take() {
                    aborts.push((p.key, p.upload_id));
                }
                table.forget(id, Outcome::Cancelled);
            }
            (dest, key, aborts)
        };
        if let Err(e) = self.inner.cache.journal().remove(&[id], true) {
            log::warn!("journal: could not record cancel of task {id}: {e}");
        }
        match &dest {
            Ok(d) => log::warn!(
                "upload of {key} cancelled (task {id}); local copy kept at {}",
                d.display()
            ),
            Err(msg) => log::warn!("upload of {key}: {msg}"),
        }
        self.inner.abort_later(aborts);
        self.inner.bump();
        dest
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
    }
}
