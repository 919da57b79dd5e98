//! The CLI side of the control channel: one request, one response, with timeouts so a hung
//! daemon cannot hang `cosfuse tasks`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Request, Response};

/// How long to wait for the daemon's answer (presign/preflight go to COS, so not too short).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `req` to the socket at `socket` and returns the daemon's response.
pub fn request(socket: &Path, req: &Request) -> Result<Response, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach the mount's control socket {}: {e}",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| format!("control socket write: {e}"))?;
    let mut reader = BufReader::new(s);
    let mut answer = String::new();
    reader
        .read_line(&mut answer)
        .map_err(|e| format!("control socket read: {e}"))?;
    if answer.is_empty() {
        return Err("the mount closed the control connection without answering".into());
    }
    serde_json::from_str(answer.trim()).map_err(|e| format!("bad answer from the mount: {e}"))
}
