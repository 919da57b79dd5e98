//! Pure conversions between the fs core's types and fuser's (attributes, kinds, errnos, times,
//! flags), unit-tested here so the adapter only wires calls.

use std::time::UNIX_EPOCH;

use fuser::{Errno, FileAttr, FileType, INodeNo, ReplyDirectory, TimeOrNow};

use crate::fs::{Attr, DirEntry, DirSink, FileKind, FsError, SetTime};

/// fuser's file type of our kind.
pub fn file_type(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

/// fuser's attributes of ours.
pub fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: UNIX_EPOCH,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

/// The errno of an fs error, as fuser wants it.
pub fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

/// A setattr time.
pub fn set_time(t: TimeOrNow) -> SetTime {
    match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => SetTime::At(t),
    }
}

/// A `DirSink` over fuser's directory reply buffer.
pub struct ReplySink(pub ReplyDirectory);

impl DirSink for ReplySink {
    fn add(&mut self, e: DirEntry) -> bool {
        let offset = u64::try_from(e.offset).unwrap_or(0);
        self.0
            .add(INodeNo(e.ino), offset, file_type(e.kind), &e.name)
    }
}

/// readdirplus's sink over fuser's reply.
pub struct ReplyPlusSink(pub fuser::ReplyDirectoryPlus);

impl crate::fs::types::DirPlusSink for ReplyPlusSink {
    fn add(&mut self, e: DirEntry, looked_up: &crate::fs::Entry) -> bool {
        let offset = u64::try_from(e.offset).unwrap_or(0);
        self.0.add(
            INodeNo(e.ino),
            offset,
            &e.name,
            &looked_up.ttl,
            &file_attr(&looked_up.attr),
            fuser::Generation(looked_up.generation),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn attrs_and_kinds_convert() {
        let t = UNIX_EPOCH + Duration::from_secs(7);
        let a = Attr {
            ino: 9,
            size: 10,
            blocks: 1,
            atime: t,
            mtime: t,
            ctime: t,
            kind: FileKind::Symlink,
            perm: 0o777,
            nlink: 1,
            uid: 3,
            gid: 4,
            blksize: 4096,
            rdev: 0x0103,
        };
        let f = file_attr(&a);
        assert_eq!(f.rdev, 0x0103);
        assert_eq!(file_type(FileKind::Fifo), FileType::NamedPipe);
        assert_eq!(file_type(FileKind::BlockDevice), FileType::BlockDevice);
        assert_eq!(f.ino, INodeNo(9));
        assert_eq!(
            (f.size, f.perm, f.uid, f.gid, f.mtime),
            (10, 0o777, 3, 4, t)
        );
        assert_eq!(f.kind, FileType::Symlink);
        assert_eq!(file_type(FileKind::Dir), FileType::Directory);
        assert_eq!(file_type(FileKind::File), FileType::RegularFile);
    }

    #[test]
    fn errnos_times_and_modes_convert() {
        assert_eq!(errno(&FsError::NotFound), Errno::ENOENT);
        assert_eq!(errno(&FsError::NotEmpty), Errno::from_i32(libc::ENOTEMPTY));
        assert_eq!(errno(&FsError::Archived), Errno::from_i32(libc::EACCES));
        assert_eq!(set_time(TimeOrNow::Now), SetTime::Now);
        let t = SystemTime::now();
        assert_eq!(set_time(TimeOrNow::SpecificTime(t)), SetTime::At(t));
    }
}
