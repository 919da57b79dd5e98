//! Logging to syslog / journald for a daemon started without `logfile=` (as cosfs does): each
//! record is one datagram `<PRI>cosfuse[PID]: message` (RFC 3164 without the timestamp, which
//! journald and rsyslog add) on the local socket `/dev/log`, facility `daemon`.
//!
//! Without a `/dev/log` (containers, minimal systems) the caller keeps the daemon's log file.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The system logger's socket (journald's and rsyslog's).
pub const DEV_LOG: &str = "/dev/log";

/// syslog facility `daemon` (3), shifted into the PRI value.
const FACILITY_DAEMON: u8 = 3 << 3;

/// Longest datagram sent; a longer record is cut (syslog daemons cut at 2-8 KiB anyway).
const MAX_DATAGRAM: usize = 8 * 1024;

/// The PRI value of a record of `level`.
pub fn priority(level: log::Level) -> u8 {
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    FACILITY_DAEMON | severity
}

/// One record as the line sent to syslog.
pub fn line(level: log::Level, pid: u32, message: &str) -> String {
    format!("<{}>cosfuse[{pid}]: {message}", priority(level))
}

/// A connected datagram socket to the system logger; `Write` sends each write as one record.
#[derive(Debug)]
pub struct SyslogWriter {
    /// The socket path (kept to reconnect after the logger restarted).
    path: PathBuf,
    /// The connected socket.
    sock: UnixDatagram,
}

impl SyslogWriter {
    /// Connects to `path` (normally [`DEV_LOG`]).
    pub fn connect(path: &Path) -> io::Result<SyslogWriter> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path)?;
        Ok(SyslogWriter {
            path: path.to_path_buf(),
            sock,
        })
    }
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut msg = buf.strip_suffix(b"\n").unwrap_or(buf);
        msg = &msg[..msg.len().min(MAX_DATAGRAM)];
        if self.sock.send(msg).is_err() {
            // journald restarted (ECONNREFUSED) or the socket was replaced: reconnect once.
            // A record the logger cannot take is dropped rather than blocking the mount.
            if let Ok(again) = SyslogWriter::connect(&self.path) {
                *self = again;
                let _ = self.sock.send(msg);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_one_datagram_each_with_priority_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut w = SyslogWriter::connect(&path).unwrap();
        w.write_all(format!("{}\n", line(log::Level::Warn, 42, "queue stalled")).as_bytes())
            .unwrap();
        w.write_all(line(log::Level::Error, 42, &"x".repeat(20_000)).as_bytes())
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<28>cosfuse[42]: queue stalled");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(n, MAX_DATAGRAM);
        assert!(buf[..n].starts_with(b"<27>cosfuse[42]: xxx"));
        assert_eq!(priority(log::Level::Info), 30);
        assert_eq!(priority(log::Level::Trace), 31);
        assert!(SyslogWriter::connect(&dir.path().join("missing")).is_err());
    }
}
