//! Upload workers: pick the next runnable task, upload it (single PUT here, multipart in
//! `multipart.rs`) and record the outcome in the task table, the journal and on disk.
//!
//! A worker does not retry network errors itself: every store call already goes through the
//! COS client's one retry policy (`cos::retry`), and a second loop here would multiply the
//! attempts and stack two backoffs. The only restart it makes is a logical one: a saved
//! multipart upload that COS no longer knows is started afresh, once per run.
//!
//! An attempt that fails with a transient error (network, 5xx, SlowDown, timeout) leaves the
//! task Waiting: the queue itself runs it again after an exponential backoff with jitter
//! (`retry_delay`), forever, until it succeeds or is cancelled — the data is safe in the staging
//! file and the journal meanwhile. This is bounded where it matters: each attempt by the
//! client's policy (attempts and `max_elapsed`), the waits by `retry_max_delay`, and a Waiting
//! task holds no worker. A permanent error (403, other 4xx, the local file gone) makes it
//! Failed until someone restarts it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::multipart;
use super::task::{MultipartProgress, Outcome, Signal, TaskId, TaskState};
use super::upload::{file_in_use, remove_file_logged, Inner};
use crate::store::{FileRange, Payload, PutOptions, PutResult, StoreError};

/// What a worker carries for the task it runs.
pub(crate) struct Job {
    /// Task id.
    pub id: TaskId,
    /// Target key (fixed for the run: retarget only touches tasks no worker holds).
    pub key: String,
    /// Staging file.
    pub path: PathBuf,
    /// Metadata (fixed for the run, for the same reason).
    pub opts: PutOptions,
    /// Saved multipart progress.
    pub progress: Option<MultipartProgress>,
    /// Uploads to abort first.
    pub to_abort: Vec<(String, String)>,
    /// Pause/cancel from the queue.
    pub signal: watch::Receiver<Signal>,
}

/// Why an upload attempt stopped without success.
pub(crate) enum Stop {
    /// Paused by the user (progress kept).
    Paused,
    /// Cancelled, discarded or superseded.
    Cancelled,
    /// The store said no.
    Failed(StoreError),
}

/// How the run ended, for `finish`.
enum Exit {
    Ok(PutResult),
    Paused,
    Cancelled,
    Failed(StoreError),
}

/// One worker: runs tasks until the queue is dropped. Idle, it sleeps until the table changes
/// or the earliest Waiting task is due.
pub(crate) async fn worker_loop(inner: Arc<Inner>) {
    loop {
        // Made before looking, so a change between the look and the wait is not missed (a
        // `notify_one` with no one waiting is kept for the next waiter).
        let notified = inner.work.notified();
        let due = match pick(&inner) {
            Ok(job) => {
                // `pick` bumped: one more idle worker looks, for a second runnable task.
                run_task(&inner, job).await;
                continue;
            }
            Err(due) => due,
        };
        match due {
            Some(at) => tokio::select! {
                _ = notified => {},
                _ = tokio::time::sleep_until(at) => {},
            },
            None => notified.await,
        }
    }
}

/// The wait before the next attempt of a task whose `failures`-th attempt (1-based) failed:
/// `retry_initial · 2^(failures-1)`, capped at `retry_max_delay`, with "equal jitter" (a random
/// point in its upper half), so uploads failing together do not retry in lockstep and the
/// spacing never collapses towards zero.
pub(crate) fn retry_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    // The schedule is the client's (`cos::retry`): one implementation of the backoff.
    crate::cos::RetryPolicy {
        base_delay: initial,
        max_delay: max,
        ..Default::default()
    }
    .equal_jitter(failures, rand::random::<f64>())
}

/// Claims the next runnable task; without one, says when the next Waiting task is due.
fn pick(inner: &Inner) -> Result<Job, Option<tokio::time::Instant>> {
    let job = {
        let mut table = inner.table();
        // One `now` for both questions, under one lock (see `Table::next_retry`).
        let now = tokio::time::Instant::now();
        let Some(id) = table.next_runnable(now) else {
            return Err(table.next_retry(now));
        };
        let Some(t) = table.tasks.get_mut(&id) else {
            return Err(None);
        };
        t.active = true;
        t.state = TaskState::Running;
        t.retry_at = None;
        t.signal.send_replace(Signal::Run);
        t.run_start = Some((Instant::now(), t.loaded));
        t.speed = 0;
        Job {
            id,
            key: t.key.clone(),
            path: t.path.clone(),
            opts: t.opts.clone(),
            progress: t.progress.take(),
            to_abort: std::mem::take(&mut t.to_abort),
            signal: t.signal.subscribe(),
        }
    };
    inner.bump();
    Ok(job)
}

/// Files up to this size are read into memory for their PUT; larger ones are streamed.
const IN_MEMORY_PUT: u64 = 1 << 20;

/// Records acknowledged bytes and the speed of the current run.
pub(crate) fn set_loaded(inner: &Inner, id: TaskId, loaded: u64) {
    {
        let mut table = inner.table();
        if let Some(t) = table.tasks.get_mut(&id) {
            t.loaded = loaded;
            if let Some((start, base)) = t.run_start {
                let secs = start.elapsed().as_secs_f64();
                if secs > 0.0 {
                    t.speed = (loaded.saturating_sub(base) as f64 / secs) as u64;
                }
            }
        }
    }
    inner.bump();
}

/// Resolves when the signal is Cancel (or the task vanished).
pub(crate) async fn cancelled(signal: &mut watch::Receiver<Signal>) {
    let _ = signal.wait_for(|s| *s == Signal::Cancel).await;
}

async fn run_task(inner: &Inner, mut job: Job) {
    for (key, uid) in std::mem::take(&mut job.to_abort) {
        if let Err(e) = inner.store.abort_multipart(&key, &uid).await {
            log::debug!("abort of multipart upload {uid} of {key}: {e}");
        }
    }
    let opened = File::open(&job.path).and_then(|f| {
        let len = f.metadata()?.len();
        Ok((Arc::new(f), len))
    });
    let (file, size) = match opened {
        Ok(v) => v,
        Err(e) => {
            let exit = if *job.signal.borrow() == Signal::Cancel {
                Exit::Cancelled
            } else {
                Exit::Failed(StoreError::Io(format!(
                    "staging file {}: {e}",
                    job.path.display()
                )))
            };
            let progress = job.progress.take();
            finish(inner, &job, exit, progress).await;
            return;
        }
    };
    {
        let mut table = inner.table();
        if let Some(t) = table.tasks.get_mut(&job.id) {
            if t.size != size {
                log::debug!("{}: size {} at enqueue, {size} now", job.key, t.size);
                t.size = size;
            }
        }
    }
    let mut progress = job.progress.take();
    let use_multipart = size > 0 && size >= inner.cfg.multipart_threshold;
    if !use_multipart {
        // A saved multipart upload (early, or from a bigger version of the file) is no use.
        abort_progress(inner, progress.take()).await;
    }
    // An early upload's object lacks its times until one copy in place stores them.
    let mut times_left_out = progress.as_ref().is_some_and(|p| p.times_left_out);
    // At most one logical restart per run (see the module doc): bounded.
    let mut restarted = false;
    loop {
        {
            let mut table = inner.table();
            if let Some(t) = table.tasks.get_mut(&job.id) {
                t.attempts = t.attempts.saturating_add(1);
            }
        }
        let res = if use_multipart {
            multipart::upload(inner, &mut job, file.clone(), size, &mut progress).await
        } else {
            single_put(inner, &mut job, file.clone(), size).await
        };
        let err = match res {
            Ok(put) => {
                // fsync and close wait for the data, not for the bookkeeping below (journal,
                // metadata cache, staging file) nor for the times of an early upload: let
                // them go now. About a tenth of a small file's close went to that wait.
                if let Some(t) = inner.table().tasks.get_mut(&job.id) {
                    t.landed = true;
                }
                inner.bump();
                let put = if times_left_out {
                    store_times(inner, &job, put).await
                } else {
                    put
                };
                return finish(inner, &job, Exit::Ok(put), progress).await;
            }
            Err(Stop::Paused) => return finish(inner, &job, Exit::Paused, progress).await,
            Err(Stop::Cancelled) => return finish(inner, &job, Exit::Cancelled, progress).await,
            Err(Stop::Failed(e)) => e,
        };
        if matches!(err, StoreError::NotFound(_)) && progress.is_some() && !restarted {
            // The multipart upload vanished (aborted elsewhere, expired): start it over.
            log::info!(
                "multipart upload of {} is gone ({err}); starting a new one",
                job.key
            );
            progress = None;
            times_left_out = false;
            restarted = true;
            continue;
        }
        return finish(inner, &job, Exit::Failed(err), progress).await;
    }
}

/// After an early upload's Complete: one PUT Object - Copy in place with the job's whole
/// metadata, so the object keeps its mtime/atime/ctime (COS fixed the metadata at Initiate,
/// before the last write). Only while the object is still the one just completed (If-Match).
/// A failure leaves the data in COS with the times read as Last-Modified, logged.
async fn store_times(inner: &Inner, job: &Job, put: PutResult) -> PutResult {
    let opts = crate::store::CopyOptions {
        directive: crate::store::MetadataDirective::Replaced(job.opts.headers.clone()),
        storage_class: job.opts.storage_class.clone(),
        acl: job.opts.acl.clone(),
        if_match: Some(put.etag.clone()),
    };
    match inner.store.copy_object(&job.key, &job.key, &opts).await {
        Ok(c) => PutResult {
            etag: c.etag,
            crc64: put.crc64.or(c.crc64),
        },
        Err(e) => {
            log::warn!(
                "{}: uploaded, but its times were not stored ({e}); they read as Last-Modified",
                job.key
            );
            put
        }
    }
}

/// One PUT of the whole file. Pause takes effect before it starts (or, once in flight, after
/// it ends); cancel drops the request.
async fn single_put(
    inner: &Inner,
    job: &mut Job,
    file: Arc<File>,
    size: u64,
) -> Result<PutResult, Stop> {
    match *job.signal.borrow() {
        Signal::Run => {}
        Signal::Pause => return Err(Stop::Paused),
        Signal::Cancel => return Err(Stop::Cancelled),
    }
    // A small file is sent from memory (with Content-MD5); a larger one from the staging file
    // as it is read, so concurrent uploads of files near the multipart threshold do not each
    // hold their whole body in memory.
    let body = Payload::File(FileRange {
        file,
        start: 0,
        len: size,
    });
    let body = if size <= IN_MEMORY_PUT {
        let bytes = body.into_bytes().await;
        bytes
            .map_err(|e| Stop::Failed(StoreError::Io(format!("reading staging file: {e}"))))?
            .into()
    } else {
        body
    };
    let put = tokio::select! {
        r = inner.store.put_object(&job.key, body, &job.opts) => r.map_err(Stop::Failed)?,
        _ = cancelled(&mut job.signal) => return Err(Stop::Cancelled),
    };
    set_loaded(inner, job.id, size);
    Ok(put)
}

/// Records how a run ended: table, journal, disk, log.
async fn finish(inner: &Inner, job: &Job, exit: Exit, mut progress: Option<MultipartProgress>) {
    let landed = matches!(exit, Exit::Ok(_) | Exit::Cancelled);
    if matches!(exit, Exit::Ok(_)) {
        // Completed: nothing left to abort.
        progress = None;
    }
    // A discarded file's PUT may have reached COS anyway: delete the object again before the
    // task stops counting as active, so no later upload of the key can be overtaken. Bounded:
    // a discard arriving after the last look only leaves the object as if the unlink had come
    // before the close.
    let mut deleted = false;
    for _ in 0..3 {
        let delete_after = inner
            .table()
            .tasks
            .get(&job.id)
            .is_some_and(|t| t.delete_after);
        if !(delete_after && landed) || deleted {
            break;
        }
        if let Err(e) = inner.store.delete_object(&job.key).await {
            log::warn!(
                "could not delete {} after its file was removed: {e}",
                job.key
            );
        }
        deleted = true;
    }
    let lazy = inner.table().tasks.get(&job.id).is_some_and(|t| t.lazy());
    if lazy && !matches!(exit, Exit::Ok(_)) {
        // The upload did not land: its data must not depend on the page cache any longer.
        if let Err(e) = inner.persist(Some(&job.key)) {
            log::error!("could not make the upload of {} durable: {e}", job.key);
        }
    }
    if let Exit::Ok(put) = &exit {
        // Fsync'd before the staging file goes: a crash in between re-checks at recovery and
        // finds COS already holding the content. A lazy entry was never fsync'd: its end
        // needs no fsync either (see `Durability::Lazy`).
        if let Err(e) = inner.cache.journal().complete(job.id, &put.etag, !lazy) {
            log::error!("journal: could not record upload of {}: {e}", job.key);
        }
        let db = super::staging::lock(&inner.metadb).clone();
        if let Some(db) = db {
            db.put(&job.key, &put.etag, job.opts.headers.user_meta.clone());
        }
    }
    let mut delete_file = None;
    let mut obsolete = false;
    // The task stays active until its staging file is deleted, then is let go.
    let mut release = false;
    'table: {
        let mut table = inner.table();
        // A newer version of the key queued meanwhile makes a failed one obsolete: retrying it
        // later would overwrite the newer data.
        let seq = table.tasks.get(&job.id).map(|t| t.seq).unwrap_or(0);
        let newer = table
            .tasks
            .values()
            .filter(|u| u.key == job.key && u.removed.is_none() && u.seq > seq)
            .map(|u| u.id)
            .min();
        let Some(t) = table.tasks.get_mut(&job.id) else {
            break 'table;
        };
        t.active = false;
        if !matches!(exit, Exit::Ok(_)) {
            // A Done task keeps the speed of its last run for the list.
            t.speed = 0;
        }
        t.run_start = None;
        if let Some(o) = t.removed.clone() {
            let outcome = match exit {
                Exit::Ok(_) => Outcome::Done,
                _ => o,
            };
            table.forget(job.id, outcome);
        } else {
            match exit {
                Exit::Ok(_) => {
                    table.mark_done(job.id);
                    if !file_in_use(&table, &job.path, job.id) {
                        delete_file = Some(job.path.clone());
                    }
                    // Held until the staging file is gone, so `drain` returning means clean.
                    if let Some(t) = table.tasks.get_mut(&job.id) {
                        t.active = true;
                    }
                    release = true;
                    log::debug!("uploaded {}", job.key);
                }
                Exit::Paused => {
                    t.progress = progress.take();
                    t.state = if *t.signal.borrow() == Signal::Run {
                        TaskState::Queued
                    } else {
                        TaskState::Paused
                    };
                }
                Exit::Cancelled => {
                    // Cancel without removal does not happen (cancel/discard/supersede all
                    // mark the task); keep it visible rather than lose track of the file.
                    t.progress = progress.take();
                    t.state = TaskState::Paused;
                }
                Exit::Failed(e) if newer.is_some() => {
                    log::warn!(
                        "upload of {} failed ({e}); a newer version is queued, dropping this one",
                        job.key
                    );
                    // Forgotten once its file is gone (see `release`).
                    t.removed = newer.map(Outcome::Superseded);
                    t.active = true;
                    if !file_in_use(&table, &job.path, job.id) {
                        delete_file = Some(job.path.clone());
                    }
                    obsolete = true;
                    release = true;
                }
                Exit::Failed(e) if e.is_transient() => {
                    t.progress = progress.take();
                    t.last_error = Some(e.to_string());
                    if *t.signal.borrow() == Signal::Pause {
                        // Paused while the failing attempt ran: the user's hold wins.
                        t.state = TaskState::Paused;
                    } else {
                        let delay = retry_delay(
                            inner.cfg.retry_initial,
                            inner.cfg.retry_max_delay,
                            t.attempts,
                        );
                        log::warn!(
                            "upload of {} failed (attempt {}): {e}; retrying in {:.1} s \
                             (`cosfuse tasks restart {}` retries now)",
                            job.key,
                            t.attempts,
                            delay.as_secs_f64(),
                            job.id
                        );
                        t.retry_at = Some(tokio::time::Instant::now() + delay);
                        t.state = TaskState::Waiting {
                            error: e.to_string(),
                        };
                    }
                }
                Exit::Failed(e) => {
                    log::error!(
                        "upload of {} failed, kept for retry (cosfuse tasks restart {}): {e}; \
                         local copy: {}",
                        job.key,
                        job.id,
                        job.path.display()
                    );
                    t.progress = progress.take();
                    t.last_error = Some(e.to_string());
                    t.state = TaskState::Failed {
                        error: e.to_string(),
                    };
                    t.error = Some(e);
                }
            }
        }
    }
    if obsolete {
        if let Err(e) = inner.cache.journal().remove(&[job.id], false) {
            log::warn!("journal: could not end obsolete upload of {}: {e}", job.key);
        }
    }
    if let Some(p) = delete_file {
        remove_file_logged(&p);
    }
    if release {
        let mut table = inner.table();
        if let Some(t) = table.tasks.get_mut(&job.id) {
            t.active = false;
            if let Some(o) = t.removed.clone() {
                table.forget(job.id, o);
            }
        }
    }
    abort_progress(inner, progress).await;
    inner.bump();
}

/// Aborts a multipart upload that will not be continued.
async fn abort_progress(inner: &Inner, progress: Option<MultipartProgress>) {
    if let Some(p) = progress {
        if let Err(e) = inner.store.abort_multipart(&p.key, &p.upload_id).await {
            log::debug!(
                "abort of multipart upload {} of {}: {e}",
                p.upload_id,
                p.key
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_is_capped_and_jittered() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for failures in 1..40 {
            let d = retry_delay(initial, max, failures);
            let full = initial
                .saturating_mul(1u32 << (failures - 1).min(30))
                .min(max);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?} vs {full:?}");
        }
        // 1 s, 2 s, 4 s, ... reaches the 5 min cap at the 10th failure and stays there.
        assert!(retry_delay(initial, max, 10) >= Duration::from_secs(150));
        assert!(retry_delay(initial, max, u32::MAX) <= max);
    }
}
