//! Daemonizing with a readiness pipe: the parent exits 0 only once the child says the mount is
//! live, and with the child's one-line reason otherwise.
//!
//! Protocol on the pipe (child → parent), one message then close:
//! - `OK\n`: the mount is live;
//! - `ERR <reason>\n`: the mount failed; the parent prints `cosfuse: <reason>` and exits 1;
//! - EOF with no message: the child died (crash, kill); the parent says so and exits 1.
//!
//! The fork happens before any thread exists (no tokio runtime, no logger threads), which is the
//! only state in which `fork` is safe in a Rust program.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The child's end of the readiness pipe (or nothing, in the foreground).
#[derive(Debug)]
pub struct Readiness {
    /// Write end; taken when the single message has been sent.
    pipe: Option<File>,
}

impl Readiness {
    /// A readiness handle that reports nowhere (foreground mode).
    pub fn foreground() -> Readiness {
        Readiness { pipe: None }
    }

    /// A readiness handle over an existing pipe write end (for tests).
    pub fn from_file(f: File) -> Readiness {
        Readiness { pipe: Some(f) }
    }

    /// Tells the parent the mount is live. Later calls do nothing.
    pub fn ready(&mut self) {
        if let Some(mut p) = self.pipe.take() {
            // The parent may have been killed; nothing to do about it then.
            let _ = p.write_all(b"OK\n");
        }
    }

    /// Tells the parent the mount failed, with a one-line reason. Later calls do nothing.
    pub fn fail(&mut self, reason: &str) {
        if let Some(mut p) = self.pipe.take() {
            let one_line = reason.replace('\n', " ");
            let _ = p.write_all(format!("ERR {one_line}\n").as_bytes());
        }
    }

    /// True while the parent is still waiting for a message.
    pub fn pending(&self) -> bool {
        self.pipe.is_some()
    }
}

/// Reads the child's message from the pipe's read end until EOF; Ok on `OK`.
pub fn wait_for_child(mut pipe: File) -> Result<(), String> {
    let mut text = String::new();
    // Bounded by the child: it writes one short line and closes (or dies, which closes).
    let _ = pipe.read_to_string(&mut text);
    let line = text.lines().next().unwrap_or("");
    if line == "OK" {
        Ok(())
    } else if let Some(reason) = line.strip_prefix("ERR ") {
        Err(reason.to_string())
    } else {
        Err("the daemon exited before the mount was ready (see its log file)".into())
    }
}

/// Where the daemon's stdin/stdout/stderr go.
#[derive(Debug)]
pub struct DaemonIo<'a> {
    /// File that receives stderr (the log); None = /dev/null.
    pub log_file: Option<&'a Path>,
}

/// Forks. In the parent this waits for the child's message and never returns (exit 0 or 1).
/// In the child it returns the write end after `setsid`, `chdir /` and redirecting the standard
/// descriptors (stderr to the log file), so the parent's caller sees its pipes close.
pub fn daemonize(io: DaemonIo<'_>) -> std::io::Result<Readiness> {
    let log = match io.log_file {
        Some(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?
        }
        None => File::options().write(true).open("/dev/null")?,
    };
    let devnull = File::options().read(true).write(true).open("/dev/null")?;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (see the module doc), so the child is a faithful copy.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid > 0 {
        drop(write_end);
        match wait_for_child(File::from(read_end)) {
            Ok(()) => std::process::exit(0),
            Err(reason) => {
                eprintln!("cosfuse: {reason}");
                std::process::exit(1)
            }
        }
    }
    drop(read_end);
    // SAFETY: plain syscalls on descriptors we own; failures are reported, not ignored.
    unsafe {
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for (src, dst) in [
            (devnull.as_raw_fd(), 0),
            (devnull.as_raw_fd(), 1),
            (log.as_raw_fd(), 2),
        ] {
            if libc::dup2(src, dst) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    std::env::set_current_dir("/")?;
    Ok(Readiness::from_file(File::from(write_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (File, File) {
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn ready_means_ok() {
        let (r, w) = pipe();
        let mut rd = Readiness::from_file(w);
        assert!(rd.pending());
        rd.ready();
        rd.fail("ignored after ready");
        assert!(!rd.pending());
        assert_eq!(wait_for_child(r), Ok(()));
    }

    #[test]
    fn failure_reason_is_one_line() {
        let (r, w) = pipe();
        let mut rd = Readiness::from_file(w);
        rd.fail("NoSuchBucket: The specified bucket\ndoes not exist");
        assert_eq!(
            wait_for_child(r),
            Err("NoSuchBucket: The specified bucket does not exist".into())
        );
    }

    #[test]
    fn child_death_without_message_is_an_error() {
        let (r, w) = pipe();
        drop(Readiness::from_file(w));
        assert!(wait_for_child(r)
            .unwrap_err()
            .contains("exited before the mount was ready"));
    }

    #[test]
    fn foreground_reports_nowhere() {
        let mut rd = Readiness::foreground();
        assert!(!rd.pending());
        rd.ready();
    }
}
