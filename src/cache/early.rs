//! Early multipart upload: the parts of a large file being written sequentially are sent while
//! the file is still open, so that at hand-off (close, fsync, rename) only the tail and Complete
//! remain.
//!
//! The design, kept small on purpose:
//! - The fs core starts one [`EarlyUpload`] for a staged file once sequential writes take it
//!   past `early_start_size` (the multipart threshold plus one part). A driver task Initiates the
//!   multipart upload and journals its id in an `unclosed` journal entry, so a daemon that dies
//!   before the hand-off has the next mount abort it (the unclosed staging file itself goes to
//!   the recovery directory, as every file open at a crash does; nothing lands at the key).
//! - Part `n` (1-based, `part_size` bytes) is sent once writes have gone one whole part past
//!   its end (contiguously: a write beyond the written region does not count), each part once
//!   and in order, `part_parallelism` at a time, read with pread from the shared staging file.
//! - Every write and truncate tells the upload the range it changed ([`EarlyUpload::written`],
//!   [`EarlyUpload::truncated`]): a sent part overlapping it is forgotten, and a part in flight
//!   is marked so that its answer is thrown away. A write whose pwrite overlaps the read of a
//!   part reports after its pwrite, so the part is either forgotten after it was recorded or
//!   never recorded: a part is kept only if no change touched it from before its read to after
//!   its answer. Forgotten parts are simply sent again by the queue at hand-off.
//! - At hand-off the fs core stops the driver (no new parts; parts in flight finish, so no
//!   stale copy of a part can land after a newer one; if none answers for [`STOP_WAIT`] or
//!   Initiate has not answered, the upload is aborted instead) and gives the upload to the queue
//!   ([`EarlyUpload::take`]): its id and clean parts become the queued task's saved multipart
//!   progress, exactly as a paused upload's would be, so pause, cancel, supersede, retarget,
//!   crash recovery and the CRC/ETag checks all work as for any multipart task.
//! - Metadata is fixed at Initiate, before the file's final mtime is known, so the early upload
//!   sends the file's metadata without the time fields (`x-cos-meta-mtime`/`atime`/`ctime`);
//!   the queue's worker stores the final ones with one copy in place after Complete
//!   (`MultipartProgress::times_left_out`). If anything else changed by the hand-off (chmod, chown, a
//!   metadata xattr, utimens to an earlier time, another part size, a size below the multipart
//!   threshold), the early upload is aborted and the file is uploaded normally.
//! - Dropping an `EarlyUpload` that was not taken (unlink, the last close of a file that was
//!   never handed off, a rename that replaced it) aborts the upload: nothing lands in COS.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{watch, Notify};

use super::journal::{Base, Entry};
use super::multipart::effective_part_size;
use super::task::{MultipartProgress, TaskId};
use super::upload::Inner;
use crate::store::{FileRange, Payload, PutOptions};

/// The longest a hand-off waits for an answer to early parts in flight (see
/// [`EarlyStop::stop`]).
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// The time fields left out of an early upload's metadata (see the module doc).
const TIME_META: [&str; 3] = ["mtime", "atime", "ctime"];

/// `opts` without the time fields.
fn without_times(opts: &PutOptions) -> PutOptions {
    let mut o = opts.clone();
    for k in TIME_META {
        o.headers.user_meta.remove(k);
    }
    o
}

/// The `x-cos-meta-mtime` of `opts`, when it parses.
fn mtime_of(opts: &PutOptions) -> Option<SystemTime> {
    let v = opts.headers.user_meta.get("mtime")?;
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").get(..9)?.parse().ok()?
    };
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Where the driver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Sending parts as they become ready.
    Running,
    /// Hand-off: send nothing more, let the parts in flight finish, keep the upload.
    Stopping,
    /// Not wanted any more: stop, abort the upload, end its journal entry.
    Abandoned,
}

/// What the writer side and the driver share (leaf lock, never held across `.await`).
#[derive(Debug)]
struct State {
    /// Driver phase.
    phase: Phase,
    /// How far the file has been written contiguously from its start since the upload began
    /// (a write starting beyond it does not move it; a truncate lowers it).
    written_end: u64,
    /// The next part to send: parts go once each, in order; a part changed after it was sent
    /// is left for the hand-off (a header rewritten on every write is not sent again and
    /// again).
    next_part: u32,
    /// Parts being sent → whether a change touched them since their read began.
    inflight: BTreeMap<u32, bool>,
    /// Parts COS acknowledged that no change touched since: number → ETag.
    done: BTreeMap<u32, String>,
    /// COS upload id, once Initiate answered.
    upload_id: Option<String>,
    /// The `unclosed` journal entry recording the upload id.
    journal_id: Option<TaskId>,
    /// The driver failed (Initiate or a part): the upload is useless, the queue starts afresh.
    failed: bool,
    /// The upload was given to the queue (dropping the handle then aborts nothing).
    taken: bool,
}

impl State {
    /// Forgets every part overlapping `[start, end)`.
    fn touch(&mut self, start: u64, end: u64, part_size: u64) {
        if end <= start {
            return;
        }
        let first = u32::try_from(start / part_size + 1).unwrap_or(u32::MAX);
        let last = u32::try_from((end - 1) / part_size + 1).unwrap_or(u32::MAX);
        self.done.retain(|&n, _| n < first || n > last);
        for (_, dirty) in self.inflight.range_mut(first..=last) {
            *dirty = true;
        }
    }
}

/// Shared between the handle and its driver task.
struct Shared {
    /// The queue's state (store, journal, tunables).
    inner: Arc<Inner>,
    /// Key the upload was initiated for.
    key: String,
    /// The staging file's path (journaled).
    path: PathBuf,
    /// The staging file, shared with the fs core's writers.
    file: Arc<File>,
    /// Metadata sent at Initiate (the file's, without the time fields).
    opts: PutOptions,
    /// When the upload started (an mtime before it was set by hand, not by a write).
    started: SystemTime,
    /// Part size.
    part_size: u64,
    /// See [`State`].
    state: Mutex<State>,
    /// Wakes the driver after a write or a phase change.
    wake: Notify,
    /// Set to true when the driver has exited.
    exited: watch::Sender<bool>,
    /// Bumped each time a part's answer arrives (a hand-off waits while parts keep finishing).
    answers: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        super::staging::lock(&self.state)
    }
}

/// The fs core's handle on one early upload (kept in the staged file's state). Dropping it
/// without [`EarlyUpload::take`] aborts the upload.
pub struct EarlyUpload {
    /// Shared with the driver task.
    shared: Arc<Shared>,
}

/// Stops an early upload's driver without holding the staged file's lock (see
/// [`EarlyUpload::stopper`]).
pub struct EarlyStop {
    /// Shared with the driver task.
    shared: Arc<Shared>,
}

impl EarlyStop {
    /// Sends no more parts and waits until the parts in flight have finished, as long as
    /// answers keep coming (a slow link), but no more than [`STOP_WAIT`] without any: a close
    /// must not hang on a COS that does not answer. An upload still initiating, or whose parts
    /// go unanswered that long, is abandoned (aborted, so no late part can land) and the queue
    /// uploads the file afresh.
    pub async fn stop(self) {
        let initiated = {
            let mut st = self.shared.lock();
            if st.upload_id.is_none() {
                st.phase = Phase::Abandoned;
            } else if st.phase == Phase::Running {
                st.phase = Phase::Stopping;
            }
            st.upload_id.is_some()
        };
        self.shared.wake.notify_one();
        if !initiated {
            return;
        }
        let mut exited = self.shared.exited.subscribe();
        let mut answers = self.shared.answers.subscribe();
        loop {
            if *exited.borrow_and_update() {
                return;
            }
            // A slow link keeps answering: wait on. Silence for STOP_WAIT: give up.
            let answered = tokio::select! {
                r = exited.changed() => r.is_ok(),
                r = answers.changed() => r.is_ok(),
                _ = tokio::time::sleep(STOP_WAIT) => false,
            };
            if !answered {
                break;
            }
        }
        log::info!(
            "{}: no answer to early parts in flight for {} s at hand-off; uploading afresh",
            self.shared.key,
            STOP_WAIT.as_secs()
        );
        self.shared.lock().phase = Phase::Abandoned;
        self.shared.wake.notify_one();
    }
}

impl Drop for EarlyUpload {
    fn drop(&mut self) {
        let exited = {
            let mut st = self.shared.lock();
            if st.taken {
                return;
            }
            st.phase = Phase::Abandoned;
            *self.shared.exited.borrow()
        };
        if exited {
            abandon(&self.shared);
        } else {
            // The driver sees the phase and cleans up itself.
            self.shared.wake.notify_one();
        }
    }
}

/// Aborts the upload and then ends its journal entry (the driver has exited). In the
/// background; a daemon exiting first leaves the entry, and the next mount aborts the upload.
fn abandon(sh: &Shared) {
    let (uid, jid) = {
        let mut st = sh.lock();
        (st.upload_id.take(), st.journal_id.take())
    };
    let Some(rt) = sh.inner.rt.clone() else {
        return;
    };
    let (inner, key) = (sh.inner.clone(), sh.key.clone());
    rt.spawn(async move {
        if let Some(uid) = uid {
            log::debug!("{key}: abandoning early multipart upload {uid}");
            if let Err(e) = inner.store.abort_multipart(&key, &uid).await {
                log::debug!("abort of early multipart upload {uid} of {key}: {e}");
                // Kept journaled: the next mount's recovery aborts it.
                return;
            }
        }
        if let Some(id) = jid {
            if let Err(e) = inner.cache.journal().remove(&[id], false) {
                log::debug!("journal: could not end early upload of {key}: {e}");
            }
        }
    });
}

impl EarlyUpload {
    /// Starts an early upload of the staging file `path` (open as `file`) to `key` with the
    /// metadata `opts`; `written_end`: how far the file has been written. None outside a
    /// runtime.
    pub(crate) fn start(
        inner: Arc<Inner>,
        key: &str,
        path: PathBuf,
        file: Arc<File>,
        opts: &PutOptions,
        written_end: u64,
    ) -> Option<EarlyUpload> {
        let rt = inner.rt.clone()?;
        let part_size = inner.cfg.part_size.max(1);
        let (exited, _) = watch::channel(false);
        let (answers, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            inner,
            key: key.to_string(),
            path,
            file,
            opts: without_times(opts),
            started: SystemTime::now(),
            part_size,
            state: Mutex::new(State {
                phase: Phase::Running,
                written_end,
                next_part: 1,
                inflight: BTreeMap::new(),
                done: BTreeMap::new(),
                upload_id: None,
                journal_id: None,
                failed: false,
                taken: false,
            }),
            wake: Notify::new(),
            exited,
            answers,
        });
        rt.spawn(drive(shared.clone()));
        Some(EarlyUpload { shared })
    }

    /// A write changed `[start, end)`.
    pub fn written(&self, start: u64, end: u64) {
        let wake = {
            let mut st = self.shared.lock();
            st.touch(start, end, self.shared.part_size);
            let before = st.written_end / self.shared.part_size;
            if start <= st.written_end {
                st.written_end = st.written_end.max(end);
            }
            st.written_end / self.shared.part_size > before
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// The file was truncated (or extended) to `size`.
    pub fn truncated(&self, size: u64) {
        let mut st = self.shared.lock();
        st.touch(size, u64::MAX, self.shared.part_size);
        st.written_end = st.written_end.min(size);
    }

    /// A handle to stop the driver before [`EarlyUpload::take`].
    pub fn stopper(&self) -> EarlyStop {
        EarlyStop {
            shared: self.shared.clone(),
        }
    }

    /// Hands the upload over for the file now going to `key` with `size` bytes and metadata
    /// `opts` (call after [`EarlyStop::stop`]): its id and clean parts, or None when they do
    /// not fit (it is then aborted). The caller journals the id with the task before
    /// [`EarlyUpload::taken`] ends the early journal entry.
    pub(crate) fn take(self, key: &str, size: u64, opts: &PutOptions) -> Option<MultipartProgress> {
        let sh = &self.shared;
        let cfg = &sh.inner.cfg;
        let fits = key == sh.key
            && size > 0
            && size >= cfg.multipart_threshold
            && effective_part_size(size, cfg.part_size) == sh.part_size
            && without_times(opts) == sh.opts
            && mtime_of(opts).is_none_or(|m| m >= sh.started);
        let mut st = sh.lock();
        let ready = *sh.exited.borrow() && !st.failed && st.phase == Phase::Stopping;
        let upload_id = st.upload_id.clone();
        let (Some(upload_id), true, true) = (upload_id, fits, ready) else {
            log::debug!("{}: early multipart upload not usable at hand-off", sh.key);
            drop(st);
            // Dropping `self` aborts it (not taken).
            return None;
        };
        // Only whole parts inside the file (a truncate already dropped the others).
        let whole = size / sh.part_size;
        let parts = std::mem::take(&mut st.done)
            .into_iter()
            .filter(|&(n, _)| u64::from(n) <= whole)
            .collect();
        st.taken = true;
        Some(MultipartProgress {
            key: sh.key.clone(),
            upload_id,
            part_size: sh.part_size,
            parts,
            times_left_out: true,
        })
    }

    /// Ends the early journal entry of a taken upload (the task's entry now names its id).
    pub(crate) fn taken(inner: &Inner, progress_key: &str, journal_id: Option<TaskId>) {
        if let Some(id) = journal_id {
            if let Err(e) = inner.cache.journal().remove(&[id], false) {
                log::debug!("journal: could not end early upload of {progress_key}: {e}");
            }
        }
    }

    /// The early journal entry's id (for [`EarlyUpload::taken`]).
    pub(crate) fn journal_id(&self) -> Option<TaskId> {
        self.shared.lock().journal_id
    }
}

impl super::upload::UploadQueue {
    /// The size from which a file being written sequentially starts an early upload: the
    /// multipart threshold, and at least three parts (so the last two are left for the tail).
    pub fn early_start_size(&self) -> u64 {
        let cfg = &self.inner.cfg;
        cfg.multipart_threshold.max(2 * cfg.part_size) + cfg.part_size
    }

    /// Starts an early upload of the staging file `path` (see [`EarlyUpload::start`]).
    pub fn start_early(
        &self,
        key: &str,
        path: PathBuf,
        file: Arc<File>,
        opts: &PutOptions,
        written_end: u64,
    ) -> Option<EarlyUpload> {
        EarlyUpload::start(self.inner.clone(), key, path, file, opts, written_end)
    }
}

/// The driver: Initiate, journal, then send parts as they become ready until stopped.
async fn drive(sh: Arc<Shared>) {
    run(&sh).await;
    let abandoned = {
        let st = sh.lock();
        sh.exited.send_replace(true);
        st.phase == Phase::Abandoned
    };
    if abandoned {
        abandon(&sh);
    }
}

/// Next parts to send (at most `room`): ready (written one part past their end), from the
/// cursor on; advances the cursor.
fn next_parts(st: &mut State, part_size: u64, room: usize) -> Vec<u32> {
    let ready = (st.written_end / part_size).saturating_sub(1);
    let ready = u32::try_from(ready).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    while out.len() < room && st.next_part <= ready {
        out.push(st.next_part);
        st.next_part += 1;
    }
    out
}

async fn run(sh: &Arc<Shared>) {
    let inner = &sh.inner;
    let upload_id = match inner.store.initiate_multipart(&sh.key, &sh.opts).await {
        Ok(id) => id,
        Err(e) => {
            log::debug!("{}: early multipart upload not started: {e}", sh.key);
            sh.lock().failed = true;
            return;
        }
    };
    let jid = inner.fresh_id();
    let entry = Entry {
        id: jid,
        seq: jid,
        key: sh.key.clone(),
        file: sh.path.clone(),
        size: 0,
        opts: (&sh.opts).into(),
        base: Base::Any,
        upload_id: Some(upload_id.clone()),
        unclosed: true,
    };
    // Not synced: losing it only leaves an orphaned upload in COS, not user data.
    let journaled = inner.cache.journal().put(entry, false);
    {
        let mut st = sh.lock();
        st.upload_id = Some(upload_id.clone());
        if let Err(e) = journaled {
            log::warn!("journal: could not record early upload of {}: {e}", sh.key);
            st.failed = true;
            return;
        }
        st.journal_id = Some(jid);
    }
    let parallelism = inner.cfg.part_parallelism.max(1);
    let mut inflight = FuturesUnordered::new();
    loop {
        let notified = sh.wake.notified();
        let todo = {
            let mut st = sh.lock();
            match st.phase {
                Phase::Running => {}
                // Parts in flight finish so no stale copy of a part lands after a newer one.
                Phase::Stopping if !inflight.is_empty() => {}
                _ => return,
            }
            let room = if st.phase == Phase::Running {
                parallelism.saturating_sub(inflight.len())
            } else {
                0
            };
            let todo = next_parts(&mut st, sh.part_size, room);
            for &n in &todo {
                // Registered before the read: a change from now on marks it.
                st.inflight.insert(n, false);
            }
            todo
        };
        for n in todo {
            let (store, file, key, uid) = (
                inner.store.clone(),
                sh.file.clone(),
                sh.key.clone(),
                upload_id.clone(),
            );
            let start = u64::from(n - 1) * sh.part_size;
            let len = sh.part_size;
            // Sent from the staging file as it is read: a write into the part from now on has
            // marked it dirty (registered above), so a torn part is never kept.
            let body = Payload::File(FileRange { file, start, len });
            inflight.push(async move { (n, store.upload_part(&key, &uid, n, body).await) });
        }
        tokio::select! {
            Some((n, r)) = inflight.next() => {
                sh.answers.send_modify(|a| *a += 1);
                let mut st = sh.lock();
                let dirty = st.inflight.remove(&n).unwrap_or(true);
                match r {
                    Ok(etag) if !dirty => {
                        st.done.insert(n, etag.trim_matches('"').to_string());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The queue sends what is missing at hand-off; stop sending early.
                        log::debug!("{}: early part {n} failed: {e}", sh.key);
                        st.failed = true;
                        if st.phase == Phase::Running {
                            st.phase = Phase::Stopping;
                        }
                    }
                }
            }
            _ = notified => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            phase: Phase::Running,
            written_end: 0,
            next_part: 1,
            inflight: BTreeMap::new(),
            done: BTreeMap::new(),
            upload_id: None,
            journal_id: None,
            failed: false,
            taken: false,
        }
    }

    #[test]
    fn a_part_is_ready_once_writes_are_one_part_past_it() {
        let mut st = state();
        st.written_end = 19;
        assert!(next_parts(&mut st, 10, 8).is_empty());
        st.written_end = 20;
        assert_eq!(next_parts(&mut st, 10, 8), vec![1]);
        st.written_end = 55;
        assert_eq!(next_parts(&mut st, 10, 2), vec![2, 3]);
        assert_eq!(next_parts(&mut st, 10, 0), Vec::<u32>::new());
        // A part changed after it was sent is not picked again (left for the hand-off).
        st.touch(0, 1, 10);
        assert_eq!(next_parts(&mut st, 10, 8), vec![4]);
        assert!(next_parts(&mut st, 10, 8).is_empty());
    }

    #[test]
    fn changes_forget_sent_parts_and_mark_parts_in_flight() {
        let mut st = state();
        for n in 1..=4 {
            st.done.insert(n, format!("e{n}"));
        }
        st.inflight.insert(5, false);
        st.inflight.insert(6, false);
        // One byte at the end of part 2 and the start of part 3.
        st.touch(19, 21, 10);
        assert_eq!(st.done.keys().copied().collect::<Vec<_>>(), vec![1, 4]);
        assert!(!st.inflight[&5]);
        // A truncate into part 5 drops everything from it on.
        st.touch(45, u64::MAX, 10);
        assert!(st.inflight[&5] && st.inflight[&6]);
        assert_eq!(st.done.keys().copied().collect::<Vec<_>>(), vec![1, 4]);
        st.touch(0, 0, 10);
        assert_eq!(st.done.len(), 2);
    }

    #[test]
    fn time_fields_are_left_out_and_mtime_parses() {
        let mut o = PutOptions::default();
        o.headers
            .user_meta
            .insert("mtime".into(), "1600000000.5".into());
        o.headers
            .user_meta
            .insert("ctime".into(), "1600000000".into());
        o.headers.user_meta.insert("mode".into(), "33188".into());
        let w = without_times(&o);
        assert_eq!(w.headers.user_meta.len(), 1);
        assert_eq!(
            mtime_of(&o),
            Some(UNIX_EPOCH + Duration::new(1_600_000_000, 500_000_000))
        );
        assert_eq!(mtime_of(&w), None);
    }
}
