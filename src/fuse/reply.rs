//! Answers to the kernel: replies built from `fs` results (errors logged and turned into
//! errnos) and the notifications that make the kernel forget cached attributes.

use fuser::{Generation, INodeNo, ReplyEmpty, ReplyEntry, ReplyXattr};

use super::convert::{errno, file_attr};
use crate::fs::{Entry, FsError};

/// The kernel's caches over FUSE notifications (`fs::KernelCache`).
pub struct KernelNotifier(pub fuser::Notifier);

impl crate::fs::KernelCache for KernelNotifier {
    fn invalidate_attrs(&self, ino: u64) {
        // Offset -1: attributes only, no page-cache range (which could wait on page locks
        // held by reads this daemon has not answered yet).
        match self.0.inval_inode(INodeNo(ino), -1, 0) {
            Ok(()) => {}
            // The kernel no longer has the inode: nothing to forget.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => log::warn!("cannot invalidate the kernel's attributes of inode {ino}: {e}"),
        }
    }
}

/// Logs `e` for `op` on `what` and gives the errno to answer.
pub(super) fn fail(e: &FsError, op: &str, what: impl std::fmt::Display) -> fuser::Errno {
    e.log(op, &what.to_string());
    errno(e)
}

/// Replies to a call that answers an entry.
pub(super) fn reply_entry(
    reply: ReplyEntry,
    r: Result<Entry, FsError>,
    op: &str,
    what: impl std::fmt::Display,
) {
    match r {
        Ok(e) => reply.entry(&e.ttl, &file_attr(&e.attr), Generation(e.generation)),
        Err(e) => reply.error(fail(&e, op, what)),
    }
}

/// Replies to a call that answers nothing but success.
pub(super) fn reply_empty(
    reply: ReplyEmpty,
    r: Result<(), FsError>,
    op: &str,
    what: impl std::fmt::Display,
) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(fail(&e, op, what)),
    }
}

/// Replies to an xattr read: its size when `size` is 0, else its bytes if they fit.
pub(super) fn reply_xattr(
    reply: ReplyXattr,
    r: Result<Vec<u8>, FsError>,
    size: u32,
    op: &str,
    what: String,
) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() <= size as usize => reply.data(&v),
        Ok(_) => reply.error(errno(&FsError::Range)),
        Err(e) => reply.error(fail(&e, op, what)),
    }
}
