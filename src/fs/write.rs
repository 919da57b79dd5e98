//! Open file handles and writing: a writable handle is backed by a staging file from the upload
//! queue. An existing file is downloaded into it only when first changed (write, truncate), or
//! copied from its pending-upload copy; `O_TRUNC` and new files start empty. flush/close hands
//! the staging file to the upload queue (the upload runs in the background), `fsync` also waits
//! until COS has the data. Until then the file's attributes come from the local state.
//!
//! Two handles writing one file each have their own staging copy; the last one closed wins.

use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;

use super::error::{FsError, FsResult};
use super::meta::{store_user_meta, Stat};
use super::path::{join, ValidName};
use super::read::{read_at_full, Source};
use super::types::{Entry, Fh, FileKind, InodeNo};
use super::uploads::PendingUpload;
use super::{Fs, Handle};
use crate::store::{PutOptions, StoreError};

/// Look-ups of a key's pending copy when copies keep vanishing under us (each vanished one is
/// no longer pending, so more than a few in a row means something else is wrong).
const PENDING_LOOKUPS: usize = 8;

/// An open file.
pub struct FileHandle {
    /// Its inode (the path is looked up at each use, so renames while open are followed).
    pub(crate) ino: InodeNo,
    /// Reads, and the writer when opened for writing. Held across `.await` (per-handle).
    state: tokio::sync::Mutex<FileState>,
}

/// Mutable state of a handle.
struct FileState {
    /// Remote/local reader for handles that have not changed the file.
    reader: Option<Source>,
    /// Writer state (None for read-only handles).
    writer: Option<Writer>,
    /// `O_APPEND`: every write goes to the end.
    append: bool,
}

/// A writable handle's staging state.
struct Writer {
    /// The staging file once materialized (path, open file).
    staging: Option<(PathBuf, std::fs::File)>,
    /// Current size.
    size: u64,
    /// Changed since the last hand-off to the upload queue.
    dirty: bool,
    /// Data written since the last hand-off. A flush with nothing written (a shell's
    /// `dup2`+`close` right after `open(O_TRUNC)`) keeps the file local, so one `echo > f`
    /// uploads once; release still hands off an empty new or truncated file.
    wrote: bool,
    /// ETag of the object the staging copy started from.
    base_etag: Option<String>,
    /// Headers to keep on upload (content type, other user metadata, storage class).
    base_opts: PutOptions,
}

impl Fs {
    /// create: a new empty file, staged locally; nothing is sent until flush/close.
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
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let key = self.key_of(&rel, FileKind::File)?;
        match self.stat_path(&rel).await {
            Ok(_) if flags & libc::O_EXCL != 0 => return Err(FsError::Exists),
            Ok(s) if s.kind == FileKind::Dir => return Err(FsError::IsDir),
            Ok(_) | Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        self.deletes.cancel(key.as_str());
        let (path, file) = self.uploads.new_staging_file()?;
        let s = Stat::new_local(FileKind::File, mode, uid, gid);
        let mut base_opts = self.new_object_opts(&s);
        base_opts.headers.user_meta.clear();
        self.attrs.set_local(&rel, s.clone());
        let ino = self
            .table
            .upsert(parent, name.as_str(), FileKind::File, true);
        let writer = Writer {
            staging: Some((path, file)),
            size: 0,
            dirty: true,
            wrote: false,
            base_etag: None,
            base_opts,
        };
        let fh = self.new_file_handle(ino, Some(writer), flags);
        Ok((self.entry_of(ino, &s), fh))
    }

    fn new_file_handle(&self, ino: InodeNo, writer: Option<Writer>, flags: i32) -> Fh {
        let st = FileState {
            reader: None,
            writer,
            append: flags & libc::O_APPEND != 0,
        };
        let h = FileHandle {
            ino,
            state: tokio::sync::Mutex::new(st),
        };
        self.add_handle(Handle::File(std::sync::Arc::new(h)))
    }

    /// open: read-only handles read from COS (or a pending local copy); writable ones stage.
    pub async fn open(&self, ino: InodeNo, flags: i32) -> FsResult<Fh> {
        let rel = self.table.path(ino)?;
        let s = self.stat_path(&rel).await?;
        if s.kind == FileKind::Dir {
            return Err(FsError::IsDir);
        }
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_RDONLY {
            return Ok(self.new_file_handle(ino, None, flags));
        }
        self.check_writable()?;
        let mut w = Writer {
            staging: None,
            size: s.size,
            dirty: false,
            wrote: false,
            base_etag: s.etag.clone(),
            base_opts: PutOptions::default(),
        };
        if flags & libc::O_TRUNC != 0 {
            self.materialize(&mut w, &rel, &s, false).await?;
            self.set_size(&mut w, &rel, 0)?;
        }
        Ok(self.new_file_handle(ino, Some(w), flags))
    }

    /// Makes the staging copy of `rel` (downloading when `with_data`), keeping the object's
    /// headers for the upload.
    async fn materialize(
        &self,
        w: &mut Writer,
        rel: &str,
        s: &Stat,
        with_data: bool,
    ) -> FsResult<()> {
        if w.staging.is_some() {
            return Ok(());
        }
        let (path, file) = self.uploads.new_staging_file()?;
        match self.fill_staging(w, rel, s, &file, with_data).await {
            Ok(stat) => {
                w.size = stat.size;
                w.staging = Some((path, file));
                self.attrs.set_local(rel, stat);
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
    /// headers unless `with_data`); returns the attributes the handle starts from.
    async fn fill_staging(
        &self,
        w: &mut Writer,
        rel: &str,
        s: &Stat,
        file: &std::fs::File,
        with_data: bool,
    ) -> FsResult<Stat> {
        let key = self.key_of(rel, FileKind::File)?;
        let mut stat = s.clone();
        if let Some((p, src)) = self.open_pending(key.as_str(), with_data).await? {
            if let Some(mut src) = src {
                let mut dst = file.try_clone()?;
                blocking(move || std::io::copy(&mut src, &mut dst).map(|_| ())).await?;
            }
            w.base_opts = p.opts.clone();
            stat.size = if with_data { p.size } else { 0 };
        } else if let Some(local) = self.attrs.local(rel) {
            stat = local; // another handle's unflushed file: start from empty
            stat.size = 0;
        } else {
            match self.store.head_object(key.as_str()).await {
                Ok(meta) => {
                    w.base_opts.headers = meta.headers.clone();
                    if !meta.storage_class.is_archive() {
                        w.base_opts.storage_class = Some(meta.storage_class.clone());
                    }
                    w.base_opts.acl = self.cfg.acl.clone();
                    w.base_etag = Some(meta.etag.clone());
                    stat.size = 0;
                    if with_data {
                        self.download(key.as_str(), meta.size, file, rel).await?;
                        stat.size = meta.size;
                    }
                }
                Err(StoreError::NotFound(_)) => stat.size = 0,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stat)
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

    fn set_size(&self, w: &mut Writer, rel: &str, size: u64) -> FsResult<()> {
        if let Some((_, f)) = &w.staging {
            f.set_len(size)?;
        }
        w.size = size;
        w.dirty = true;
        self.attrs.update_local(rel, |s| {
            s.size = size;
            s.mtime = std::time::SystemTime::now();
        });
        Ok(())
    }

    /// read.
    pub async fn read(&self, ino: InodeNo, fh: Fh, offset: i64, size: u32) -> FsResult<Bytes> {
        let h = self.file_handle(fh)?;
        let offset =
            u64::try_from(offset).map_err(|_| FsError::InvalidArgument("offset".into()))?;
        let mut st = h.state.lock().await;
        if let Some(Writer {
            staging: Some((_, f)),
            ..
        }) = &st.writer
        {
            let mut buf = vec![0u8; size as usize];
            let n = read_at_full(f, &mut buf, offset)?;
            buf.truncate(n);
            return Ok(Bytes::from(buf));
        }
        let rel = self.table.path(h.ino).or_else(|_| self.table.path(ino))?;
        if st.reader.is_none() {
            st.reader = match self.local_writer_file(h.ino, fh).await {
                // Another handle holds changes not yet handed off (close returns before the
                // kernel's release): read them, not the older copy.
                Some(f) => Some(Source::Local(f)),
                None => {
                    let s = self.stat_path(&rel).await?;
                    let key = self.key_of(&rel, FileKind::File)?;
                    Some(self.open_source(key.as_str(), s.size))
                }
            };
        }
        match st.reader.as_mut() {
            Some(src) => self.read_source(src, &rel, offset, size).await,
            None => Err(FsError::BadHandle),
        }
    }

    /// The staging file of another open handle of `ino` with unpublished changes.
    async fn local_writer_file(&self, ino: InodeNo, me: Fh) -> Option<std::fs::File> {
        let others: Vec<std::sync::Arc<FileHandle>> = {
            let g = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            g.iter()
                .filter(|(fh, _)| **fh != me)
                .filter_map(|(_, h)| match h {
                    Handle::File(f) if f.ino == ino => Some(f.clone()),
                    _ => None,
                })
                .collect()
        };
        for h in others {
            let st = h.state.lock().await;
            if let Some(Writer {
                staging: Some((_, f)),
                dirty: true,
                ..
            }) = &st.writer
            {
                if let Ok(dup) = f.try_clone() {
                    return Some(dup);
                }
            }
        }
        None
    }

    /// write: into the staging file (downloaded first when the file existed).
    pub async fn write(&self, ino: InodeNo, fh: Fh, offset: i64, data: &[u8]) -> FsResult<u32> {
        let h = self.file_handle(fh)?;
        let rel = self.table.path(h.ino).or_else(|_| self.table.path(ino));
        let offset =
            u64::try_from(offset).map_err(|_| FsError::InvalidArgument("offset".into()))?;
        let mut st = h.state.lock().await;
        let append = st.append;
        st.reader = None;
        let w = st.writer.as_mut().ok_or(FsError::BadHandle)?;
        let Ok(rel) = rel else {
            return write_unlinked(w, offset, append, data);
        };
        if w.staging.is_none() {
            let s = self.stat_path(&rel).await?;
            self.materialize(w, &rel, &s, true).await?;
        }
        let off = if append { w.size } else { offset };
        if let Some((_, f)) = &w.staging {
            f.write_all_at(data, off)?;
        }
        let size = w.size.max(off + data.len() as u64);
        self.set_size(w, &rel, size)?;
        w.wrote = true;
        Ok(data.len() as u32)
    }

    /// Truncates through an open writable handle (ftruncate) or a temporary one (truncate).
    pub(crate) async fn truncate(&self, ino: InodeNo, fh: Option<Fh>, size: u64) -> FsResult<()> {
        self.check_writable()?;
        let rel = match (self.table.path(ino), fh) {
            (Ok(rel), _) => rel,
            (Err(e), Some(fh)) => {
                // ftruncate of a file unlinked while open: only its staging copy changes.
                let h = self.file_handle(fh)?;
                let mut st = h.state.lock().await;
                return match st.writer.as_mut() {
                    Some(Writer {
                        staging: Some((_, f)),
                        size: cur,
                        ..
                    }) => {
                        f.set_len(size)?;
                        *cur = size;
                        Ok(())
                    }
                    _ => Err(e),
                };
            }
            (Err(e), None) => return Err(e),
        };
        if let Some(fh) = fh {
            let h = self.file_handle(fh)?;
            let mut st = h.state.lock().await;
            st.reader = None;
            if let Some(w) = st.writer.as_mut() {
                let s = self.stat_path(&rel).await?;
                self.materialize(w, &rel, &s, size > 0).await?;
                // An explicit ftruncate is a change the next close must publish.
                w.wrote = true;
                return self.set_size(w, &rel, size);
            }
        }
        let s = self.stat_path(&rel).await?;
        if s.kind != FileKind::File {
            return Err(FsError::IsDir);
        }
        let mut w = Writer {
            staging: None,
            size: s.size,
            dirty: false,
            wrote: false,
            base_etag: s.etag.clone(),
            base_opts: PutOptions::default(),
        };
        self.materialize(&mut w, &rel, &s, size > 0).await?;
        self.set_size(&mut w, &rel, size)?;
        self.hand_off(&mut w, &rel).await
    }

    /// Gives a dirty staging file to the upload queue with the current attributes.
    async fn hand_off(&self, w: &mut Writer, rel: &str) -> FsResult<()> {
        if !w.dirty {
            return Ok(());
        }
        let Some((path, file)) = w.staging.take() else {
            return Ok(());
        };
        // Closed data must survive a crash before the journal points at it; the fsync may
        // take long, so off the runtime's worker threads.
        blocking(move || file.sync_data()).await?;
        let key = self.key_of(rel, FileKind::File)?;
        let mut opts = w.base_opts.clone();
        if let Some(s) = self.attrs.local(rel) {
            store_user_meta(&s, &mut opts.headers.user_meta);
        }
        self.deletes.cancel(key.as_str());
        self.uploads
            .enqueue(key.as_str(), path, w.size, opts, w.base_etag.clone())?;
        w.dirty = false;
        w.wrote = false;
        self.attrs.end_local(rel);
        Ok(())
    }

    /// flush (each close): hands changed data to the upload queue.
    ///
    /// A small file (≤ `close_wait_max_size`) is then waited for, up to `close_wait`, so that
    /// after `close` other COS clients see it, as with s3fs/cosfs; larger files upload in the
    /// background. A slow or failed upload never fails close: the data is journaled and the
    /// task stays visible in `cosfuse tasks`.
    pub async fn flush(&self, ino: InodeNo, fh: Fh) -> FsResult<()> {
        let handed = self.hand_off_handle(ino, fh, false).await?;
        if let Some((key, size)) = handed {
            if size <= self.cfg.close_wait_max_size && !self.cfg.close_wait.is_zero() {
                match tokio::time::timeout(self.cfg.close_wait, self.uploads.wait_key(&key)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::warn!("{key}: upload after close failed for now: {e}"),
                    Err(_) => log::info!("{key}: upload continues in the background after close"),
                }
            }
        }
        Ok(())
    }

    /// Hands a handle's changes to the queue: all of them (`force`: release, fsync), or only
    /// when data was written (flush; see `Writer::wrote`).
    /// Returns the key and size handed off, if any.
    async fn hand_off_handle(
        &self,
        ino: InodeNo,
        fh: Fh,
        force: bool,
    ) -> FsResult<Option<(String, u64)>> {
        let h = self.file_handle(fh)?;
        let rel = self.table.path(h.ino).or_else(|_| self.table.path(ino));
        let mut st = h.state.lock().await;
        match (st.writer.as_mut(), rel) {
            (Some(w), Ok(rel)) if (force || w.wrote) && w.dirty => {
                let size = w.size;
                self.hand_off(w, &rel).await?;
                Ok(Some((self.key_of(&rel, FileKind::File)?.to_string(), size)))
            }
            _ => Ok(None),
        }
    }

    /// release (last close): flush, then drop the handle and any unused staging file.
    pub async fn release(&self, ino: InodeNo, fh: Fh) -> FsResult<()> {
        let res = self.hand_off_handle(ino, fh, true).await.map(|_| ());
        if let Ok(Handle::File(h)) = self.take_handle(fh) {
            let mut st = h.state.lock().await;
            if let Some(Writer {
                staging: Some((path, _)),
                ..
            }) = st.writer.take()
            {
                // Not dirty (or unlinked): nobody needs this copy.
                let _ = std::fs::remove_file(path);
                if let Ok(rel) = self.table.path(h.ino) {
                    self.attrs.end_local(&rel);
                }
            }
        }
        res
    }

    /// fsync: hand off, then wait until COS has the file.
    pub async fn fsync(&self, ino: InodeNo, fh: Fh, _datasync: bool) -> FsResult<()> {
        self.hand_off_handle(ino, fh, true).await?;
        let Ok(rel) = self.table.path(ino) else {
            // Unlinked while open: its data is never uploaded, so there is nothing to wait for.
            return Ok(());
        };
        let key = self.key_of(&rel, FileKind::File)?;
        self.uploads.wait_key(key.as_str()).await?;
        self.attrs.invalidate(&rel);
        Ok(())
    }
}

/// A write through a handle whose file was unlinked while open: POSIX lets the handle go on
/// reading and writing; the staging copy takes the data and is dropped at release, never
/// uploaded (the name is gone). A handle that never staged anything has no copy to write to.
fn write_unlinked(w: &mut Writer, offset: u64, append: bool, data: &[u8]) -> FsResult<u32> {
    let Some((_, f)) = &w.staging else {
        return Err(FsError::NotFound);
    };
    let off = if append { w.size } else { offset };
    f.write_all_at(data, off)?;
    w.size = w.size.max(off + data.len() as u64);
    Ok(data.len() as u32)
}

impl Fs {
    /// Attributes of a file unlinked while open (fstat on its descriptor), from a handle's
    /// staging copy; None when no open handle has one.
    pub(crate) async fn unlinked_attr(&self, ino: InodeNo) -> Option<super::types::Attr> {
        let handles: Vec<std::sync::Arc<FileHandle>> = {
            let g = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            g.values()
                .filter_map(|h| match h {
                    Handle::File(f) if f.ino == ino => Some(f.clone()),
                    _ => None,
                })
                .collect()
        };
        for h in handles {
            let st = h.state.lock().await;
            if let Some(
                w @ Writer {
                    staging: Some(_), ..
                },
            ) = &st.writer
            {
                let mut s = Stat::new_local(
                    FileKind::File,
                    0o666 & !self.cfg.umask,
                    self.cfg.uid,
                    self.cfg.gid,
                );
                s.size = w.size;
                return Some(self.attr_of(ino, &s));
            }
        }
        None
    }
}

/// Runs blocking local file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> FsResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(FsError::Io(format!("blocking task: {e}"))),
    }
}
