//! One inode, one truth: the state every handle of an inode shares.
//!
//! A [`Node`] lives in the inode table (one per inode) and holds what the bytes of a file are
//! right now:
//!
//! ```text
//!            first write / truncate / O_TRUNC
//!   Remote ─────────────────────────────────▶ Staged { staging file, size, stat, base ETag }
//!     ▲  (object in COS, or the newest             │  every handle reads and writes this
//!     │   pending upload copy of its key)           │  one file (two appenders, a reader and
//!     │                                             │  a writer, mmap: one file, as on disk)
//!     └──── hand-off (flush/release/fsync/rename) ──┘  the queue owns the file from then on,
//!           = Uploading until COS has it             reads use the queue's pending copy
//!
//!   any state ── unlink / replaced by rename ──▶ detached in the table: the open handles keep
//!                                               reading and writing the staging file; it is
//!                                               never uploaded and is dropped at last release
//! ```
//!
//! # Lock order (the whole fs core follows it)
//! 1. `Fs::ns` (tokio `RwLock`): read by every change that names a key (hand-off, file rename,
//!    unlink), written by a directory rename for its whole duration;
//! 2. a node's `gate` (tokio `Mutex`): serializes the node's COS-visible transitions
//!    (materialize, hand-off, rename, unlink). The only lock held across a COS request, and
//!    only one gate is ever held at a time;
//! 3. a node's `content` (tokio `Mutex`): held across local disk I/O on the staging file only,
//!    never across a COS request;
//! 4. a handle's reader (tokio `Mutex`): held across that handle's own ranged GETs, never while
//!    taking any of the above;
//! 5. std leaf mutexes (`Table`, `AttrCache`, handles map, `DeleteBatch`): one at a time, never
//!    across `.await`.
//!
//! Never two handles' locks at once; never a node's content lock across a COS request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::meta::Stat;
use super::types::FileKind;
use crate::cache::early::EarlyUpload;
use crate::store::PutOptions;

/// A local copy holding the whole content of a file.
pub struct Staged {
    /// Path of the staging file (handed to the upload queue at hand-off).
    pub path: PathBuf,
    /// The open staging file, shared by every handle.
    pub file: Arc<std::fs::File>,
    /// Current size.
    pub size: u64,
    /// Attributes (mode, owner, times) the upload will carry.
    pub stat: Stat,
    /// Differs from what COS or the queue holds.
    pub dirty: bool,
    /// Data was written since the last hand-off (a flush with nothing written, e.g. a shell's
    /// `dup2`+`close` right after `open(O_TRUNC)`, keeps the file local so one `echo > f`
    /// uploads once; release still hands off a truncated or new empty file).
    pub wrote: bool,
    /// ETag of the object the copy started from (None = new file).
    pub base_etag: Option<String>,
    /// Headers to keep on upload (content type, other user metadata, storage class).
    pub base_opts: PutOptions,
    /// The multipart upload started while the file is written (`cache::early`); dropping it
    /// (unlink, last close without hand-off, times set by hand) aborts it.
    pub early: Option<EarlyUpload>,
}

/// What the bytes of a file are now.
// One per inode behind its own mutex: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Content {
    /// The object in COS, or the newest pending upload copy of its key.
    Remote,
    /// A local staging file (see [`Staged`]).
    Staged(Staged),
}

impl Content {
    /// The staged copy, if any.
    pub fn staged(&self) -> Option<&Staged> {
        match self {
            Content::Staged(s) => Some(s),
            Content::Remote => None,
        }
    }

    /// The staged copy, mutable.
    pub fn staged_mut(&mut self) -> Option<&mut Staged> {
        match self {
            Content::Staged(s) => Some(s),
            Content::Remote => None,
        }
    }
}

/// The shared state of one inode (see module doc).
pub struct Node {
    /// Kind, fixed for the inode's life (a kind change makes a new inode).
    pub kind: FileKind,
    /// Serializes COS-visible transitions (lock order 2).
    pub gate: tokio::sync::Mutex<()>,
    /// The content state (lock order 3).
    pub content: tokio::sync::Mutex<Content>,
    /// Bumped on every change of the content, so a handle's cached reader knows it is stale.
    version: AtomicU64,
    /// True while `content` is Staged (readable without the lock, for listings and forget).
    staged: std::sync::atomic::AtomicBool,
    /// Open handles of this inode (the last release drops a clean staging copy).
    opens: AtomicU64,
    /// What the kernel was last given of this inode's attributes, while it may still cache
    /// them (leaf lock).
    told: std::sync::Mutex<Option<Told>>,
}

/// Attributes the kernel holds for an inode, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    /// Size the kernel was given.
    pub size: u64,
    /// Modification time the kernel was given.
    pub mtime: std::time::SystemTime,
    /// End of the validity the reply carried.
    pub until: std::time::Instant,
}

impl Node {
    /// A node in the Remote state.
    pub fn new(kind: FileKind) -> Arc<Node> {
        Arc::new(Node {
            kind,
            gate: tokio::sync::Mutex::new(()),
            content: tokio::sync::Mutex::new(Content::Remote),
            version: AtomicU64::new(0),
            staged: std::sync::atomic::AtomicBool::new(false),
            opens: AtomicU64::new(0),
            told: std::sync::Mutex::new(None),
        })
    }

    /// The content version (see field doc).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Records a change of the content (call with the content lock held).
    pub fn changed(&self, content: &Content) {
        self.staged.store(
            matches!(content, Content::Staged(_)),
            std::sync::atomic::Ordering::SeqCst,
        );
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// A handle of this inode was opened.
    pub fn opened(&self) {
        self.opens.fetch_add(1, Ordering::SeqCst);
    }

    /// A handle was released; returns the handles still open.
    pub fn closed(&self) -> u64 {
        let prev = self
            .opens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        prev.saturating_sub(1)
    }

    /// True while a handle of this inode is open.
    pub fn is_open(&self) -> bool {
        self.opens.load(Ordering::SeqCst) > 0
    }

    /// Records that the kernel was given `size` and `mtime`, valid for `ttl`.
    pub fn told(&self, size: u64, mtime: std::time::SystemTime, ttl: std::time::Duration) {
        let until = std::time::Instant::now() + ttl;
        *self.told.lock().unwrap_or_else(|p| p.into_inner()) = Some(Told { size, mtime, until });
    }

    /// True when the kernel may still hold a size or mtime other than these (so it must be
    /// told to forget them); forgets the record then, as the caller invalidates.
    pub fn kernel_differs(&self, size: u64, mtime: std::time::SystemTime) -> bool {
        let mut g = self.told.lock().unwrap_or_else(|p| p.into_inner());
        match *g {
            Some(t)
                if t.until > std::time::Instant::now() && (t.size, t.mtime) != (size, mtime) =>
            {
                *g = None;
                true
            }
            _ => false,
        }
    }

    /// True while a staging file holds the content (a hint: check under the lock to act).
    pub fn is_staged(&self) -> bool {
        self.staged.load(Ordering::SeqCst)
    }
}
