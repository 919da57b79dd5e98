//! `FsError`: what a filesystem operation can fail with, its errno (an exhaustive match) and the
//! log level each failure deserves; plus the mapping from `StoreError`.
//!
//! Hard case, documented for users (README/man page): reading an ARCHIVE or DEEP_ARCHIVE object
//! that is not restored fails with **EACCES** ("Permission denied") when no restore is running
//! and **EAGAIN** ("Resource temporarily unavailable") while a restore is in progress — never a
//! hang and never EIO (docs/protocol.md §5). The fs logs one `warn!` line naming the file and the
//! command that restores it: `setfattr -n user.cos.restore -v days=1 <file>`.

use crate::store::StoreError;

/// A failed filesystem operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("no such file or directory")]
    NotFound,
    /// The name already exists.
    #[error("file exists")]
    Exists,
    /// rmdir / rename over a directory that has entries.
    #[error("directory not empty")]
    NotEmpty,
    /// A file where a directory was needed.
    #[error("not a directory")]
    NotDir,
    /// A directory where a file was needed.
    #[error("is a directory")]
    IsDir,
    /// A name component over 255 bytes or a key over COS's 850 bytes.
    #[error("name too long: {0}")]
    NameTooLong(String),
    /// A name COS cannot store (not UTF-8, control characters, `.`/`..`).
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// An argument the operation cannot accept.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Unknown inode or handle number (a kernel/adapter bug, or after forget).
    #[error("bad inode or handle")]
    BadHandle,
    /// The mount is read-only.
    #[error("read-only file system")]
    ReadOnly,
    /// Not possible on COS at all (hard links): EPERM, which POSIX specifies for `link` on a file
    /// system that does not support links, shown by `ln` as "Operation not permitted".
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    /// Not implemented for this kind (mknod of devices/fifos/sockets): ENOTSUP.
    #[error("operation not supported: {0}")]
    NotSupported(&'static str),
    /// xattr absent (ENODATA).
    #[error("no such attribute")]
    NoAttr,
    /// An xattr namespace this file system does not keep (`security.`, `trusted.`, `system.`
    /// other than ACLs): ENOTSUP, which tools take as "none here" for the whole file system.
    #[error("xattr namespace not supported")]
    NoNamespace,
    /// xattr value too big for the caller's buffer (ERANGE).
    #[error("buffer too small")]
    Range,
    /// A value over COS's metadata limit (E2BIG).
    #[error("value too large: {0}")]
    TooBig(String),
    /// A file too large for what was asked (EFBIG).
    #[error("file too large: {0}")]
    FileTooLarge(String),
    /// Archived object, not restored and no restore running (EACCES; see module doc).
    #[error("archived and not restored")]
    Archived,
    /// Archived object with a restore in progress (EAGAIN; see module doc).
    #[error("archived; restore in progress")]
    Restoring,
    /// The object changed under us (ESTALE).
    #[error("stale: {0}")]
    Stale(String),
    /// Permission refused by COS (EACCES).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// Concurrent-write conflict that survived retries (EBUSY).
    #[error("busy: {0}")]
    Busy(String),
    /// Storage unavailable after the client's retries (EIO: tools must not spin on EAGAIN; the
    /// log line has the COS code and request id).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Local or remote I/O failure (EIO).
    #[error("I/O error: {0}")]
    Io(String),
    /// Local cache file system full (ENOSPC).
    #[error("no space left in the cache directory")]
    NoSpace,
}

/// Result alias of the fs core.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// The errno reported to the kernel. Exhaustive: a new variant must choose one.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NameTooLong(_) => libc::ENAMETOOLONG,
            FsError::InvalidName(_) => libc::EINVAL,
            FsError::InvalidArgument(_) => libc::EINVAL,
            FsError::BadHandle => libc::EBADF,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotPermitted(_) => libc::EPERM,
            FsError::NotSupported(_) => libc::ENOTSUP,
            FsError::NoAttr => libc::ENODATA,
            FsError::NoNamespace => libc::ENOTSUP,
            FsError::Range => libc::ERANGE,
            FsError::TooBig(_) => libc::E2BIG,
            FsError::FileTooLarge(_) => libc::EFBIG,
            FsError::Archived => libc::EACCES,
            FsError::Restoring => libc::EAGAIN,
            FsError::Stale(_) => libc::ESTALE,
            FsError::AccessDenied(_) => libc::EACCES,
            FsError::Busy(_) => libc::EBUSY,
            FsError::Unavailable(_) => libc::EIO,
            FsError::Io(_) => libc::EIO,
            FsError::NoSpace => libc::ENOSPC,
        }
    }

    /// How loudly to log this failure: expected outcomes of ordinary tools (ENOENT from a
    /// lookup, EEXIST, ENOTEMPTY, ENODATA, ...) at debug; user-visible refusals at info;
    /// failures of COS or the local disk at warn/error.
    pub fn log_level(&self) -> log::Level {
        match self {
            FsError::NotFound
            | FsError::Exists
            | FsError::NotEmpty
            | FsError::NotDir
            | FsError::IsDir
            | FsError::NoAttr
            | FsError::NoNamespace
            | FsError::Range => log::Level::Debug,
            FsError::NameTooLong(_)
            | FsError::InvalidName(_)
            | FsError::InvalidArgument(_)
            | FsError::ReadOnly
            | FsError::NotPermitted(_)
            | FsError::NotSupported(_)
            | FsError::TooBig(_)
            | FsError::FileTooLarge(_)
            | FsError::BadHandle => log::Level::Info,
            FsError::Archived
            | FsError::Restoring
            | FsError::Stale(_)
            | FsError::AccessDenied(_)
            | FsError::Busy(_) => log::Level::Warn,
            FsError::Unavailable(_) | FsError::Io(_) | FsError::NoSpace => log::Level::Error,
        }
    }

    /// Logs this error for operation `op` on `what` at its level.
    pub fn log(&self, op: &str, what: &str) {
        crate::store::metrics::count_errno(self.errno());
        log::log!(
            self.log_level(),
            "{op} {what}: {self} (errno {})",
            self.errno()
        );
    }
}

impl From<StoreError> for FsError {
    /// Total mapping; the cases follow docs/protocol.md §5's table.
    fn from(e: StoreError) -> FsError {
        match e {
            StoreError::NotFound(_) => FsError::NotFound,
            // The bucket vanished under a live mount: nothing under it exists any more.
            StoreError::NoSuchBucket(_) => FsError::NotFound,
            // A conditional request failed: the object changed since we looked.
            StoreError::PreconditionFailed(m) => FsError::Stale(m),
            StoreError::Archived { restoring: false } => FsError::Archived,
            StoreError::Archived { restoring: true } => FsError::Restoring,
            StoreError::AccessDenied { code, message } => {
                FsError::AccessDenied(format!("{code}: {message}"))
            }
            // By COS's error code, never by its message text.
            StoreError::KeyTooLong(m) => FsError::NameTooLong(m),
            StoreError::InvalidName(m) => FsError::InvalidName(m),
            StoreError::TooLarge(m) => FsError::FileTooLarge(m),
            StoreError::InvalidRequest { code, message } => {
                FsError::InvalidArgument(format!("{code}: {message}"))
            }
            StoreError::Conflict { code, message } => FsError::Busy(format!("{code}: {message}")),
            StoreError::NotSupported(m) => FsError::NotSupported(leak_free(m)),
            e @ StoreError::Unavailable { .. } => FsError::Unavailable(e.to_string()),
            StoreError::Network(m) => FsError::Unavailable(format!("network: {m}")),
            StoreError::Protocol(m) => FsError::Io(format!("protocol: {m}")),
            StoreError::Io(m) => FsError::Io(m),
        }
    }
}

/// `NotSupported` carries a static reason; a store's message is logged by the caller instead.
fn leak_free(m: String) -> &'static str {
    log::info!("store does not support an operation: {m}");
    "not supported by the storage endpoint"
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> FsError {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            FsError::NoSpace
        } else {
            FsError::Io(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_documented_errnos() {
        let cases: Vec<(StoreError, i32)> = vec![
            (StoreError::NotFound("k".into()), libc::ENOENT),
            (StoreError::Archived { restoring: false }, libc::EACCES),
            (StoreError::Archived { restoring: true }, libc::EAGAIN),
            (StoreError::PreconditionFailed("x".into()), libc::ESTALE),
            (
                StoreError::KeyTooLong("Your key is too long".into()),
                libc::ENAMETOOLONG,
            ),
            // The message never decides: only the code does.
            (StoreError::InvalidName("KeyTooLong".into()), libc::EINVAL),
            (
                StoreError::InvalidName("InvalidObjectName".into()),
                libc::EINVAL,
            ),
            (StoreError::TooLarge("x".into()), libc::EFBIG),
            (StoreError::Network("reset".into()), libc::EIO),
            (StoreError::NotSupported("x".into()), libc::ENOTSUP),
            (
                StoreError::AccessDenied {
                    code: "AccessDenied".into(),
                    message: "m".into(),
                },
                libc::EACCES,
            ),
            (
                StoreError::Conflict {
                    code: "PathConflict".into(),
                    message: "m".into(),
                },
                libc::EBUSY,
            ),
            (StoreError::Io("disk".into()), libc::EIO),
        ];
        for (se, errno) in cases {
            let text = se.to_string();
            assert_eq!(FsError::from(se).errno(), errno, "{text}");
        }
    }

    #[test]
    fn levels_are_quiet_for_ordinary_outcomes() {
        assert_eq!(FsError::NotFound.log_level(), log::Level::Debug);
        assert_eq!(FsError::Archived.log_level(), log::Level::Warn);
        assert_eq!(FsError::Io("x".into()).log_level(), log::Level::Error);
        assert_eq!(FsError::NotPermitted("link").errno(), libc::EPERM);
        assert_eq!(FsError::NotSupported("mknod").errno(), libc::ENOTSUP);
        let nospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(FsError::from(nospc), FsError::NoSpace);
    }
}
