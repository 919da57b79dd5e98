//! Name-space operations: lookup/getattr (the merged view is in `lookup.rs`), kernel TTLs,
//! forget, mkdir, unlink, rmdir, symlink/readlink, link and mknod refusals, statfs.

use std::ffi::OsStr;
use std::time::SystemTime;

use bytes::Bytes;

use super::attrcache::Cached;
use super::error::{FsError, FsResult};
use super::meta::{store_user_meta, Stat};
use super::path::{join, ObjectKey, ValidName};
use super::types::{Attr, Entry, FileKind, InodeNo, StatFs, ROOT_INO};
use super::Fs;
use crate::store::{ListRequest, PutOptions};

/// Bound on listing pages while checking that a directory is empty.
const MAX_PAGES: usize = 10_000;

impl Fs {
    /// The COS key of a relative path of the given kind.
    pub(crate) fn key_of(&self, rel: &str, kind: FileKind) -> FsResult<ObjectKey> {
        match kind {
            FileKind::Dir => ObjectKey::dir(&self.cfg.prefix, rel),
            _ => ObjectKey::file(&self.cfg.prefix, rel),
        }
    }

    /// Attributes for the kernel.
    pub(crate) fn attr_of(&self, ino: InodeNo, s: &Stat) -> Attr {
        Attr {
            ino,
            size: s.size,
            blocks: s.size.div_ceil(512),
            atime: s.atime,
            mtime: s.mtime,
            ctime: s.ctime,
            kind: s.kind,
            perm: (s.perm & 0o7777) as u16,
            nlink: if s.kind == FileKind::Dir {
                self.dir_nlink(ino)
            } else {
                1
            },
            uid: s.uid,
            gid: s.gid,
            blksize: 4096,
            rdev: s.rdev,
        }
    }

    /// A directory's link count, 2 + its subdirectories, when the mount knows them without a
    /// request: a fresh listing, or a directory it created (whose names it tracks). Else 2,
    /// as s3fs reports (counting would cost a listing per stat).
    fn dir_nlink(&self, ino: InodeNo) -> u32 {
        let Ok(rel) = self.table.path(ino) else {
            return 2;
        };
        let n = self
            .listings
            .subdirs(&rel)
            .or_else(|| self.own.subdirs(&rel));
        2 + n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX - 2))
    }

    pub(crate) fn entry_of(&self, ino: InodeNo, s: &Stat) -> Entry {
        let attr = self.attr_of(ino, s);
        Entry {
            ttl: self.kernel_ttl(&attr),
            attr,
            generation: 0,
        }
    }

    /// How long the kernel may cache an entry and these attributes of it: `entry_ttl`. For
    /// files and symlinks the reply is remembered in the inode's `Node`, and an open that
    /// settles on another size or mtime (another client changed the object, a listing or a
    /// HEAD told) invalidates the kernel's copy first (`kernel_catch_up`), so a read never
    /// stops at a size the kernel kept from before.
    pub fn kernel_ttl(&self, a: &Attr) -> std::time::Duration {
        let ttl = self.cfg.entry_ttl;
        if a.kind != FileKind::Dir && !ttl.is_zero() {
            if let Ok(node) = self.table.node(a.ino) {
                node.told(a.size, a.mtime, ttl);
            }
        }
        ttl
    }

    /// After an open settled on attributes `s`: if the kernel may still cache another size or
    /// mtime for the inode (given before a listing or another client changed them), tell it
    /// to forget them, so reads go to the new size.
    pub(crate) fn kernel_catch_up(&self, ino: InodeNo, node: &super::node::Node, s: &Stat) {
        if node.kernel_differs(s.size, s.mtime) {
            if let Some(k) = self.kernel.get() {
                k.invalidate_attrs(ino);
            }
        }
    }

    /// lookup: resolves `name` in directory `parent` and takes a kernel reference.
    pub async fn lookup(&self, parent: InodeNo, name: &OsStr) -> FsResult<Entry> {
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let s = self.stat_path(&rel).await?;
        let ino = self.table.upsert(parent, name.as_str(), s.kind, true);
        Ok(self.entry_of(ino, &s))
    }

    /// The relative path of a directory inode (ENOTDIR for files).
    pub(crate) fn dir_path(&self, ino: InodeNo) -> FsResult<String> {
        if self.table.kind(ino)? != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        self.table.path(ino)
    }

    /// getattr (also fstat of a file unlinked while open: its staged copy, link count 0).
    pub async fn getattr(&self, ino: InodeNo) -> FsResult<Attr> {
        let s = self.stat_ino(ino).await?;
        let mut a = self.attr_of(ino, &s);
        if self.table.path(ino).is_err() {
            a.nlink = 0;
        }
        Ok(a)
    }

    /// forget: drops `n` kernel references.
    pub fn forget(&self, ino: InodeNo, n: u64) {
        self.table.forget(ino, n);
    }

    /// Fails with EEXIST when `rel` exists.
    pub(crate) async fn ensure_absent(&self, rel: &str) -> FsResult<()> {
        match self.stat_path(rel).await {
            Ok(_) => Err(FsError::Exists),
            Err(FsError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// PUTs an object this mount makes (a directory marker, symlink or special file) and
    /// remembers what it now knows of it: its metadata for the new ETag, and its ACL (the one
    /// just sent), so a later chmod or utimes copies it without reading either. Returns the ETag.
    pub(crate) async fn put_own_object(
        &self,
        key: &str,
        body: Bytes,
        opts: &PutOptions,
    ) -> FsResult<String> {
        let r = self.store.put_object(key, body.into(), opts).await?;
        self.metadb
            .put(key, &r.etag, opts.headers.user_meta.clone());
        self.acls.set(key, opts.acl.as_deref());
        Ok(r.etag)
    }

    /// PutOptions for a new object with these attributes (mount defaults for class/ACL).
    pub(crate) fn new_object_opts(&self, s: &Stat) -> PutOptions {
        let mut o = PutOptions {
            storage_class: self.cfg.storage_class.clone(),
            acl: self.cfg.acl.clone(),
            ..Default::default()
        };
        store_user_meta(s, &mut o.headers.user_meta);
        o
    }

    /// mkdir = PUT `dir/` with the mode in `x-cos-meta-mode`.
    pub async fn mkdir(
        &self,
        parent: InodeNo,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Entry> {
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let key = self.key_of(&rel, FileKind::Dir)?;
        self.ensure_absent(&rel).await?;
        // The adapter applied the caller's umask (or not: `creation_mode`) to `mode`.
        let mut s = Stat::new_local(FileKind::Dir, mode, uid, gid);
        self.inherit_acl(parent, &mut s).await;
        self.deletes.cancel(key.as_str());
        self.deletes.unmark_dir(key.as_str());
        let opts = self.new_object_opts(&s);
        s.etag = Some(
            self.put_own_object(key.as_str(), Bytes::new(), &opts)
                .await?,
        );
        self.attrs.put(&rel, s.clone());
        self.touch_dir(parent);
        self.own.made_dir(&rel);
        let ino = self
            .table
            .upsert(parent, name.as_str(), FileKind::Dir, true);
        Ok(self.entry_of(ino, &s))
    }

    /// unlink = (batched) DELETE; cancels a pending upload of the file.
    pub async fn unlink(&self, parent: InodeNo, name: &OsStr) -> FsResult<()> {
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let s = self.stat_path(&rel).await?;
        if s.kind == FileKind::Dir {
            return Err(FsError::IsDir);
        }
        let key = self.key_of(&rel, FileKind::File)?;
        let child = self.table.child_node(parent, name.as_str());
        if let Some((ino, n)) = &child {
            if n.is_open() && !n.is_staged() {
                // Open descriptors must keep reading and writing the file after the name is
                // gone (POSIX): keep its bytes locally before the upload is discarded.
                if let Err(e) = self.stage(*ino, n, true).await {
                    log::warn!("unlink {rel}: could not keep a copy for its open descriptors: {e}");
                }
            }
        }
        let node = child.map(|(_, n)| n);
        {
            // Serialized with a hand-off of the same inode: it either enqueued before (and is
            // discarded here) or sees the inode detached and uploads nothing.
            let _ns = self.ns.read().await;
            let _gate = match &node {
                Some(n) => Some(n.gate.lock().await),
                None => None,
            };
            self.uploads.discard(key.as_str());
            self.attrs.put_absent(&rel);
            self.own.removed(&rel);
            self.table.remove(parent, name.as_str());
        }
        // The name is gone: its downloaded bytes go too (bytes not yet written behind never
        // reach the disk), unless open descriptors may still read through them.
        if !node.as_ref().is_some_and(|n| n.is_open()) {
            self.readcache.forget(key.as_str());
        }
        // Always delete in COS too: an upload may have finished a moment ago.
        self.queue_delete(key.to_string()).await;
        self.touch_dir(parent);
        Ok(())
    }

    /// rmdir: ENOTEMPTY when anything is under it; else deletes the marker.
    pub async fn rmdir(&self, parent: InodeNo, name: &OsStr) -> FsResult<()> {
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let s = self.stat_path(&rel).await?;
        if s.kind != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        let key = self.key_of(&rel, FileKind::Dir)?;
        let staged_inside = self
            .table
            .child_node(parent, name.as_str())
            .is_some_and(|(ino, _)| self.table.has_staged_under(ino));
        if staged_inside || !self.uploads.pending_under(key.as_str()).is_empty() {
            return Err(FsError::NotEmpty);
        }
        // Empty = every key under it is its marker, waits for deletion (rm -r unlinked them),
        // or has a name no listing here can show (`d/./x`, `d//x`, written by other tools):
        // the directory looks empty, so those go with it.
        let mut marker_exists = false;
        let mut hidden = Vec::new();
        let mut marker = None;
        for _ in 0..MAX_PAGES {
            let req = ListRequest {
                prefix: key.to_string(),
                delimiter: None,
                marker: marker.clone(),
                max_keys: Some(1000),
            };
            let page = self.store.list_objects(&req).await?;
            for o in &page.objects {
                let first = o.key[key.as_str().len()..].split('/').next().unwrap_or("");
                if o.key == key.as_str() {
                    marker_exists = true;
                } else if ValidName::parse(first).is_err() {
                    hidden.push(o.key.clone());
                } else if !self.deletes.contains(&o.key) {
                    return Err(FsError::NotEmpty);
                }
            }
            if !page.is_truncated {
                break;
            }
            marker = page
                .next_marker
                .or_else(|| page.objects.last().map(|o| o.key.clone()));
        }
        let climbing = self.deletes.has_removed_under(key.as_str());
        for k in hidden {
            log::info!("rmdir {rel}: also deleting {k:?}, a key no file name can show");
            self.queue_delete(k).await;
        }
        if marker_exists {
            self.queue_delete(key.to_string()).await;
        }
        self.deletes.mark_dir_removed(key.as_str());
        if climbing {
            self.flush_deletes_under(key.as_str()).await;
        }
        self.attrs.invalidate_tree(&rel);
        self.attrs.put_absent(&rel);
        self.own.removed(&rel);
        self.table.remove(parent, name.as_str());
        self.touch_dir(parent);
        Ok(())
    }

    /// symlink: an object whose body is the target, mode `S_IFLNK|0777` (cosfs's format).
    pub async fn symlink(
        &self,
        parent: InodeNo,
        name: &OsStr,
        target: &std::path::Path,
        uid: u32,
        gid: u32,
    ) -> FsResult<Entry> {
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let key = self.key_of(&rel, FileKind::Symlink)?;
        let target = target
            .to_str()
            .ok_or_else(|| FsError::InvalidName("symlink target is not UTF-8".into()))?
            .to_string();
        self.ensure_absent(&rel).await?;
        let mut s = Stat::new_local(FileKind::Symlink, 0o777, uid, gid);
        s.size = target.len() as u64;
        self.deletes.cancel(key.as_str());
        let opts = self.new_object_opts(&s);
        s.etag = Some(
            self.put_own_object(key.as_str(), Bytes::from(target), &opts)
                .await?,
        );
        self.attrs.put(&rel, s.clone());
        self.touch_dir(parent);
        self.own.added(&rel);
        let ino = self
            .table
            .upsert(parent, name.as_str(), FileKind::Symlink, true);
        Ok(self.entry_of(ino, &s))
    }

    /// readlink: the object body.
    pub async fn readlink(&self, ino: InodeNo) -> FsResult<Vec<u8>> {
        let rel = self.table.path(ino)?;
        let s = self.stat_path(&rel).await?;
        if s.kind != FileKind::Symlink {
            return Err(FsError::InvalidArgument("not a symlink".into()));
        }
        let key = self.key_of(&rel, FileKind::Symlink)?;
        if let Some(p) = self.uploads.pending(key.as_str()) {
            return Ok(std::fs::read(p.path)?);
        }
        Ok(self
            .store
            .get_object(key.as_str(), None)
            .await?
            .data
            .to_vec())
    }

    /// link: COS has no hard links → EPERM ("Operation not permitted").
    pub async fn link(
        &self,
        _ino: InodeNo,
        _newparent: InodeNo,
        _newname: &OsStr,
    ) -> FsResult<Entry> {
        Err(FsError::NotPermitted("hard links are not supported on COS"))
    }

    /// mknod: regular files are created like `create`; FIFOs, sockets and (as root, the
    /// kernel checks) character and block devices are empty objects whose `x-cos-meta-mode`
    /// carries the type and `x-cos-meta-rdev` the device number, as s3fs stores them.
    #[allow(clippy::too_many_arguments)]
    pub async fn mknod(
        &self,
        parent: InodeNo,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Entry> {
        let kind = match FileKind::from_type_bits(mode & libc::S_IFMT) {
            _ if mode & libc::S_IFMT == 0 => FileKind::File,
            Some(k) if k == FileKind::File || k.is_special() => k,
            _ => return Err(FsError::InvalidArgument("mknod of this type".into())),
        };
        if kind == FileKind::File {
            let (entry, fh) = self
                .create(parent, name, mode, libc::O_WRONLY | libc::O_EXCL, uid, gid)
                .await?;
            self.release(entry.attr.ino, fh).await?;
            return Ok(entry);
        }
        self.check_writable()?;
        let name = ValidName::new(name)?;
        let rel = join(&self.dir_path(parent)?, name.as_str());
        let key = self.key_of(&rel, kind)?;
        self.ensure_absent(&rel).await?;
        let mut s = Stat::new_local(kind, mode & 0o7777, uid, gid);
        self.inherit_acl(parent, &mut s).await;
        if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
            s.rdev = rdev;
        }
        self.deletes.cancel(key.as_str());
        let opts = self.new_object_opts(&s);
        s.etag = Some(
            self.put_own_object(key.as_str(), Bytes::new(), &opts)
                .await?,
        );
        self.attrs.put(&rel, s.clone());
        self.touch_dir(parent);
        self.own.added(&rel);
        let ino = self.table.upsert(parent, name.as_str(), kind, true);
        Ok(self.entry_of(ino, &s))
    }

    /// A directory's entries changed: its mtime and ctime become now (kept in this mount's
    /// cache; COS keeps no time for a listing).
    pub(crate) fn touch_dir(&self, dir: InodeNo) {
        if let Some(rel) = self.touch_dir_times(dir) {
            self.listings.drop_tree(&rel);
        }
    }

    /// `touch_dir` after creating `name` (a file) in `dir`: its listing is kept, with the name.
    pub(crate) fn touch_dir_created(&self, dir: InodeNo, name: &str, kind: FileKind) {
        if let Some(rel) = self.touch_dir_times(dir) {
            self.listings.add(&rel, name, kind);
        }
    }

    /// Sets a directory's mtime/ctime to now; returns its path.
    fn touch_dir_times(&self, dir: InodeNo) -> Option<String> {
        let rel = self.table.path(dir).ok()?;
        let base = match self.attrs.get(&rel) {
            Cached::Present(s) | Cached::Stale(s) => Some(s),
            _ if rel.is_empty() => Some(Stat::dir(&self.defaults(), self.started)),
            _ => None,
        };
        self.attrs.touch_dir(&rel, SystemTime::now(), base);
        // Scans stay: this mount's own names are found before them (staged, pending, cached)
        // and they live for about a second.
        Some(rel)
    }

    /// statfs: a large, mostly free filesystem (COS has no quota to report).
    pub async fn statfs(&self, _ino: InodeNo) -> FsResult<StatFs> {
        const BLOCKS: u64 = 1 << 40; // 4 PiB of 4 KiB blocks
        Ok(StatFs {
            blocks: BLOCKS,
            bfree: BLOCKS,
            bavail: BLOCKS,
            files: 1 << 32,
            ffree: 1 << 32,
            bsize: 4096,
            namelen: super::path::NAME_MAX as u32,
            frsize: 4096,
        })
    }

    /// The root's entry (for tests and the adapter's init).
    pub fn root(&self) -> InodeNo {
        ROOT_INO
    }
}
