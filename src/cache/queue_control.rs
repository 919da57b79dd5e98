//! What `cosfuse tasks` does with the upload queue: list the tasks, pause, restart and
//! cancel one (the control socket's commands).

use std::path::PathBuf;

use super::task::{Outcome, Signal, Task, TaskState};
use super::upload::{TaskId, TaskInfo, UploadQueue};

impl UploadQueue {
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
}
