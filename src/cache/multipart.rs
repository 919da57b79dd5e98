//! Multipart upload of one staging file: Initiate once (the upload id is journaled so a later
//! daemon can abort it), parts read with pread and sent `part_parallelism` at a time, progress
//! after each part, pause between parts, Complete with the sorted part list. Completed parts are
//! kept in `MultipartProgress` so a retry or a resume after pause sends only the missing ones.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};

use super::task::{MultipartProgress, Signal};
use super::upload::Inner;
use super::worker::{cancelled, set_loaded, Job, Stop};
use crate::store::{CompletedPart, FileRange, Payload, PutResult, StoreError};

/// COS's limit on parts per upload.
pub const MAX_PARTS: u64 = 10_000;

/// The part size used for a file of `size` bytes: the configured one, raised (to a whole MiB)
/// when the file would need more than 10 000 parts.
pub fn effective_part_size(size: u64, configured: u64) -> u64 {
    let ps = configured.max(1);
    if size.div_ceil(ps) <= MAX_PARTS {
        return ps;
    }
    const MIB: u64 = 1024 * 1024;
    size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB
}

/// Number of parts and the byte range of part `n` (1-based).
fn part_range(size: u64, part_size: u64, n: u32) -> (u64, u64) {
    let start = u64::from(n - 1) * part_size;
    let len = part_size.min(size.saturating_sub(start));
    (start, len)
}

/// Bytes covered by the completed parts.
fn loaded_of(p: &MultipartProgress, size: u64) -> u64 {
    p.parts
        .keys()
        .map(|&n| part_range(size, p.part_size, n).1)
        .sum()
}

/// Uploads `file` (`size` bytes) to `job.key` as a multipart upload, resuming `progress`.
pub(crate) async fn upload(
    inner: &Inner,
    job: &mut Job,
    file: Arc<File>,
    size: u64,
    progress: &mut Option<MultipartProgress>,
) -> Result<PutResult, Stop> {
    match *job.signal.borrow() {
        Signal::Run => {}
        Signal::Pause => return Err(Stop::Paused),
        Signal::Cancel => return Err(Stop::Cancelled),
    }
    let part_size = effective_part_size(size, inner.cfg.part_size);
    let stale = progress
        .as_ref()
        .is_some_and(|p| p.key != job.key || p.part_size != part_size);
    if stale {
        if let Some(old) = progress.take() {
            if let Err(e) = inner.store.abort_multipart(&old.key, &old.upload_id).await {
                log::debug!(
                    "abort of multipart upload {} of {}: {e}",
                    old.upload_id,
                    old.key
                );
            }
        }
    }
    if progress.is_none() {
        let upload_id = tokio::select! {
            r = inner.store.initiate_multipart(&job.key, &job.opts) => r.map_err(Stop::Failed)?,
            _ = cancelled(&mut job.signal) => return Err(Stop::Cancelled),
        };
        // Not synced: losing it only leaves an orphaned upload in COS, not user data.
        let uid = upload_id.clone();
        if let Err(e) = inner
            .cache
            .journal()
            .update(job.id, |e| e.upload_id = Some(uid), false)
        {
            log::warn!("journal: could not record upload id of {}: {e}", job.key);
        }
        *progress = Some(MultipartProgress {
            key: job.key.clone(),
            upload_id,
            part_size,
            parts: Default::default(),
            times_left_out: false,
        });
    }
    let Some(p) = progress.as_mut() else {
        return Err(Stop::Failed(StoreError::Io("multipart state lost".into())));
    };
    let nparts = u32::try_from(size.div_ceil(part_size))
        .map_err(|_| Stop::Failed(StoreError::TooLarge("too many parts".into())))?;
    let mut todo: VecDeque<u32> = (1..=nparts).filter(|n| !p.parts.contains_key(n)).collect();
    set_loaded(inner, job.id, loaded_of(p, size));
    let parallelism = inner.cfg.part_parallelism.max(1);
    let mut inflight = FuturesUnordered::new();
    loop {
        let sig = *job.signal.borrow();
        if sig == Signal::Cancel {
            return Err(Stop::Cancelled);
        }
        while sig == Signal::Run && inflight.len() < parallelism {
            let Some(n) = todo.pop_front() else { break };
            let (start, len) = part_range(size, part_size, n);
            let store = inner.store.clone();
            let key = job.key.clone();
            let uid = p.upload_id.clone();
            let file = file.clone();
            // Sent from the staging file as it is read (store/payload.rs): no part-sized buffer.
            let body = Payload::File(FileRange { file, start, len });
            inflight.push(async move { (n, store.upload_part(&key, &uid, n, body).await) });
        }
        if inflight.is_empty() {
            if todo.is_empty() {
                break;
            }
            // Paused with every part in flight finished: stop here, progress kept.
            return Err(Stop::Paused);
        }
        tokio::select! {
            Some((n, r)) = inflight.next() => match r {
                Ok(etag) => {
                    p.parts.insert(n, etag.trim_matches('"').to_string());
                    set_loaded(inner, job.id, loaded_of(p, size));
                }
                // Parts still in flight are dropped; the retry resends only missing ones.
                Err(e) => return Err(Stop::Failed(e)),
            },
            r = job.signal.changed() => {
                if r.is_err() {
                    return Err(Stop::Cancelled);
                }
            }
        }
    }
    let parts: Vec<CompletedPart> = p
        .parts
        .iter()
        .map(|(&part_number, etag)| CompletedPart {
            part_number,
            etag: etag.clone(),
        })
        .collect();
    tokio::select! {
        r = inner.store.complete_multipart(&job.key, &p.upload_id, &parts) => r.map_err(Stop::Failed),
        _ = cancelled(&mut job.signal) => Err(Stop::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_stays_within_part_limit() {
        assert_eq!(effective_part_size(100, 10), 10);
        assert_eq!(effective_part_size(100, 0), 1);
        let big = 200 * 1024 * 1024 * 1024u64; // 200 GiB at 8 MiB parts = 25 600 parts
        let ps = effective_part_size(big, 8 * 1024 * 1024);
        assert!(big.div_ceil(ps) <= MAX_PARTS);
        assert_eq!(ps % (1024 * 1024), 0);
    }

    #[test]
    fn part_ranges_cover_the_file() {
        let (size, ps) = (25u64, 10u64);
        let ranges: Vec<_> = (1..=3).map(|n| part_range(size, ps, n)).collect();
        assert_eq!(ranges, vec![(0, 10), (10, 10), (20, 5)]);
    }
}
