//! Crash recovery from the journal.

use super::*;

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
        q.enqueue(Handover::durable("new/file", p, s.len() as u64, opts, None))
            .unwrap();
        let p = staged(&cache, &b);
        q.enqueue(Handover::durable(
            "edited",
            p,
            b.len() as u64,
            PutOptions::default(),
            Some(base),
        ))
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
        let left = staging_left(&cache);
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
        q.enqueue(Handover::durable(
            "shared.txt",
            p,
            13,
            PutOptions::default(),
            Some(base),
        ))
        .unwrap();
        let p = staged(&cache, b"brand new");
        q.enqueue(Handover::durable(
            "created.txt",
            p,
            9,
            PutOptions::default(),
            None,
        ))
        .unwrap();
        let p = staged(&cache, b"landed");
        q.enqueue(Handover::durable(
            "landed.txt",
            p,
            6,
            PutOptions::default(),
            None,
        ))
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
fn recovery_never_uploads_a_copy_cut_short_by_a_machine_crash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = MemoryStore::new();
    store.insert("doc.txt", &b"v1"[..], &PutOptions::default());
    let base = store.meta("doc.txt").unwrap().etag;
    let (st, r) = (store.clone(), root.clone());
    let staged_path = on_runtime(async move {
        let cache = CacheDir::open(&r).unwrap();
        let gate = st.gate("PutObject");
        let q = UploadQueue::new(st.clone(), cache.clone(), cfg());
        let p = staged(&cache, b"the whole new version");
        q.enqueue(Handover {
            durability: Durability::Held,
            early: None,
            ..Handover::durable("doc.txt", p.clone(), 21, PutOptions::default(), Some(base))
        })
        .unwrap();
        assert!(gate.wait_for_arrivals(1).await);
        p
    });
    store.remove_gate("PutObject");
    // The machine died before the held (never fsync'd) copy reached the disk whole, but after
    // its journal record did.
    std::fs::write(&staged_path, b"the whole").unwrap();
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        let report = q.recover().await.unwrap();
        assert_eq!(
            (report.requeued, report.recovered.len()),
            (0, 1),
            "{report:?}"
        );
        assert_eq!(std::fs::read(&report.recovered[0]).unwrap(), b"the whole");
        drain(&q).await;
        assert_eq!(store.get("doc.txt").unwrap().as_ref(), b"v1");
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
        q.enqueue(Handover::durable("k", p, 4, PutOptions::default(), None))
            .unwrap();
        assert!(gate.wait_for_arrivals(1).await);
    });
    store.remove_gate("PutObject");
    // The client's policy retries HEADs; an error that reaches recovery stops this call.
    store.fail_next("HeadObject", 1, StoreError::Network("down".into()));
    on_runtime(async move {
        let cache = CacheDir::open(&root).unwrap();
        let q = UploadQueue::new(store.clone(), cache.clone(), cfg());
        assert!(q.recover().await.is_err());
        assert_eq!(store.count("HeadObject"), 1);
        assert_eq!(cache.journal().live_files().len(), 1);
        let report = q.recover().await.unwrap();
        assert_eq!(report.requeued, 1);
        assert_eq!(store.count("HeadObject"), 2);
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
        let id = q
            .enqueue(Handover::durable("a", p, 1, PutOptions::default(), None))
            .unwrap();
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
    let id = q
        .enqueue(Handover::durable("b", p, 1, PutOptions::default(), None))
        .unwrap();
    assert!(id > first);
    let report = q.recover().await.unwrap();
    assert_eq!(report.requeued, 1);
    drain(&q).await;
    assert_eq!(store.get("a").unwrap().as_ref(), b"x");
    assert_eq!(store.get("b").unwrap().as_ref(), b"y");
}
