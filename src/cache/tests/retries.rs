//! Transient and permanent failures, retries, drain.

use super::*;

#[tokio::test]
async fn one_store_error_costs_one_attempt() {
    // The client's retry policy is the only retry layer: a store error that reaches the queue
    // has already been retried, so the worker does not send the PUT again on its own.
    let fx = fixture(cfg());
    fx.store.fail_next("PutObject", 1, unavailable());
    let (id, path) = fx.put("r", b"retry me");
    assert!(wait_key(&fx.q, "r").await.is_err());
    assert_eq!(fx.store.count("PutObject"), 1);
    assert_eq!(fx.info(id).unwrap().attempts, 1);
    assert!(path.exists());
    fx.q.restart(id).unwrap();
    wait_key(&fx.q, "r").await.unwrap();
    assert_eq!(fx.store.get("r").unwrap().as_ref(), b"retry me");
}

#[tokio::test]
async fn part_errors_resume_without_resending_parts() {
    let fx = fixture(cfg());
    let body = data(3 * PART as usize, 5);
    fx.store
        .fail_next("UploadPart", 1, StoreError::Network("reset".into()));
    let (id, _) = fx.put("mp", &body);
    assert!(wait_key(&fx.q, "mp").await.is_err());
    fx.q.restart(id).unwrap();
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
    // Twice in one run is not restarted again: the second NotFound fails the task.
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
