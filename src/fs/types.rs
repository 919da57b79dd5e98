//! The plain values the fs core hands to its callers (the FUSE adapter, tests): inode numbers,
//! handles, attributes, directory entries, setattr requests, statfs. Ours, not fuser's; the
//! adapter converts them in `fuse::convert`.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

/// An inode number. 1 is the root of the mount.
pub type InodeNo = u64;

/// A file or directory handle number returned by open/opendir/create.
pub type Fh = u64;

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT_INO: InodeNo = 1;

/// What kind of object an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file (an object).
    File,
    /// A directory (a `dir/` marker or a common prefix).
    Dir,
    /// A symbolic link (object body = target, `S_IFLNK` in `x-cos-meta-mode`).
    Symlink,
    /// A named pipe (an empty object, `S_IFIFO` in `x-cos-meta-mode`, as s3fs stores it).
    Fifo,
    /// A Unix socket (an empty object, `S_IFSOCK`).
    Socket,
    /// A character device (an empty object, `S_IFCHR`, the number in `x-cos-meta-rdev`).
    CharDevice,
    /// A block device (an empty object, `S_IFBLK`, the number in `x-cos-meta-rdev`).
    BlockDevice,
}

impl FileKind {
    /// The `S_IFMT` bits of this kind.
    pub fn type_bits(self) -> u32 {
        match self {
            FileKind::File => libc::S_IFREG,
            FileKind::Dir => libc::S_IFDIR,
            FileKind::Symlink => libc::S_IFLNK,
            FileKind::Fifo => libc::S_IFIFO,
            FileKind::Socket => libc::S_IFSOCK,
            FileKind::CharDevice => libc::S_IFCHR,
            FileKind::BlockDevice => libc::S_IFBLK,
        }
    }

    /// The kind of `S_IFMT` bits (None for unknown bits).
    pub fn from_type_bits(bits: u32) -> Option<FileKind> {
        [
            FileKind::File,
            FileKind::Dir,
            FileKind::Symlink,
            FileKind::Fifo,
            FileKind::Socket,
            FileKind::CharDevice,
            FileKind::BlockDevice,
        ]
        .into_iter()
        .find(|k| k.type_bits() == bits & libc::S_IFMT)
    }

    /// A FIFO, socket or device: an empty object whose mode says what it is.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            FileKind::Fifo | FileKind::Socket | FileKind::CharDevice | FileKind::BlockDevice
        )
    }
}

/// Attributes of an inode, as `stat` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: InodeNo,
    /// Size in bytes (0 for directories, target length for symlinks).
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
    /// Kind.
    pub kind: FileKind,
    /// Permission bits (`0o7777` mask).
    pub perm: u16,
    /// Link count (1 for files, 2 for directories).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Device number (devices only).
    pub rdev: u32,
}

/// A lookup/create/mkdir answer: attributes plus how long the kernel may cache them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The attributes (carrying the inode number).
    pub attr: Attr,
    /// Validity of both the name and the attributes in the kernel's caches.
    pub ttl: Duration,
    /// Inode generation (always 0: inode numbers are never reused within a mount).
    pub generation: u64,
}

/// One directory entry produced by readdir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number of the entry.
    pub ino: InodeNo,
    /// The offset to pass to the next readdir to continue after this entry.
    pub offset: i64,
    /// Kind.
    pub kind: FileKind,
    /// Name (one path component).
    pub name: OsString,
}

/// Where readdir puts entries (fuser's `ReplyDirectory` in the adapter, a `Vec` in tests).
pub trait DirSink: Send {
    /// Adds an entry; returns true when the buffer is full (the entry was NOT added).
    fn add(&mut self, entry: DirEntry) -> bool;
}

/// Where readdirplus puts entries with their look-up results (fuser's `ReplyDirectoryPlus`
/// in the adapter, a `Vec` in tests).
pub trait DirPlusSink: Send {
    /// Adds an entry and what a lookup of it gives; returns true when the buffer is full
    /// (the entry was NOT added, so the caller takes back its lookup count).
    fn add(&mut self, entry: DirEntry, looked_up: &Entry) -> bool;
}

impl DirPlusSink for Vec<(DirEntry, Entry)> {
    fn add(&mut self, entry: DirEntry, looked_up: &Entry) -> bool {
        self.push((entry, looked_up.clone()));
        false
    }
}

impl DirSink for Vec<DirEntry> {
    fn add(&mut self, entry: DirEntry) -> bool {
        self.push(entry);
        false
    }
}

/// A time in a setattr request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// The current time (`UTIME_NOW`).
    Now,
    /// A given time.
    At(SystemTime),
}

/// What setattr changes (None = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New mode (permission bits; file-type bits are ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate).
    pub size: Option<u64>,
    /// New access time (accepted, not stored: COS keeps one time).
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// What statfs reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks (of `frsize`).
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Maximum name length.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}
