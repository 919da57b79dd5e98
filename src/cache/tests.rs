//! Tests of the upload queue against `MemoryStore`: uploads (PUT and parallel multipart),
//! superseding, waiting, pause/restart/cancel, retries, failures, drain, pending views, and
//! crash recovery with and without conflicts. Synchronisation is by store gates and by polling
//! the queue with bounded deadlines, never by sleeping.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::{MemoryStore, ObjectStore, PutOptions, StoreError};

const PART: u64 = 64 * 1024;

fn cfg() -> UploadConfig {
    UploadConfig {
        part_size: PART,
        multipart_threshold: 2 * PART,
        part_parallelism: 3,
        max_concurrent_uploads: 2,
        max_attempts: 3,
        retry_base: Duration::from_millis(1),
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn staged(cache: &CacheDir, bytes: &[u8]) -> PathBuf {
    let (path, _f) = cache.new_staging_file().unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

struct Fx {
    _dir: tempfile::TempDir,
    cache: Arc<CacheDir>,
    store: Arc<MemoryStore>,
    q: Arc<UploadQueue>,
}

fn fixture(cfg: UploadConfig) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::open(&dir.path().join("cache")).unwrap();
    let store = MemoryStore::new();
    store.set_min_part_size(1);
    let q = UploadQueue::new(store.clone(), cache.clone(), cfg);
    Fx {
        _dir: dir,
        cache,
        store,
        q,
    }
}

impl Fx {
    fn put(&self, key: &str, bytes: &[u8]) -> (TaskId, PathBuf) {
        let path = staged(&self.cache, bytes);
        let id = self
            .q
            .enqueue(
                key,
                path.clone(),
                bytes.len() as u64,
                PutOptions::default(),
                None,
            )
            .unwrap();
        (id, path)
    }

    fn info(&self, id: TaskId) -> Option<TaskInfo> {
        self.q.list().into_iter().find(|t| t.id == id)
    }

    fn journaled(&self) -> usize {
        self.cache.journal().live_files().len()
    }
}

/// Polls `cond` until true; false after a 10 s deadline.
async fn until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// `wait_key` with a deadline, so a bug fails the test instead of hanging it.
async fn wait_key(q: &UploadQueue, key: &str) -> Result<(), StoreError> {
    tokio::time::timeout(Duration::from_secs(10), q.wait_key(key))
        .await
        .expect("wait_key timed out")
}

async fn drain(q: &UploadQueue) {
    tokio::time::timeout(Duration::from_secs(10), q.drain())
        .await
        .expect("drain timed out")
}

fn unavailable() -> StoreError {
    StoreError::Unavailable {
        status: 503,
        code: "SlowDown".into(),
        message: "slow down".into(),
        request_id: "r1".into(),
    }
}

#[tokio::test]
async fn single_put_uploads_and_frees_the_staging_file() {
    let fx = fixture(cfg());
    let body = data(1000, 1);
    let (id, path) = fx.put("dir/a.txt", &body);
    wait_key(&fx.q, "dir/a.txt").await.unwrap();
    assert_eq!(fx.store.get("dir/a.txt").unwrap().as_ref(), &body[..]);
    let got = fx.store.get_object("dir/a.txt", None).await.unwrap();
    assert_eq!(got.data.as_ref(), &body[..]);
    assert_eq!(fx.store.count("PutObject"), 1);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 0);
    let info = fx.info(id).unwrap();
    assert_eq!(info.state, TaskState::Done);
    assert_eq!(info.loaded, 1000);
    assert_eq!(info.percent, 100.0);
    assert!(
        until(|| !path.exists()).await,
        "staging file kept after upload"
    );
    assert_eq!(fx.journaled(), 0);
    assert!(fx.q.pending("dir/a.txt").is_none());
}

#[tokio::test]
async fn multipart_sends_parts_in_parallel_and_reports_progress() {
    let fx = fixture(cfg());
    let body = data(5 * PART as usize - 100, 2);
    let gate = fx.store.gate("UploadPart");
    let (id, _) = fx.put("big", &body);
    assert!(gate.wait_for_arrivals(3).await);
    // part_parallelism = 3: three parts wait at the gate at once, the fourth is not sent yet.
    assert!(until(|| gate.waiting() == 3).await);
    assert_eq!(fx.store.count("UploadPart"), 3);
    assert_eq!(fx.info(id).unwrap().state, TaskState::Running);
    gate.release();
    wait_key(&fx.q, "big").await.unwrap();
    let got = fx.store.get_object("big", None).await.unwrap();
    assert_eq!(got.data.as_ref(), &body[..]);
    assert!(got.etag.ends_with("-5"), "{}", got.etag);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 1);
    assert_eq!(fx.store.count("UploadPart"), 5);
    assert_eq!(fx.store.count("CompleteMultipartUpload"), 1);
    assert_eq!(fx.store.open_uploads(), 0);
    let info = fx.info(id).unwrap();
    assert_eq!(info.loaded, body.len() as u64);
    assert_eq!(info.percent, 100.0);
}

#[tokio::test]
async fn newer_enqueue_supersedes_queued_and_waits_for_running() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let (first, _) = fx.put("k", b"v1");
    assert!(gate.wait_for_arrivals(1).await);
    let (_second, second_path) = fx.put("k", b"v2");
    let (third, _) = fx.put("k", b"v3");
    // v2 never started: superseded by v3, its file gone. v1 is running and finishes first.
    assert!(!second_path.exists());
    let ids: Vec<TaskId> = fx.q.list().iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![first, third]);
    assert_eq!(fx.info(third).unwrap().state, TaskState::Queued);
    assert_eq!(fx.q.pending("k").unwrap().id, third);
    gate.release();
    wait_key(&fx.q, "k").await.unwrap();
    assert_eq!(fx.store.get("k").unwrap().as_ref(), b"v3");
    assert_eq!(fx.store.count("PutObject"), 2);
}

#[tokio::test]
async fn wait_key_follows_a_superseded_task() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"x");
    fx.put("blocker2", b"x");
    assert!(gate.wait_for_arrivals(2).await);
    fx.put("k", b"old");
    let q = fx.q.clone();
    let waiter = tokio::spawn(async move { wait_key(&q, "k").await });
    // The waiter looks at "old"; "new" supersedes it; the wait ends when "new" is in COS.
    assert!(until(|| fx.q.list().len() == 3).await);
    fx.put("k", b"new");
    gate.release();
    waiter.await.unwrap().unwrap();
    assert_eq!(fx.store.get("k").unwrap().as_ref(), b"new");
    // Nothing pending at all: returns at once.
    wait_key(&fx.q, "nothing/here").await.unwrap();
}

#[tokio::test]
async fn pause_between_parts_then_restart_sends_only_missing_parts() {
    let fx = fixture(cfg());
    let body = data(5 * PART as usize, 3);
    let gate = fx.store.gate("UploadPart");
    let (id, _) = fx.put("p", &body);
    assert!(gate.wait_for_arrivals(3).await);
    fx.q.pause(id).unwrap();
    // Parts are in flight: not Paused until they finish.
    assert_eq!(fx.info(id).unwrap().state, TaskState::Running);
    gate.release();
    // drain returns once the worker has finished the parts in flight and let go of the task.
    drain(&fx.q).await;
    let info = fx.info(id).unwrap();
    assert_eq!(info.state, TaskState::Paused);
    assert_eq!(fx.store.count("UploadPart"), 3);
    assert_eq!(info.loaded, 3 * PART);
    assert_eq!(info.percent, 60.0);
    assert!(fx.store.get("p").is_none());
    assert!(fx.q.pending("p").is_some());
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "p").await.unwrap();
    assert_eq!(fx.store.get("p").unwrap().as_ref(), &body[..]);
    assert_eq!(fx.store.count("UploadPart"), 5);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 1);
    assert_eq!(fx.info(id).unwrap().state, TaskState::Done);
}

#[tokio::test]
async fn restart_withdraws_a_pause_that_has_not_taken_effect() {
    let fx = fixture(cfg());
    let body = data(5 * PART as usize, 4);
    let gate = fx.store.gate("UploadPart");
    let (id, _) = fx.put("w", &body);
    assert!(gate.wait_for_arrivals(3).await);
    fx.q.pause(id).unwrap();
    fx.q.restart(id).unwrap();
    gate.release();
    wait_key(&fx.q, "w").await.unwrap();
    assert_eq!(fx.store.get("w").unwrap().as_ref(), &body[..]);
    assert_eq!(fx.info(id).unwrap().state, TaskState::Done);
}

#[tokio::test]
async fn pause_of_a_queued_task_holds_it() {
    let mut c = cfg();
    c.max_concurrent_uploads = 1;
    let fx = fixture(c);
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    let (id, _) = fx.put("held", b"h");
    fx.q.pause(id).unwrap();
    gate.release();
    drain(&fx.q).await;
    assert!(fx.store.get("held").is_none());
    assert_eq!(fx.info(id).unwrap().state, TaskState::Paused);
    assert_eq!(fx.journaled(), 1, "a paused upload stays journaled");
    assert!(fx.q.pause(999).is_err());
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "held").await.unwrap();
    assert_eq!(fx.store.get("held").unwrap().as_ref(), b"h");
}

#[tokio::test]
async fn cancel_keeps_the_local_copy_where_it_says() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let (id, path) = fx.put("docs/report.txt", b"precious");
    assert!(gate.wait_for_arrivals(1).await);
    // A waiter from before the cancel (fsync in progress) learns that the data never made it.
    let mut waiter = Box::pin(fx.q.wait_key("docs/report.txt"));
    assert!(futures::poll!(&mut waiter).is_pending());
    let kept = fx.q.cancel(id).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter woke")
        .unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(kept.starts_with(fx.cache.recovery_dir()));
    assert!(kept
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("docs%2Freport.txt."));
    assert_eq!(std::fs::read(&kept).unwrap(), b"precious");
    assert!(!path.exists());
    assert!(fx.info(id).is_none());
    gate.release();
    drain(&fx.q).await;
    assert_eq!(fx.journaled(), 0);
    assert!(fx.q.cancel(id).is_err());
    // The kept copy is still there after the worker let go.
    assert_eq!(std::fs::read(&kept).unwrap(), b"precious");
}

#[tokio::test]
async fn cancel_of_a_multipart_upload_aborts_it() {
    let fx = fixture(cfg());
    let body = data(4 * PART as usize, 4);
    let gate = fx.store.gate("UploadPart");
    let (id, _) = fx.put("m", &body);
    assert!(gate.wait_for_arrivals(1).await);
    let kept = fx.q.cancel(id).unwrap();
    assert_eq!(std::fs::read(&kept).unwrap(), body);
    drain(&fx.q).await;
    assert_eq!(fx.store.open_uploads(), 0);
    assert!(fx.store.count("AbortMultipartUpload") >= 1);
    gate.release();
    assert!(fx.store.get("m").is_none());
}

#[tokio::test]
async fn transient_errors_are_retried_then_succeed() {
    let fx = fixture(cfg());
    fx.store.fail_next("PutObject", 2, unavailable());
    let (id, _) = fx.put("r", b"retry me");
    wait_key(&fx.q, "r").await.unwrap();
    assert_eq!(fx.store.get("r").unwrap().as_ref(), b"retry me");
    assert_eq!(fx.store.count("PutObject"), 3);
    assert_eq!(fx.info(id).unwrap().attempts, 3);
}

#[tokio::test]
async fn transient_part_errors_resume_without_resending_parts() {
    let fx = fixture(cfg());
    let body = data(3 * PART as usize, 5);
    fx.store
        .fail_next("UploadPart", 1, StoreError::Network("reset".into()));
    let (_, _) = fx.put("mp", &body);
    wait_key(&fx.q, "mp").await.unwrap();
    assert_eq!(fx.store.get("mp").unwrap().as_ref(), &body[..]);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 1);
    // One failed part resent; parts already acknowledged are not. (Parts in flight when the
    // failure came back may have been dropped and resent too, so ≤ 3 + 1 + 2.)
    let parts = fx.store.count("UploadPart");
    assert!((4..=6).contains(&parts), "{parts}");
}

#[tokio::test]
async fn permanent_failure_is_kept_until_restarted() {
    let fx = fixture(cfg());
    fx.store.fail_next(
        "PutObject",
        1,
        StoreError::AccessDenied {
            code: "AccessDenied".into(),
            message: "no".into(),
        },
    );
    let (id, path) = fx.put("f", b"keep me");
    let err = wait_key(&fx.q, "f").await.unwrap_err();
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{err:?}");
    let info = fx.info(id).unwrap();
    assert!(matches!(info.state, TaskState::Failed { .. }), "{info:?}");
    assert_eq!(info.attempts, 1, "permanent errors are not retried");
    assert!(path.exists());
    assert_eq!(fx.journaled(), 1);
    drain(&fx.q).await; // Failed does not hold drain
    assert!(fx.q.pause(id).is_err());
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "f").await.unwrap();
    assert_eq!(fx.store.get("f").unwrap().as_ref(), b"keep me");
    assert_eq!(fx.journaled(), 0);
}

#[tokio::test]
async fn transient_errors_beyond_max_attempts_fail_the_task() {
    let fx = fixture(cfg());
    fx.store.fail_next("PutObject", 3, unavailable());
    let (id, path) = fx.put("t", b"x");
    assert!(wait_key(&fx.q, "t").await.is_err());
    let info = fx.info(id).unwrap();
    assert_eq!(info.attempts, 3);
    assert!(matches!(info.state, TaskState::Failed { .. }));
    assert!(path.exists());
    assert_eq!(fx.store.count("PutObject"), 3);
}

#[tokio::test]
async fn drain_waits_for_everything_queued() {
    let fx = fixture(cfg());
    let mut files = Vec::new();
    for i in 0..12u8 {
        let body = data(if i % 4 == 0 { 3 * PART as usize } else { 100 }, i);
        fx.put(&format!("d/{i}"), &body);
        files.push(body);
    }
    drain(&fx.q).await;
    for (i, body) in files.iter().enumerate() {
        assert_eq!(fx.store.get(&format!("d/{i}")).unwrap().as_ref(), &body[..]);
    }
    assert!(fx.q.list().iter().all(|t| t.state == TaskState::Done));
    assert_eq!(fx.journaled(), 0);
}

#[tokio::test]
async fn pending_views_retarget_and_metadata_updates() {
    let mut c = cfg();
    c.max_concurrent_uploads = 1;
    let fx = fixture(c);
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    fx.put("dir/a", b"aaa");
    fx.put("dir/sub/b", b"bb");
    fx.put("other", b"o");
    let under: Vec<String> =
        fx.q.pending_under("dir/")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    assert_eq!(under, vec!["dir/a".to_string(), "dir/sub/b".to_string()]);
    let p = fx.q.pending("dir/a").unwrap();
    assert_eq!(p.size, 3);
    assert_eq!(std::fs::read(&p.path).unwrap(), b"aaa");

    assert!(fx.q.update_pending_opts("dir/a", &mut |o| {
        o.headers.content_type = Some("text/x-test".into());
        o.headers.user_meta.insert("mode".into(), "33188".into());
    }));
    assert!(!fx.q.update_pending_opts("nothing", &mut |_| {}));
    assert!(fx.q.retarget("dir/a", "dir/renamed"));
    assert!(!fx.q.retarget("dir/a", "dir/x"));
    assert!(fx.q.pending("dir/a").is_none());
    assert!(fx.q.pending("dir/renamed").is_some());
    fx.q.discard("other");
    assert!(fx.q.pending("other").is_none());

    gate.release();
    drain(&fx.q).await;
    assert!(fx.store.get("dir/a").is_none());
    assert!(fx.store.get("other").is_none());
    assert_eq!(fx.store.get("dir/renamed").unwrap().as_ref(), b"aaa");
    let meta = fx.store.meta("dir/renamed").unwrap();
    assert_eq!(meta.headers.content_type.as_deref(), Some("text/x-test"));
    assert_eq!(
        meta.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );
    assert_eq!(fx.journaled(), 0);
}

#[tokio::test]
async fn retarget_replaces_pending_uploads_of_the_target() {
    let mut c = cfg();
    c.max_concurrent_uploads = 1;
    let fx = fixture(c);
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    fx.put("src", b"source");
    let (_, dst_path) = fx.put("dst", b"older target");
    assert!(fx.q.retarget("src", "dst"));
    assert!(!dst_path.exists());
    gate.release();
    wait_key(&fx.q, "dst").await.unwrap();
    assert_eq!(fx.store.get("dst").unwrap().as_ref(), b"source");
}

#[tokio::test]
async fn discard_of_a_running_upload_leaves_no_object() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let (_, p1) = fx.put("gone", b"one");
    assert!(gate.wait_for_arrivals(1).await);
    let (_, p2) = fx.put("gone", b"two");
    fx.q.discard("gone");
    assert!(!p1.exists() && !p2.exists());
    assert!(fx.q.pending("gone").is_none());
    assert!(fx.q.list().is_empty());
    // After discard, wait_key returns once nothing of the old file can land any more (the
    // rename-over-a-pending-file path relies on it before copying to the key).
    wait_key(&fx.q, "gone").await.unwrap();
    fx.store
        .insert("gone", &b"copied by rename"[..], &PutOptions::default());
    gate.release();
    drain(&fx.q).await;
    assert_eq!(fx.store.get("gone").unwrap().as_ref(), b"copied by rename");
    assert_eq!(fx.journaled(), 0);
}

/// Runs `f` on a fresh runtime that is dropped afterwards: dropping it kills the workers like a
/// crashed daemon (nothing drains, nothing is cleaned up), and releases the cache lock.
fn on_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(f);
    drop(rt);
    out
}

#[test]
fn crash_recovery_uploads_pending_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    store.set_min_part_size(1);
    let small = data(500, 7);
    let big = data(3 * PART as usize + 7, 8);
    store.insert("edited", &b"old content"[..], &PutOptions::default());
    let base = store.meta("edited").unwrap().etag;
    let (s, b) = (small.clone(), big.clone());
    let st = store.clone();
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let gate_put = st.gate("PutObject");
        let gate_part = st.gate("UploadPart");
        let q = UploadQueue::new(st.clone(), cache.clone(), cfg());
        let mut opts = PutOptions::default();
        opts.headers.content_type = Some("text/plain".into());
        let p = staged(&cache, &s);
        q.enqueue("new/file", p, s.len() as u64, opts, None)
            .unwrap();
        let p = staged(&cache, &b);
        q.enqueue(
            "edited",
            p,
            b.len() as u64,
            PutOptions::default(),
            Some(base),
        )
        .unwrap();
        // A file being written when the daemon died (never enqueued).
        let (orphan, _) = cache.new_staging_file().unwrap();
        std::fs::write(orphan, b"half written").unwrap();
        assert!(gate_put.wait_for_arrivals(1).await);
        assert!(gate_part.wait_for_arrivals(1).await);
        assert_eq!(st.open_uploads(), 1);
        // Crash: the runtime (and with it every worker) goes away mid-upload.
    });
    store.remove_gate("PutObject");
    store.remove_gate("UploadPart");
    assert!(store.get("new/file").is_none());
    let root = dir.path().join("cache");
    on_runtime(async move {
        let cache = CacheDir::open(&root).expect("the dead daemon's lock is gone");
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        let report = q.recover().await.unwrap();
        assert_eq!(report.requeued, 2, "{report:?}");
        assert!(report.recovered.is_empty());
        assert_eq!(report.orphans.len(), 1);
        assert_eq!(std::fs::read(&report.orphans[0]).unwrap(), b"half written");
        drain(&q).await;
        assert_eq!(store.get("new/file").unwrap().as_ref(), &small[..]);
        let meta = store.meta("new/file").unwrap();
        assert_eq!(meta.headers.content_type.as_deref(), Some("text/plain"));
        assert_eq!(store.get("edited").unwrap().as_ref(), &big[..]);
        // The dead daemon's multipart upload was aborted, the new one completed.
        assert_eq!(store.open_uploads(), 0);
        assert_eq!(cache.journal().live_files().len(), 0);
        let left: Vec<_> = std::fs::read_dir(cache.staging_dir()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // A second recover has nothing to do.
        assert_eq!(q.recover().await.unwrap(), RecoveryReport::default());
    });
}

#[test]
fn crash_recovery_keeps_a_copy_when_cos_changed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    store.insert("shared.txt", &b"v1"[..], &PutOptions::default());
    let base = store.meta("shared.txt").unwrap().etag;
    let st = store.clone();
    let r = root.clone();
    on_runtime(async move {
        let cache = CacheDir::open(&r).unwrap();
        let gate = st.gate("PutObject");
        let q = UploadQueue::new(st.clone(), cache.clone(), cfg());
        let p = staged(&cache, b"my local edit");
        q.enqueue("shared.txt", p, 13, PutOptions::default(), Some(base))
            .unwrap();
        let p = staged(&cache, b"brand new");
        q.enqueue("created.txt", p, 9, PutOptions::default(), None)
            .unwrap();
        let p = staged(&cache, b"landed");
        q.enqueue("landed.txt", p, 6, PutOptions::default(), None)
            .unwrap();
        assert!(gate.wait_for_arrivals(2).await);
    });
    store.remove_gate("PutObject");
    // Meanwhile someone else changed shared.txt and created created.txt; landed.txt reached
    // COS just before the crash (same bytes).
    store.insert(
        "shared.txt",
        &b"v2 from elsewhere"[..],
        &PutOptions::default(),
    );
    store.insert("created.txt", &b"theirs"[..], &PutOptions::default());
    store.insert("landed.txt", &b"landed"[..], &PutOptions::default());
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        let report = q.recover().await.unwrap();
        assert_eq!(report.requeued, 0, "{report:?}");
        assert_eq!(report.already_uploaded, 1);
        assert_eq!(report.recovered.len(), 2);
        let mut kept: Vec<(String, Vec<u8>)> = report
            .recovered
            .iter()
            .map(|p| {
                assert!(p.starts_with(cache.recovery_dir()));
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, std::fs::read(p).unwrap())
            })
            .collect();
        kept.sort();
        assert!(kept[0].0.starts_with("created.txt."));
        assert_eq!(kept[0].1, b"brand new");
        assert!(kept[1].0.starts_with("shared.txt."));
        assert_eq!(kept[1].1, b"my local edit");
        drain(&q).await;
        // Not overwritten.
        assert_eq!(
            store.get("shared.txt").unwrap().as_ref(),
            b"v2 from elsewhere"
        );
        assert_eq!(store.get("created.txt").unwrap().as_ref(), b"theirs");
        assert_eq!(cache.journal().live_files().len(), 0);
    });
}

#[test]
fn recovery_stops_on_store_errors_and_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    let st = store.clone();
    let r = root.clone();
    on_runtime(async move {
        let cache = CacheDir::open(&r).unwrap();
        let gate = st.gate("PutObject");
        let q = UploadQueue::new(st.clone(), cache.clone(), cfg());
        let p = staged(&cache, b"data");
        q.enqueue("k", p, 4, PutOptions::default(), None).unwrap();
        assert!(gate.wait_for_arrivals(1).await);
    });
    store.remove_gate("PutObject");
    // Transient HEAD failures are retried (max_attempts = 3): two are absorbed, the next three
    // exhaust the first recover() call.
    store.fail_next("HeadObject", 5, StoreError::Network("down".into()));
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        assert!(q.recover().await.is_err());
        assert_eq!(store.count("HeadObject"), 3);
        assert_eq!(cache.journal().live_files().len(), 1);
        let report = q.recover().await.unwrap();
        assert_eq!(report.requeued, 1);
        assert_eq!(store.count("HeadObject"), 6);
        drain(&q).await;
        assert_eq!(store.get("k").unwrap().as_ref(), b"data");
    });
}

#[tokio::test]
async fn new_ids_continue_after_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    let gate = store.gate("PutObject");
    let first = {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        let p = staged(&cache, b"x");
        let id = q.enqueue("a", p, 1, PutOptions::default(), None).unwrap();
        assert!(gate.wait_for_arrivals(1).await);
        id
    };
    // The first queue's workers are aborted by its drop; wait for the lock to be released.
    let mut cache = None;
    assert!(
        until(|| {
            cache = CacheDir::open(&root).ok();
            cache.is_some()
        })
        .await
    );
    let cache = cache.unwrap();
    gate.release();
    let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
    let p = staged(&cache, b"y");
    let id = q.enqueue("b", p, 1, PutOptions::default(), None).unwrap();
    assert!(id > first);
    let report = q.recover().await.unwrap();
    assert_eq!(report.requeued, 1);
    drain(&q).await;
    assert_eq!(store.get("a").unwrap().as_ref(), b"x");
    assert_eq!(store.get("b").unwrap().as_ref(), b"y");
}

#[tokio::test]
async fn pause_of_a_single_put_in_flight_takes_effect_after_it() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let (id, _) = fx.put("s", b"small");
    assert!(gate.wait_for_arrivals(1).await);
    fx.q.pause(id).unwrap();
    assert_eq!(fx.info(id).unwrap().state, TaskState::Running);
    gate.release();
    wait_key(&fx.q, "s").await.unwrap();
    assert_eq!(fx.info(id).unwrap().state, TaskState::Done);
    assert_eq!(fx.store.get("s").unwrap().as_ref(), b"small");
    assert!(fx.q.restart(id).is_err(), "a done task cannot restart");
}

#[tokio::test]
async fn a_newer_version_inherits_the_pause_of_the_one_it_supersedes() {
    let mut c = cfg();
    c.max_concurrent_uploads = 1;
    let fx = fixture(c);
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    let (old, old_path) = fx.put("k", b"v1");
    fx.q.pause(old).unwrap();
    let (new, _) = fx.put("k", b"v2");
    assert!(fx.info(old).is_none());
    assert!(!old_path.exists());
    assert_eq!(fx.info(new).unwrap().state, TaskState::Paused);
    gate.release();
    drain(&fx.q).await;
    assert!(fx.store.get("k").is_none());
    fx.q.restart(new).unwrap();
    wait_key(&fx.q, "k").await.unwrap();
    assert_eq!(fx.store.get("k").unwrap().as_ref(), b"v2");
}

#[tokio::test]
async fn cancel_of_a_task_whose_file_vanished_still_removes_it() {
    let mut c = cfg();
    c.max_concurrent_uploads = 1;
    let fx = fixture(c);
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    let (id, path) = fx.put("v", b"v");
    std::fs::remove_file(&path).unwrap();
    let err = fx.q.cancel(id).unwrap_err();
    assert!(err.contains("already gone"), "{err}");
    assert!(fx.info(id).is_none());
    gate.release();
    drain(&fx.q).await;
    assert!(fx.store.get("v").is_none());
    assert_eq!(fx.journaled(), 0);
}

#[test]
fn recovery_yields_to_a_newer_version_queued_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    let st = store.clone();
    let r = root.clone();
    on_runtime(async move {
        let cache = CacheDir::open(&r).unwrap();
        let gate = st.gate("PutObject");
        let q = UploadQueue::new(st.clone(), cache.clone(), cfg());
        let p = staged(&cache, b"stale");
        q.enqueue("k", p, 5, PutOptions::default(), None).unwrap();
        assert!(gate.wait_for_arrivals(1).await);
    });
    store.remove_gate("PutObject");
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        // The new daemon wrote the file again before recovery ran.
        let p = staged(&cache, b"fresh");
        q.enqueue("k", p, 5, PutOptions::default(), None).unwrap();
        let report = q.recover().await.unwrap();
        assert_eq!(report.requeued, 0, "{report:?}");
        drain(&q).await;
        assert_eq!(store.get("k").unwrap().as_ref(), b"fresh");
        assert_eq!(cache.journal().live_files().len(), 0);
        let left: Vec<_> = std::fs::read_dir(cache.staging_dir()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    });
}

#[tokio::test]
async fn metadata_change_restarts_a_paused_multipart_upload() {
    let fx = fixture(cfg());
    let body = data(4 * PART as usize, 9);
    let gate = fx.store.gate("UploadPart");
    let (id, _) = fx.put("meta", &body);
    assert!(gate.wait_for_arrivals(3).await);
    fx.q.pause(id).unwrap();
    gate.release();
    drain(&fx.q).await;
    assert_eq!(fx.store.open_uploads(), 1);
    // The headers went out with Initiate: the half-done upload is dropped and redone.
    assert!(fx.q.update_pending_opts("meta", &mut |o| {
        o.headers.content_type = Some("image/png".into());
    }));
    assert_eq!(fx.info(id).unwrap().loaded, 0);
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "meta").await.unwrap();
    assert_eq!(fx.store.get("meta").unwrap().as_ref(), &body[..]);
    let meta = fx.store.meta("meta").unwrap();
    assert_eq!(meta.headers.content_type.as_deref(), Some("image/png"));
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 2);
    assert_eq!(fx.store.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_mix_ends_with_the_last_version_of_every_key() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fx = fixture(cfg());
    let keys = ["a", "b/c", "d", "e/f/g"];
    let mut last: std::collections::HashMap<&str, Option<Vec<u8>>> = Default::default();
    for step in 0..150u32 {
        let key = keys[rng.gen_range(0..keys.len())];
        match rng.gen_range(0..10) {
            0 => {
                fx.q.discard(key);
                last.insert(key, None);
            }
            1 => fx.store.fail_next("PutObject", 1, unavailable()),
            2 => fx.store.fail_next("UploadPart", 1, unavailable()),
            _ => {
                let len = if rng.gen_bool(0.2) {
                    rng.gen_range(2 * PART..4 * PART) as usize
                } else {
                    rng.gen_range(0..2000)
                };
                let body = data(len, step as u8);
                fx.put(key, &body);
                last.insert(key, Some(body));
            }
        }
        if rng.gen_bool(0.1) {
            drain(&fx.q).await;
        }
    }
    drain(&fx.q).await;
    // Injected faults can pile up beyond max_attempts: retry what failed (each round consumes
    // at least one fault, so this ends).
    for _ in 0..200 {
        let failed: Vec<TaskId> =
            fx.q.list()
                .iter()
                .filter(|t| matches!(t.state, TaskState::Failed { .. }))
                .map(|t| t.id)
                .collect();
        if failed.is_empty() {
            break;
        }
        for id in failed {
            fx.q.restart(id).unwrap();
        }
        drain(&fx.q).await;
    }
    for (key, body) in &last {
        if let Some(body) = body {
            wait_key(&fx.q, key).await.unwrap();
            let got = fx.store.get(key).expect(key);
            assert!(
                got.as_ref() == &body[..],
                "seed {seed}: {key} has the wrong version"
            );
        }
    }
    assert!(
        fx.q.list().iter().all(|t| t.state == TaskState::Done),
        "seed {seed}: {:?}",
        fx.q.list()
    );
    assert_eq!(fx.journaled(), 0, "seed {seed}");
    let left: Vec<_> = std::fs::read_dir(fx.cache.staging_dir()).unwrap().collect();
    assert!(left.is_empty(), "seed {seed}: {left:?}");
}

#[tokio::test]
async fn a_failure_behind_a_newer_version_is_dropped_not_kept() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let (old, old_path) = fx.put("k", b"old");
    assert!(gate.wait_for_arrivals(1).await);
    let (new, _) = fx.put("k", b"new");
    // The running old upload fails for good while the new one waits behind it.
    fx.store.fail_next(
        "PutObject",
        1,
        StoreError::AccessDenied {
            code: "AccessDenied".into(),
            message: "no".into(),
        },
    );
    gate.release();
    wait_key(&fx.q, "k").await.unwrap();
    assert_eq!(fx.store.get("k").unwrap().as_ref(), b"new");
    assert!(
        fx.info(old).is_none(),
        "obsolete failure kept: {:?}",
        fx.q.list()
    );
    assert_eq!(fx.info(new).unwrap().state, TaskState::Done);
    assert!(!old_path.exists());
    assert_eq!(fx.journaled(), 0);
}

#[tokio::test]
async fn enqueue_of_a_missing_file_fails_and_journals_nothing() {
    let fx = fixture(cfg());
    let missing = fx.cache.staging_dir().join("nope");
    let err =
        fx.q.enqueue("k", missing, 1, PutOptions::default(), None)
            .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(fx.journaled(), 0);
    assert!(fx.q.list().is_empty());
}
