//! The control channel of a running mount: how `cosfuse tasks`, `cosfuse presign` and
//! `cosfuse preflight` talk to the daemon.
//!
//! Design (documented in cosfuse(1), "CONTROL CHANNEL"):
//! - The daemon serves a Unix socket `<cache dir>/control.sock` (mode 0600, so only the mounting
//!   user — and root — can steer it).
//! - It registers itself in a small registry (`registry`): one JSON file per mount point under
//!   `/run/cosfuse/` (root) or `$XDG_RUNTIME_DIR/cosfuse/` (others), naming the socket. The CLI
//!   resolves MOUNTPOINT (or any path inside it) to the socket through that file; a cache
//!   directory may also be given directly.
//! - Protocol: one JSON object per line each way ([`Request`] → [`Response`]); a connection may
//!   send several requests.
//!
//! The daemon side is a [`ControlHandler`] (implemented in `run` over the upload queue and the
//! COS client), so this module knows nothing of either and is tested with a fake.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod client;
pub mod commands;
pub mod registry;
pub mod server;
pub mod view;

/// File name of the socket inside the cache directory.
pub const SOCKET_NAME: &str = "control.sock";

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// All upload tasks.
    List,
    /// Hold a task.
    Pause {
        /// Task id.
        id: u64,
    },
    /// Resume a paused task or retry a failed one.
    Restart {
        /// Task id.
        id: u64,
    },
    /// Drop a task, keeping its local data.
    Cancel {
        /// Task id.
        id: u64,
    },
    /// A presigned URL for a path relative to the mount root.
    Presign {
        /// Path relative to the mount root (no leading `/`).
        path: String,
        /// `GET` or `PUT`.
        method: String,
        /// Lifetime in seconds.
        expires: u64,
    },
    /// The mount's counters (`cosfuse stats`).
    Stats,
    /// A CORS preflight (OPTIONS Object) for a path relative to the mount root.
    Preflight {
        /// Path relative to the mount root.
        path: String,
        /// `Origin`.
        origin: String,
        /// `Access-Control-Request-Method`.
        method: String,
        /// `Access-Control-Request-Headers`, comma separated.
        headers: Option<String>,
    },
}

/// One upload task as the CLI shows it (the queue's `TaskInfo`, flattened for display).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Task id.
    pub id: u64,
    /// Object key.
    pub key: String,
    /// Bytes to upload.
    pub size: u64,
    /// Bytes uploaded so far.
    pub loaded: u64,
    /// Current speed, bytes per second.
    pub speed: u64,
    /// Percent done, 0..=100.
    pub percent: f64,
    /// `queued`, `running`, `waiting` (for a retry after a transient error), `paused`,
    /// `failed` or `done`.
    pub state: String,
    /// The last error: of a failed task, of the attempt a waiting task retries, or of an
    /// earlier attempt of a task running again.
    pub error: Option<String>,
    /// Where the local data is.
    pub local_path: PathBuf,
    /// Attempts so far.
    pub attempts: u32,
    /// For a waiting task: when the next attempt starts, in seconds since the Unix epoch.
    /// Optional on the wire, so CLIs and daemons of before it still understand each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<u64>,
}

impl TaskView {
    /// True while the task still has work to do on its own (queued, running, or waiting for
    /// its next attempt).
    pub fn is_active(&self) -> bool {
        matches!(self.state.as_str(), "queued" | "running" | "waiting")
    }
}

/// The answer to a CORS preflight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightView {
    /// True when the bucket's CORS rules allow the request.
    pub allowed: bool,
    /// `Access-Control-Allow-Origin`.
    pub allow_origin: Option<String>,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: Option<String>,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: Option<String>,
    /// `Access-Control-Expose-Headers`.
    pub expose_headers: Option<String>,
    /// `Access-Control-Max-Age` in seconds.
    pub max_age: Option<u64>,
    /// COS's message when refused (e.g. `CORSResponse: This CORS request is not allowed`).
    pub message: Option<String>,
}

/// One response line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// False when the request failed; `error` says why.
    pub ok: bool,
    /// The failure, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tasks, for `list`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskView>,
    /// Human-readable result of an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `cancel`: where the local data is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_at: Option<PathBuf>,
    /// For `presign`: the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For `preflight`: the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightView>,
    /// For `stats`: the counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::store::metrics::StatsView>,
}

impl Response {
    /// A failed response.
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }

    /// A successful response with a message.
    pub fn message(msg: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// What the daemon does for each request. Implemented in `run` over the upload queue and client.
#[async_trait::async_trait]
pub trait ControlHandler: Send + Sync + 'static {
    /// All upload tasks.
    fn list(&self) -> Vec<TaskView>;
    /// Pause a task.
    fn pause(&self, id: u64) -> Result<(), String>;
    /// Restart a paused or failed task.
    fn restart(&self, id: u64) -> Result<(), String>;
    /// Cancel a task; returns where its local data is kept.
    fn cancel(&self, id: u64) -> Result<PathBuf, String>;
    /// A presigned URL for `path` (relative to the mount root).
    async fn presign(&self, path: &str, method: &str, expires: Duration) -> Result<String, String>;
    /// A CORS preflight for `path` (relative to the mount root).
    async fn preflight(
        &self,
        path: &str,
        origin: &str,
        method: &str,
        headers: Option<&str>,
    ) -> Result<PreflightView, String>;
    /// The mount's counters (the default: none kept).
    fn stats(&self) -> Option<crate::store::metrics::StatsView> {
        None
    }
}

/// Answers one request with `h`.
pub async fn dispatch(h: &dyn ControlHandler, req: Request) -> Response {
    match req {
        Request::List => Response {
            ok: true,
            tasks: h.list(),
            ..Default::default()
        },
        Request::Pause { id } => match h.pause(id) {
            Ok(()) => Response::message(format!("task {id} paused")),
            Err(e) => Response::error(e),
        },
        Request::Restart { id } => match h.restart(id) {
            Ok(()) => Response::message(format!("task {id} restarted")),
            Err(e) => Response::error(e),
        },
        Request::Cancel { id } => match h.cancel(id) {
            Ok(path) => Response {
                ok: true,
                message: Some(format!(
                    "task {id} cancelled; the local data is kept at {}",
                    path.display()
                )),
                kept_at: Some(path),
                ..Default::default()
            },
            Err(e) => Response::error(e),
        },
        Request::Presign {
            path,
            method,
            expires,
        } => match h
            .presign(&path, &method, Duration::from_secs(expires))
            .await
        {
            Ok(url) => Response {
                ok: true,
                url: Some(url),
                ..Default::default()
            },
            Err(e) => Response::error(e),
        },
        Request::Stats => match h.stats() {
            Some(s) => Response {
                ok: true,
                stats: Some(s),
                ..Default::default()
            },
            None => Response::error("this daemon keeps no counters".to_string()),
        },
        Request::Preflight {
            path,
            origin,
            method,
            headers,
        } => match h
            .preflight(&path, &origin, &method, headers.as_deref())
            .await
        {
            Ok(p) => Response {
                ok: true,
                preflight: Some(p),
                ..Default::default()
            },
            Err(e) => Response::error(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form() {
        let r = serde_json::to_string(&Request::Cancel { id: 7 }).unwrap();
        assert_eq!(r, r#"{"op":"cancel","id":7}"#);
        let back: Request = serde_json::from_str(r#"{"op":"list"}"#).unwrap();
        assert_eq!(back, Request::List);
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
    }

    #[test]
    fn response_skips_empty_fields() {
        let r = serde_json::to_string(&Response::message("hi")).unwrap();
        assert_eq!(r, r#"{"ok":true,"message":"hi"}"#);
        let back: Response = serde_json::from_str(&r).unwrap();
        assert_eq!(back, Response::message("hi"));
    }

    #[test]
    fn task_views_without_next_attempt_still_parse_both_ways() {
        // What a daemon of before `waiting` sends: no next_attempt field.
        let old = r#"{"id":1,"key":"k","size":3,"loaded":0,"speed":0,"percent":0.0,
            "state":"failed","error":"x","local_path":"/c/1","attempts":5}"#;
        let v: TaskView = serde_json::from_str(old).unwrap();
        assert_eq!((v.next_attempt, v.attempts), (None, 5));
        assert!(!serde_json::to_string(&v).unwrap().contains("next_attempt"));
        let waiting = TaskView {
            state: "waiting".into(),
            next_attempt: Some(1_800_000_000),
            ..v
        };
        let text = serde_json::to_string(&waiting).unwrap();
        assert!(text.contains(r#""next_attempt":1800000000"#), "{text}");
        assert!(waiting.is_active());
    }
}
