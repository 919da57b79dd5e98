//! Tests of `MemoryStore`'s COS semantics and hooks.

use super::*;
use crate::store::Grantee;

fn put(s: &MemoryStore, key: &str) {
    s.insert(key, Bytes::from(key.to_string()), &PutOptions::default());
}

fn list(prefix: &str, delim: Option<char>, marker: Option<&str>, max: u32) -> ListRequest {
    ListRequest {
        prefix: prefix.into(),
        delimiter: delim,
        marker: marker.map(str::to_string),
        max_keys: Some(max),
    }
}

#[tokio::test]
async fn listing_rolls_prefixes_counts_them_and_pages() {
    let s = MemoryStore::new();
    for k in ["a/1", "a/2", "b", "c/x/y", "c/z", "d/", "e"] {
        put(&s, k);
    }
    let p = s.list_objects(&list("", Some('/'), None, 3)).await.unwrap();
    assert_eq!(p.common_prefixes, vec!["a/".to_string(), "c/".to_string()]);
    assert_eq!(
        p.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    // Three items: a/, b, c/ — max-keys counts prefixes.
    assert!(p.is_truncated);
    assert_eq!(p.common_prefixes.len() + p.objects.len(), 3);
    assert_eq!(p.next_marker.as_deref(), Some("c/"));
    let p2 = s
        .list_objects(&list("", Some('/'), Some("c/"), 3))
        .await
        .unwrap();
    assert_eq!(p2.common_prefixes, vec!["d/".to_string()]);
    assert_eq!(
        p2.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["e"]
    );
    assert!(!p2.is_truncated);
    assert_eq!(p2.next_marker, None);
    // Inside a prefix: the marker object itself is a Content.
    let p3 = s
        .list_objects(&list("c/", Some('/'), None, 1000))
        .await
        .unwrap();
    assert_eq!(p3.common_prefixes, vec!["c/x/".to_string()]);
    assert_eq!(p3.objects[0].key, "c/z");
    let p4 = s
        .list_objects(&list("d/", Some('/'), None, 1000))
        .await
        .unwrap();
    assert_eq!(p4.objects[0].key, "d/");
    assert_eq!(s.count("GetBucket"), 4);
}

#[tokio::test]
async fn flat_listing_has_next_marker_and_max_one() {
    let s = MemoryStore::new();
    for k in ["x/a", "x/b", "y"] {
        put(&s, k);
    }
    let p = s.list_objects(&list("x/", None, None, 1)).await.unwrap();
    assert_eq!(p.objects[0].key, "x/a");
    assert_eq!(p.next_marker.as_deref(), Some("x/a"));
    let p = s
        .list_objects(&list("x/", None, Some("x/a"), 1))
        .await
        .unwrap();
    assert_eq!(p.objects[0].key, "x/b");
    assert!(!p.is_truncated);
}

#[tokio::test]
async fn etags_crc_and_multipart() {
    let s = MemoryStore::new();
    s.set_min_part_size(2);
    let r = s
        .put_object(
            "k",
            Bytes::from_static(b"hello").into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.etag, "5d41402abc4b2a76b9719d911017c592");
    let m = s.head_object("k").await.unwrap();
    assert_eq!(
        m.headers.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(m.crc64, r.crc64);
    let id = s
        .initiate_multipart("m", &PutOptions::default())
        .await
        .unwrap();
    let e1 = s
        .upload_part("m", &id, 1, Bytes::from_static(b"ab").into())
        .await
        .unwrap();
    let e2 = s.upload_part_copy("m", &id, 2, "k", 0..3).await.unwrap();
    let parts = [
        CompletedPart {
            part_number: 1,
            etag: e1.clone(),
        },
        CompletedPart {
            part_number: 2,
            etag: e2.clone(),
        },
    ];
    let r = s.complete_multipart("m", &id, &parts).await.unwrap();
    let mut cat = hex::decode(&e1).unwrap();
    cat.extend(hex::decode(&e2).unwrap());
    assert_eq!(r.etag, format!("{}-2", md5_hex(&cat)));
    assert_eq!(s.get("m").unwrap(), Bytes::from_static(b"abhel"));
    assert_eq!(s.open_uploads(), 0);
    // A too-small non-last part is refused at Complete.
    s.set_min_part_size(1024 * 1024);
    let id = s
        .initiate_multipart("n", &PutOptions::default())
        .await
        .unwrap();
    let e1 = s
        .upload_part("n", &id, 1, Bytes::from_static(b"ab").into())
        .await
        .unwrap();
    let e2 = s
        .upload_part("n", &id, 2, Bytes::from_static(b"cd").into())
        .await
        .unwrap();
    let parts = [
        CompletedPart {
            part_number: 1,
            etag: e1,
        },
        CompletedPart {
            part_number: 2,
            etag: e2,
        },
    ];
    let err = s.complete_multipart("n", &id, &parts).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidRequest { ref code, .. } if code == "EntityTooSmall"));
    s.abort_multipart("n", &id).await.unwrap();
    assert!(matches!(
        s.abort_multipart("n", &id).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn ranged_get_clips() {
    let s = MemoryStore::new();
    put(&s, "abcdef");
    let g = s.get_object("abcdef", Some(2..4)).await.unwrap();
    assert_eq!(&g.data[..], b"cd");
    assert_eq!(g.total_size, 6);
    let g = s.get_object("abcdef", Some(4..100)).await.unwrap();
    assert_eq!(&g.data[..], b"ef");
    let g = s.get_object("abcdef", Some(10..20)).await.unwrap();
    assert!(g.data.is_empty());
}

#[tokio::test]
async fn copy_directives_class_and_acl() {
    let s = MemoryStore::new();
    let mut opts = PutOptions {
        storage_class: Some(StorageClass::StandardIa),
        acl: Some("public-read".into()),
        ..Default::default()
    };
    opts.headers.user_meta.insert("mode".into(), "33188".into());
    s.put_object("a", Bytes::from_static(b"x").into(), &opts)
        .await
        .unwrap();
    s.copy_object("a", "b", &CopyOptions::default())
        .await
        .unwrap();
    let b = s.head_object("b").await.unwrap();
    assert_eq!(
        b.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );
    assert_eq!(b.storage_class, StorageClass::Standard);
    assert_eq!(
        s.get_object_acl("b").await.unwrap().canned.as_deref(),
        Some("default")
    );
    assert_eq!(
        s.get_object_acl("a").await.unwrap().canned.as_deref(),
        Some("public-read")
    );
    // Self-copy needs Replaced.
    assert!(s
        .copy_object("a", "a", &CopyOptions::default())
        .await
        .is_err());
    let mut h = ObjectHeaders::default();
    h.user_meta.insert("mode".into(), "33261".into());
    let c = CopyOptions {
        directive: MetadataDirective::Replaced(h),
        ..Default::default()
    };
    s.copy_object("a", "a", &c).await.unwrap();
    let a = s.head_object("a").await.unwrap();
    assert_eq!(
        a.headers.user_meta.get("mode").map(String::as_str),
        Some("33261")
    );
    let bad = CopyOptions {
        if_match: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.copy_object("a", "c", &bad).await,
        Err(StoreError::PreconditionFailed(_))
    ));
    assert!(matches!(
        s.copy_object("zz", "c", &CopyOptions::default()).await,
        Err(StoreError::NotFound(_))
    ));
    let spec = AclSpec::Headers {
        canned: None,
        grant_read: Some("id=\"qcs::cam::uin/1:uin/2\"".into()),
        grant_full_control: None,
    };
    s.put_object_acl("a", &spec).await.unwrap();
    let acl = s.get_object_acl("a").await.unwrap();
    assert!(acl.grants.iter().any(|g| g.permission == "READ"
        && g.grantee
            == Grantee::User {
                id: "qcs::cam::uin/1:uin/2".into(),
                display_name: None
            }));
    assert_eq!(s.count("PutObjectCopy"), 5);
}

#[tokio::test]
async fn archive_refuses_get_until_restored() {
    let s = MemoryStore::new();
    let opts = PutOptions {
        storage_class: Some(StorageClass::Archive),
        ..Default::default()
    };
    s.insert("cold", Bytes::from_static(b"data"), &opts);
    assert!(matches!(
        s.get_object("cold", None).await,
        Err(StoreError::Archived { restoring: false })
    ));
    assert_eq!(
        s.restore_object("cold", 1, RestoreTier::Expedited)
            .await
            .unwrap(),
        RestoreOutcome::Started
    );
    assert_eq!(
        s.restore_object("cold", 1, RestoreTier::Expedited)
            .await
            .unwrap(),
        RestoreOutcome::InProgress
    );
    assert!(matches!(
        s.get_object("cold", None).await,
        Err(StoreError::Archived { restoring: true })
    ));
    assert_eq!(
        s.head_object("cold").await.unwrap().restore,
        Some(RestoreState::InProgress)
    );
    assert!(s.complete_restore("cold"));
    assert_eq!(&s.get_object("cold", None).await.unwrap().data[..], b"data");
    assert_eq!(
        s.restore_object("cold", 2, RestoreTier::Bulk)
            .await
            .unwrap(),
        RestoreOutcome::AlreadyRestored
    );
    put(&s, "warm");
    assert!(s
        .restore_object("warm", 1, RestoreTier::Bulk)
        .await
        .is_err());
}

#[tokio::test]
async fn faults_and_delete_multiple() {
    let s = MemoryStore::new();
    put(&s, "a");
    put(&s, "b");
    s.fail_next("HeadObject", 2, StoreError::Network("reset".into()));
    assert!(s.head_object("a").await.is_err());
    assert!(s.head_object("a").await.is_err());
    assert!(s.head_object("a").await.is_ok());
    assert_eq!(s.count("HeadObject"), 3);
    let keys: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    assert!(s.delete_objects(&keys).await.is_err());
    assert!(s
        .delete_objects(&["a".into(), "nope".into()])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.keys(), vec!["b".to_string()]);
    s.reset_counts();
    assert!(s.counts().is_empty());
    assert!(matches!(
        s.put_object(
            &"k".repeat(851),
            Bytes::new().into(),
            &PutOptions::default()
        )
        .await,
        Err(StoreError::KeyTooLong(_))
    ));
}

#[tokio::test]
async fn gate_holds_an_op_until_released() {
    let s = MemoryStore::new();
    put(&s, "a");
    let gate = s.gate("GetObject");
    let s2 = s.clone();
    let task = tokio::spawn(async move { s2.get_object("a", None).await });
    assert!(gate.wait_for_arrivals(1).await);
    assert!(!task.is_finished());
    assert_eq!(gate.waiting(), 1);
    gate.release();
    assert_eq!(&task.await.unwrap().unwrap().data[..], b"a");
    s.remove_gate("GetObject");
    assert!(s.get_object("a", None).await.is_ok());
}
