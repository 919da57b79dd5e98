//! Early multipart uploads (`early.rs`) against `MemoryStore`: parts sent while the file is
//! written, a changed part sent again at hand-off, an abandoned upload aborted and unjournaled,
//! and a metadata change making the queue upload afresh.

use std::os::unix::fs::FileExt;

use super::*;
use crate::cache::early::EarlyUpload;

/// A staging file being written, with its early upload.
struct Writing {
    path: PathBuf,
    file: Arc<std::fs::File>,
    bytes: Vec<u8>,
    early: EarlyUpload,
}

fn opts(mode: &str, mtime: &str) -> PutOptions {
    let mut o = PutOptions::default();
    o.headers.user_meta.insert("mode".into(), mode.into());
    o.headers.user_meta.insert("mtime".into(), mtime.into());
    o
}

/// Now, as `x-cos-meta-mtime` writes it.
fn now_mtime() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

impl Writing {
    /// Starts an early upload of `key` after `parts` parts were appended.
    fn start(fx: &Fx, key: &str, parts: u64) -> Writing {
        let (path, file) = fx.cache.new_staging_file().unwrap();
        let file = Arc::new(file);
        let bytes = data((parts * PART) as usize, 7);
        file.write_all_at(&bytes, 0).unwrap();
        let early =
            fx.q.start_early(
                key,
                path.clone(),
                file.clone(),
                &opts("33188", "1"),
                bytes.len() as u64,
            )
            .unwrap();
        Writing {
            path,
            file,
            bytes,
            early,
        }
    }

    fn write_at(&mut self, off: usize, b: &[u8]) {
        self.file.write_all_at(b, off as u64).unwrap();
        let end = off + b.len();
        if end > self.bytes.len() {
            self.bytes.resize(end, 0);
        }
        self.bytes[off..end].copy_from_slice(b);
        self.early.written(off as u64, end as u64);
    }

    /// Stops the early upload and hands the file off with `opts`.
    async fn hand_off(self, fx: &Fx, key: &str, opts: PutOptions) -> Vec<u8> {
        self.early.stopper().stop().await;
        fx.q.enqueue(Handover {
            early: Some(self.early),
            ..Handover::durable(key, self.path, self.bytes.len() as u64, opts, None)
        })
        .unwrap();
        self.bytes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_go_early_and_a_changed_part_is_sent_again_at_hand_off() {
    let fx = fixture(cfg());
    let mut w = Writing::start(&fx, "f", 10);
    // Writes are 10 parts in: parts 1..=9 are ready.
    assert!(until(|| fx.store.count("UploadPart") == 9).await);
    assert!(
        fx.cache.journal().live_files().is_empty(),
        "an open file is no pending upload"
    );
    w.write_at(5, b"changed after it was sent");
    let tail = data(PART as usize / 2, 9);
    w.write_at(10 * PART as usize, &tail);
    let final_opts = opts("33188", &now_mtime());
    let want_mtime = final_opts.headers.user_meta.get("mtime").cloned();
    let want = w.hand_off(&fx, "f", final_opts).await;
    drain(&fx.q).await;
    assert_eq!(fx.store.get("f").unwrap(), want);
    // 9 early, then part 1 (changed), 10 and 11 (the tail): nothing else twice.
    assert_eq!(fx.store.count("UploadPart"), 12);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 1);
    assert_eq!(fx.store.open_uploads(), 0);
    // Initiated without the time fields; one copy in place after Complete stores them.
    let meta = fx.store.meta("f").unwrap();
    assert_eq!(
        meta.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );
    assert_eq!(
        meta.headers.user_meta.get("mtime"),
        want_mtime.as_ref(),
        "the final mtime is stored"
    );
    assert_eq!(fx.store.count("PutObjectCopy"), 1);
    assert_eq!(fx.journaled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_early_upload_is_aborted_and_unjournaled() {
    let fx = fixture(cfg());
    let w = Writing::start(&fx, "gone", 6);
    assert!(until(|| fx.store.count("UploadPart") == 5).await);
    assert_eq!(fx.store.open_uploads(), 1);
    let jid = w.early.journal_id().expect("the upload id is journaled");
    assert!(fx.cache.journal().get(jid).is_some_and(|e| e.unclosed));
    drop(w);
    assert!(until(|| fx.store.open_uploads() == 0).await);
    assert!(until(|| fx.cache.journal().get(jid).is_none()).await);
    assert!(fx.store.get("gone").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_metadata_makes_the_queue_upload_afresh() {
    let fx = fixture(cfg());
    let w = Writing::start(&fx, "m", 6);
    assert!(until(|| fx.store.count("UploadPart") == 5).await);
    // A chmod while it was written: the early upload's metadata is wrong now.
    let want = w.hand_off(&fx, "m", opts("33261", &now_mtime())).await;
    drain(&fx.q).await;
    assert_eq!(fx.store.get("m").unwrap(), want);
    let meta = fx.store.meta("m").unwrap();
    assert_eq!(
        meta.headers.user_meta.get("mode").map(String::as_str),
        Some("33261")
    );
    assert!(meta.headers.user_meta.contains_key("mtime"));
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 2);
    assert!(until(|| fx.store.open_uploads() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_does_not_hang_on_parts_cos_does_not_answer() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("UploadPart");
    let w = Writing::start(&fx, "stuck", 6);
    // `part_parallelism` (3) parts wait at the gate: COS does not answer.
    assert!(until(|| gate.waiting() == 3).await);
    // The hand-off gives up on them after STOP_WAIT of silence: the early upload is aborted.
    let want = w.hand_off(&fx, "stuck", opts("33188", &now_mtime())).await;
    gate.release();
    drain(&fx.q).await;
    assert_eq!(fx.store.get("stuck").unwrap(), want);
    // The queue started afresh; the early upload is gone.
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 2);
    assert!(until(|| fx.store.open_uploads() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_waits_for_the_data_and_chmod_for_the_copy_that_stores_the_times() {
    let fx = fixture(cfg());
    let w = Writing::start(&fx, "t", 4);
    assert!(until(|| fx.store.count("UploadPart") == 3).await);
    let gate = fx.store.gate("PutObjectCopy");
    let final_opts = opts("33188", &now_mtime());
    let want_mtime = final_opts.headers.user_meta.get("mtime").cloned();
    let want = w.hand_off(&fx, "t", final_opts).await;
    // The copy is held: the data is in COS, so wait_landed (fsync, close) returns.
    tokio::time::timeout(Duration::from_secs(10), fx.q.wait_landed("t"))
        .await
        .expect("wait_landed timed out")
        .unwrap();
    assert_eq!(fx.store.get("t").unwrap(), want);
    assert!(gate.wait_for_arrivals(1).await);
    assert!(
        fx.q.list()
            .iter()
            .any(|t| t.key == "t" && t.state != TaskState::Done),
        "the task runs on, storing the times"
    );
    // An operation that changes the object next (chmod, xattrs, rename) waits for the copy:
    // its own copy in place must not be overwritten by this one.
    let mut settled = Box::pin(fx.q.wait_key("t"));
    assert!(futures::poll!(&mut settled).is_pending());
    gate.release();
    tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .expect("wait_key timed out")
        .unwrap();
    assert!(
        fx.q.list()
            .iter()
            .all(|t| t.key != "t" || t.state == TaskState::Done),
        "wait_key returned before the task was done"
    );
    drain(&fx.q).await;
    let meta = fx.store.meta("t").unwrap();
    assert_eq!(meta.headers.user_meta.get("mtime"), want_mtime.as_ref());
    assert_eq!(fx.journaled(), 0);
}
