//! `CacheDir`: the cache directory on local disk — staging files holding data not yet in COS,
//! the crash journal beside them, the recovery directory, and the lock that keeps two mounts
//! from sharing one directory.
//!
//! Layout under `root` (mode 0700):
//! - `lock`: flock'd exclusively for the lifetime of the `CacheDir` (released when it drops,
//!   also when the process dies, so a crashed daemon never blocks the next mount);
//! - `journal`: see `journal.rs`;
//! - `staging/<session>-<n>`: staging files, 0600; `<session>` is unique per `CacheDir::open`,
//!   so files of a dead daemon are told apart from files this one is writing;
//! - `recovered/`: local copies kept when an upload was cancelled or COS changed meanwhile.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::journal::Journal;

/// Sub-directory of staging files.
pub const STAGING_DIR: &str = "staging";
/// Sub-directory of recovery copies.
pub const RECOVERED_DIR: &str = "recovered";
/// The lock file.
pub const LOCK_FILE: &str = "lock";
/// Names the bucket (and prefix) whose uploads this directory journals.
pub const OWNER_FILE: &str = "owner";

/// The cache directory: staging files + journal. One mount per directory (lock file).
#[derive(Debug)]
pub struct CacheDir {
    /// Absolute root of the cache directory.
    root: PathBuf,
    /// Prefix of staging file names created by this instance.
    session: String,
    /// Counter for unique staging names.
    counter: AtomicU64,
    /// The flock'd lock file; closing it (drop) releases the lock.
    _lock: File,
    /// The crash journal. Lock order: the upload queue's task table first, then this; never
    /// held across `.await`.
    journal: Mutex<Journal>,
    /// The namespace journal (deletes and renames under way). Leaf lock.
    intents: Mutex<super::intents::IntentLog>,
    /// Empty staging files made ahead of need (`spares.rs`).
    spares: super::spares::Spares,
}

/// Creates a new empty file (O_RDWR, 0600) `DIR/PREFIXn`, `n` drawn from `counter`; a name
/// that exists (only if someone put files there by hand) makes it take the next number.
pub(crate) fn create_numbered(
    dir: &Path,
    prefix: &str,
    counter: &AtomicU64,
) -> io::Result<(PathBuf, File)> {
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{prefix}{n}"));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Locks a std mutex, recovering from poisoning (a panic elsewhere must not wedge the queue).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mkdir_0700(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

impl CacheDir {
    /// Creates/opens `root` (mode 0700), takes an exclusive lock (flock) on `root/lock`;
    /// error if another live mount holds it. Also opens (replays) the journal.
    pub fn open(root: &Path) -> io::Result<Arc<CacheDir>> {
        mkdir_0700(root)?;
        let root = root.canonicalize()?;
        mkdir_0700(&root.join(STAGING_DIR))?;
        mkdir_0700(&root.join(RECOVERED_DIR))?;
        let lock_path = root.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "cache directory {} is in use by another cosfuse mount",
                        root.display()
                    ),
                ));
            }
            return Err(err);
        }
        let journal = Journal::open(&root)?;
        let intents = super::intents::IntentLog::open(&root)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let session = format!("{}-{:x}", std::process::id(), nanos);
        Ok(Arc::new(CacheDir {
            spares: super::spares::Spares::new(root.join(STAGING_DIR), &session),
            session,
            root,
            counter: AtomicU64::new(0),
            _lock: lock_file,
            journal: Mutex::new(journal),
            intents: Mutex::new(intents),
        }))
    }

    /// Binds the directory to one bucket: records `owner` (e.g. `bucket-appid:/prefix`) on first
    /// use and refuses a different one later, so a journal is never replayed into the wrong
    /// bucket. Call before `UploadQueue::recover`.
    pub fn claim(&self, owner: &str) -> io::Result<()> {
        let path = self.root.join(OWNER_FILE);
        match std::fs::read_to_string(&path) {
            Ok(found) if found.trim_end_matches('\n') == owner => Ok(()),
            Ok(found) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cache directory {} holds data of {}, not {owner}; use another cache=",
                    self.root.display(),
                    found.trim_end()
                ),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let tmp = self.root.join("owner.tmp");
                std::fs::write(&tmp, format!("{owner}\n"))?;
                File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                super::journal::sync_dir(&self.root)
            }
            Err(e) => Err(e),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where staging files live: root/staging/.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(STAGING_DIR)
    }

    /// A new empty staging file (O_RDWR, 0600) under root/staging/, unique name.
    pub fn new_staging_file(&self) -> io::Result<(PathBuf, File)> {
        if let Some(spare) = self.spares.take() {
            return Ok(spare);
        }
        create_numbered(
            &self.staging_dir(),
            &format!("{}-", self.session),
            &self.counter,
        )
    }

    /// True when `path` is an untaken spare staging file of this instance (tests: what is left
    /// in the staging directory besides spares is a leak).
    #[cfg(test)]
    pub(crate) fn is_untaken_spare(&self, path: &Path) -> bool {
        self.spares.is_spare(path) && std::fs::metadata(path).is_ok_and(|m| m.len() == 0)
    }

    /// True when `path` is a staging file created by this instance (not a dead daemon's).
    pub(crate) fn is_own_staging_file(&self, path: &Path) -> bool {
        path.parent() == Some(self.staging_dir().as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{}-", self.session)))
    }

    /// Where recovered-but-conflicting files are kept: root/recovered/
    pub fn recovery_dir(&self) -> PathBuf {
        self.root.join(RECOVERED_DIR)
    }

    /// Free bytes on the cache file system (statvfs) — for ENOSPC decisions.
    pub fn free_bytes(&self) -> io::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(self.root.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: statvfs writes into a zeroed struct we own; the path is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    /// The namespace journal (deletes and renames under way).
    pub fn intents(&self) -> MutexGuard<'_, super::intents::IntentLog> {
        lock(&self.intents)
    }

    /// The journal (see the lock order on the field).
    pub(crate) fn journal(&self) -> MutexGuard<'_, Journal> {
        lock(&self.journal)
    }

    /// Moves `path` into the recovery directory under a name derived from `key` and the time;
    /// returns the new path. Falls back to copy + remove across file systems.
    pub(crate) fn keep_in_recovery(&self, path: &Path, key: &str) -> io::Result<PathBuf> {
        let dir = self.recovery_dir();
        let base = recovery_name(key, SystemTime::now());
        let mut dest = dir.join(&base);
        let mut n = 1;
        while dest.symlink_metadata().is_ok() {
            dest = dir.join(format!("{base}.{n}"));
            n += 1;
        }
        match std::fs::rename(path, &dest) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                std::fs::copy(path, &dest)?;
                std::fs::remove_file(path)?;
            }
            Err(e) => return Err(e),
        }
        let _ = super::journal::sync_dir(&dir);
        Ok(dest)
    }
}

/// `<key with / replaced by %2F>.<UTC timestamp>`, shortened (with a hash) when too long for a
/// file name.
pub fn recovery_name(key: &str, at: SystemTime) -> String {
    let escaped = key.replace('%', "%25").replace('/', "%2F");
    let escaped = if escaped.is_empty() {
        "%EMPTY".to_string()
    } else {
        escaped
    };
    let ts = chrono::DateTime::<chrono::Utc>::from(at).format("%Y%m%dT%H%M%SZ");
    // 255 bytes per name on common file systems; keep room for the timestamp and a counter.
    let escaped = if escaped.len() > 200 {
        use md5::Digest;
        let hash = hex::encode(md5::Md5::digest(key.as_bytes()));
        let mut cut = 150;
        while !escaped.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}..{}", &escaped[..cut], &hash[..16])
    } else {
        escaped
    };
    format!("{escaped}.{ts}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn open_creates_layout_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let c = CacheDir::open(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(c.recovery_dir().is_dir());
        assert!(c.staging_dir().is_dir());
        let err = CacheDir::open(&root).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("in use"), "{err}");
        drop(c);
        // Dropping releases the lock, as a dying process would.
        let _again = CacheDir::open(&root).unwrap();
    }

    #[test]
    fn staging_files_are_unique_private_and_own() {
        let dir = tempfile::tempdir().unwrap();
        let c = CacheDir::open(dir.path()).unwrap();
        let (p1, mut f1) = c.new_staging_file().unwrap();
        let (p2, _f2) = c.new_staging_file().unwrap();
        assert_ne!(p1, p2);
        f1.write_all(b"x").unwrap();
        let mode = std::fs::metadata(&p1).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(c.is_own_staging_file(&p1));
        assert!(!c.is_own_staging_file(&c.staging_dir().join("1-abc-0")));
        assert!(c.free_bytes().unwrap() > 0);
    }

    #[test]
    fn claim_binds_the_directory_to_one_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let c = CacheDir::open(dir.path()).unwrap();
        c.claim("b-1250000000:/p").unwrap();
        c.claim("b-1250000000:/p").unwrap();
        let err = c.claim("other-1250000000").unwrap_err();
        assert!(err.to_string().contains("b-1250000000:/p"), "{err}");
    }

    #[test]
    fn recovery_names() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(
            recovery_name("a/b c.txt", t),
            "a%2Fb c.txt.20231114T221320Z"
        );
        assert_eq!(recovery_name("100%/x", t), "100%25%2Fx.20231114T221320Z");
        let long = "é".repeat(300);
        let n = recovery_name(&long, t);
        assert!(n.len() < 255, "{}", n.len());
    }

    #[test]
    fn keep_in_recovery_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let c = CacheDir::open(dir.path()).unwrap();
        let (p1, _) = c.new_staging_file().unwrap();
        std::fs::write(&p1, b"one").unwrap();
        let (p2, _) = c.new_staging_file().unwrap();
        std::fs::write(&p2, b"two").unwrap();
        let d1 = c.keep_in_recovery(&p1, "k/x").unwrap();
        let d2 = c.keep_in_recovery(&p2, "k/x").unwrap();
        assert_ne!(d1, d2);
        assert_eq!(std::fs::read(&d1).unwrap(), b"one");
        assert_eq!(std::fs::read(&d2).unwrap(), b"two");
        assert!(!p1.exists());
        assert!(d1.starts_with(c.recovery_dir()));
    }
}
