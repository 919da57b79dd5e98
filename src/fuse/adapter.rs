//! `FuseAdapter`: the `fuser::Filesystem` implementation. Each callback owns its arguments,
//! calls the `Fs` and replies. A call starts on the fuser thread and moves to the tokio runtime
//! at its first wait (`inline`); large reads and writes are spawned on the runtime at once. It
//! holds no state of its own; errors are logged at the level the `FsError` chooses
//! (`reply.rs`).

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::SystemTime;

use fuser::{
    AccessFlags, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow, WriteFlags,
};

use super::convert::{file_attr, set_time, ReplyPlusSink, ReplySink};
use super::reply::{fail, reply_empty, reply_entry, reply_xattr};
use crate::fs::{Fs, SetAttr};

/// The fuser filesystem over an `Fs`.
pub struct FuseAdapter {
    /// The filesystem core.
    fs: Arc<Fs>,
    /// Runtime the calls run on.
    rt: tokio::runtime::Handle,
}

/// Reads and writes up to this size run inline (see `FuseAdapter::inline_if`).
const INLINE_DATA: u32 = 128 * 1024;

impl FuseAdapter {
    /// An adapter calling `fs` on the runtime behind `handle`.
    pub fn new(fs: Arc<Fs>, handle: tokio::runtime::Handle) -> FuseAdapter {
        FuseAdapter { fs, rt: handle }
    }

    /// Spawns `f(fs)` on the runtime.
    fn spawn<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let fs = self.fs.clone();
        self.rt.spawn(async move { f(fs).await });
    }

    /// `inline` when `small`, else `spawn`: a large read or write is mostly copying, and the
    /// kernel keeps several reads of a sequential reader in flight; on a worker thread they
    /// are copied while the fuser thread takes the next request (cold `dd` reads: ~290 MiB/s
    /// all inline, ~500 this way).
    fn inline_if<F, Fut>(&self, small: bool, f: F)
    where
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if small {
            self.inline(f)
        } else {
            self.spawn(f)
        }
    }

    /// Runs `f(fs)` on the fuser thread (inside the runtime's context) until it first waits
    /// for something not ready, and hands the rest to the runtime. Every call but `destroy`
    /// runs this way: a hop to a worker thread and back costs 100-400 µs on a small VM (two
    /// cross-CPU wake-ups), more than most calls' own work; creating, writing and closing a
    /// small file went from about 310 to 790 files/s. The synchronous part of a call is
    /// memory work or short local file work in the page cache (a pwrite into a staging file,
    /// taking a spare staging file); whatever can take long (COS, copies of whole files,
    /// fsyncs of data) waits behind an `.await` (the upload queue, `spawn_blocking`), so the
    /// fuser thread is back to reading requests at once.
    fn inline<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let _ctx = self.rt.enter();
        let mut fut = Box::pin(f(self.fs.clone()));
        // Polling with a no-op waker is sound: the runtime polls a spawned task once at once,
        // and every tokio resource re-registers the waker of the latest poll.
        let mut cx = Context::from_waker(Waker::noop());
        if fut.as_mut().poll(&mut cx).is_pending() {
            self.rt.spawn(fut);
        }
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC arrives with open (no separate truncate-to-0 that would upload an empty
        // object first); large writes mean fewer round trips into the staging file.
        // READDIRPLUS: a listing carries each entry's attributes, so `ls -l` needs no LOOKUP
        // per entry (AUTO: the kernel uses it when a listing is followed by stats).
        let wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO;
        if let Err(missing) = config.add_capabilities(wanted) {
            log::info!("kernel lacks FUSE capabilities {missing:?}");
        }
        // POSIX ACLs: the kernel enforces and caches them and passes us only their xattrs;
        // with FUSE_DONT_MASK it leaves the umask to us, which must not apply under a parent's
        // default ACL (fs/posix_acl_fs.rs).
        for cap in [InitFlags::FUSE_POSIX_ACL, InitFlags::FUSE_DONT_MASK] {
            if let Err(missing) = config.add_capabilities(cap) {
                log::info!("kernel lacks FUSE capabilities {missing:?}");
            }
        }
        let _ = config.set_max_write(1024 * 1024);
        Ok(())
    }

    fn destroy(&mut self) {
        // Unmount: send the batched deletes before the daemon drains the upload queue. We are
        // on a fuser thread, not the runtime: wait on a channel, bounded in time.
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn(move |fs| async move {
            fs.shutdown().await;
            let _ = tx.send(());
        });
        if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            log::error!("unmount: batched deletes did not finish within 60 s");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.inline(move |fs| async move {
            let r = fs.lookup(parent.0, &name).await;
            reply_entry(reply, r, "lookup", format!("{}/{name:?}", parent.0));
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.inline(move |fs| async move {
            match fs.getattr(ino.0).await {
                Ok(a) => reply.attr(&fs.kernel_ttl(&a), &file_attr(&a)),
                Err(e) => reply.error(fail(&e, "getattr", ino.0)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let req = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
        };
        self.inline(move |fs| async move {
            match fs.setattr(ino.0, req, fh.map(|f| f.0)).await {
                Ok(a) => reply.attr(&fs.kernel_ttl(&a), &file_attr(&a)),
                Err(e) => reply.error(fail(&e, "setattr", ino.0)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.inline(move |fs| async move {
            match fs.readlink(ino.0).await {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(fail(&e, "readlink", ino.0)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (name, uid, gid) = (name.to_owned(), req.uid(), req.gid());
        self.inline(move |fs| async move {
            let mode = fs.creation_mode(parent.0, mode, umask).await;
            let r = fs.mknod(parent.0, &name, mode, rdev, uid, gid).await;
            reply_entry(reply, r, "mknod", format!("{name:?}"));
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let (name, uid, gid) = (name.to_owned(), req.uid(), req.gid());
        self.inline(move |fs| async move {
            let mode = fs.creation_mode(parent.0, mode, umask).await;
            let r = fs.mkdir(parent.0, &name, mode, uid, gid).await;
            reply_entry(reply, r, "mkdir", format!("{name:?}"));
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.inline(move |fs| async move {
            let r = fs.unlink(parent.0, &name).await;
            reply_empty(reply, r, "unlink", format!("{name:?}"));
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.inline(move |fs| async move {
            let r = fs.rmdir(parent.0, &name).await;
            reply_empty(reply, r, "rmdir", format!("{name:?}"));
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let (name, target, uid, gid) = (
            link_name.to_owned(),
            target.to_owned(),
            req.uid(),
            req.gid(),
        );
        self.inline(move |fs| async move {
            let r = fs.symlink(parent.0, &name, &target, uid, gid).await;
            reply_entry(reply, r, "symlink", format!("{name:?}"));
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.inline(move |fs| async move {
            let r = fs
                .rename(parent.0, &name, newparent.0, &newname, flags.bits())
                .await;
            reply_empty(reply, r, "rename", format!("{name:?} -> {newname:?}"));
        });
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let newname = newname.to_owned();
        self.inline(move |fs| async move {
            let r = fs.link(ino.0, newparent.0, &newname).await;
            reply_entry(reply, r, "link", format!("{newname:?}"));
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.inline(move |fs| async move {
            match fs.open(ino.0, flags.0).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(fail(&e, "open", ino.0)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.inline_if(size <= INLINE_DATA, move |fs| async move {
            let off = i64::try_from(offset).unwrap_or(i64::MAX);
            match fs.read(ino.0, fh.0, off, size).await {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(fail(&e, "read", ino.0)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let off = i64::try_from(offset).unwrap_or(i64::MAX);
        // The usual case (a staged file no one else is using) is written here, straight from
        // fuser's buffer: no copy, no hop to a worker.
        {
            let _ctx = self.rt.enter();
            if let Some(r) = self.fs.try_write_now(fh.0, off, data) {
                match r {
                    Ok(n) => reply.written(n),
                    Err(e) => reply.error(fail(&e, "write", ino.0)),
                }
                return;
            }
        }
        let small = data.len() <= INLINE_DATA as usize;
        // Copied out of fuser's buffer (the call may finish on a worker); large writes into a
        // reused buffer, since fresh ones cost page faults on every MiB written.
        let data = crate::store::bufpool::WRITES.copy_of(data);
        self.inline_if(small, move |fs| async move {
            match fs.write(ino.0, fh.0, off, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(fail(&e, "write", ino.0)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.inline(move |fs| async move {
            let r = fs.flush(ino.0, fh.0).await;
            reply_empty(reply, r, "flush", ino.0);
        });
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.inline(move |fs| async move {
            let r = fs.release(ino.0, fh.0).await;
            reply_empty(reply, r, "release", ino.0);
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.inline(move |fs| async move {
            let r = fs.fsync(ino.0, fh.0, datasync).await;
            reply_empty(reply, r, "fsync", ino.0);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.inline(move |fs| async move {
            match fs.opendir(ino.0, flags.0).await {
                Ok(fh) => {
                    let mut f = FopenFlags::FOPEN_CACHE_DIR;
                    if fs.kernel_dir_current(ino.0) {
                        f |= FopenFlags::FOPEN_KEEP_CACHE;
                    }
                    reply.opened(FileHandle(fh), f)
                }
                Err(e) => reply.error(fail(&e, "opendir", ino.0)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.inline(move |fs| async move {
            let mut sink = ReplySink(reply);
            let off = i64::try_from(offset).unwrap_or(i64::MAX);
            match fs.readdir(ino.0, fh.0, off, &mut sink).await {
                Ok(()) => sink.0.ok(),
                Err(e) => sink.0.error(fail(&e, "readdir", ino.0)),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.inline(move |fs| async move {
            let mut sink = ReplyPlusSink(reply);
            let off = i64::try_from(offset).unwrap_or(i64::MAX);
            match fs.readdirplus(ino.0, fh.0, off, &mut sink).await {
                Ok(()) => sink.0.ok(),
                Err(e) => sink.0.error(fail(&e, "readdirplus", ino.0)),
            }
        });
    }

    /// No ioctl applies to a file here: ENOTTY at once, without fuser's per-call warn! line
    /// (every `isatty()` check of a program opening a file asks, e.g. Python's `open`).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(fuser::Errno::ENOTTY);
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.inline(move |fs| async move {
            let r = fs.releasedir(ino.0, fh.0).await;
            reply_empty(reply, r, "releasedir", ino.0);
        });
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directory changes go to COS synchronously (or with the delete batch, flushed here).
        self.inline(move |fs| async move {
            fs.flush_deletes().await;
            reply.ok();
        });
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.inline(move |fs| async move {
            match fs.statfs(ino.0).await {
                Ok(s) => reply.statfs(
                    s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
                ),
                Err(e) => reply.error(fail(&e, "statfs", ino.0)),
            }
        });
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.inline(move |fs| async move {
            let r = fs.setxattr(ino.0, &name, &value, flags).await;
            reply_empty(reply, r, "setxattr", format!("{} {name:?}", ino.0));
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = name.to_owned();
        self.inline(move |fs| async move {
            let r = fs.getxattr(ino.0, &name).await;
            reply_xattr(reply, r, size, "getxattr", format!("{} {name:?}", ino.0));
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.inline(move |fs| async move {
            let r = fs.listxattr(ino.0).await;
            reply_xattr(reply, r, size, "listxattr", ino.0.to_string());
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.inline(move |fs| async move {
            let r = fs.removexattr(ino.0, &name).await;
            reply_empty(reply, r, "removexattr", format!("{} {name:?}", ino.0));
        });
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Permission checks are the kernel's (`default_permissions`); existence was checked by
        // the lookup that produced the inode.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (name, uid, gid) = (name.to_owned(), req.uid(), req.gid());
        self.inline(move |fs| async move {
            let mode = fs.creation_mode(parent.0, mode, umask).await;
            match fs.create(parent.0, &name, mode, flags, uid, gid).await {
                Ok((e, fh)) => reply.created(
                    &e.ttl,
                    &file_attr(&e.attr),
                    Generation(e.generation),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(fail(&e, "create", format!("{name:?}"))),
            }
        });
    }
}
