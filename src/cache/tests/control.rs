//! Pause, restart and cancel.

use super::*;

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
