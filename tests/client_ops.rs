//! Every operation of issue 2 item 3 through `CosClient` over HTTP against the in-process
//! emulator on 127.0.0.1: listing (paging, url encoding), PUT/HEAD/GET with conditionals,
//! ranges and overrides, OPTIONS, copy (directives, source conditions, multipart copy), deletes,
//! restore, ACLs, the multipart family, a 64 MiB parallel upload with progress, retries through
//! injected 503s, clock resync, SigV4, presigned URLs, POST Object and a wrong secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cosfuse::cos::multipart::{ListPartsOptions, ListUploadsOptions};
use cosfuse::cos::objects::crc64_of;
use cosfuse::cos::request::Request;
use cosfuse::cos::transfer::{Progress, UploadSource};
use cosfuse::cos::types::*;
use cosfuse::cos::{CosClient, CosConfig, CosCredentials, RetryPolicy, SigningScheme};
use cosfuse::emulator::{Emulator, EmulatorConfig, FaultConfig};
use cosfuse::store::*;

const BUCKET: &str = "clienttest-1250000000";
const ID: &str = "AKIDclientTEST000000000000000000";
const KEY: &str = "clientTESTsecretKEY0000000000000";

struct Env {
    emu: Emulator,
    client: CosClient,
    _dir: tempfile::TempDir,
}

fn config(endpoint: &str, secret: &str) -> CosConfig {
    let mut cfg = CosConfig::new(BUCKET, "ap-guangzhou", CosCredentials::new(ID, secret))
        .with_endpoint(endpoint);
    cfg.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        full_jitter: true,
        ..RetryPolicy::default()
    };
    cfg
}

async fn env() -> Env {
    // For the plain reqwest clients of presigned-URL and anonymous-access tests (reqwest 0.13
    // without a bundled crypto provider).
    cosfuse::cos::tls::install_default_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        EmulatorConfig::new(dir.path())
            .bucket(BUCKET)
            .credential(ID, KEY),
    )
    .await
    .unwrap();
    let client = CosClient::new(config(&emu.endpoint(), KEY)).unwrap();
    Env {
        emu,
        client,
        _dir: dir,
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(data))
}

fn found<T>(c: Conditional<T>) -> T {
    match c {
        Conditional::Found(t) => t,
        Conditional::NotModified => panic!("unexpected 304"),
    }
}

fn pattern(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_head_get_with_metadata_ranges_overrides_and_conditionals() {
    let e = env().await;
    let c = &e.client;
    let body = Bytes::from_static(b"hello world, this is cosfuse");
    let mut opts = PutOptions::default();
    opts.headers.content_type = Some("text/plain".into());
    opts.headers.cache_control = Some("max-age=60".into());
    opts.headers.content_disposition = Some("attachment; filename=\"a.txt\"".into());
    opts.headers.content_encoding = Some("identity".into());
    opts.headers.expires = Some("Wed, 21 Oct 2037 07:28:00 GMT".into());
    opts.headers.user_meta.insert("mode".into(), "33188".into());
    opts.storage_class = Some(StorageClass::StandardIa);
    opts.acl = Some("private".into());
    let key = "dir/a b+c (1).txt";
    let put = c.put(key, body.clone(), &opts).await.unwrap();
    assert_eq!(put.etag, md5_hex(&body));
    assert_eq!(put.crc64, Some(crc64_of(&body)));

    let m = found(c.head(key, &Conditions::default()).await.unwrap());
    assert_eq!(m.size, body.len() as u64);
    assert_eq!(m.etag, put.etag);
    assert_eq!(m.crc64, Some(crc64_of(&body)));
    assert_eq!(m.storage_class, StorageClass::StandardIa);
    assert_eq!(m.headers.content_type.as_deref(), Some("text/plain"));
    assert_eq!(m.headers.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(
        m.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );

    let full = found(c.get(key, &GetOptions::default()).await.unwrap());
    assert_eq!((full.status, &full.data[..]), (200, &body[..]));

    let part = found(
        c.get(
            key,
            &GetOptions {
                range: Some(ByteRange::Inclusive(6, 10)),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!((part.status, &part.data[..]), (206, &b"world"[..]));
    assert_eq!(part.meta.size, body.len() as u64);
    let suffix = found(
        c.get(
            key,
            &GetOptions {
                range: Some(ByteRange::Suffix(7)),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(&suffix.data[..], b"cosfuse");

    let over = found(
        c.get(
            key,
            &GetOptions {
                overrides: ResponseOverrides {
                    content_type: Some("application/x-test".into()),
                    content_disposition: Some("inline".into()),
                    ..ResponseOverrides::default()
                },
                ..GetOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let h = |n: &str| {
        over.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("content-type").as_deref(), Some("application/x-test"));
    assert_eq!(h("content-disposition").as_deref(), Some("inline"));

    // Conditionals: 304 → NotModified, failed preconditions → 412.
    let etag_cond = Conditions {
        if_none_match: Some(m.etag.clone()),
        ..Conditions::default()
    };
    assert!(matches!(
        c.get(
            key,
            &GetOptions {
                conditions: etag_cond.clone(),
                ..GetOptions::default()
            }
        )
        .await
        .unwrap(),
        Conditional::NotModified
    ));
    assert!(matches!(
        c.head(key, &etag_cond).await.unwrap(),
        Conditional::NotModified
    ));
    let later = SystemTime::now() + Duration::from_secs(3600);
    let ims = Conditions {
        if_modified_since: Some(later),
        ..Conditions::default()
    };
    assert!(matches!(
        c.head(key, &ims).await.unwrap(),
        Conditional::NotModified
    ));
    let bad_match = Conditions {
        if_match: Some("0123456789abcdef0123456789abcdef".into()),
        ..Conditions::default()
    };
    let err = c
        .get(
            key,
            &GetOptions {
                conditions: bad_match,
                ..GetOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (412, "PreconditionFailed"));
    let ius = Conditions {
        if_unmodified_since: Some(SystemTime::now() - Duration::from_secs(86_400)),
        ..Conditions::default()
    };
    assert_eq!(c.head(key, &ius).await.unwrap_err().status, 412);
    let ok_match = Conditions {
        if_match: Some(m.etag.clone()),
        ..Conditions::default()
    };
    assert!(matches!(
        c.head(key, &ok_match).await.unwrap(),
        Conditional::Found(_)
    ));

    // Through the trait: ranges, EOF, missing keys.
    let store: &dyn ObjectStore = c;
    let r = store.get_object(key, Some(0..5)).await.unwrap();
    assert_eq!(
        (&r.data[..], r.total_size),
        (&b"hello"[..], body.len() as u64)
    );
    let eof = store.get_object(key, Some(1000..2000)).await.unwrap();
    assert!(eof.data.is_empty());
    assert!(matches!(
        store.head_object("missing").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_object("missing", None).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_around_the_pooled_sizes_arrive_whole() {
    // Bodies from 256 KiB to 4 MiB are read into reused buffers (`bufpool::GET_BODIES`),
    // others the ordinary way: every size at the edges, twice, so buffers are reused.
    use cosfuse::store::bufpool::{GET_BODIES, GET_BODY_POOLED_FROM};
    let e = env().await;
    let store: &dyn ObjectStore = &e.client;
    let (lo, hi) = (GET_BODY_POOLED_FROM as u64, GET_BODIES.size() as u64);
    let data = pattern(hi as usize + 100);
    store
        .put_object(
            "pool.bin",
            cosfuse::store::Payload::Bytes(data.clone()),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        for (from, len) in [(0, lo - 1), (7, lo), (1, hi), (0, hi + 1), (3, hi - 3)] {
            let r = store
                .get_object("pool.bin", Some(from..from + len))
                .await
                .unwrap();
            assert_eq!(r.data.len() as u64, len, "range {from}+{len}");
            assert!(
                r.data[..] == data[from as usize..(from + len) as usize],
                "{from}+{len}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_decodes_keys_and_pages_to_the_end() {
    let e = env().await;
    let c = &e.client;
    let keys = [
        "docs/a file.txt",
        "docs/b+plus.txt",
        "docs/报告 Q1.pdf",
        "docs/sub/x.txt",
        "docs/sub2/y.txt",
        "other.txt",
    ];
    for k in keys {
        c.put(k, Bytes::from_static(b"x"), &PutOptions::default())
            .await
            .unwrap();
    }
    let page = c
        .list_page(&ListOptions {
            prefix: "docs/".into(),
            delimiter: Some("/".into()),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        names,
        ["docs/a file.txt", "docs/b+plus.txt", "docs/报告 Q1.pdf"]
    );
    assert_eq!(page.common_prefixes, ["docs/sub/", "docs/sub2/"]);
    assert!(!page.is_truncated);
    assert_eq!(page.objects[0].size, 1);
    assert_eq!(page.objects[0].etag, md5_hex(b"x"));

    let all = c
        .list_all(
            &ListOptions {
                max_keys: Some(2),
                ..ListOptions::default()
            },
            100,
        )
        .await
        .unwrap();
    let mut want: Vec<&str> = keys.to_vec();
    want.sort();
    let got: Vec<&str> = all.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(got, want);
    // The page bound is honoured.
    assert!(c
        .list_all(
            &ListOptions {
                max_keys: Some(1),
                ..ListOptions::default()
            },
            2
        )
        .await
        .is_err());
    // The trait's page form.
    let store: &dyn ObjectStore = c;
    let p = store
        .list_objects(&ListRequest {
            prefix: "docs/".into(),
            delimiter: Some('/'),
            marker: None,
            max_keys: Some(2),
        })
        .await
        .unwrap();
    assert!(p.is_truncated);
    assert_eq!(p.next_marker.as_deref(), Some("docs/b+plus.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_with_directives_and_source_conditions() {
    let e = env().await;
    let c = &e.client;
    let mut opts = PutOptions::default();
    opts.headers.content_type = Some("text/x-src".into());
    opts.headers.user_meta.insert("uid".into(), "1000".into());
    let src = c
        .put("src.txt", Bytes::from_static(b"source"), &opts)
        .await
        .unwrap();

    let out = c
        .copy(
            "src.txt",
            "copy1.txt",
            &CopyOptions::default(),
            &Conditions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.etag, src.etag);
    let m = found(c.head("copy1.txt", &Conditions::default()).await.unwrap());
    assert_eq!(m.headers.content_type.as_deref(), Some("text/x-src"));
    assert_eq!(
        m.headers.user_meta.get("uid").map(String::as_str),
        Some("1000")
    );

    let mut h = ObjectHeaders {
        content_type: Some("text/x-new".into()),
        ..ObjectHeaders::default()
    };
    h.user_meta.insert("gid".into(), "7".into());
    let replaced = CopyOptions {
        directive: MetadataDirective::Replaced(h),
        storage_class: Some(StorageClass::StandardIa),
        ..CopyOptions::default()
    };
    c.copy(
        "src.txt",
        "copy2.txt",
        &replaced,
        &Conditions::default(),
        None,
    )
    .await
    .unwrap();
    let m = found(c.head("copy2.txt", &Conditions::default()).await.unwrap());
    assert_eq!(m.headers.content_type.as_deref(), Some("text/x-new"));
    assert!(!m.headers.user_meta.contains_key("uid"));
    assert_eq!(m.storage_class, StorageClass::StandardIa);

    for cond in [
        Conditions {
            if_match: Some("ffffffffffffffffffffffffffffffff".into()),
            ..Conditions::default()
        },
        Conditions {
            if_none_match: Some(src.etag.clone()),
            ..Conditions::default()
        },
        Conditions {
            if_modified_since: Some(SystemTime::now() + Duration::from_secs(3600)),
            ..Conditions::default()
        },
        Conditions {
            if_unmodified_since: Some(SystemTime::now() - Duration::from_secs(86_400)),
            ..Conditions::default()
        },
    ] {
        let err = c
            .copy("src.txt", "copy3.txt", &CopyOptions::default(), &cond, None)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (412, "PreconditionFailed"),
            "{cond:?}"
        );
    }
    c.copy(
        "src.txt",
        "copy3.txt",
        &CopyOptions::default(),
        &Conditions {
            if_match: Some(src.etag.clone()),
            ..Conditions::default()
        },
        None,
    )
    .await
    .unwrap();

    // Multipart copy (the > 5 GB path), forced on a small object with 1 MiB parts.
    let big = pattern(3 * 1024 * 1024 + 17);
    c.put("big.bin", big.clone(), &PutOptions::default())
        .await
        .unwrap();
    let r = c
        .copy_multipart(
            "big.bin",
            "big-copy.bin",
            big.len() as u64,
            1,
            2,
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert!(r.etag.ends_with("-4"), "{}", r.etag);
    let got = found(c.get("big-copy.bin", &GetOptions::default()).await.unwrap());
    assert_eq!(got.data, big);

    // Through the trait.
    let store: &dyn ObjectStore = c;
    store
        .copy_object("src.txt", "copy4.txt", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(store.head_object("copy4.txt").await.unwrap().size, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_single_and_multiple_verbose_and_quiet() {
    let e = env().await;
    let c = &e.client;
    for k in ["a", "b", "c/d e", "f"] {
        c.put(k, Bytes::from_static(b"1"), &PutOptions::default())
            .await
            .unwrap();
    }
    c.delete("a", None).await.unwrap();
    c.delete("never-existed", None).await.unwrap();
    let out = c
        .delete_multiple(
            &[
                DeleteTarget {
                    key: "b".into(),
                    version_id: None,
                },
                DeleteTarget {
                    key: "c/d e".into(),
                    version_id: Some("null".into()),
                },
            ],
            false,
        )
        .await
        .unwrap();
    let mut deleted: Vec<&str> = out.deleted.iter().map(|d| d.key.as_str()).collect();
    deleted.sort();
    assert_eq!(deleted, ["b", "c/d e"]);
    assert!(out.errors.is_empty());
    let store: &dyn ObjectStore = c;
    let failed = store.delete_objects(&["f".to_string()]).await.unwrap();
    assert!(failed.is_empty());
    let left = c.list_all(&ListOptions::default(), 10).await.unwrap();
    assert!(left.objects.is_empty(), "{:?}", left.objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_restore_cycle() {
    let e = env().await;
    let c = &e.client;
    e.emu.state().set_restore_delay(Duration::from_millis(300));
    let opts = PutOptions {
        storage_class: Some(StorageClass::Archive),
        ..PutOptions::default()
    };
    c.put("cold.bin", Bytes::from_static(b"frozen"), &opts)
        .await
        .unwrap();
    let store: &dyn ObjectStore = c;
    assert!(matches!(
        store.get_object("cold.bin", None).await,
        Err(StoreError::Archived { restoring: false })
    ));
    let first = c
        .restore("cold.bin", 1, RestoreTier::Expedited, None)
        .await
        .unwrap();
    assert_eq!(first, RestoreOutcome::Started);
    // Poll (bounded) until the restore is done; a second request while running is InProgress.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_in_progress = false;
    loop {
        let m = store.head_object("cold.bin").await.unwrap();
        assert_eq!(m.storage_class, StorageClass::Archive);
        match m.restore {
            Some(RestoreState::Restored { .. }) => break,
            Some(RestoreState::InProgress) => {
                if !saw_in_progress {
                    let again = store
                        .restore_object("cold.bin", 1, RestoreTier::Expedited)
                        .await
                        .unwrap();
                    assert!(matches!(
                        again,
                        RestoreOutcome::InProgress | RestoreOutcome::AlreadyRestored
                    ));
                    saw_in_progress = true;
                }
            }
            None => panic!("restore state lost"),
        }
        assert!(Instant::now() < deadline, "restore never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let data = store.get_object("cold.bin", None).await.unwrap();
    assert_eq!(&data.data[..], b"frozen");
    let non_archive = c
        .put("warm.bin", Bytes::from_static(b"w"), &PutOptions::default())
        .await;
    assert!(non_archive.is_ok());
    let err = c
        .restore("warm.bin", 1, RestoreTier::Standard, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "RestoreNonArchiveObject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_canned_grants_and_policy_body() {
    let e = env().await;
    let c = &e.client;
    c.put(
        "pub.txt",
        Bytes::from_static(b"public"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let url = format!("{}/pub.txt", c.base_url());
    let anon = reqwest::get(&url).await.unwrap();
    assert_eq!(anon.status().as_u16(), 403);

    c.put_acl(
        "pub.txt",
        &AclSpec::Headers {
            canned: Some("public-read".into()),
            grant_read: None,
            grant_full_control: None,
        },
    )
    .await
    .unwrap();
    let acl = c.get_acl("pub.txt").await.unwrap();
    assert_eq!(acl.canned.as_deref(), Some("public-read"));
    let anon = reqwest::get(&url).await.unwrap();
    assert_eq!(anon.status().as_u16(), 200);
    assert_eq!(&anon.bytes().await.unwrap()[..], b"public");

    let owner = "qcs::cam::uin/100000000001:uin/100000000001";
    let user = "qcs::cam::uin/100000000001:uin/100000000011";
    let policy = AccessControlPolicy {
        owner_id: owner.into(),
        owner_display_name: None,
        grants: vec![
            Grant {
                grantee: Grantee::User {
                    id: user.into(),
                    display_name: None,
                },
                permission: "FULL_CONTROL".into(),
            },
            Grant {
                grantee: Grantee::Group {
                    uri: "http://cam.qcloud.com/groups/global/AllUsers".into(),
                },
                permission: "READ".into(),
            },
        ],
        canned: None,
    };
    let store: &dyn ObjectStore = c;
    store
        .put_object_acl("pub.txt", &AclSpec::Policy(policy))
        .await
        .unwrap();
    let back = store.get_object_acl("pub.txt").await.unwrap();
    let perms: Vec<(String, String)> = back
        .grants
        .iter()
        .map(|g| match &g.grantee {
            Grantee::User { id, .. } => (id.clone(), g.permission.clone()),
            Grantee::Group { uri } => (uri.clone(), g.permission.clone()),
        })
        .collect();
    assert!(
        perms.contains(&(user.to_string(), "FULL_CONTROL".to_string())),
        "{perms:?}"
    );
    assert!(perms.contains(&(
        "http://cam.qcloud.com/groups/global/AllUsers".to_string(),
        "READ".to_string()
    )));

    c.put_acl(
        "pub.txt",
        &AclSpec::Headers {
            canned: None,
            grant_read: Some(format!("id=\"{user}\"")),
            grant_full_control: None,
        },
    )
    .await
    .unwrap();
    let back = c.get_acl("pub.txt").await.unwrap();
    assert!(back
        .grants
        .iter()
        .any(|g| g.permission == "READ"
            && matches!(&g.grantee, Grantee::User { id, .. } if id == user)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_family_step_by_step() {
    let e = env().await;
    let c = &e.client;
    let key = "mp/obj.bin";
    let p1 = pattern(1024 * 1024);
    let p2 = Bytes::from_static(b"tail!");
    let id = c.initiate(key, &PutOptions::default()).await.unwrap();
    let e1 = c.put_part(key, &id, 1, p1.clone()).await.unwrap();
    let e2 = c.put_part(key, &id, 2, p2.clone()).await.unwrap();
    assert_eq!(e1, md5_hex(&p1));

    let parts = c
        .list_parts(key, &id, &ListPartsOptions::default())
        .await
        .unwrap();
    let listed: Vec<(u32, u64)> = parts
        .parts
        .iter()
        .map(|p| (p.part_number, p.size))
        .collect();
    assert_eq!(listed, [(1, 1024 * 1024), (2, 5)]);
    let page = c
        .list_parts(
            key,
            &id,
            &ListPartsOptions {
                max_parts: Some(1),
                part_number_marker: None,
            },
        )
        .await
        .unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.next_part_number_marker, Some(1));

    let ups = c
        .list_multipart_uploads(&ListUploadsOptions {
            prefix: Some("mp/".into()),
            ..ListUploadsOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(ups.uploads.len(), 1);
    assert_eq!(
        (
            ups.uploads[0].key.as_str(),
            ups.uploads[0].upload_id.as_str()
        ),
        (key, id.as_str())
    );

    let done = c
        .complete(
            key,
            &id,
            &[
                CompletedPart {
                    part_number: 1,
                    etag: e1,
                },
                CompletedPart {
                    part_number: 2,
                    etag: e2,
                },
            ],
        )
        .await
        .unwrap();
    assert!(done.etag.ends_with("-2"), "{}", done.etag);
    let mut whole = p1.to_vec();
    whole.extend_from_slice(&p2);
    let got = found(c.get(key, &GetOptions::default()).await.unwrap());
    assert_eq!(&got.data[..], &whole[..]);
    if let Some(crc) = done.crc64 {
        assert_eq!(crc, crc64_of(&whole));
    }

    // Upload part copy + abort.
    let id2 = c
        .initiate("mp/copy.bin", &PutOptions::default())
        .await
        .unwrap();
    let pc = c
        .put_part_copy(
            "mp/copy.bin",
            &id2,
            1,
            key,
            Some((0, 1023)),
            &Conditions::default(),
        )
        .await
        .unwrap();
    assert_eq!(pc.etag, md5_hex(&p1[..1024]));
    let store: &dyn ObjectStore = c;
    let et = store
        .upload_part_copy("mp/copy.bin", &id2, 2, key, 0..10)
        .await
        .unwrap();
    assert_eq!(et, md5_hex(&p1[..10]));
    c.abort("mp/copy.bin", &id2).await.unwrap();
    let err = c
        .list_parts("mp/copy.bin", &id2, &ListPartsOptions::default())
        .await
        .unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (404, "NoSuchUpload"));
    let ups = c
        .list_multipart_uploads(&ListUploadsOptions::default())
        .await
        .unwrap();
    assert!(ups.uploads.is_empty());
    // A non-contiguous complete is refused.
    let id3 = store
        .initiate_multipart("mp/bad.bin", &PutOptions::default())
        .await
        .unwrap();
    let only = store
        .upload_part("mp/bad.bin", &id3, 2, p2.clone().into())
        .await
        .unwrap();
    let err = store
        .complete_multipart(
            "mp/bad.bin",
            &id3,
            &[CompletedPart {
                part_number: 2,
                etag: only,
            }],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Protocol(_)), "{err:?}");
    store.abort_multipart("mp/bad.bin", &id3).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_of_64_mib_file_reports_progress() {
    let e = env().await;
    let c = &e.client;
    let data = pattern(64 * 1024 * 1024);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let r = c
        .upload_multipart(
            "big/64m.bin",
            UploadSource::File(file.path().to_path_buf()),
            8 * 1024 * 1024,
            4,
            &PutOptions::default(),
            Some(Arc::new(move |p: Progress| s2.lock().unwrap().push(p))),
        )
        .await
        .unwrap();
    assert!(r.etag.ends_with("-8"), "{}", r.etag);
    {
        let seen = seen.lock().unwrap();
        assert!(seen.len() >= 9, "progress called {} times", seen.len());
        let last = seen.iter().max_by_key(|p| p.loaded).unwrap();
        assert_eq!(
            (last.loaded, last.total),
            (data.len() as u64, data.len() as u64)
        );
        assert_eq!(last.percent, 100.0);
        assert!(seen.iter().all(|p| p.speed >= 0.0 && p.loaded <= p.total));
    }
    let m = found(c.head("big/64m.bin", &Conditions::default()).await.unwrap());
    assert_eq!(m.size, data.len() as u64);
    if let Some(crc) = m.crc64 {
        assert_eq!(crc, crc64_of(&data));
    }
    let mid = found(
        c.get(
            "big/64m.bin",
            &GetOptions {
                range: Some(ByteRange::Inclusive(40_000_000, 40_000_099)),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(&mid.data[..], &data[40_000_000..40_000_100]);
    // From memory too.
    let small = pattern(2 * 1024 * 1024 + 1);
    let r = c
        .upload_multipart(
            "big/mem.bin",
            UploadSource::Bytes(small.clone()),
            1,
            2,
            &PutOptions::default(),
            None,
        )
        .await
        .unwrap();
    assert!(r.etag.ends_with("-3"), "{}", r.etag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_five_requests_survives_injected_503s() {
    let e = env().await;
    let c = e.client.clone();
    e.emu.faults().set(FaultConfig {
        slowdown_every: 2,
        limit: Some(4),
        ..FaultConfig::default()
    });
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let key = format!("burst/{i}");
                c.put(
                    &key,
                    Bytes::from(vec![i as u8; 100]),
                    &PutOptions::default(),
                )
                .await
                .map(|_| key)
            })
        })
        .collect();
    for t in tasks {
        let key = t
            .await
            .unwrap()
            .expect("burst request succeeded despite 503s");
        let got = found(c.get(&key, &GetOptions::default()).await.unwrap());
        assert_eq!(got.data.len(), 100);
    }
    assert!(e.emu.faults().injected() >= 1, "no 503 was injected");
    // Without retries the same fault surfaces as SlowDown.
    let mut cfg = config(&e.emu.endpoint(), KEY);
    cfg.retry = RetryPolicy::none();
    let strict = CosClient::new(cfg).unwrap();
    e.emu.faults().set(FaultConfig {
        slowdown_every: 1,
        limit: Some(1),
        ..FaultConfig::default()
    });
    let err = strict
        .head("burst/0", &Conditions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status, 503);
    e.emu.faults().clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_inside_200_copy_is_retried() {
    let e = env().await;
    let c = &e.client;
    c.put("s", Bytes::from_static(b"s"), &PutOptions::default())
        .await
        .unwrap();
    e.emu.faults().set(FaultConfig {
        error_in_200_every: 1,
        limit: Some(1),
        ..FaultConfig::default()
    });
    let out = c
        .copy(
            "s",
            "d",
            &CopyOptions::default(),
            &Conditions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.etag, md5_hex(b"s"));
    assert_eq!(e.emu.faults().injected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_gets_signature_does_not_match() {
    let e = env().await;
    let bad = CosClient::new(config(&e.emu.endpoint(), "not-the-secret")).unwrap();
    let err = bad
        .put("x", Bytes::from_static(b"x"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert!(!err.request_id.is_empty());
    let store: &dyn ObjectStore = &bad;
    assert!(matches!(
        store.head_object("x").await,
        Err(StoreError::AccessDenied { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clock_is_resynced_from_date() {
    let e = env().await;
    let c = &e.client;
    c.set_clock_offset(-7200);
    c.put(
        "skew.txt",
        Bytes::from_static(b"ok"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    assert!(c.clock_offset().abs() < 120, "offset {}", c.clock_offset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_scheme_works_end_to_end() {
    let e = env().await;
    let mut cfg = config(&e.emu.endpoint(), KEY);
    cfg.signing = SigningScheme::SigV4;
    let c = CosClient::new(cfg).unwrap();
    let mut opts = PutOptions::default();
    opts.headers.user_meta.insert("k".into(), "v".into());
    c.put("v4/a b.txt", Bytes::from_static(b"sigv4"), &opts)
        .await
        .unwrap();
    let got = found(c.get("v4/a b.txt", &GetOptions::default()).await.unwrap());
    assert_eq!(&got.data[..], b"sigv4");
    assert_eq!(
        got.meta.headers.user_meta.get("k").map(String::as_str),
        Some("v")
    );
    let page = c
        .list_page(&ListOptions {
            prefix: "v4/".into(),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(page.objects[0].key, "v4/a b.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_and_post_object() {
    let e = env().await;
    let c = &e.client;
    let put_url = c.presign_put_url("pre/up load.txt", Duration::from_secs(300));
    let http = reqwest::Client::new();
    let r = http.put(&put_url).body("presigned").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let store: &dyn ObjectStore = c;
    let get_url = store
        .presign_get("pre/up load.txt", Duration::from_secs(300))
        .unwrap();
    let r = http.get(&get_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"presigned");
    // A tampered URL is refused.
    let r = http
        .get(get_url.replace("up%20load", "other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let mut opts = PutOptions::default();
    opts.headers.content_type = Some("text/x-form".into());
    let out = c
        .post_object(
            "form/f.txt",
            Bytes::from_static(b"form body"),
            &opts,
            Some(200),
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.etag, md5_hex(b"form body"));
    let m = store.head_object("form/f.txt").await.unwrap();
    assert_eq!(m.headers.content_type.as_deref(), Some("text/x-form"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_object_cors_preflight() {
    let e = env().await;
    let c = &e.client;
    let denied = c
        .options_object("a.txt", "https://example.com", "GET", &[])
        .await
        .unwrap();
    assert!(!denied.allowed);
    let rules = "<CORSConfiguration><CORSRule><AllowedOrigin>https://example.com</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
        <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
        <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>";
    let req = Request::new(reqwest::Method::PUT, None)
        .query("cors", "")
        .header("content-type", "application/xml")
        .body(Bytes::from_static(rules.as_bytes()), true);
    c.send(&req).await.unwrap();
    let ok = c
        .options_object("a.txt", "https://example.com", "PUT", &["content-type"])
        .await
        .unwrap();
    assert!(ok.allowed);
    assert!(ok.allow_origin.is_some());
    assert!(ok.allow_methods.unwrap().contains("PUT"));
    assert_eq!(ok.max_age, Some(600));
    let other = c
        .options_object("a.txt", "https://evil.example", "GET", &[])
        .await
        .unwrap();
    assert!(!other.allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_ahead_is_resynced_after_request_time_too_skewed() {
    let e = env().await;
    let c = &e.client;
    c.set_clock_offset(3600);
    let m = c
        .head("nothing-here", &Conditions::default())
        .await
        .unwrap_err();
    // The resynced retry reached the object check (404), not the skew check (403).
    assert_eq!(m.status, 404);
    assert!(c.clock_offset().abs() < 120, "offset {}", c.clock_offset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_send_the_security_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmulatorConfig::new(dir.path()).bucket(BUCKET);
    cfg.credentials.push(cosfuse::emulator::Credential {
        secret_id: ID.into(),
        secret_key: KEY.into(),
        token: Some("sessionTOKEN123".into()),
    });
    let emu = Emulator::start(cfg).await.unwrap();
    let mut ccfg = config(&emu.endpoint(), KEY);
    ccfg.credentials.session_token = Some("sessionTOKEN123".into());
    assert!(!format!("{ccfg:?}").contains("sessionTOKEN123"));
    let c = CosClient::new(ccfg.clone()).unwrap();
    c.put("t.txt", Bytes::from_static(b"t"), &PutOptions::default())
        .await
        .unwrap();
    let url = c.presign_get_url("t.txt", Duration::from_secs(60));
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Without the token the same keys are refused.
    ccfg.credentials.session_token = None;
    let without = CosClient::new(ccfg).unwrap();
    let err = without
        .head("t.txt", &Conditions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status, 403);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_presigned_get_works() {
    let e = env().await;
    e.client
        .put(
            "v4p.txt",
            Bytes::from_static(b"v4 presigned"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let mut cfg = config(&e.emu.endpoint(), KEY);
    cfg.signing = SigningScheme::SigV4;
    let c = CosClient::new(cfg).unwrap();
    let url = c.presign_get_url("v4p.txt", Duration::from_secs(60));
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    assert_eq!(&r.bytes().await.unwrap()[..], b"v4 presigned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_turns_a_stalled_answer_into_a_network_error() {
    let e = env().await;
    let mut cfg = config(&e.emu.endpoint(), KEY);
    cfg.read_timeout = Duration::from_millis(200);
    cfg.retry = RetryPolicy::none();
    let c = CosClient::new(cfg).unwrap();
    e.emu.faults().set(FaultConfig {
        latency_ms: 1500,
        ..FaultConfig::default()
    });
    let err = c.head("x", &Conditions::default()).await.unwrap_err();
    e.emu.faults().clear();
    assert_eq!(err.status, 0, "{err:?}");
    assert!(matches!(StoreError::from(err), StoreError::Network(_)));
}

/// The `ObjectStore` contract, checked identically against any store: the same body runs
/// against `MemoryStore` and against `CosClient` → emulator, so the fs core sees one behaviour.
async fn conformance(store: &dyn ObjectStore) {
    let mut opts = PutOptions::default();
    opts.headers.content_type = Some("text/plain".into());
    opts.headers.user_meta.insert("mode".into(), "33188".into());
    let put = store
        .put_object("conf/a.txt", Bytes::from_static(b"hello").into(), &opts)
        .await
        .unwrap();
    assert_eq!(put.etag, md5_hex(b"hello"));
    store
        .put_object(
            "conf/d/x",
            Bytes::from_static(b"x").into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put_object("conf/d/", Bytes::new().into(), &PutOptions::default())
        .await
        .unwrap();

    let m = store.head_object("conf/a.txt").await.unwrap();
    assert_eq!(
        (m.key.as_str(), m.size, m.etag.as_str()),
        ("conf/a.txt", 5, put.etag.as_str())
    );
    assert_eq!(m.headers.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        m.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );
    assert_eq!(m.storage_class, StorageClass::Standard);
    assert!(matches!(
        store.head_object("conf/nope").await,
        Err(StoreError::NotFound(_))
    ));

    let g = store.get_object("conf/a.txt", None).await.unwrap();
    assert_eq!(
        (&g.data[..], g.total_size, g.etag.as_str()),
        (&b"hello"[..], 5, put.etag.as_str())
    );
    let g = store.get_object("conf/a.txt", Some(1..3)).await.unwrap();
    assert_eq!((&g.data[..], g.total_size), (&b"el"[..], 5));
    let g = store.get_object("conf/a.txt", Some(3..100)).await.unwrap();
    assert_eq!(&g.data[..], b"lo");
    let g = store.get_object("conf/a.txt", Some(10..20)).await.unwrap();
    assert!(g.data.is_empty());

    let page = store
        .list_objects(&ListRequest {
            prefix: "conf/".into(),
            delimiter: Some('/'),
            marker: None,
            max_keys: None,
        })
        .await
        .unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["conf/a.txt"]);
    assert_eq!(page.common_prefixes, ["conf/d/"]);
    assert!(!page.is_truncated);
    assert_eq!(page.objects[0].size, 5);
    assert_eq!(page.objects[0].etag, put.etag);
    let flat = store
        .list_objects(&ListRequest {
            prefix: "conf/".into(),
            delimiter: None,
            marker: Some("conf/a.txt".into()),
            max_keys: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(flat.objects.len(), 1);
    assert_eq!(flat.objects[0].key, "conf/d/");
    assert!(flat.is_truncated);
    assert_eq!(flat.next_marker.as_deref(), Some("conf/d/"));

    let c = store
        .copy_object("conf/a.txt", "conf/b.txt", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(c.etag, put.etag);
    let mb = store.head_object("conf/b.txt").await.unwrap();
    assert_eq!(
        mb.headers.user_meta.get("mode").map(String::as_str),
        Some("33188")
    );
    let replaced = CopyOptions {
        directive: MetadataDirective::Replaced(ObjectHeaders {
            content_type: Some("text/x-other".into()),
            ..ObjectHeaders::default()
        }),
        ..CopyOptions::default()
    };
    store
        .copy_object("conf/b.txt", "conf/b.txt", &replaced)
        .await
        .unwrap();
    let mb = store.head_object("conf/b.txt").await.unwrap();
    assert_eq!(mb.headers.content_type.as_deref(), Some("text/x-other"));
    assert!(mb.headers.user_meta.is_empty());
    let stale = CopyOptions {
        if_match: Some("00000000000000000000000000000000".into()),
        ..CopyOptions::default()
    };
    assert!(matches!(
        store.copy_object("conf/a.txt", "conf/c.txt", &stale).await,
        Err(StoreError::PreconditionFailed(_))
    ));

    let p1 = pattern(1024 * 1024);
    let id = store
        .initiate_multipart("conf/mp", &PutOptions::default())
        .await
        .unwrap();
    let e1 = store
        .upload_part("conf/mp", &id, 1, p1.clone().into())
        .await
        .unwrap();
    let e2 = store
        .upload_part_copy("conf/mp", &id, 2, "conf/a.txt", 0..5)
        .await
        .unwrap();
    assert_eq!(
        (e1.as_str(), e2.as_str()),
        (md5_hex(&p1).as_str(), md5_hex(b"hello").as_str())
    );
    let done = store
        .complete_multipart(
            "conf/mp",
            &id,
            &[
                CompletedPart {
                    part_number: 1,
                    etag: e1,
                },
                CompletedPart {
                    part_number: 2,
                    etag: e2,
                },
            ],
        )
        .await
        .unwrap();
    assert!(done.etag.ends_with("-2"), "{}", done.etag);
    let g = store.get_object("conf/mp", None).await.unwrap();
    assert_eq!(g.total_size, 1024 * 1024 + 5);
    assert_eq!(&g.data[1024 * 1024..], b"hello");
    let id2 = store
        .initiate_multipart("conf/mp2", &PutOptions::default())
        .await
        .unwrap();
    store.abort_multipart("conf/mp2", &id2).await.unwrap();
    assert!(matches!(
        store
            .upload_part("conf/mp2", &id2, 1, Bytes::from_static(b"x").into())
            .await,
        Err(StoreError::NotFound(_))
    ));

    store
        .put_object_acl(
            "conf/a.txt",
            &AclSpec::Headers {
                canned: Some("public-read".into()),
                grant_read: None,
                grant_full_control: None,
            },
        )
        .await
        .unwrap();
    let acl = store.get_object_acl("conf/a.txt").await.unwrap();
    assert_eq!(acl.canned.as_deref(), Some("public-read"));

    store.delete_object("conf/nope").await.unwrap();
    store.delete_object("conf/b.txt").await.unwrap();
    let failed = store
        .delete_objects(&["conf/a.txt".to_string(), "conf/nope".to_string()])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(matches!(
        store.head_object("conf/a.txt").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .presign_get("conf/d/x", Duration::from_secs(60))
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_holds_for_memory_store_and_cos_client() {
    let memory = MemoryStore::new();
    conformance(memory.as_ref()).await;
    let e = env().await;
    conformance(&e.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_for_idempotent_transfers() {
    let e = env().await;
    let c = &e.client;
    let data = pattern(3 * 1024 * 1024);
    e.emu.faults().set(FaultConfig {
        drop_every: 2,
        limit: Some(3),
        ..FaultConfig::default()
    });
    c.upload_multipart(
        "drop/mp.bin",
        UploadSource::Bytes(data.clone()),
        1024 * 1024,
        2,
        &PutOptions::default(),
        None,
    )
    .await
    .unwrap();
    let got = found(c.get("drop/mp.bin", &GetOptions::default()).await.unwrap());
    let got2 = found(c.get("drop/mp.bin", &GetOptions::default()).await.unwrap());
    let injected = e.emu.faults().injected();
    e.emu.faults().clear();
    assert_eq!(got.data, data);
    assert_eq!(got2.data, data);
    assert!(
        (1..=3).contains(&injected),
        "{injected} connections dropped"
    );
}

/// PUT and Upload Part bodies sent from a file range (the upload queue's way, so a part is
/// never held in memory whole): the bytes arrive whole, the CRC-64 check passes, a dropped
/// connection re-reads the range for the retry, SigV4 signs them as UNSIGNED-PAYLOAD, and a
/// file shorter than its range fails the request instead of storing a short object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_streamed_from_a_file_arrive_whole_and_are_resent_on_retry() {
    let e = env().await;
    let data = pattern(3 * 1024 * 1024 + 123);
    let mut f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut f, &data).unwrap();
    let file = Arc::new(f);
    let range = |start: usize, end: usize| {
        Payload::File(FileRange {
            file: file.clone(),
            start: start as u64,
            len: (end - start) as u64,
        })
    };
    let store: &dyn ObjectStore = &e.client;
    e.emu.faults().set(FaultConfig {
        drop_every: 2,
        limit: Some(2),
        ..FaultConfig::default()
    });
    let put = store
        .put_object("file/put.bin", range(0, data.len()), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(put.crc64, Some(crc64_of(&data)));
    let id = store
        .initiate_multipart("file/mp.bin", &PutOptions::default())
        .await
        .unwrap();
    let cut = 2 * 1024 * 1024;
    let mut parts = Vec::new();
    for (n, (a, b)) in [(1, (0, cut)), (2, (cut, data.len()))] {
        let etag = store.upload_part("file/mp.bin", &id, n, range(a, b)).await;
        parts.push(CompletedPart {
            part_number: n,
            etag: etag.unwrap(),
        });
    }
    store
        .complete_multipart("file/mp.bin", &id, &parts)
        .await
        .unwrap();
    let injected = e.emu.faults().injected();
    e.emu.faults().clear();
    assert!(injected >= 1, "no connection was dropped");
    for key in ["file/put.bin", "file/mp.bin"] {
        let got = found(e.client.get(key, &GetOptions::default()).await.unwrap());
        assert!(got.data == data, "{key} differs from the file");
    }

    let mut cfg = config(&e.emu.endpoint(), KEY);
    cfg.signing = SigningScheme::SigV4;
    let v4 = CosClient::new(cfg).unwrap();
    v4.put("file/v4.bin", range(100, 5000), &PutOptions::default())
        .await
        .unwrap();
    let got = found(v4.get("file/v4.bin", &GetOptions::default()).await.unwrap());
    assert_eq!(&got.data[..], &data[100..5000]);

    let short = Payload::File(FileRange {
        file: file.clone(),
        start: 0,
        len: data.len() as u64 + 10,
    });
    assert!(store
        .put_object("file/short.bin", short, &PutOptions::default())
        .await
        .is_err());
    let head = e
        .client
        .head("file/short.bin", &Conditions::default())
        .await;
    assert!(
        matches!(&head, Err(err) if err.status == 404),
        "a short body was stored: {head:?}"
    );
}
