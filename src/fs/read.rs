//! Reading: ranged GETs of `read_part_size` parts; a reader whose offsets follow on from the
//! previous read is sequential and gets `readahead_parts` further parts fetched in parallel.
//! Memory is bounded per handle (the parts around the reader) and globally (a semaphore of
//! part-sized permits; read-ahead is skipped when the budget is spent, demanded parts never
//! wait for it). Files with a pending upload are read from their local copy.
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
use crate::store::{ObjectStore, StoreError};

/// One part of the object, loading or loaded.
pub(crate) enum Part {
    /// A GET in flight.
    Loading(
        JoinHandle<Result<Bytes, StoreError>>,
        Option<OwnedSemaphorePermit>,
    ),
    /// The bytes (holding its share of the read-ahead budget, if it took one).
    Ready(Bytes, Option<OwnedSemaphorePermit>),
}

/// Where a read handle's bytes come from.
pub(crate) enum Source {
    /// A local pending-upload copy.
    Local(std::fs::File),
    /// COS.
    Remote {
        /// Key.
        key: String,
        /// Object size when opened.
        size: u64,
        /// Parts by index.
        parts: BTreeMap<u64, Part>,
        /// Offset right after the previous read (sequential detection).
        next: u64,
    },
}

impl Fs {
    /// A reader over `key` (local when an upload of it is pending).
    pub(crate) fn open_source(&self, key: &str, size: u64) -> Source {
        if let Some(p) = self.uploads.pending(key) {
            if let Ok(f) = std::fs::File::open(&p.path) {
                return Source::Local(f);
            }
        }
        Source::Remote {
            key: key.to_string(),
            size,
            parts: BTreeMap::new(),
            next: 0,
        }
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
            Source::Remote {
                key,
                size: total,
                parts,
                next,
            } => {
                let r = self
                    .read_remote(key, *total, parts, next, offset, size)
                    .await;
                if let Err(e @ (FsError::Archived | FsError::Restoring)) = &r {
                    log::warn!(
                        "{rel}: object {key} is archived and not restored{}; restore it with: \
                         setfattr -n user.cos.restore -v days=1 <mountpoint>/{rel}",
                        if *e == FsError::Restoring {
                            " (a restore is in progress)"
                        } else {
                            ""
                        }
                    );
                }
                r
            }
        }
    }

    async fn read_remote(
        &self,
        key: &str,
        total: u64,
        parts: &mut BTreeMap<u64, Part>,
        next: &mut u64,
        offset: u64,
        size: u32,
    ) -> FsResult<Bytes> {
        if offset >= total || size == 0 {
            return Ok(Bytes::new());
        }
        let psize = self.cfg.read_part_size.max(1);
        let end = (offset + u64::from(size)).min(total);
        let first = offset / psize;
        let last = (end - 1) / psize;
        let sequential = offset == *next;
        let ahead = if sequential {
            self.cfg.readahead_parts as u64
        } else {
            0
        };
        let max_part = (total - 1) / psize;
        // Drop parts the reader has left behind or jumped away from (bounded memory).
        parts.retain(|&i, _| i >= first && i <= last + ahead);
        for i in first..=(last + ahead).min(max_part) {
            if parts.contains_key(&i) {
                continue;
            }
            let permit = if i > last {
                match self.readahead.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => break, // budget spent: no read-ahead now
                }
            } else {
                None
            };
            let range = i * psize..((i + 1) * psize).min(total);
            let store: Arc<dyn ObjectStore> = self.store.clone();
            let k = key.to_string();
            let h = tokio::spawn(
                async move { store.get_object(&k, Some(range)).await.map(|g| g.data) },
            );
            parts.insert(i, Part::Loading(h, permit));
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for i in first..=last {
            let part = parts
                .remove(&i)
                .ok_or_else(|| FsError::Io("part missing".into()))?;
            let (data, permit) = match part {
                Part::Ready(b, p) => (b, p),
                Part::Loading(mut h, p) => {
                    let res = (&mut h).await.map_err(|e| FsError::Io(e.to_string()))?;
                    (res?, p)
                }
            };
            let pstart = i * psize;
            let from = (offset.max(pstart) - pstart) as usize;
            let to = ((end.min(pstart + psize) - pstart) as usize).min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
            let short = data.len() < ((pstart + psize).min(total) - pstart) as usize;
            parts.insert(i, Part::Ready(data, permit));
            if short {
                break; // the object shrank under us: stop at its new end
            }
        }
        *next = offset + out.len() as u64;
        Ok(out.freeze())
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
