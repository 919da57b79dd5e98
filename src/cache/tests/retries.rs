//! Transient failures (retried by the queue on its own), permanent ones (Failed until
//! restarted), the one logical restart of a vanished multipart upload, drain.

use super::*;

#[tokio::test]
async fn transient_errors_heal_without_a_restart() {
    // The client's retry policy is the only retry layer inside an attempt: each store error
    // that reaches the queue costs exactly one PUT, then the queue schedules the next attempt
    // itself. Nobody calls restart; wait_key (fsync) waits through the retries.
    let fx = fixture(cfg());
    fx.store.fail_next("PutObject", 3, unavailable());
    let (id, path) = fx.put("r", b"retry me");
    wait_key(&fx.q, "r").await.unwrap();
    assert_eq!(fx.store.get("r").unwrap().as_ref(), b"retry me");
    assert_eq!(fx.store.count("PutObject"), 4);
    let info = fx.info(id).unwrap();
    assert_eq!((info.state, info.attempts), (TaskState::Done, 4));
    assert_eq!((info.next_attempt, info.last_error), (None, None));
    assert!(!path.exists());
    assert_eq!(fx.journaled(), 0);
}

/// A config whose retries are an hour away: what happens before then is the queue's doing.
fn slow_retries() -> UploadConfig {
    UploadConfig {
        retry_initial: Duration::from_secs(3600),
        retry_max_delay: Duration::from_secs(3600),
        ..cfg()
    }
}

async fn until_waiting(fx: &Fx, id: TaskId) -> TaskInfo {
    assert!(
        until(|| matches!(
            fx.info(id).map(|t| t.state),
            Some(TaskState::Waiting { .. })
        ))
        .await,
        "not waiting: {:?}",
        fx.q.list()
    );
    fx.info(id).unwrap()
}

#[tokio::test]
async fn a_waiting_task_shows_its_next_attempt_and_last_error_and_keeps_fsync_waiting() {
    let fx = fixture(slow_retries());
    fx.store
        .fail_next("PutObject", 1, StoreError::Network("refused".into()));
    let (id, path) = fx.put("w", b"later");
    let info = until_waiting(&fx, id).await;
    assert!(
        matches!(&info.state, TaskState::Waiting { error } if error.contains("refused")),
        "{info:?}"
    );
    assert_eq!(info.last_error.as_deref(), Some("network error: refused"));
    assert_eq!(info.attempts, 1);
    // First retry after retry_initial, jittered into its upper half.
    let left = info
        .next_attempt
        .expect("next attempt")
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(1700) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    assert!(path.exists());
    assert_eq!(fx.journaled(), 1);
    // fsync keeps waiting rather than failing while a retry is scheduled.
    let mut waiter = Box::pin(fx.q.wait_key("w"));
    assert!(futures::poll!(&mut waiter).is_pending());
    // restart of a waiting task retries at once, not in an hour.
    fx.q.restart(id).unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("restart retried at once")
        .unwrap();
    assert_eq!(fx.store.get("w").unwrap().as_ref(), b"later");
    assert_eq!(fx.store.count("PutObject"), 2);
}

#[tokio::test]
async fn pause_holds_a_waiting_task_and_restart_resumes_it() {
    let fx = fixture(slow_retries());
    fx.store.fail_next("PutObject", 1, unavailable());
    let (id, _) = fx.put("p", b"held");
    until_waiting(&fx, id).await;
    fx.q.pause(id).unwrap();
    let info = fx.info(id).unwrap();
    assert_eq!((info.state, info.next_attempt), (TaskState::Paused, None));
    assert!(info.last_error.is_some(), "the last error stays visible");
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "p").await.unwrap();
    assert_eq!(fx.store.get("p").unwrap().as_ref(), b"held");
}

#[tokio::test]
async fn part_errors_resume_without_resending_parts() {
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
async fn a_vanished_multipart_upload_is_started_over_once() {
    let fx = fixture(cfg());
    let body = data(3 * PART as usize, 6);
    // COS forgot the upload (aborted elsewhere, expired): a logical restart, not a retry.
    fx.store
        .fail_next("UploadPart", 1, StoreError::NotFound("NoSuchUpload".into()));
    let (id, _) = fx.put("gone", &body);
    wait_key(&fx.q, "gone").await.unwrap();
    assert_eq!(fx.store.get("gone").unwrap().as_ref(), &body[..]);
    assert_eq!(fx.store.count("InitiateMultipartUpload"), 2);
    assert_eq!(fx.info(id).unwrap().attempts, 2);
    // Twice in one run is not restarted again: the second NotFound (permanent) fails the task.
    fx.store
        .fail_next("UploadPart", 2, StoreError::NotFound("NoSuchUpload".into()));
    let (id, _) = fx.put("gone2", &body);
    assert!(wait_key(&fx.q, "gone2").await.is_err());
    assert_eq!(fx.info(id).unwrap().attempts, 2);
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
async fn a_missing_local_file_is_a_permanent_failure() {
    let fx = fixture(cfg());
    let gate = fx.store.gate("PutObject");
    fx.put("blocker", b"b");
    assert!(gate.wait_for_arrivals(1).await);
    let (id, path) = fx.put("gone", b"g");
    std::fs::remove_file(&path).unwrap();
    gate.release();
    assert!(wait_key(&fx.q, "gone").await.is_err());
    let info = fx.info(id).unwrap();
    assert!(matches!(info.state, TaskState::Failed { .. }), "{info:?}");
    assert_eq!(info.next_attempt, None);
}

#[tokio::test]
async fn drain_gives_a_waiting_task_one_attempt_then_leaves_it_journaled() {
    let fx = fixture(slow_retries());
    fx.store.fail_next("PutObject", 100, unavailable());
    let (id, path) = fx.put("out", b"outage");
    until_waiting(&fx, id).await;
    // Unmount during an outage: one more attempt (the backend may be back), then drain
    // returns instead of waiting for the outage to end.
    drain(&fx.q).await;
    assert_eq!(fx.store.count("PutObject"), 2);
    let info = fx.info(id).unwrap();
    assert!(matches!(info.state, TaskState::Waiting { .. }), "{info:?}");
    assert!(path.exists());
    assert_eq!(fx.journaled(), 1, "kept for the next mount");
    // And when the backend is back, that one attempt succeeds.
    fx.store.clear_faults();
    drain(&fx.q).await;
    assert_eq!(fx.store.get("out").unwrap().as_ref(), b"outage");
    assert_eq!(fx.info(id).unwrap().state, TaskState::Done);
    assert_eq!(fx.journaled(), 0);
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
