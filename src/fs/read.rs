//! Reading: a reader whose offsets follow on from its previous reads (within
//! `SEQ_NEAR_PARTS` parts of the furthest end so far) is sequential and gets
//! `read_part_size` parts fetched ahead of it in parallel (`readahead_parts` of them, within a
//! global byte budget; read-ahead is skipped when the budget is spent, demanded bytes never wait
//! for it). Any other read is random: it fetches only the bytes asked for, rounded out to the
//! read cache's chunks (`read_block`), and drops the read-ahead of that handle. A handle's
//! second random read starts the background fill of the object (`fill.rs`) when it is small
//! enough; one seek (a file's trailer, say) does not.
//!
//! Every downloaded range goes into the read cache (`readcache.rs`, keyed by key + ETag), and
//! every read is served from it first, so a re-read costs no request while the object's ETag is
//! unchanged. A handle learns the ETag from the attributes at open, then from each GET: a GET
//! answering another ETag drops what the cache held of the key and the handle's read-ahead.
//! The cache's disk writes happen behind the reader (`readcache.rs`); the part a sequential
//! reader is inside stays in memory until it moves on, so a sequential reader holds the parts
//! in flight and one more. Files with a pending upload are read from their local copy.
//!
//! Archived objects: GET fails with `StoreError::Archived`; we log one warning naming the file
//! and the `setfattr` command that restores it and return the errno documented in `error.rs`.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::error::{FsError, FsResult};
use super::Fs;
use crate::store::{GetResult, ObjectStore, StoreError};

/// How far (in read parts) before or after the furthest end read so far a read still counts
/// as sequential.
const SEQ_NEAR_PARTS: u64 = 2;

/// Units of the read-ahead budget semaphore (its permits count KiB, so budgets up to 4 TiB fit).
const BUDGET_UNIT: u64 = 1024;

/// One read-ahead part of the object, loading or loaded.
pub(crate) enum Part {
    /// A GET in flight (and its share of the read-ahead budget, if it took one).
    Loading(
        JoinHandle<Result<GetResult, StoreError>>,
        Option<OwnedSemaphorePermit>,
    ),
    /// The bytes, kept while the reader is inside the part.
    Ready(Bytes, Option<OwnedSemaphorePermit>),
}

/// The read state of a handle over a COS object.
pub(crate) struct Remote {
    /// Key.
    key: String,
    /// Object size when opened.
    size: u64,
    /// ETag of the bytes this handle reads (None until known).
    etag: Option<String>,
    /// Read-ahead parts by index.
    parts: BTreeMap<u64, Part>,
    /// Offset right after the previous read (sequential detection).
    next: u64,
    /// Random (non-sequential) reads so far.
    randoms: u32,
    /// The background fill this handle started, if any (aborted with the handle).
    fill: Option<JoinHandle<()>>,
}

impl Remote {
    fn stop_fill(&mut self) {
        if let Some(h) = self.fill.take() {
            h.abort();
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        abort_all(&mut self.parts);
        self.stop_fill();
    }
}

fn abort_all(parts: &mut BTreeMap<u64, Part>) {
    for (_, p) in std::mem::take(parts) {
        if let Part::Loading(h, _) = p {
            h.abort();
        }
    }
}

/// Where a read handle's bytes come from.
pub(crate) enum Source {
    /// A local pending-upload copy.
    Local(std::fs::File),
    /// COS (boxed: it is much larger than a file).
    Remote(Box<Remote>),
}

impl Fs {
    /// A reader over `key` (local when an upload of it is pending).
    pub(crate) fn open_source(&self, key: &str, size: u64) -> Source {
        self.open_source_at(key, size, None)
    }

    /// A reader over `key` at `etag` (the attributes' ETag: the read cache serves it without a
    /// request).
    pub(crate) fn open_source_at(&self, key: &str, size: u64, etag: Option<String>) -> Source {
        if let Some(p) = self.uploads.pending(key) {
            if let Ok(f) = std::fs::File::open(&p.path) {
                return Source::Local(f);
            }
        }
        Source::Remote(Box::new(Remote {
            key: key.to_string(),
            size,
            etag: etag.map(|e| e.trim_matches('"').to_string()),
            parts: BTreeMap::new(),
            next: 0,
            randoms: 0,
            fill: None,
        }))
    }

    /// Reads `[offset, offset+size)` from a source.
    pub(crate) async fn read_source(
        &self,
        src: &mut Source,
        rel: &str,
        offset: u64,
        size: u32,
    ) -> FsResult<Bytes> {
        match src {
            Source::Local(f) => {
                let mut buf = vec![0u8; size as usize];
                let n = read_at_full(f, &mut buf, offset)?;
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Source::Remote(r) => {
                let res = self.read_remote(r, offset, size).await;
                if let Err(e @ (FsError::Archived | FsError::Restoring)) = &res {
                    log::warn!(
                        "{rel}: object {} is archived and not restored{}; restore it with: \
                         setfattr -n user.cos.restore -v days=1 <mountpoint>/{rel}",
                        r.key,
                        if *e == FsError::Restoring {
                            " (a restore is in progress)"
                        } else {
                            ""
                        }
                    );
                }
                res
            }
        }
    }

    /// Starts a GET of `range` in the background.
    fn spawn_get(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> JoinHandle<Result<GetResult, StoreError>> {
        let store: Arc<dyn ObjectStore> = self.store.clone();
        let k = key.to_string();
        tokio::spawn(async move { store.get_object(&k, Some(range)).await })
    }

    /// Takes in a GET's answer for `r`: a new ETag drops the old one's cached bytes and the
    /// read-ahead; the bytes go into the cache. Returns true when the cache now holds them all.
    fn absorb(&self, r: &mut Remote, start: u64, g: &GetResult) -> bool {
        let etag = g.etag.trim_matches('"');
        if r.etag.as_deref() != Some(etag) {
            if r.etag.is_some() {
                self.readcache.forget(&r.key);
                abort_all(&mut r.parts);
                r.stop_fill();
            }
            r.etag = Some(etag.to_string());
        }
        self.readcache
            .put(&r.key, etag, start, &g.data, g.total_size)
    }

    /// Starts read-ahead of a sequential reader at `[offset, end)`: the parts it demands
    /// and up to `readahead_parts` more, except those already cached or loading.
    fn read_ahead(&self, r: &mut Remote, offset: u64, end: u64) {
        let psize = self.cfg.read_part_size.max(1);
        let first = offset / psize;
        let last = (end - 1) / psize;
        let max_part = (r.size - 1) / psize;
        let ahead = self.cfg.readahead_parts as u64;
        // Parts behind the reader are done with (bounded memory), but for the last few: READs
        // that arrive out of order still want them (see `SEQ_NEAR_PARTS`).
        let keep_from = first.saturating_sub(SEQ_NEAR_PARTS);
        let behind: Vec<u64> = r.parts.range(..keep_from).map(|(&i, _)| i).collect();
        for i in behind {
            if let Some(Part::Loading(h, _)) = r.parts.remove(&i) {
                h.abort();
            }
        }
        for i in first..=(last + ahead).min(max_part) {
            if r.parts.contains_key(&i) {
                continue;
            }
            let range = i * psize..((i + 1) * psize).min(r.size);
            if let Some(e) = &r.etag {
                if self.readcache.contains(&r.key, e, range.clone()) {
                    continue;
                }
            }
            let permit = if i > last {
                let units = (range.end - range.start).div_ceil(BUDGET_UNIT) as u32;
                match self.readahead.clone().try_acquire_many_owned(units) {
                    Ok(p) => Some(p),
                    Err(_) => break, // budget spent: no read-ahead now
                }
            } else {
                None
            };
            let h = self.spawn_get(&r.key, range);
            r.parts.insert(i, Part::Loading(h, permit));
        }
    }

    async fn read_remote(&self, r: &mut Remote, offset: u64, size: u32) -> FsResult<Bytes> {
        let total = r.size;
        if offset >= total || size == 0 {
            return Ok(Bytes::new());
        }
        let psize = self.cfg.read_part_size.max(1);
        let chunk = self.readcache.chunk();
        let end = (offset + u64::from(size)).min(total);
        // Near the furthest end so far counts as sequential: the kernel's parallel read-ahead
        // READs arrive out of order, by up to 3 MiB for a reader that asked for sequential
        // access (`cat`: POSIX_FADV_SEQUENTIAL doubles the kernel's window). Taken for random,
        // each such READ dropped the read-ahead and started a fill of the whole object.
        let near = psize.saturating_mul(SEQ_NEAR_PARTS);
        let sequential = offset <= r.next.saturating_add(near) && offset + near >= r.next;
        if sequential {
            self.read_ahead(r, offset, end);
        } else {
            abort_all(&mut r.parts);
            r.randoms = r.randoms.saturating_add(1);
        }
        let mut out = Answer::default();
        let mut pos = offset;
        // Bounded: each turn advances `pos` or leaves the loop.
        while pos < end {
            let i = pos / psize;
            if let Some(part) = r.parts.remove(&i) {
                let pstart = i * psize;
                let (data, permit) = match part {
                    Part::Ready(b, p) => (b, p),
                    Part::Loading(mut h, p) => {
                        let g = (&mut h).await.map_err(|e| FsError::Io(e.to_string()))??;
                        self.absorb(r, pstart, &g);
                        (g.data, p)
                    }
                };
                let from = (pos - pstart) as usize;
                let to = ((end - pstart) as usize).min(data.len());
                if from >= to {
                    break; // the object shrank under us: stop at its new end
                }
                out.push(data.slice(from..to));
                pos = pstart + to as u64;
                let whole = data.len() as u64 == (pstart + psize).min(total) - pstart;
                // Kept while the reader is inside it: cheaper than the cache's pread.
                if whole && pos < pstart + data.len() as u64 {
                    r.parts.insert(i, Part::Ready(data, permit));
                }
                if !whole {
                    break;
                }
                continue;
            }
            if let Some(e) = r.etag.clone() {
                let b = self.readcache.read_prefix(&r.key, &e, pos..end);
                if !b.is_empty() {
                    pos += b.len() as u64;
                    out.push(b);
                    continue;
                }
            }
            // Not loading, not cached: fetch just this, rounded out to whole chunks.
            let fstart = pos / chunk * chunk;
            let fend = (end.div_ceil(chunk) * chunk).min(total);
            let g = self
                .store
                .get_object(&r.key, Some(fstart..fend))
                .await
                .map_err(FsError::from)?;
            self.absorb(r, fstart, &g);
            let from = (pos - fstart) as usize;
            let to = ((end - fstart) as usize).min(g.data.len());
            if from >= to {
                break;
            }
            out.push(g.data.slice(from..to));
            pos = fstart + to as u64;
            if (g.data.len() as u64) < fend - fstart {
                break;
            }
        }
        let out = out.done();
        let end_read = offset + out.len() as u64;
        r.next = if sequential {
            r.next.max(end_read)
        } else {
            end_read
        };
        // Once per handle: a fill that stopped early (low disk space, an error) is not retried
        // on every read.
        if !sequential && r.randoms == 2 {
            if let Some(e) = r.etag.clone() {
                r.fill = self.start_fill(&r.key, &e, total);
            }
        }
        Ok(out)
    }
}

/// A read's answer, assembled from the slices it was served from. The usual answer lies in one
/// part or chunk and is returned as a view of it, not copied: a copy of every byte read was
/// about 7 % of the daemon's CPU time in a sequential read.
#[derive(Default)]
enum Answer {
    /// Nothing yet.
    #[default]
    Empty,
    /// One slice.
    One(Bytes),
    /// Several, joined.
    Many(BytesMut),
}

impl Answer {
    /// Appends `b`.
    fn push(&mut self, b: Bytes) {
        *self = match std::mem::take(self) {
            Answer::Empty => Answer::One(b),
            Answer::One(a) => {
                let mut m = BytesMut::with_capacity(a.len() + b.len());
                m.extend_from_slice(&a);
                m.extend_from_slice(&b);
                Answer::Many(m)
            }
            Answer::Many(mut m) => {
                m.extend_from_slice(&b);
                Answer::Many(m)
            }
        }
    }

    /// The bytes.
    fn done(self) -> Bytes {
        match self {
            Answer::Empty => Bytes::new(),
            Answer::One(b) => b,
            Answer::Many(m) => m.freeze(),
        }
    }
}

/// pread until `buf` is full or EOF; returns the bytes read.
pub(crate) fn read_at_full(
    f: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
