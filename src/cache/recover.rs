//! Crash recovery: at startup, the journal entries a previous daemon left behind are checked
//! against COS and re-enqueued, or — when the object changed in COS meanwhile — their local
//! copies are kept in the recovery directory with a warning that says where. Staging files of a
//! dead daemon that were never handed to the queue (not closed before the crash) are kept there
//! too. Nothing is deleted unless COS provably has the same bytes.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::{Digest, Md5};

use super::journal::{Base, Entry};
use super::multipart::effective_part_size;
use super::task::RecoveryReport;
use super::upload::{new_task, remove_file_logged, UploadQueue};
use crate::store::{ObjectMeta, StoreError};

/// What to do with one journal entry.
enum Verdict {
    /// Upload it.
    Requeue,
    /// COS already has exactly this content.
    AlreadyThere,
    /// COS changed since the local copy started: keep the copy aside.
    Conflict(String),
}

/// MD5 hex of `len` bytes of `r`.
fn md5_of(r: &mut impl Read, len: u64) -> std::io::Result<[u8; 16]> {
    let mut h = Md5::new();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = r.read(&mut buf[..want])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        h.update(&buf[..got]);
        left -= got as u64;
    }
    Ok(h.finalize().into())
}

/// True when `etag` is the ETag COS computes for the file's content: the MD5 for a PUT, or
/// `md5(part md5s)-N` for a multipart upload with the part size this daemon would use.
fn content_matches(path: &Path, etag: &str, part_size: u64) -> std::io::Result<bool> {
    let etag = etag.trim_matches('"').to_ascii_lowercase();
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    match etag.split_once('-') {
        None => Ok(hex::encode(md5_of(&mut f, size)?) == etag),
        Some((digest, count)) => {
            let ps = effective_part_size(size, part_size);
            if count.parse::<u64>().ok() != Some(size.div_ceil(ps)) {
                return Ok(false);
            }
            let mut all = Vec::new();
            let mut left = size;
            while left > 0 {
                let n = left.min(ps);
                all.extend_from_slice(&md5_of(&mut f, n)?);
                left -= n;
            }
            Ok(hex::encode(Md5::digest(&all)) == digest)
        }
    }
}

impl UploadQueue {
    /// At startup: reads the journal left by a previous daemon and re-enqueues every unfinished
    /// upload. If the object in COS changed since `base_etag` (HEAD differs), the local copy is
    /// moved to recovery_dir as `<key with / replaced by %2F>.<timestamp>` and a warn! line says
    /// where. Returns the number re-enqueued and the recovered paths.
    ///
    /// On a store error (COS unreachable, after the client's bounded retries) the entries not yet handled
    /// stay journaled and a later call retries them. Tasks that were Paused or Failed in the
    /// previous daemon come back Queued (a new mount is a fresh attempt).
    ///
    /// Call it before the filesystem serves requests: the orphan scan moves staging files of
    /// the dead daemon that no journal entry names (files open for writing at the crash) to the
    /// recovery directory as `unclosed-<name>.<timestamp>`.
    pub async fn recover(&self) -> Result<RecoveryReport, StoreError> {
        let inner = &self.inner;
        // Before anything is re-enqueued: a worker finishing a recovered upload ends its journal
        // entry before deleting its file, and that file must not look orphaned in between.
        let mut report = RecoveryReport {
            orphans: self.keep_orphans(),
            ..RecoveryReport::default()
        };
        let entries = inner.cache.journal().take_replayed();
        if !entries.is_empty() {
            log::info!(
                "recovering {} journaled upload(s) in {}",
                entries.len(),
                inner.cache.root().display()
            );
        }
        for (i, e) in entries.iter().enumerate() {
            let newer_exists = entries[i + 1..]
                .iter()
                .any(|n| n.key == e.key && !n.unclosed);
            if let Some(uid) = &e.upload_id {
                // A half-done multipart upload of the dead daemon: it cannot be resumed safely
                // (its parts are unknown), so free it.
                if let Err(err) = inner.store.abort_multipart(&e.key, uid).await {
                    log::debug!("abort of leftover upload {uid} of {}: {err}", e.key);
                }
            }
            if e.unclosed {
                // The early upload of a file still open at the crash (aborted above): the file
                // itself was kept as unclosed by the orphan scan.
                self.forget_entry(e.id);
                continue;
            }
            if !e.file.exists() {
                if !newer_exists {
                    log::warn!(
                        "journaled upload of {} lost its staging file {}",
                        e.key,
                        e.file.display()
                    );
                    report.lost.push(e.key.clone());
                }
                self.forget_entry(e.id);
                continue;
            }
            // This daemon may already have queued a newer version (a write before recover ran).
            let newer_queued = inner
                .table()
                .tasks
                .values()
                .any(|t| t.key == e.key && t.removed.is_none() && t.seq > e.seq);
            if newer_exists || newer_queued {
                // A newer version of the same key supersedes it (the crash came before the
                // supersession was journaled).
                if !entries[i + 1..].iter().any(|n| n.file == e.file) {
                    remove_file_logged(&e.file);
                }
                self.forget_entry(e.id);
                continue;
            }
            let verdict = match self.judge(e).await {
                Ok(v) => v,
                Err(err) => {
                    inner
                        .cache
                        .journal()
                        .put_back_replayed(entries[i..].to_vec());
                    return Err(err);
                }
            };
            match verdict {
                Verdict::Requeue => {
                    let mtime = std::fs::metadata(&e.file)
                        .and_then(|m| m.modified())
                        .unwrap_or_else(|_| SystemTime::now());
                    let mut task = new_task(
                        e.id,
                        &e.key,
                        e.file.clone(),
                        e.size,
                        e.opts.to_opts(),
                        mtime,
                    );
                    task.seq = e.seq;
                    if e.upload_id.is_some() {
                        let r = inner
                            .cache
                            .journal()
                            .update(e.id, |x| x.upload_id = None, false);
                        if let Err(err) = r {
                            log::debug!("journal: {err}");
                        }
                    }
                    self.insert_task(task);
                    report.requeued += 1;
                }
                Verdict::AlreadyThere => {
                    self.forget_entry(e.id);
                    remove_file_logged(&e.file);
                    report.already_uploaded += 1;
                }
                Verdict::Conflict(why) => {
                    match inner.cache.keep_in_recovery(&e.file, &e.key) {
                        Ok(dest) => {
                            log::warn!(
                                "{}: the local copy was NOT uploaded ({why}); it is kept at {}",
                                e.key,
                                dest.display()
                            );
                            report.recovered.push(dest);
                            self.forget_entry(e.id);
                        }
                        Err(err) => {
                            // Keep the entry: the file stays where it is, journaled.
                            log::error!(
                                "{}: not uploaded ({why}), and its local copy {} could not be \
                                 moved to {}: {err}",
                                e.key,
                                e.file.display(),
                                inner.cache.recovery_dir().display()
                            );
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Decides one entry by HEAD (and, when the ETag differs, by the local content's hash).
    async fn judge(&self, e: &Entry) -> Result<Verdict, StoreError> {
        // A hand-off that was never fsync'd (a lazy or held one) can lose its tail in a power
        // loss while its journal record survives: such a copy is never uploaded.
        if let Ok(m) = std::fs::metadata(&e.file) {
            if m.len() < e.size {
                return Ok(Verdict::Conflict(format!(
                    "the local copy has {} of its {} bytes, cut short by a crash of the machine \
                     before it was fsync'd",
                    m.len(),
                    e.size
                )));
            }
        }
        let head = self.head(&e.key).await?;
        let Some(meta) = head else {
            return Ok(match &e.base {
                Base::New | Base::Any => Verdict::Requeue,
                Base::Etag(_) => Verdict::Conflict(
                    "the object was deleted in COS while its upload was pending".into(),
                ),
            });
        };
        match &e.base {
            Base::Any => return Ok(Verdict::Requeue),
            Base::Etag(b) if *b == meta.etag => return Ok(Verdict::Requeue),
            _ => {}
        }
        let path = e.file.clone();
        let etag = meta.etag.clone();
        let ps = self.inner.cfg.part_size;
        let same = tokio::task::spawn_blocking(move || content_matches(&path, &etag, ps))
            .await
            .map_err(|err| StoreError::Io(err.to_string()))?
            .unwrap_or(false);
        if same {
            return Ok(Verdict::AlreadyThere);
        }
        Ok(Verdict::Conflict(match &e.base {
            Base::New => format!(
                "the object was created in COS while its upload was pending, ETag {}",
                meta.etag
            ),
            Base::Etag(b) => format!(
                "the object changed in COS while its upload was pending: ETag {b} became {}",
                meta.etag
            ),
            Base::Any => String::new(),
        }))
    }

    /// HEAD (None = no such object). Not retried here: the client's retry policy already
    /// did, and a caller that gets an error calls `recover` again later.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.inner.store.head_object(key).await {
            Ok(m) => Ok(Some(m)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Ends a journal entry (synced: its file is about to go).
    fn forget_entry(&self, id: u64) {
        if let Err(e) = self.inner.cache.journal().remove(&[id], true) {
            log::warn!("journal: could not end entry {id}: {e}");
        }
    }

    /// Staging files of a dead daemon that no journal entry names: kept in the recovery
    /// directory (empty ones deleted).
    fn keep_orphans(&self) -> Vec<PathBuf> {
        let cache = &self.inner.cache;
        let known: HashSet<PathBuf> = cache.journal().live_files().into_iter().collect();
        let mut kept = Vec::new();
        let Ok(dir) = std::fs::read_dir(cache.staging_dir()) else {
            return kept;
        };
        for ent in dir.flatten() {
            let path = ent.path();
            if known.contains(&path) || cache.is_own_staging_file(&path) {
                continue;
            }
            let Ok(meta) = ent.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if meta.len() == 0 {
                remove_file_logged(&path);
                continue;
            }
            // The key it was staged for, when the staging file carries it (`label.rs`).
            let name = match super::label::get(&path) {
                Some(key) => format!("unclosed-{key}"),
                None => format!(
                    "unclosed-{}",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
                ),
            };
            match cache.keep_in_recovery(&path, &name) {
                Ok(dest) => {
                    log::warn!(
                        "staging file {} of a previous daemon was never closed (no upload was \
                         queued); kept at {}",
                        path.display(),
                        dest.display()
                    );
                    kept.push(dest);
                }
                Err(e) => log::warn!("could not keep orphan {}: {e}", path.display()),
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_match_single_and_multipart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..25u8).collect();
        std::fs::write(&p, &data).unwrap();
        let md5 = hex::encode(Md5::digest(&data));
        assert!(content_matches(&p, &md5, 10).unwrap());
        assert!(content_matches(&p, &format!("\"{md5}\""), 10).unwrap());
        assert!(!content_matches(&p, "00112233445566778899aabbccddeeff", 10).unwrap());
        let mut all = Vec::new();
        for c in data.chunks(10) {
            all.extend_from_slice(&Md5::digest(c));
        }
        let mp = format!("{}-3", hex::encode(Md5::digest(&all)));
        assert!(content_matches(&p, &mp, 10).unwrap());
        assert!(!content_matches(&p, &mp, 5).unwrap(), "part count differs");
    }
}
