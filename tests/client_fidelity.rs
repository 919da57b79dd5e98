//! Issue 9, client side, over real HTTP against the in-process emulator on 127.0.0.1: keys with
//! `.`/`..` segments are read, written, listed and deleted under their literal names; a
//! throttled (503 SlowDown) Initiate or Complete Multipart Upload is resent, not given up; a GET
//! of an archived object whose restore is running is reported as "restore in progress".

use std::time::Duration;

use bytes::Bytes;
use cosfuse::cos::types::*;
use cosfuse::cos::{CosClient, CosConfig, CosCredentials, RetryPolicy};
use cosfuse::emulator::{Emulator, EmulatorConfig, FaultConfig};
use cosfuse::store::*;

const BUCKET: &str = "fidelity-1250000000";
const ID: &str = "AKIDfidelityTEST00000000000000000";
const KEY: &str = "fidelityTESTsecretKEY000000000000";

async fn env() -> (Emulator, CosClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        EmulatorConfig::new(dir.path())
            .bucket(BUCKET)
            .credential(ID, KEY),
    )
    .await
    .unwrap();
    let mut cfg = CosConfig::new(BUCKET, "ap-guangzhou", CosCredentials::new(ID, KEY))
        .with_endpoint(emu.endpoint());
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let client = CosClient::new(cfg).unwrap();
    (emu, client, dir)
}

async fn keys(c: &CosClient) -> Vec<String> {
    let all = c.list_all(&ListOptions::default(), 10).await.unwrap();
    all.objects.into_iter().map(|o| o.key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segment_keys_are_addressed_literally() {
    let (_emu, c, _dir) = env().await;
    let cases = [
        ("a/./b", "dot"),
        ("a/../b", "dotdot"),
        ("a/..", "trailing"),
        ("x/./../y", "both"),
    ];
    for (key, body) in cases {
        c.put(key, Bytes::from(body), &PutOptions::default())
            .await
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
    }
    // Stored under the literal keys; nothing landed on the keys a URL parser would produce.
    let mut expect: Vec<String> = cases.iter().map(|(k, _)| k.to_string()).collect();
    expect.sort();
    assert_eq!(keys(&c).await, expect);
    for (key, body) in cases {
        let got = c.get(key, &GetOptions::default()).await.unwrap();
        match got {
            Conditional::Found(o) => assert_eq!(&o.data[..], body.as_bytes(), "{key}"),
            Conditional::NotModified => panic!("304"),
        }
        let m = c.head(key, &Conditions::default()).await.unwrap();
        assert!(matches!(m, Conditional::Found(ref m) if m.size == body.len() as u64));
    }
    // Copy from and to such keys (x-cos-copy-source uses the same encoding).
    c.copy_object("a/../b", "c/./d", &CopyOptions::default())
        .await
        .unwrap();
    match c.get("c/./d", &GetOptions::default()).await.unwrap() {
        Conditional::Found(o) => assert_eq!(&o.data[..], b"dotdot"),
        Conditional::NotModified => panic!("304"),
    }
    for key in ["a/./b", "a/../b", "a/..", "x/./../y", "c/./d"] {
        c.delete(key, None).await.unwrap();
    }
    assert!(keys(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_initiate_and_complete_are_resent() {
    let (emu, c, _dir) = env().await;
    let key = "mp/throttled.bin";
    let one_slowdown = || {
        emu.faults().set(FaultConfig {
            slowdown_every: 1,
            limit: Some(1),
            ..FaultConfig::default()
        })
    };
    one_slowdown();
    let id = c.initiate(key, &PutOptions::default()).await.unwrap();
    assert_eq!(emu.faults().injected(), 1);
    assert_eq!(emu.stats().get("InitiateMultipartUpload"), 2);
    let part1 = Bytes::from(vec![7u8; 1024 * 1024]);
    let part2 = Bytes::from_static(b"tail");
    let e1 = c.put_part(key, &id, 1, part1.clone()).await.unwrap();
    let e2 = c.put_part(key, &id, 2, part2.clone()).await.unwrap();
    one_slowdown();
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
    let done = c.complete(key, &id, &parts).await.unwrap();
    assert!(done.etag.ends_with("-2"), "{}", done.etag);
    assert_eq!(emu.faults().injected(), 1);
    assert_eq!(emu.stats().get("CompleteMultipartUpload"), 2);
    match c.get(key, &GetOptions::default()).await.unwrap() {
        Conditional::Found(o) => assert_eq!(o.data.len(), part1.len() + part2.len()),
        Conditional::NotModified => panic!("304"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_an_archive_whose_restore_runs_is_restore_in_progress() {
    let (emu, c, _dir) = env().await;
    // Long enough that the restore is still running when the GET arrives (no sleeps).
    emu.state().set_restore_delay(Duration::from_secs(3600));
    let opts = PutOptions {
        storage_class: Some(StorageClass::Archive),
        ..PutOptions::default()
    };
    c.put("cold.bin", Bytes::from_static(b"frozen"), &opts)
        .await
        .unwrap();
    let store: &dyn ObjectStore = &c;
    // Never restored: the plain "archived" error (EACCES).
    assert!(matches!(
        store.get_object("cold.bin", None).await,
        Err(StoreError::Archived { restoring: false })
    ));
    let started = c
        .restore("cold.bin", 1, RestoreTier::Standard, None)
        .await
        .unwrap();
    assert_eq!(started, RestoreOutcome::Started);
    // The GET's 403 says nothing about the restore; the client's HEAD finds it (EAGAIN).
    let heads_before = emu.stats().get("HeadObject");
    assert!(matches!(
        store.get_object("cold.bin", Some(0..4)).await,
        Err(StoreError::Archived { restoring: true })
    ));
    assert_eq!(emu.stats().get("HeadObject"), heads_before + 1);
}
