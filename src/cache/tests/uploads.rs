//! Single PUT and multipart uploads, superseding and wait_key.

use super::*;

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
async fn a_held_task_is_left_to_its_waiter_by_the_lazy_window() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let held = staged(&fx.cache, b"fsync'd by its waiter");
    let h =
        fx.q.enqueue(Handover {
            durability: Durability::Held,
            early: None,
            ..Handover::durable("held", held, 21, PutOptions::default(), None)
        })
        .unwrap();
    let lazy = staged(&fx.cache, b"lazy");
    let l =
        fx.q.enqueue(Handover {
            durability: Durability::Lazy,
            ..Handover::durable("lazy", lazy, 4, PutOptions::default(), None)
        })
        .unwrap();
    assert!(gate.wait_for_arrivals(2).await);
    let is_lazy = |fx: &Fx, id| fx.q.inner.table().tasks.get(&id).is_some_and(|t| t.lazy());
    assert!(
        is_lazy(&fx, h) && is_lazy(&fx, l),
        "journaled without fsync"
    );
    // The lazy window's pass persists the closed file, not the one an fsync waits for.
    assert!(
        until(|| !is_lazy(&fx, l)).await,
        "still lazy after the window"
    );
    assert!(is_lazy(&fx, h), "the window persisted a held task");
    // The waiter gives up: it persists its key itself.
    fx.q.persist(Some("held")).unwrap();
    assert!(!is_lazy(&fx, h));
    gate.release();
    wait_key(&fx.q, "held").await.unwrap();
    assert_eq!(
        fx.store.get("held").unwrap().as_ref(),
        b"fsync'd by its waiter"
    );
}

#[tokio::test]
async fn a_lazy_task_still_pending_after_the_lazy_window_is_made_durable() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    let path = staged(&fx.cache, b"lazy bytes");
    let id =
        fx.q.enqueue(Handover {
            durability: Durability::Lazy,
            ..Handover::durable("lazy", path, 10, PutOptions::default(), None)
        })
        .unwrap();
    assert!(gate.wait_for_arrivals(1).await);
    let lazy = |fx: &Fx| fx.q.inner.table().tasks.get(&id).is_some_and(|t| t.lazy());
    assert!(lazy(&fx), "journaled without fsync");
    // The PUT is held: the persister fsyncs the task after LAZY_WINDOW, without the closer.
    assert!(until(|| !lazy(&fx)).await, "still lazy after the window");
    gate.release();
    wait_key(&fx.q, "lazy").await.unwrap();
    assert_eq!(fx.store.get("lazy").unwrap().as_ref(), b"lazy bytes");
}
