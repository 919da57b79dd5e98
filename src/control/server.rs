//! The daemon side of the control channel: binds `control.sock` (0600) and answers
//! line-delimited JSON requests with a [`ControlHandler`] until shutdown.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{dispatch, ControlHandler, Request, Response};

/// Longest request line accepted; longer lines end the connection (a client bug or abuse).
pub const MAX_LINE: usize = 64 * 1024;

/// Binds the socket at `path`, replacing a stale one, and restricts it to the owner.
/// Must be called inside a tokio runtime.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves connections until `shutdown` completes. Each connection runs in its own task.
pub async fn serve(
    listener: UnixListener,
    handler: Arc<dyn ControlHandler>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let h = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, h).await {
                            log::debug!("control connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    log::warn!("control socket accept failed: {e}");
                    // Avoid a hot loop if accept keeps failing (e.g. out of descriptors).
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connection(stream: UnixStream, handler: Arc<dyn ControlHandler>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if n > MAX_LINE {
            let mut out = serde_json::to_string(&Response::error("request line too long"))?;
            out.push('\n');
            w.write_all(out.as_bytes()).await?;
            return Ok(());
        }
        let resp = match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => dispatch(handler.as_ref(), req).await,
            Err(e) => Response::error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&resp)?;
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{client, PreflightView, TaskView};
    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Fake {
        paused: Mutex<Vec<u64>>,
    }

    #[async_trait::async_trait]
    impl ControlHandler for Fake {
        fn list(&self) -> Vec<TaskView> {
            vec![TaskView {
                id: 1,
                key: "a/b.bin".into(),
                size: 100,
                loaded: 40,
                speed: 10,
                percent: 40.0,
                state: "running".into(),
                error: None,
                local_path: "/c/staging/1".into(),
                attempts: 1,
                next_attempt: None,
            }]
        }
        fn pause(&self, id: u64) -> Result<(), String> {
            self.paused.lock().unwrap().push(id);
            Ok(())
        }
        fn restart(&self, id: u64) -> Result<(), String> {
            Err(format!("no task {id}"))
        }
        fn cancel(&self, _id: u64) -> Result<PathBuf, String> {
            Ok("/c/recovered/a%2Fb.bin".into())
        }
        async fn presign(&self, path: &str, method: &str, e: Duration) -> Result<String, String> {
            Ok(format!("http://x/{path}?m={method}&e={}", e.as_secs()))
        }
        async fn preflight(
            &self,
            _p: &str,
            origin: &str,
            _m: &str,
            _h: Option<&str>,
        ) -> Result<PreflightView, String> {
            Ok(PreflightView {
                allowed: true,
                allow_origin: Some(origin.into()),
                ..Default::default()
            })
        }
    }

    #[tokio::test]
    async fn round_trip_over_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("control.sock");
        let listener = bind(&sock).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fake = Arc::new(Fake::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, fake.clone(), async {
            let _ = rx.await;
        }));
        let s = sock.clone();
        let replies = tokio::task::spawn_blocking(move || {
            vec![
                client::request(&s, &Request::List).unwrap(),
                client::request(&s, &Request::Pause { id: 3 }).unwrap(),
                client::request(&s, &Request::Restart { id: 9 }).unwrap(),
                client::request(&s, &Request::Cancel { id: 1 }).unwrap(),
                client::request(
                    &s,
                    &Request::Presign {
                        path: "f".into(),
                        method: "GET".into(),
                        expires: 5,
                    },
                )
                .unwrap(),
                client::request(
                    &s,
                    &Request::Preflight {
                        path: "f".into(),
                        origin: "https://o".into(),
                        method: "PUT".into(),
                        headers: None,
                    },
                )
                .unwrap(),
            ]
        })
        .await
        .unwrap();
        assert_eq!(replies[0].tasks.len(), 1);
        assert_eq!(replies[0].tasks[0].key, "a/b.bin");
        assert!(replies[1].ok);
        assert_eq!(*fake.paused.lock().unwrap(), vec![3]);
        assert!(!replies[2].ok && replies[2].error.as_deref() == Some("no task 9"));
        assert_eq!(
            replies[3].kept_at,
            Some(PathBuf::from("/c/recovered/a%2Fb.bin"))
        );
        assert!(replies[3]
            .message
            .as_ref()
            .unwrap()
            .contains("/c/recovered/a%2Fb.bin"));
        assert_eq!(replies[4].url.as_deref(), Some("http://x/f?m=GET&e=5"));
        assert_eq!(
            replies[5]
                .preflight
                .as_ref()
                .unwrap()
                .allow_origin
                .as_deref(),
            Some("https://o")
        );
        tx.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_gets_an_error_line_and_the_connection_survives() {
        use std::io::{BufRead, Write};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("control.sock");
        let listener = bind(&sock).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Fake::default()), async {
            let _ = rx.await;
        }));
        let lines = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            s.write_all(b"not json\n{\"op\":\"list\"}\n").unwrap();
            let mut r = std::io::BufReader::new(s);
            let mut a = String::new();
            let mut b = String::new();
            r.read_line(&mut a).unwrap();
            r.read_line(&mut b).unwrap();
            (a, b)
        })
        .await
        .unwrap();
        assert!(lines.0.contains("bad request"), "{}", lines.0);
        assert!(lines.1.contains("a/b.bin"), "{}", lines.1);
        tx.send(()).unwrap();
        server.await.unwrap();
    }
}
