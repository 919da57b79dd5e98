//! High-level transfers built on the multipart family: `upload_multipart` (a file or an
//! in-memory buffer, parts uploaded in parallel, progress reported as loaded/total/speed/percent)
//! and multipart copy for sources over 5 GB (`copy_multipart`, chosen by `copy_auto`).
//! A failed transfer aborts its upload so no parts are left behind.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::CosClient;
use super::error::{CosError, CODE_LOCAL_IO};
use super::types::{Conditional, Conditions, CopyOutput};
use crate::store::{CompletedPart, CopyOptions, MetadataDirective, PutOptions, PutResult};

/// Largest object a single PUT Object - Copy accepts (5 GB); larger sources use part copies.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part COS accepts (except the last).
pub const MIN_PART_SIZE: u64 = 1024 * 1024;
/// Most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// Where the bytes of a multipart upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A local file, read part by part (never loaded whole).
    File(PathBuf),
    /// An in-memory buffer.
    Bytes(Bytes),
}

/// A progress report of a transfer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes confirmed by COS so far.
    pub loaded: u64,
    /// Total bytes of the transfer.
    pub total: u64,
    /// Average speed since the start, bytes per second.
    pub speed: f64,
    /// `loaded / total` in percent (100 for an empty transfer).
    pub percent: f64,
}

/// Progress callback: called once at the start, after every finished part, and at the end.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Tracks bytes done and reports them.
struct Tracker {
    /// Bytes confirmed so far (parts finish concurrently).
    loaded: AtomicU64,
    /// Total size.
    total: u64,
    /// Transfer start, for the speed.
    start: Instant,
    /// The caller's callback.
    callback: Option<ProgressFn>,
}

impl Tracker {
    fn add(&self, n: u64) {
        let loaded = self.loaded.fetch_add(n, Ordering::Relaxed) + n;
        self.report(loaded);
    }

    fn report(&self, loaded: u64) {
        if let Some(cb) = &self.callback {
            let secs = self.start.elapsed().as_secs_f64();
            cb(Progress {
                loaded,
                total: self.total,
                speed: if secs > 0.0 {
                    loaded as f64 / secs
                } else {
                    0.0
                },
                percent: if self.total == 0 {
                    100.0
                } else {
                    loaded as f64 * 100.0 / self.total as f64
                },
            });
        }
    }
}

/// Part size actually used: at least 1 MiB, and large enough for ≤ 10 000 parts.
pub fn effective_part_size(total: u64, requested: u64) -> u64 {
    let min_for_count = total.div_ceil(MAX_PARTS);
    requested.max(MIN_PART_SIZE).max(min_for_count)
}

/// Byte ranges `[start, end)` of the parts of an object of `total` bytes (one empty part for
/// an empty object, so Complete has something to assemble).
pub fn part_ranges(total: u64, part_size: u64) -> Vec<(u64, u64)> {
    if total == 0 {
        return vec![(0, 0)];
    }
    (0..total.div_ceil(part_size))
        .map(|i| (i * part_size, ((i + 1) * part_size).min(total)))
        .collect()
}

fn local_io(path: &std::path::Path, e: std::io::Error) -> CosError {
    CosError::client(0, CODE_LOCAL_IO, format!("{}: {e}", path.display()))
}

async fn read_range(path: &std::path::Path, start: u64, end: u64) -> Result<Bytes, CosError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| local_io(path, e))?;
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| local_io(path, e))?;
    let mut buf = vec![0u8; (end - start) as usize];
    f.read_exact(&mut buf)
        .await
        .map_err(|e| local_io(path, e))?;
    Ok(Bytes::from(buf))
}

impl CosClient {
    /// Uploads `source` to `key` as a multipart upload: `part_size` bytes per part (raised to
    /// the 1 MiB minimum and to fit 10 000 parts), `parallelism` parts in flight, `progress`
    /// called with (loaded, total, speed, percent). On failure the upload is aborted.
    pub async fn upload_multipart(
        &self,
        key: &str,
        source: UploadSource,
        part_size: u64,
        parallelism: usize,
        opts: &PutOptions,
        progress: Option<ProgressFn>,
    ) -> Result<PutResult, CosError> {
        let total = match &source {
            UploadSource::Bytes(b) => b.len() as u64,
            UploadSource::File(p) => tokio::fs::metadata(p)
                .await
                .map_err(|e| local_io(p, e))?
                .len(),
        };
        let part_size = effective_part_size(total, part_size);
        let ranges = part_ranges(total, part_size);
        let tracker = Tracker {
            loaded: AtomicU64::new(0),
            total,
            start: Instant::now(),
            callback: progress,
        };
        tracker.report(0);
        let upload_id = self.initiate(key, opts).await?;
        let source = &source;
        let tracker_ref = &tracker;
        let upload_id_ref = upload_id.as_str();
        let result: Result<Vec<CompletedPart>, CosError> =
            stream::iter(ranges.into_iter().enumerate())
                .map(|(i, (start, end))| async move {
                    let body = match source {
                        UploadSource::Bytes(b) => b.slice(start as usize..end as usize),
                        UploadSource::File(p) => read_range(p, start, end).await?,
                    };
                    let part_number = i as u32 + 1;
                    let etag = self.put_part(key, upload_id_ref, part_number, body).await?;
                    tracker_ref.add(end - start);
                    Ok(CompletedPart { part_number, etag })
                })
                .buffer_unordered(parallelism.max(1))
                .try_collect()
                .await;
        let finished = match result {
            Ok(mut parts) => {
                parts.sort_by_key(|p| p.part_number);
                self.complete(key, &upload_id, &parts).await
            }
            Err(e) => Err(e),
        };
        if finished.is_err() {
            if let Err(abort) = self.abort(key, &upload_id).await {
                log::warn!("abort of failed upload {upload_id} of {key:?} failed: {abort}");
            }
        }
        finished
    }

    /// Copies `src_key` to `dst_key` with Upload Part - Copy (for sources over 5 GB):
    /// `part_size` bytes per part, `parallelism` in flight, destination headers from `opts`.
    pub async fn copy_multipart(
        &self,
        src_key: &str,
        dst_key: &str,
        source_size: u64,
        part_size: u64,
        parallelism: usize,
        opts: &PutOptions,
    ) -> Result<PutResult, CosError> {
        let part_size = effective_part_size(source_size, part_size);
        let upload_id = self.initiate(dst_key, opts).await?;
        let upload_id_ref = upload_id.as_str();
        let none = Conditions::default();
        let none_ref = &none;
        let result: Result<Vec<CompletedPart>, CosError> =
            stream::iter(part_ranges(source_size, part_size).into_iter().enumerate())
                .map(|(i, (start, end))| async move {
                    let part_number = i as u32 + 1;
                    // An empty source has one empty part: copy it whole (no range).
                    let range = (end > start).then(|| (start, end - 1));
                    let out: CopyOutput = self
                        .put_part_copy(
                            dst_key,
                            upload_id_ref,
                            part_number,
                            src_key,
                            range,
                            none_ref,
                        )
                        .await?;
                    Ok(CompletedPart {
                        part_number,
                        etag: out.etag,
                    })
                })
                .buffer_unordered(parallelism.max(1))
                .try_collect()
                .await;
        let finished = match result {
            Ok(mut parts) => {
                parts.sort_by_key(|p| p.part_number);
                self.complete(dst_key, &upload_id, &parts).await
            }
            Err(e) => Err(e),
        };
        if finished.is_err() {
            if let Err(abort) = self.abort(dst_key, &upload_id).await {
                log::warn!("abort of failed copy {upload_id} to {dst_key:?} failed: {abort}");
            }
        }
        finished
    }

    /// Copy choosing the method by size: PUT Object - Copy first (one request in the common
    /// case); when COS refuses it as EntityTooLarge (source over 5 GB), HEAD the source and
    /// copy it with Upload Part - Copy (64 MiB parts, 4 in flight). With
    /// `MetadataDirective::Copy` the multipart path carries the source's metadata over itself,
    /// as COS would.
    pub async fn copy_auto(
        &self,
        src_key: &str,
        dst_key: &str,
        opts: &CopyOptions,
    ) -> Result<PutResult, CosError> {
        match self
            .copy(src_key, dst_key, opts, &Conditions::default(), None)
            .await
        {
            Ok(out) => {
                return Ok(PutResult {
                    etag: out.etag,
                    crc64: out.crc64,
                })
            }
            Err(e) if e.code == "EntityTooLarge" => {}
            Err(e) => return Err(e),
        }
        let meta = match self.head(src_key, &Conditions::default()).await? {
            Conditional::Found(m) => m,
            Conditional::NotModified => {
                return Err(CosError::client(
                    304,
                    super::error::CODE_PROTOCOL,
                    "304 to an unconditional HEAD",
                ))
            }
        };
        if let Some(want) = &opts.if_match {
            if super::xml::unquote_etag(want) != meta.etag {
                return Err(CosError::client(
                    412,
                    "PreconditionFailed",
                    "copy source ETag changed",
                ));
            }
        }
        let put = PutOptions {
            headers: match &opts.directive {
                MetadataDirective::Copy => meta.headers.clone(),
                MetadataDirective::Replaced(h) => h.clone(),
            },
            storage_class: opts.storage_class.clone(),
            acl: opts.acl.clone(),
            grant_read: None,
            grant_full_control: None,
        };
        self.copy_multipart(src_key, dst_key, meta.size, 64 * 1024 * 1024, 4, &put)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_limits() {
        assert_eq!(effective_part_size(10, 1), MIN_PART_SIZE);
        assert_eq!(
            effective_part_size(100 * MIN_PART_SIZE, 8 * MIN_PART_SIZE),
            8 * MIN_PART_SIZE
        );
        let huge = 20_000 * MIN_PART_SIZE;
        let p = effective_part_size(huge, MIN_PART_SIZE);
        assert!(huge.div_ceil(p) <= MAX_PARTS);
    }

    #[test]
    fn ranges_cover_the_object_exactly() {
        assert_eq!(part_ranges(0, 5), vec![(0, 0)]);
        assert_eq!(part_ranges(10, 5), vec![(0, 5), (5, 10)]);
        assert_eq!(part_ranges(11, 5), vec![(0, 5), (5, 10), (10, 11)]);
    }

    #[test]
    fn tracker_reports_percent_and_speed() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let t = Tracker {
            loaded: AtomicU64::new(0),
            total: 200,
            start: Instant::now(),
            callback: Some(Arc::new(move |p: Progress| s2.lock().unwrap().push(p))),
        };
        t.add(50);
        t.add(150);
        let v = seen.lock().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].loaded, v[0].percent), (50, 25.0));
        assert_eq!((v[1].loaded, v[1].total, v[1].percent), (200, 200, 100.0));
        assert!(v[1].speed >= 0.0);
    }
}
