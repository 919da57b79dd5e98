//! Open file handles: create, open, read, flush, release, fsync. A handle holds only per-open
//! data (flags, its own read-ahead state); the file's bytes and attributes live in the inode's
//! shared [`Node`] (`node.rs`), so every handle of one file sees one file.

use std::ffi::OsStr;
use std::sync::Arc;

use bytes::Bytes;

use super::error::{FsError, FsResult};
use super::meta::Stat;
use super::node::{Content, Node, Staged};
use super::path::{join, ValidName};
use super::read::{read_at_full, Source};
use super::types::{Entry, Fh, FileKind, InodeNo};
use super::uploads::Uploads;
use super::write::HandOff;
use super::{Fs, Handle};

/// An open file.
pub struct FileHandle {
    /// Its inode (the path is looked up at each use, so renames while open are followed).
    pub(crate) ino: InodeNo,
    /// The inode's shared state.
    pub(crate) node: Arc<Node>,
    /// Opened for writing.
    pub(crate) writable: bool,
    /// `O_APPEND`: every write goes to the end.
    pub(crate) append: bool,
    /// This handle's reader of the Remote content, with the node version it was made for.
    /// Lock order 4 (`node.rs`): held across this handle's GETs only.
    reader: tokio::sync::Mutex<Option<(u64, Source)>>,
}

impl Fs {
    fn new_file_handle(&self, ino: InodeNo, node: Arc<Node>, flags: i32) -> Fh {
        node.opened();
        let acc = flags & libc::O_ACCMODE;
        let h = FileHandle {
            ino,
            node,
            writable: acc != libc::O_RDONLY,
            append: flags & libc::O_APPEND != 0,
            reader: tokio::sync::Mutex::new(None),
        };
        self.add_handle(Handle::File(Arc::new(h)))
    }

    /// create: a new empty file, staged locally; nothing is sent until flush/close. An existing
    /// file (a stale negative dentry) is opened instead, as `open(O_CREAT)` does.
    pub async fn create(
        &self,
        parent: InodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(Entry, Fh)> {
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let dir = self.dir_path(parent)?;
        let rel = join(&dir, name.as_str());
        let key = self.key_of(&rel, FileKind::File)?;
        // In a directory this mount created, a name it does not know is absent: no request
        // (`tar x`, `cp -r` of many small files). Elsewhere COS is asked, and when it cannot
        // answer (the backend is down) the file is created in the cache all the same: its
        // upload waits in the queue, and recovery keeps the local copy aside should COS turn
        // out to hold a different object by then.
        let known_absent = self.own.known_absent(&rel)
            && self.table.child_node(parent, name.as_str()).is_none()
            && self.uploads.pending(key.as_str()).is_none();
        let found = if known_absent {
            Err(FsError::NotFound)
        } else {
            self.stat_path(&rel).await
        };
        match found {
            Err(FsError::Unavailable(why)) => {
                log::warn!("create {rel}: COS unreachable ({why}); creating it in the cache");
            }
            Ok(_) if flags & libc::O_EXCL != 0 => return Err(FsError::Exists),
            Ok(s) if s.kind == FileKind::Dir => return Err(FsError::IsDir),
            Ok(s) => {
                let ino = self.table.upsert(parent, name.as_str(), s.kind, true);
                let fh = self.open(ino, flags).await?;
                let s = self.stat_ino(ino).await?;
                return Ok((self.entry_of(ino, &s), fh));
            }
            Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let (path, file) = self.uploads.new_staging_file_for(key.as_str())?;
        let mut s = Stat::new_local(FileKind::File, mode, uid, gid);
        self.inherit_acl(parent, &mut s).await;
        let mut base_opts = self.new_object_opts(&s);
        base_opts.headers.user_meta.clear();
        base_opts.headers.content_type = self.cfg.content_type.for_name(name.as_str());
        let ino = self
            .table
            .upsert(parent, name.as_str(), FileKind::File, true);
        let node = self.table.node(ino)?;
        {
            let mut c = node.content.lock().await;
            *c = Content::Staged(Staged {
                path,
                file: Arc::new(file),
                size: 0,
                stat: s.clone(),
                dirty: true,
                wrote: false,
                base_etag: None,
                base_opts,
                early: None,
            });
            node.changed(&c);
        }
        self.deletes.cancel(key.as_str());
        self.attrs.invalidate(&rel);
        self.own.added(&rel);
        self.touch_dir_created(parent, name.as_str(), FileKind::File);
        let fh = self.new_file_handle(ino, node, flags);
        Ok((self.entry_of(ino, &s), fh))
    }

    /// open: read-only handles read the shared state or COS; `O_TRUNC` stages an empty copy.
    pub async fn open(&self, ino: InodeNo, flags: i32) -> FsResult<Fh> {
        let s = self.stat_ino(ino).await?;
        if s.kind == FileKind::Dir {
            return Err(FsError::IsDir);
        }
        let node = self.table.node(ino)?;
        let trunc = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
        if !trunc {
            let s = self.revalidate_on_open(ino, &node, s).await?;
            self.kernel_catch_up(ino, &node, &s);
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            self.check_writable()?;
            if trunc {
                self.resize(ino, &node, 0, false).await?;
            }
        }
        Ok(self.new_file_handle(ino, node, flags))
    }

    /// Close-to-open consistency: an open checks the object with one HEAD unless this mount
    /// validated it within `open_revalidate`, holds it open, or has it staged or pending
    /// (then this mount's bytes are the newest). A changed object replaces the cached
    /// attributes (and every new reader starts from them); a deleted one is ENOENT.
    async fn revalidate_on_open(&self, ino: InodeNo, node: &Arc<Node>, s: Stat) -> FsResult<Stat> {
        if node.is_staged() || node.is_open() {
            return Ok(s);
        }
        let Ok(rel) = self.table.path(ino) else {
            return Ok(s);
        };
        let key = self.key_of(&rel, FileKind::File)?;
        if self.uploads.pending(key.as_str()).is_some()
            || self.attrs.validated_within(&rel, self.cfg.open_revalidate)
        {
            return Ok(s);
        }
        let since = self.attrs.epoch();
        let fresh = self.revalidate(&rel, s).await?;
        self.attrs
            .put_seen(&rel, fresh, since)
            .ok_or(FsError::NotFound)
    }

    /// read: from the shared staging copy, else through this handle's reader.
    pub async fn read(&self, ino: InodeNo, fh: Fh, offset: i64, size: u32) -> FsResult<Bytes> {
        let h = self.file_handle(fh)?;
        let offset =
            u64::try_from(offset).map_err(|_| FsError::InvalidArgument("offset".into()))?;
        let version = {
            let c = h.node.content.lock().await;
            if let Some(st) = c.staged() {
                let mut buf = vec![0u8; size as usize];
                let n = read_at_full(&st.file, &mut buf, offset)?;
                buf.truncate(n);
                return Ok(Bytes::from(buf));
            }
            h.node.version()
        };
        let rel = self.table.path(h.ino).or_else(|_| self.table.path(ino))?;
        let mut r = h.reader.lock().await;
        if r.as_ref().map(|(v, _)| *v) != Some(version) {
            let s = self.stat_path(&rel).await?;
            let key = self.key_of(&rel, FileKind::File)?;
            *r = Some((
                version,
                self.open_source_at(key.as_str(), s.size, s.etag.clone()),
            ));
        }
        match r.as_mut() {
            Some((_, src)) => self.read_source(src, &rel, offset, size).await,
            None => Err(FsError::BadHandle),
        }
    }

    /// flush (each close): hands written data to the upload queue.
    ///
    /// A small file (≤ `close_wait_max_size`) is then waited for, up to `close_wait`, so that
    /// after `close` other COS clients see it, as with s3fs/cosfs; larger files upload in the
    /// background. With `close_wait` zero, close returns once the data is queued: a daemon
    /// crash loses nothing (page cache), the queue fsyncs what has not landed within its lazy
    /// window, and a single-threaded `cp -r` or `tar x` uploads its files in parallel. A slow
    /// or failed upload never fails close: the data is journaled and the task stays visible
    /// in `cosfuse tasks`.
    pub async fn flush(&self, _ino: InodeNo, fh: Fh) -> FsResult<()> {
        let h = self.file_handle(fh)?;
        if !h.writable {
            return Ok(());
        }
        if let Some((key, size)) = self
            .hand_off_as(h.ino, &h.node, false, HandOff::Close)
            .await?
        {
            self.close_wait(&key, size).await?;
        }
        Ok(())
    }

    /// True when close waits for the upload of a file of `size` bytes.
    pub(crate) fn close_waits_for(&self, size: u64) -> bool {
        size <= self.cfg.close_wait_max_size && !self.cfg.close_wait.is_zero()
    }

    /// Waits (up to `close_wait`) for the upload of a small file handed off by close; when the
    /// object is not in COS by then, the hand-off (which did no fsync) is made durable before
    /// close returns. Fails only when that fsync fails.
    async fn close_wait(&self, key: &str, size: u64) -> FsResult<()> {
        if !self.close_waits_for(size) {
            return Ok(());
        }
        match tokio::time::timeout(self.cfg.close_wait, self.uploads.wait_landed(key)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => log::warn!("{key}: upload after close failed for now: {e}"),
            Err(_) => log::info!("{key}: upload continues in the background after close"),
        }
        self.persist(key).await
    }

    /// Makes the pending upload of `key` durable (see `close_wait`).
    async fn persist(&self, key: &str) -> FsResult<()> {
        let uploads = self.uploads.clone();
        let k = key.to_string();
        blocking(move || uploads.persist(&k)).await.map_err(|e| {
            log::error!("{key}: could not make the closed file durable: {e}");
            e
        })
    }

    /// release (last close of a descriptor): hands off what is left, then drops the handle;
    /// the last handle of a node drops a staging copy nobody needs (clean, or unlinked).
    pub async fn release(&self, _ino: InodeNo, fh: Fh) -> FsResult<()> {
        let Handle::File(h) = self.take_handle(fh)? else {
            return Err(FsError::IsDir);
        };
        let left = h.node.closed();
        let res = if h.writable || left == 0 {
            self.hand_off(h.ino, &h.node, true).await.map(|_| ())
        } else {
            Ok(())
        };
        if left == 0 {
            let _g = h.node.gate.lock().await;
            let mut c = h.node.content.lock().await;
            let drop_it = match c.staged() {
                Some(st) => !st.dirty || self.table.path(h.ino).is_err(),
                None => false,
            };
            if drop_it {
                if let Content::Staged(st) = std::mem::replace(&mut *c, Content::Remote) {
                    let _ = std::fs::remove_file(&st.path);
                }
                h.node.changed(&c);
            }
        }
        res
    }

    /// fsync: hand off, then wait until COS has the file.
    ///
    /// The hand-off does not fsync the staging file (`HandOff::Fsync`): COS is about to have
    /// the data, and forcing it to the local disk first cost a third of a second per 512 MiB
    /// and stalled the disk's other writers. Whenever this returns without COS having it (an
    /// error, the deadline, or the caller gone: the guard), the data is made durable locally
    /// first, so an fsync never ends with the data in neither place.
    pub async fn fsync(&self, ino: InodeNo, fh: Fh, _datasync: bool) -> FsResult<()> {
        let h = self.file_handle(fh)?;
        let handed = self
            .hand_off_as(h.ino, &h.node, true, HandOff::Fsync)
            .await?;
        let key = match handed {
            Some((key, _)) => key,
            None => {
                let Ok(rel) = self.table.path(h.ino).or_else(|_| self.table.path(ino)) else {
                    // Unlinked while open: its data is never uploaded, nothing to wait for.
                    return Ok(());
                };
                self.key_of(&rel, FileKind::File)?.to_string()
            }
        };
        let mut guard = PersistOnDrop {
            uploads: Some(self.uploads.clone()),
            key: key.clone(),
        };
        // Waits through scheduled retries, but not forever: the data stays journaled and keeps
        // uploading; the caller learns COS does not have it yet.
        let res =
            match tokio::time::timeout(self.cfg.op_timeout, self.uploads.wait_landed(&key)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(FsError::from(e)),
                Err(_) => {
                    log::warn!(
                        "fsync {key}: not in COS within {:?}; the upload continues",
                        self.cfg.op_timeout
                    );
                    Err(FsError::Io(format!(
                        "{key}: COS did not take the data within {:?}",
                        self.cfg.op_timeout
                    )))
                }
            };
        guard.uploads = None;
        if res.is_err() {
            self.persist(&key).await?;
        }
        res
    }

    /// The attributes of an inode from its shared state when staged (None otherwise).
    pub(crate) async fn staged_stat(&self, node: &Node) -> Option<Stat> {
        let c = node.content.lock().await;
        c.staged().map(|st| {
            let mut s = st.stat.clone();
            s.size = st.size;
            s
        })
    }

    /// What an inode is now: its staged state, else what its path resolves to.
    pub(crate) async fn stat_ino(&self, ino: InodeNo) -> FsResult<Stat> {
        let node = self.table.node(ino)?;
        if let Some(s) = self.staged_stat(&node).await {
            return Ok(s);
        }
        let rel = self.table.path(ino)?;
        let s = self.stat_path(&rel).await?;
        if s.kind != node.kind {
            // The name was given to something else (unlink + mkdir) while this look-up ran:
            // this inode is gone. (Attributes of another type would make the kernel mark the
            // inode bad, and every later call on it fail with EIO.)
            return Err(FsError::NotFound);
        }
        Ok(s)
    }
}

/// Runs blocking local file work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> FsResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(FsError::Io(format!("blocking task: {e}"))),
    }
}

/// Makes the uploads of `key` durable (`Uploads::persist`, off the runtime's workers) when an
/// fsync's wait is dropped before it ended (the caller interrupted): the hand-off was not
/// fsync'd (`HandOff::Fsync`), and nobody else would persist it before it lands.
struct PersistOnDrop {
    /// The queue; None once the wait ended (the fsync persists itself then).
    uploads: Option<Arc<dyn Uploads>>,
    /// The key handed off.
    key: String,
}

impl Drop for PersistOnDrop {
    fn drop(&mut self) {
        let Some(uploads) = self.uploads.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        let run = move || {
            if let Err(e) = uploads.persist(&key) {
                log::error!("{key}: could not make the file durable after fsync ended: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(run)),
            Err(_) => run(),
        }
    }
}
