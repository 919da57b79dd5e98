//! The registry of running mounts: one small JSON file per mount point, written by the daemon
//! and read by `cosfuse tasks/presign/preflight` to find a mount's control socket.
//!
//! Location: `/run/cosfuse/` for root, else `$XDG_RUNTIME_DIR/cosfuse/` (or
//! `/tmp/cosfuse-UID/`). File name: the first 16 bytes of SHA-256 of the canonical mount point
//! path, in hex, plus `.json` (mount points can be longer than a file name may be).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the registry knows about one running mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Canonical mount point.
    pub mountpoint: PathBuf,
    /// Control socket path.
    pub socket: PathBuf,
    /// Daemon process id.
    pub pid: u32,
    /// `NAME-APPID`.
    pub bucket: String,
    /// Mounted key prefix ("" or `dir/`).
    pub prefix: String,
}

/// The registry directory for this user.
pub fn default_dir() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/cosfuse");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("cosfuse"),
        _ => std::env::temp_dir().join(format!("cosfuse-{uid}")),
    }
}

fn file_for(dir: &Path, mountpoint: &Path) -> PathBuf {
    let digest = Sha256::digest(mountpoint.as_os_str().as_bytes());
    dir.join(format!("{}.json", hex::encode(&digest[..16])))
}

/// Removes the registry file when dropped (the daemon holds it for the mount's lifetime).
#[derive(Debug)]
pub struct Registration {
    /// The file written.
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `entry` into `dir` (created 0700), atomically (write + rename).
pub fn register(dir: &Path, entry: &Entry) -> std::io::Result<Registration> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = file_for(dir, &entry.mountpoint);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Registration { path })
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence; no signal is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Finds the running mount that contains `path`; returns its entry and `path` relative to the
/// mount point (empty for the mount point itself). `path` need not exist if its parent does.
pub fn lookup(dir: &Path, path: &Path) -> Result<(Entry, String), String> {
    let canon = canonical(path)?;
    for ancestor in canon.ancestors() {
        let f = file_for(dir, ancestor);
        let Ok(text) = std::fs::read(&f) else {
            continue;
        };
        let entry: Entry = serde_json::from_slice(&text)
            .map_err(|e| format!("registry file {} is damaged: {e}", f.display()))?;
        if !alive(entry.pid) {
            continue;
        }
        let rel = canon
            .strip_prefix(ancestor)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .to_string();
        return Ok((entry, rel));
    }
    Err(format!(
        "{} is not inside a running cosfuse mount of this user (registry {})",
        path.display(),
        dir.display()
    ))
}

fn canonical(path: &Path) -> Result<PathBuf, String> {
    if let Ok(c) = path.canonicalize() {
        return Ok(c);
    }
    // A file that does not exist yet (presign --method PUT): resolve its directory.
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: no such file or directory", path.display()))?;
    parent
        .canonicalize()
        .map(|p| p.join(name))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The control socket for `cosfuse tasks ARG`: ARG is a mount point (via the registry) or a
/// cache directory holding `control.sock`.
pub fn socket_for(dir: &Path, arg: &Path) -> Result<PathBuf, String> {
    // The registry first: probing `MOUNTPOINT/control.sock` would cost a request to COS.
    let found = lookup(dir, arg);
    if let Ok((entry, rel)) = &found {
        if rel.is_empty() {
            return Ok(entry.socket.clone());
        }
        return Err(format!(
            "{} is inside the mount {}; give the mount point",
            arg.display(),
            entry.mountpoint.display()
        ));
    }
    let direct = arg.join(super::SOCKET_NAME);
    if direct.exists() {
        return Ok(direct);
    }
    found.map(|(e, _)| e.socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mp: &Path, pid: u32) -> Entry {
        Entry {
            mountpoint: mp.canonicalize().unwrap(),
            socket: PathBuf::from("/cache/control.sock"),
            pid,
            bucket: "b-1".into(),
            prefix: String::new(),
        }
    }

    #[test]
    fn register_lookup_and_cleanup() {
        let reg = tempfile::tempdir().unwrap();
        let mp = tempfile::tempdir().unwrap();
        std::fs::create_dir(mp.path().join("sub")).unwrap();
        let guard = register(reg.path(), &entry(mp.path(), std::process::id())).unwrap();
        let (e, rel) = lookup(reg.path(), mp.path()).unwrap();
        assert_eq!(e.socket, PathBuf::from("/cache/control.sock"));
        assert_eq!(rel, "");
        let (_, rel) = lookup(reg.path(), &mp.path().join("sub/new-file")).unwrap();
        assert_eq!(rel, "sub/new-file");
        assert_eq!(
            socket_for(reg.path(), mp.path()).unwrap(),
            PathBuf::from("/cache/control.sock")
        );
        assert!(socket_for(reg.path(), &mp.path().join("sub"))
            .unwrap_err()
            .contains("give the mount point"));
        drop(guard);
        assert!(lookup(reg.path(), mp.path())
            .unwrap_err()
            .contains("not inside"));
    }

    #[test]
    fn dead_daemons_are_ignored() {
        let reg = tempfile::tempdir().unwrap();
        let mp = tempfile::tempdir().unwrap();
        // pid_max on Linux is at most 2^22, so this pid cannot exist.
        let _g = register(reg.path(), &entry(mp.path(), 4_194_304 + 7)).unwrap();
        assert!(lookup(reg.path(), mp.path()).is_err());
    }

    #[test]
    fn a_cache_directory_can_be_given_directly() {
        let reg = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(cache.path().join("control.sock"), b"").unwrap();
        assert_eq!(
            socket_for(reg.path(), cache.path()).unwrap(),
            cache.path().join("control.sock")
        );
    }
}
