//! The read cache's disk side: the writer thread that stores chunks behind the readers and
//! deletes the files of dropped objects, hole punching for evicted chunks, and the free-space
//! check that keeps the cache from crowding out staging files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};

use super::{lock, Backing, Inner};

/// Work for the writer thread.
pub(super) enum Work {
    /// Store chunks.
    Write(Job),
    /// Delete the file of a dropped object: off the caller's path, since removing a large
    /// file takes 30-200 ms (an `rm` through the mount, an eviction, a new ETag).
    Remove(PathBuf),
}

/// Chunks of one object for the writer thread.
pub(super) struct Job {
    /// The object's key.
    pub(super) key: String,
    /// The object's `Obj::id` (a dropped and re-created object skips the job).
    pub(super) id: u64,
    /// Chunk indexes.
    pub(super) chunks: Vec<u64>,
}

/// Starts the writer thread over `inner` (chunks of `chunk` bytes); it signals `written` as
/// chunks reach the disk and ends when the returned sender (the cache) is dropped. None: no
/// thread could start (the cache then writes inline).
pub(super) fn spawn_writer(
    inner: Arc<Mutex<Inner>>,
    written: Arc<Condvar>,
    chunk: u64,
) -> Option<Sender<Work>> {
    let (tx, rx) = channel::<Work>();
    std::thread::Builder::new()
        .name("readcache-writer".into())
        .spawn(move || {
            for work in rx {
                match work {
                    Work::Write(job) => {
                        write_job(&inner, chunk, &job);
                        written.notify_all();
                    }
                    Work::Remove(path) => {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        })
        .map_err(|e| log::warn!("read cache: writes stay inline: {e}"))
        .ok()
        .map(|_| tx)
}

/// Stores the chunks of `job` that are still waiting (the writer thread's work), one chunk per
/// lock hold so readers wait at most one chunk's pwrite. A chunk that fails to write leaves the
/// index: it was never readable from disk.
pub(super) fn write_job(m: &Mutex<Inner>, chunk: u64, job: &Job) {
    for &i in &job.chunks {
        let (f, b) = {
            let g = lock(m);
            let Some(o) = g.objects.get(&job.key).filter(|o| o.id == job.id) else {
                return; // dropped (a new ETag, or evicted whole): nothing left to write
            };
            let (Backing::Disk(_, f), Some(b)) = (&o.backing, o.unwritten.get(&i)) else {
                continue; // evicted meanwhile
            };
            (f.clone(), b.clone())
        };
        let res = f.write_all_at(&b, i * chunk);
        let mut g = lock(m);
        let inner = &mut *g;
        let Some(o) = inner.objects.get_mut(&job.key).filter(|o| o.id == job.id) else {
            return; // dropped while we wrote: its file is gone with it
        };
        match o.unwritten.get(&i) {
            Some(now) if now.as_ptr() == b.as_ptr() => {
                o.unwritten.remove(&i);
                inner.unwritten -= b.len() as u64;
                if let Err(e) = res {
                    log::debug!("read cache: writing a chunk: {e}");
                    if let Some((len, tick)) = o.chunks.remove(&i) {
                        inner.order.remove(&tick);
                        inner.used -= len;
                    }
                }
            }
            // Evicted (and perhaps stored anew) while we wrote: give the space back unless a
            // newer copy of the chunk is cached.
            Some(_) => {}
            None if !o.chunks.contains_key(&i) => punch_hole(&f, i * chunk, b.len() as u64),
            None => {}
        }
    }
}

/// True when less than 5 % of the filesystem holding `dir` is free (or it cannot be told).
pub(super) fn low_on_space(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return true;
    }
    st.f_bavail.saturating_mul(20) < st.f_blocks
}

/// Gives back the disk space of `[off, off+len)` (best effort: on filesystems without hole
/// punching the space stays used until the object is dropped; the index forgets it anyway).
pub(super) fn punch_hole(f: &File, off: u64, len: u64) {
    // SAFETY: fallocate on an owned, open descriptor; no memory is passed.
    let r = unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off as libc::off_t,
            len as libc::off_t,
        )
    };
    if r != 0 {
        log::debug!(
            "read cache: punching a hole: {}",
            std::io::Error::last_os_error()
        );
    }
}
