//! The per-key operations of the upload queue that the fs core calls: `wait_landed` (fsync,
//! close) and `wait_key` (chmod, xattrs, rename), the pending-file views (reads, getattr, readdir of files not yet in COS), and the
//! changes a pending upload undergoes (metadata folded in, unlink, rename).

use std::collections::BTreeSet;

use super::journal::Base;
use super::task::{Outcome, PendingFile, Signal, Table, TaskState};
use super::upload::{file_in_use, remove_file_logged, supersede, TaskId, UploadQueue};
use crate::store::{PutOptions, StoreError};

impl UploadQueue {
    /// Waits until every task for `key` enqueued so far is Done (Ok) or Failed/Cancelled (Err).
    /// A superseded task counts as the task that superseded it; a discarded one (unlink) as
    /// Ok once its worker has let go — so after `discard(k)`, `wait_key(k)` returns only when
    /// nothing of the old file can land in COS any more. Done means settled: the object is as
    /// the upload leaves it (an early upload's times stored) and the metadata cache records
    /// it, so an operation that changes the object next (chmod, xattrs, ACLs, rename) is not
    /// overtaken by the upload's last steps. A Paused task keeps it waiting, and so does one
    /// Waiting for a retry after a transient error (the queue retries it on its own; the fs
    /// core bounds fsync with its own deadline): only a permanent failure is an Err.
    pub async fn wait_key(&self, key: &str) -> Result<(), StoreError> {
        self.wait(key, false).await
    }

    /// As [`UploadQueue::wait_key`], but a task counts as soon as its data is in COS, before
    /// the worker's last steps (see `Task::landed`): what fsync and close wait for.
    pub async fn wait_landed(&self, key: &str) -> Result<(), StoreError> {
        self.wait(key, true).await
    }

    async fn wait(&self, key: &str, landed_is_enough: bool) -> Result<(), StoreError> {
        let ids: Vec<TaskId> = {
            let table = self.inner.table();
            table
                .tasks
                .values()
                .filter(|t| {
                    t.key == key && t.state != TaskState::Done && (t.removed.is_none() || t.active)
                })
                .map(|t| t.id)
                .collect()
        };
        loop {
            let mut rx = self.inner.changes.subscribe();
            let mut pending = false;
            {
                let table = self.inner.table();
                for &id in &ids {
                    match resolve(&table, id, landed_is_enough) {
                        Resolved::Ok => {}
                        Resolved::Pending => pending = true,
                        Resolved::Err(e) => return Err(e),
                    }
                }
            }
            if !pending {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Io("upload queue stopped".into()));
            }
        }
    }

    /// The newest pending (not Done) local copy of `key`: path + size + mtime. Reads and
    /// getattr of a file whose upload is pending are served from it.
    pub fn pending(&self, key: &str) -> Option<PendingFile> {
        let table = self.inner.table();
        table.pending_of(key).last().map(|t| t.pending())
    }

    /// Keys with pending uploads under `prefix` (so readdir shows files not yet in COS), each
    /// with its newest local copy, in key order.
    pub fn pending_under(&self, prefix: &str) -> Vec<(String, PendingFile)> {
        let table = self.inner.table();
        let keys: BTreeSet<&str> = table
            .tasks
            .values()
            .filter(|t| {
                t.key.starts_with(prefix) && t.removed.is_none() && t.state != TaskState::Done
            })
            .map(|t| t.key.as_str())
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                table
                    .pending_of(k)
                    .last()
                    .map(|t| (k.to_string(), t.pending()))
            })
            .collect()
    }

    /// Replaces the metadata (PutOptions) a pending upload will send (chmod/chown/utimes/xattr
    /// folded into the pending PUT). Applies to every task of `key` not being uploaded right
    /// now. Returns false if no such task exists (also when the only one is running: the caller
    /// then waits with `wait_key` and changes the object in COS).
    pub fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool {
        let mut changed = Vec::new();
        {
            let mut table = self.inner.table();
            for t in table.tasks.values_mut() {
                if t.key != key || t.removed.is_some() || t.active || t.state == TaskState::Done {
                    continue;
                }
                f(&mut t.opts);
                // Headers go out with Initiate: a half-done multipart upload must start over.
                if let Some(p) = t.progress.take() {
                    t.to_abort.push((p.key, p.upload_id));
                    t.loaded = 0;
                }
                changed.push((t.id, t.opts.clone()));
            }
            let mut j = self.inner.cache.journal();
            for (id, opts) in &changed {
                let r = j.update(
                    *id,
                    |e| {
                        e.opts = opts.into();
                        e.upload_id = None;
                    },
                    true,
                );
                if let Err(e) = r {
                    log::warn!("journal: could not record new metadata of {key}: {e}");
                }
            }
        }
        if !changed.is_empty() {
            self.inner.bump();
        }
        !changed.is_empty()
    }

    /// unlink of a key with pending uploads: cancels them and deletes their files. A PUT that
    /// is in flight is dropped, and should it land anyway the object is deleted again before
    /// any later upload of the key starts.
    pub fn discard(&self, key: &str) {
        let mut ids = Vec::new();
        let mut files = Vec::new();
        let mut aborts = Vec::new();
        {
            let mut table = self.inner.table();
            let mut forget = Vec::new();
            for t in table.tasks.values_mut() {
                if t.key != key || t.removed.is_some() || t.state == TaskState::Done {
                    continue;
                }
                ids.push(t.id);
                files.push((t.id, t.path.clone()));
                aborts.append(&mut t.to_abort);
                if t.active {
                    t.signal.send_replace(Signal::Cancel);
                    t.removed = Some(Outcome::Discarded);
                    t.delete_after = true;
                } else {
                    if let Some(p) = t.progress.take() {
                        aborts.push((p.key, p.upload_id));
                    }
                    forget.push(t.id);
                }
            }
            for id in forget {
                table.forget(id, Outcome::Discarded);
            }
            files.retain(|(id, p)| !file_in_use(&table, p, *id));
        }
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.inner.cache.journal().remove(&ids, true) {
            log::warn!("journal: could not record discarded uploads of {key}: {e}");
        }
        for (_, f) in &files {
            remove_file_logged(f);
        }
        self.inner.abort_later(aborts);
        self.inner.bump();
    }

    /// rename of a file whose upload is pending: re-targets its not-running tasks to `to`
    /// (older pending uploads of `to` are superseded: the renamed file replaces them).
    /// (A running task is waited for first by the caller via wait_key.) Returns true when a
    /// task was re-targeted.
    pub fn retarget(&self, from: &str, to: &str) -> bool {
        if from == to {
            return false;
        }
        let mut moved = Vec::new();
        let sup = {
            let mut table = self.inner.table();
            let movable: Vec<TaskId> = table
                .tasks
                .values()
                .filter(|t| {
                    t.key == from && t.removed.is_none() && !t.active && t.state != TaskState::Done
                })
                .map(|t| t.id)
                .collect();
            let Some(&newest) = movable.last() else {
                return false;
            };
            let newest_path = table
                .tasks
                .get(&newest)
                .map(|t| t.path.clone())
                .unwrap_or_default();
            let sup = supersede(&mut table, to, newest, &newest_path);
            for id in movable {
                let seq = self.inner.fresh_id();
                if let Some(t) = table.tasks.get_mut(&id) {
                    t.key = to.to_string();
                    t.seq = seq;
                    if let Some(p) = t.progress.take() {
                        t.to_abort.push((p.key, p.upload_id));
                        t.loaded = 0;
                    }
                    moved.push((id, seq));
                }
            }
            let mut j = self.inner.cache.journal();
            for &(id, seq) in &moved {
                let r = j.update(
                    id,
                    |e| {
                        e.key = to.to_string();
                        e.seq = seq;
                        // Whatever `to` holds is replaced by the rename.
                        e.base = Base::Any;
                        e.upload_id = None;
                    },
                    true,
                );
                if let Err(e) = r {
                    log::warn!("journal: could not record rename {from} -> {to}: {e}");
                }
            }
            sup
        };
        self.finish_supersede(sup);
        self.inner.bump();
        !moved.is_empty()
    }
}

/// Where a task `wait_key` looks at stands.
enum Resolved {
    Ok,
    Pending,
    Err(StoreError),
}

/// Follows a task (through supersessions) to its current standing.
fn resolve(table: &Table, mut id: TaskId, landed_is_enough: bool) -> Resolved {
    // Supersession chains only go to newer ids, so this ends; the bound is belt and braces.
    for _ in 0..10_000 {
        let outcome = match table.tasks.get(&id) {
            Some(t) => match &t.removed {
                // A discarded upload still winding down could yet land (and be deleted).
                Some(Outcome::Discarded) if t.active => return Resolved::Pending,
                Some(o) => o.clone(),
                None => {
                    return match &t.state {
                        TaskState::Done => Resolved::Ok,
                        _ if t.landed && landed_is_enough => Resolved::Ok,
                        TaskState::Failed { error } => Resolved::Err(
                            t.error
                                .clone()
                                .unwrap_or_else(|| StoreError::Io(error.clone())),
                        ),
                        _ => Resolved::Pending,
                    }
                }
            },
            None => match table.outcomes.get(&id) {
                Some(o) => o.clone(),
                // Forgotten long ago: it ended long ago.
                None => return Resolved::Ok,
            },
        };
        match outcome {
            // Discarded: the file is gone by the user's will; nothing left to wait for.
            Outcome::Done | Outcome::Discarded => return Resolved::Ok,
            Outcome::Cancelled => {
                return Resolved::Err(StoreError::Io(format!("upload task {id} was cancelled")))
            }
            Outcome::Superseded(by) => id = by,
        }
    }
    Resolved::Ok
}
