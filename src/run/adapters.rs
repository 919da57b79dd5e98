//! Glue between independently written parts: the upload queue seen as the lifecycle's `Drain`,
//! and (with the COS client) as the control channel's handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{TaskInfo, TaskState, UploadQueue};
use crate::control::{ControlHandler, PreflightView, TaskView};
use crate::cos::CosClient;

use super::lifecycle::Drain;

/// The lifecycle's drain over the queue.
pub struct QueueDrain(pub Arc<UploadQueue>);

#[async_trait::async_trait]
impl Drain for QueueDrain {
    async fn drain(&self) {
        self.0.drain().await
    }
    fn unfinished(&self) -> usize {
        self.0
            .list()
            .iter()
            .filter(|t| t.state != TaskState::Done)
            .count()
    }
}

/// The control channel's handler: tasks from the queue, presign and preflight from the client.
pub struct Control {
    /// The queue.
    queue: Arc<UploadQueue>,
    /// The client.
    client: Arc<CosClient>,
    /// Mounted prefix ("" or `dir/`), prepended to paths.
    prefix: String,
    /// The mount's counters.
    metrics: Arc<crate::store::metrics::Metrics>,
}

impl Control {
    /// Builds the handler.
    pub fn new(
        queue: Arc<UploadQueue>,
        client: Arc<CosClient>,
        prefix: String,
        metrics: Arc<crate::store::metrics::Metrics>,
    ) -> Control {
        Control {
            queue,
            client,
            prefix,
            metrics,
        }
    }

    /// The counters with the queue's depth.
    pub fn snapshot(&self) -> crate::store::metrics::StatsView {
        let mut s = self.metrics.snapshot();
        s.queue_depth = self
            .queue
            .list()
            .into_iter()
            .filter(|t| task_view(t.clone()).is_active())
            .count() as u64;
        s
    }

    fn key(&self, path: &str) -> String {
        format!("{}{}", self.prefix, path.trim_start_matches('/'))
    }
}

/// A queue task as the CLI shows it.
pub fn task_view(t: TaskInfo) -> TaskView {
    // A task running (or paused) after failed attempts still shows what the last one said.
    let (state, error) = match t.state {
        TaskState::Queued => ("queued", t.last_error),
        TaskState::Running => ("running", t.last_error),
        TaskState::Paused => ("paused", t.last_error),
        TaskState::Waiting { error } => ("waiting", Some(error)),
        TaskState::Failed { error } => ("failed", Some(error)),
        TaskState::Done => ("done", None),
    };
    let next_attempt = t.next_attempt.and_then(|at| {
        at.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    });
    TaskView {
        id: t.id,
        key: t.key,
        size: t.size,
        loaded: t.loaded,
        speed: t.speed,
        percent: t.percent,
        state: state.to_string(),
        error,
        local_path: t.local_path,
        attempts: t.attempts,
        next_attempt,
    }
}

#[async_trait::async_trait]
impl ControlHandler for Control {
    fn list(&self) -> Vec<TaskView> {
        self.queue.list().into_iter().map(task_view).collect()
    }
    fn pause(&self, id: u64) -> Result<(), String> {
        self.queue.pause(id)
    }
    fn restart(&self, id: u64) -> Result<(), String> {
        self.queue.restart(id)
    }
    fn cancel(&self, id: u64) -> Result<PathBuf, String> {
        self.queue.cancel(id)
    }
    fn stats(&self) -> Option<crate::store::metrics::StatsView> {
        Some(self.snapshot())
    }
    async fn presign(&self, path: &str, method: &str, expires: Duration) -> Result<String, String> {
        let key = self.key(path);
        match method {
            "GET" => Ok(self.client.presign_get_url(&key, expires)),
            "PUT" => Ok(self.client.presign_put_url(&key, expires)),
            other => Err(format!("cannot presign method {other} (GET or PUT)")),
        }
    }
    async fn preflight(
        &self,
        path: &str,
        origin: &str,
        method: &str,
        headers: Option<&str>,
    ) -> Result<PreflightView, String> {
        let hs: Vec<&str> = headers
            .map(|h| {
                h.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let p = self
            .client
            .options_object(&self.key(path), origin, method, &hs)
            .await
            .map_err(|e| e.to_string())?;
        Ok(PreflightView {
            allowed: p.allowed,
            allow_origin: p.allow_origin,
            allow_methods: p.allow_methods,
            allow_headers: p.allow_headers,
            expose_headers: p.expose_headers,
            max_age: p.max_age,
            message: (!p.allowed)
                .then(|| "the bucket's CORS rules do not allow this request".to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(state: TaskState) -> TaskInfo {
        TaskInfo {
            id: 3,
            key: "a/b".into(),
            size: 10,
            loaded: 5,
            speed: 1,
            percent: 50.0,
            state,
            local_path: "/c/s/3".into(),
            attempts: 2,
            next_attempt: None,
            last_error: None,
        }
    }

    #[test]
    fn task_states_map_to_cli_words() {
        assert_eq!(task_view(info(TaskState::Queued)).state, "queued");
        assert_eq!(task_view(info(TaskState::Running)).state, "running");
        assert_eq!(task_view(info(TaskState::Paused)).state, "paused");
        assert_eq!(task_view(info(TaskState::Done)).state, "done");
        let f = task_view(info(TaskState::Failed {
            error: "SlowDown".into(),
        }));
        assert_eq!(
            (f.state.as_str(), f.error.as_deref()),
            ("failed", Some("SlowDown"))
        );
        assert_eq!(f.local_path, PathBuf::from("/c/s/3"));
        assert_eq!((f.id, f.loaded, f.attempts), (3, 5, 2));
        let mut w = info(TaskState::Waiting {
            error: "network error: refused".into(),
        });
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        w.next_attempt = Some(at);
        let v = task_view(w);
        assert_eq!(v.state, "waiting");
        assert_eq!(v.error.as_deref(), Some("network error: refused"));
        assert_eq!(v.next_attempt, Some(1_800_000_000));
        let mut r = info(TaskState::Running);
        r.last_error = Some("SlowDown".into());
        assert_eq!(task_view(r).error.as_deref(), Some("SlowDown"));
    }
}
