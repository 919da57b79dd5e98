//! Pending views for the fs core: retarget, metadata updates, discard.

use super::*;

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
