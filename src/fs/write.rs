//! Writing: the inode's one staging copy (`node.rs`). The first change of a Remote file stages
//! it (downloaded, or copied from its pending upload copy; `O_TRUNC` and new files start
//! empty); every handle then reads and writes that one file. A hand-off (flush, release, fsync,
//! rename) gives the copy to the upload queue, journaled, under the inode's path at that
//! moment; `fsync` also waits until COS has it.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::SystemTime;

use super::error::{FsError, FsResult};
use super::handle::blocking;
use super::meta::{store_user_meta, Stat};
use super::node::{Content, Node, Staged};
use super::types::{Fh, FileKind, InodeNo};
use super::uploads::{Durability, Handover, PendingUpload};
use super::Fs;
use crate::store::{PutOptions, StoreError};

/// Look-ups of a key's pending copy when copies keep vanishing under us (each vanished one is
/// no longer pending, so more than a few in a row means something else is wrong).
const PENDING_LOOKUPS: usize = 8;

/// Attempts to stage-then-change when hand-offs keep taking the copy in between.
const STAGE_TRIES: usize = 8;

/// COS's largest object, 10 000 parts of 5 GiB (48.82 TiB): a file may not grow past it
/// (EFBIG). The upload's part size grows so any size up to it fits in 10 000 parts.
pub const MAX_OBJECT_SIZE: u64 = 10_000 * 5 * 1024 * 1024 * 1024;

fn check_size(end: u64) -> FsResult<()> {
    if end > MAX_OBJECT_SIZE {
        return Err(FsError::FileTooLarge(format!(
            "{end} bytes is more than COS's largest object ({MAX_OBJECT_SIZE} bytes)"
        )));
    }
    Ok(())
}

/// pwrite of all of `data` at `off`, or as much as fits: a full cache disk after some bytes
/// is a short write (the caller retries the rest and gets ENOSPC), as on a local disk.
fn write_some_at(f: &std::fs::File, data: &[u8], off: u64) -> FsResult<usize> {
    let mut n = 0;
    while n < data.len() {
        match f.write_at(&data[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) if n > 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// What a new staging copy starts from.
struct Filled {
    /// Attributes (size included).
    stat: Stat,
    /// ETag of the object it started from.
    base_etag: Option<String>,
    /// Headers to keep on upload.
    base_opts: PutOptions,
}

/// Who hands a file off to the queue, which decides when its data is made durable locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOff {
    /// release, rename, truncate...: durable before the queue takes it (nobody waits).
    Plain,
    /// close: a file up to `close_wait_max_size` lazily (no fsync); close then waits for its
    /// upload and makes it durable itself should the wait end without the object in COS
    /// (`Uploads::persist`), or, with `close_wait` zero, returns at once and leaves that to
    /// the queue's lazy window. Larger files as `Plain`.
    Close,
    /// fsync: lazily whatever its size, early uploads included; fsync waits for COS and
    /// persists the data itself when COS does not take it.
    Fsync,
}

impl Fs {
    /// write: into the inode's staging copy (staged first when the file was Remote).
    pub async fn write(&self, _ino: InodeNo, fh: Fh, offset: i64, data: &[u8]) -> FsResult<u32> {
        let h = self.file_handle(fh)?;
        let offset =
            u64::try_from(offset).map_err(|_| FsError::InvalidArgument("offset".into()))?;
        if data.is_empty() {
            // POSIX: a zero-length write changes nothing, not even the size.
            return Ok(0);
        }
        for _ in 0..STAGE_TRIES {
            {
                let mut c = h.node.content.lock().await;
                if let Some(n) = self.write_staged(&h, &mut c, offset, data) {
                    return n;
                }
            }
            self.stage(h.ino, &h.node, true).await?;
        }
        Err(FsError::Io("the staging copy kept being handed off".into()))
    }

    /// write, when it can be done at once (the file is staged and no one else holds its
    /// content): None otherwise, and the caller uses `write`. Lets the FUSE adapter write a
    /// large buffer straight from the kernel's request, with no copy and no hop to a worker.
    pub fn try_write_now(&self, fh: Fh, offset: i64, data: &[u8]) -> Option<FsResult<u32>> {
        let h = self.file_handle(fh).ok()?;
        let offset = u64::try_from(offset).ok()?;
        if data.is_empty() {
            return None;
        }
        let mut c = h.node.content.try_lock().ok()?;
        self.write_staged(&h, &mut c, offset, data)
    }

    /// The pwrite into a staged file and its bookkeeping; None when the file is not staged.
    fn write_staged(
        &self,
        h: &super::handle::FileHandle,
        c: &mut Content,
        offset: u64,
        data: &[u8],
    ) -> Option<FsResult<u32>> {
        let st = c.staged_mut()?;
        // O_APPEND: at the end of the shared copy, whoever else appended.
        let off = if h.append { st.size } else { offset };
        if let Err(e) = check_size(off + data.len() as u64) {
            return Some(Err(e));
        }
        let n = match write_some_at(&st.file, data, off) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let appended = off == st.size;
        st.size = st.size.max(off + n as u64);
        // After the pwrite (see `cache::early`), before the mtime is taken.
        match &st.early {
            Some(e) => e.written(off, off + n as u64),
            None if appended => self.maybe_start_early(h.ino, st),
            None => {}
        }
        st.dirty = true;
        st.wrote = true;
        let now = SystemTime::now();
        st.stat.mtime = now;
        st.stat.ctime = now;
        h.node.changed(c);
        Some(Ok(n as u32))
    }

    /// Starts an early multipart upload (`cache::early`) of a file being appended to (the
    /// write that just happened started at its old end) once it reaches the queue's start
    /// size. A file grown by truncate and written out of order never appends, so never starts.
    fn maybe_start_early(&self, ino: InodeNo, st: &mut Staged) {
        let Some(from) = self.uploads.early_start_size() else {
            return;
        };
        let end = st.size;
        if end < from {
            return;
        }
        // Unlinked while open: never uploaded, so nothing to start.
        let Ok(rel) = self.table.path(ino) else {
            return;
        };
        let Ok(key) = self.key_of(&rel, FileKind::File) else {
            return;
        };
        let mut opts = st.base_opts.clone();
        store_user_meta(&st.stat, &mut opts.headers.user_meta);
        st.early =
            self.uploads
                .start_early(key.as_str(), st.path.clone(), st.file.clone(), &opts, end);
    }

    /// Truncates through an open writable handle (ftruncate) or the path (truncate).
    pub(crate) async fn truncate(&self, ino: InodeNo, fh: Option<Fh>, size: u64) -> FsResult<()> {
        self.check_writable()?;
        let node = match fh {
            Some(fh) => self.file_handle(fh)?.node.clone(),
            None => self.table.node(ino)?,
        };
        if node.kind == FileKind::Dir {
            return Err(FsError::IsDir);
        }
        check_size(size)?;
        self.resize(ino, &node, size, true).await?;
        if fh.is_none() {
            // truncate(2): no close will follow to publish it.
            self.hand_off(ino, &node, true).await?;
        }
        Ok(())
    }

    /// Sets the staged size (staging first). `publish`: an explicit truncate the next flush
    /// must upload; `O_TRUNC` is not (see `Staged::wrote`).
    pub(crate) async fn resize(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        size: u64,
        publish: bool,
    ) -> FsResult<()> {
        for _ in 0..STAGE_TRIES {
            {
                let mut c = node.content.lock().await;
                if let Some(st) = c.staged_mut() {
                    st.file.set_len(size)?;
                    st.size = size;
                    if let Some(e) = &st.early {
                        e.truncated(size);
                    }
                    st.dirty = true;
                    st.wrote |= publish;
                    let now = SystemTime::now();
                    st.stat.mtime = now;
                    st.stat.ctime = now;
                    node.changed(&c);
                    return Ok(());
                }
            }
            self.stage(ino, node, size > 0).await?;
        }
        Err(FsError::Io("the staging copy kept being handed off".into()))
    }

    /// Makes the node's staging copy (with the data when `with_data`) unless it has one.
    pub(crate) async fn stage(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        with_data: bool,
    ) -> FsResult<()> {
        let _gate = node.gate.lock().await;
        if node.content.lock().await.staged().is_some() {
            return Ok(());
        }
        // A file unlinked while open that never staged anything has no copy to change.
        let rel = self.table.path(ino)?;
        let s = self.stat_path(&rel).await?;
        let key = self.key_of(&rel, FileKind::File)?;
        let (path, file) = self.uploads.new_staging_file_for(key.as_str())?;
        match self.fill_staging(&rel, &s, &file, with_data).await {
            Ok(f) => {
                let mut c = node.content.lock().await;
                let size = f.stat.size;
                *c = Content::Staged(Staged {
                    path,
                    file: Arc::new(file),
                    size,
                    stat: f.stat,
                    dirty: false,
                    wrote: false,
                    base_etag: f.base_etag,
                    base_opts: f.base_opts,
                    early: None,
                });
                node.changed(&c);
                Ok(())
            }
            Err(e) => {
                // Nobody else knows this file: do not leave it for recovery to find.
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Fills a new staging `file` for `rel` from its newest pending copy or from COS (only the
    /// headers unless `with_data`).
    async fn fill_staging(
        &self,
        rel: &str,
        s: &Stat,
        file: &std::fs::File,
        with_data: bool,
    ) -> FsResult<Filled> {
        let key = self.key_of(rel, FileKind::File)?;
        let mut out = Filled {
            stat: s.clone(),
            base_etag: s.etag.clone(),
            base_opts: PutOptions::default(),
        };
        out.stat.size = 0;
        if let Some((p, src)) = self.open_pending(key.as_str(), with_data).await? {
            if let Some(mut src) = src {
                let mut dst = file.try_clone()?;
                blocking(move || std::io::copy(&mut src, &mut dst).map(|_| ())).await?;
                out.stat.size = p.size;
            }
            out.base_opts = p.opts.clone();
            return Ok(out);
        }
        match self.store.head_object(key.as_str()).await {
            Ok(meta) => {
                out.base_opts.headers = meta.headers.clone();
                if !meta.storage_class.is_archive() {
                    out.base_opts.storage_class = Some(meta.storage_class.clone());
                }
                out.base_opts.acl = self.cfg.acl.clone();
                out.base_etag = Some(meta.etag.clone());
                if with_data {
                    self.download(key.as_str(), meta.size, file, rel).await?;
                    out.stat.size = meta.size;
                }
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(out)
    }

    /// The newest pending copy of `key`, opened when `with_data`. The queue deletes a copy once
    /// COS has it and moves it away on cancel, either possibly between the look-up and the
    /// open: then look again (that task is no longer pending, so the answer moves on to a newer
    /// copy or to none, and the data comes from COS).
    async fn open_pending(
        &self,
        key: &str,
        with_data: bool,
    ) -> FsResult<Option<(PendingUpload, Option<std::fs::File>)>> {
        for _ in 0..PENDING_LOOKUPS {
            let Some(p) = self.uploads.pending(key) else {
                return Ok(None);
            };
            if !with_data {
                return Ok(Some((p, None)));
            }
            let src_path = p.path.clone();
            let opened = blocking(move || match std::fs::File::open(src_path) {
                Ok(f) => Ok(Some(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
            if let Some(f) = opened {
                return Ok(Some((p, Some(f))));
            }
            log::debug!(
                "{key}: pending copy {} went away, looking again",
                p.path.display()
            );
        }
        Err(FsError::Io(format!(
            "{key}: its pending local copies kept disappearing"
        )))
    }

    /// Copies the object into `file` part by part (bounded memory).
    async fn download(
        &self,
        key: &str,
        size: u64,
        file: &std::fs::File,
        rel: &str,
    ) -> FsResult<()> {
        let mut src = self.open_source(key, size);
        let mut off = 0u64;
        let chunk = self.cfg.read_part_size.clamp(4096, u64::from(u32::MAX)) as u32;
        while off < size {
            let b = self.read_source(&mut src, rel, off, chunk).await?;
            if b.is_empty() {
                break;
            }
            file.write_all_at(&b, off)?;
            off += b.len() as u64;
        }
        Ok(())
    }

    /// Gives the node's dirty staging copy to the upload queue (`force`: also when nothing
    /// was written since the last hand-off, see `Staged::wrote`). Returns the key and size
    /// handed off.
    pub(crate) async fn hand_off(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        force: bool,
    ) -> FsResult<Option<(String, u64)>> {
        self.hand_off_as(ino, node, force, HandOff::Plain).await
    }

    /// `hand_off` by a caller that may wait for the upload next (`by`, see [`HandOff`]).
    pub(crate) async fn hand_off_as(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        force: bool,
        by: HandOff,
    ) -> FsResult<Option<(String, u64)>> {
        let _ns = self.ns.read().await;
        let _gate = node.gate.lock().await;
        self.hand_off_inner(ino, node, force, by).await
    }

    /// `hand_off` for a caller already holding the node's gate (and `ns`).
    pub(crate) async fn hand_off_locked(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        force: bool,
    ) -> FsResult<Option<(String, u64)>> {
        self.hand_off_inner(ino, node, force, HandOff::Plain).await
    }

    async fn hand_off_inner(
        &self,
        ino: InodeNo,
        node: &Arc<Node>,
        force: bool,
        by: HandOff,
    ) -> FsResult<Option<(String, u64)>> {
        // An early upload stops first: its parts in flight finish (a COS wait, so not under
        // the content lock; writes meanwhile mark what they change).
        let stop = match node.content.lock().await.staged() {
            Some(st) if st.dirty && (force || st.wrote) => st.early.as_ref().map(|e| e.stopper()),
            _ => return Ok(None),
        };
        if let Some(s) = stop {
            s.stop().await;
        }
        let mut c = node.content.lock().await;
        match c.staged() {
            Some(st) if st.dirty && (force || st.wrote) => {}
            _ => return Ok(None),
        }
        // Unlinked or replaced while open: its data is never uploaded.
        let Ok(rel) = self.table.path(ino) else {
            return Ok(None);
        };
        let key = self.key_of(&rel, FileKind::File)?.to_string();
        let Content::Staged(mut st) = std::mem::replace(&mut *c, Content::Remote) else {
            return Ok(None);
        };
        let mut stat = st.stat.clone();
        stat.size = st.size;
        let mut opts = st.base_opts.clone();
        store_user_meta(&stat, &mut opts.headers.user_meta);
        self.deletes.cancel(&key);
        let uploads = self.uploads.clone();
        let size = st.size;
        // The upload gives the object this ACL (COS sets a PUT's ACL from its request).
        let acl = opts.acl.clone();
        let early = st.early.take();
        let durability = if by == HandOff::Fsync {
            // No fsync: fsync waits for COS next and persists the data itself if COS does
            // not take it (`Fs::fsync`).
            Durability::Held
        } else if early.is_none() && by == HandOff::Close && size <= self.cfg.close_wait_max_size {
            // No fsync: close waits for COS (`close_wait`), or with `close_wait=0` returns at
            // once; the queue fsyncs what has not landed within its lazy window. (A file with
            // an early upload is large: durable first, as any large file.)
            Durability::Lazy
        } else {
            // Closed data must be durable before the journal points at it (the queue fsyncs
            // the file, its directory and its journal record).
            Durability::Durable
        };
        let h = Handover {
            key: key.clone(),
            file: st.path.clone(),
            size,
            opts,
            base_etag: st.base_etag.clone(),
            durability,
            early,
        };
        let res = if durability == Durability::Durable {
            // Blocking I/O, off the runtime's workers.
            blocking(move || uploads.enqueue(h).map(|_| ())).await
        } else {
            // One small journal write, done here (a hop to the blocking pool would cost more
            // than the write).
            uploads.enqueue(h).map(|_| ()).map_err(FsError::from)
        };
        match res {
            Ok(()) => {
                self.acls.set(&key, acl.as_deref());
                node.changed(&c);
                stat.etag = None;
                stat.last_modified = None;
                stat.from_head = true;
                self.attrs.put(&rel, stat);
                Ok(Some((key, size)))
            }
            Err(e) => {
                *c = Content::Staged(st);
                Err(e)
            }
        }
    }
}
