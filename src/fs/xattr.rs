//! Extended attributes: the `user.cos.*` namespace of issue 4 (not implemented yet: every call
//! answers ENOTSUP, except listxattr which reports none).

use std::ffi::OsStr;

use super::error::{FsError, FsResult};
use super::types::InodeNo;
use super::Fs;

impl Fs {
    /// getxattr.
    pub async fn getxattr(&self, ino: InodeNo, _name: &OsStr) -> FsResult<Vec<u8>> {
        self.table.path(ino)?;
        Err(FsError::NoAttr)
    }

    /// setxattr.
    pub async fn setxattr(
        &self,
        ino: InodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> FsResult<()> {
        self.table.path(ino)?;
        Err(FsError::NotSupported("xattrs are not implemented yet"))
    }

    /// listxattr: the names, each NUL-terminated.
    pub async fn listxattr(&self, ino: InodeNo) -> FsResult<Vec<u8>> {
        self.table.path(ino)?;
        Ok(Vec::new())
    }

    /// removexattr.
    pub async fn removexattr(&self, ino: InodeNo, _name: &OsStr) -> FsResult<()> {
        self.table.path(ino)?;
        Err(FsError::NotSupported("xattrs are not implemented yet"))
    }
}
