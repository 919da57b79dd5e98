//! PUT / HEAD / GET / DELETE / Copy against an in-process emulator: stored headers, checksum
//! vectors, digests, ranges, conditionals, copy directives, key rules and restart persistence.

mod emulator_support;

use emulator_support::*;
use serde_json::Value;

fn checksums() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/checksums.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn vector_body(id: &str) -> Vec<u8> {
    match id {
        "empty" => Vec::new(),
        "check-123456789" => b"123456789".to_vec(),
        "hello-world" => b"hello world".to_vec(),
        "1MiB-a" => vec![b'a'; 1 << 20],
        "1MiB-ramp" => (0..1usize << 20).map(|i| i as u8).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn etag_crc64_and_content_md5_match_the_vectors() {
    let e = Emu::start().await;
    let v = checksums();
    let mut checked = 0;
    for vec in v["vectors"].as_array().unwrap() {
        let id = vec["id"].as_str().unwrap();
        if id == "utf8-text" {
            continue; // its exact bytes are not spelled out in the file
        }
        let body = vector_body(id);
        assert_eq!(body.len() as u64, vec["length"].as_u64().unwrap(), "{id}");
        let md5 = vec["content_md5_header"].as_str().unwrap();
        let key = format!("vec/{id}");
        let r = e
            .send("PUT", &key, &[], &[("Content-MD5", md5)], body.clone())
            .await;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(
            r.h("etag").unwrap(),
            vec["etag_simple_put"].as_str().unwrap(),
            "{id}"
        );
        let crc = vec["x-cos-hash-crc64ecma"].as_str().unwrap();
        assert_eq!(r.h("x-cos-hash-crc64ecma").unwrap(), crc, "{id}");
        let g = e.send("GET", &key, &[], &[], Vec::new()).await;
        assert_eq!(g.body, body);
        assert_eq!(g.h("x-cos-hash-crc64ecma").unwrap(), crc);
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[tokio::test]
async fn put_stores_every_documented_header_and_head_returns_them() {
    let e = Emu::start().await;
    let hs = [
        ("Cache-Control", "max-age=3600"),
        ("Content-Disposition", "attachment; filename=\"hello.txt\""),
        ("Content-Encoding", "identity"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
        ("x-cos-meta-Mode", "100644"),
        ("x-cos-storage-class", "STANDARD_IA"),
        ("x-cos-acl", "private"),
    ];
    let r = e
        .send("PUT", "docs/hello.txt", &[], &hs, b"hello world".to_vec())
        .await;
    assert_eq!(r.status, 200);
    let h = e.send("HEAD", "docs/hello.txt", &[], &[], Vec::new()).await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for (n, v) in &hs[..5] {
        assert_eq!(h.h(n).as_deref(), Some(*v), "{n}");
    }
    assert_eq!(h.h("x-cos-meta-mode").as_deref(), Some("100644"));
    assert_eq!(h.h("x-cos-storage-class").as_deref(), Some("STANDARD_IA"));
    assert_eq!(h.h("x-cos-object-type").as_deref(), Some("normal"));
    assert_eq!(h.h("content-length").as_deref(), Some("11"));
    assert!(h.h("last-modified").unwrap().ends_with(" GMT"));
    // Defaults: application/octet-stream, no storage-class header for STANDARD.
    e.put("plain", b"x").await;
    let h = e.send("HEAD", "plain", &[], &[], Vec::new()).await;
    assert_eq!(
        h.h("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert!(h.h("x-cos-storage-class").is_none());
    // HEAD of a missing key: 404, no body, ids present.
    let h = e.send("HEAD", "missing", &[], &[], Vec::new()).await;
    assert_eq!(h.status, 404);
    assert!(h.body.is_empty());
    assert!(h.h("x-cos-request-id").is_some() && h.h("x-cos-trace-id").is_some());
}

#[tokio::test]
async fn digests_are_verified() {
    let e = Emu::start().await;
    let r = e
        .send(
            "PUT",
            "d",
            &[],
            &[("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
            b"not empty".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "BadDigest"));
    let r = e
        .send("PUT", "d", &[], &[("Content-MD5", "zzz")], b"x".to_vec())
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    let r = e
        .send(
            "PUT",
            "d",
            &[],
            &[("x-cos-hash-crc64ecma", "11051210869376104954")],
            b"123456789".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = e
        .send(
            "PUT",
            "d",
            &[],
            &[("x-cos-hash-crc64ecma", "1")],
            b"123456789".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    // A failed PUT leaves the previous version.
    assert_eq!(
        e.send("GET", "d", &[], &[], Vec::new()).await.body,
        b"123456789"
    );
}

async fn get_h(e: &Emu, key: &str, hs: Vec<(&'static str, String)>) -> Resp {
    let refs: Vec<(&str, &str)> = hs.iter().map(|(a, b)| (*a, b.as_str())).collect();
    e.send("GET", key, &[], &refs, Vec::new()).await
}

#[tokio::test]
async fn ranged_reads() {
    let e = Emu::start().await;
    e.put("r", b"0123456789").await;
    let get = |range: &'static str| get_h(&e, "r", vec![("Range", range.to_string())]);
    let r = get("bytes=2-4").await;
    assert_eq!((r.status, r.body.as_slice()), (206, &b"234"[..]));
    assert_eq!(r.h("content-range").as_deref(), Some("bytes 2-4/10"));
    assert_eq!(r.h("etag").unwrap(), "\"781e5e245d69b566979b86e28d23f2c7\"");
    assert!(r.h("x-cos-hash-crc64ecma").is_some());
    let r = get("bytes=7-").await;
    assert_eq!((r.status, r.body.as_slice()), (206, &b"789"[..]));
    let r = get("bytes=-2").await;
    assert_eq!(r.body, b"89");
    assert_eq!(r.h("content-range").as_deref(), Some("bytes 8-9/10"));
    let r = get("bytes=5-100").await;
    assert_eq!(r.body, b"56789");
    let r = get("bytes=10-").await;
    assert_eq!((r.status, r.code().as_str()), (416, "InvalidRange"));
    assert_eq!(r.h("content-range").as_deref(), Some("bytes */10"));
    let r = e.send("GET", "r", &[], &[], Vec::new()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("accept-ranges").as_deref(), Some("bytes"));
}

/// Bodies and ranges either side of the sizes the emulator keeps in memory (1 MiB received,
/// 256 KiB read or copied) come back byte for byte, with the ETag of their bytes.
#[tokio::test]
async fn bodies_either_side_of_the_in_memory_sizes_round_trip() {
    let e = Emu::start().await;
    for (i, len) in [(1usize << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20]
        .into_iter()
        .enumerate()
    {
        let body: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
        let key = format!("mem/{len}");
        let r = e.send("PUT", &key, &[], &[], body.clone()).await;
        assert_eq!(r.status, 200, "{len}: {}", r.text());
        let md5 = format!(
            "\"{}\"",
            hex::encode(<md5::Md5 as md5::Digest>::digest(&body))
        );
        assert_eq!(r.h("etag").unwrap(), md5, "{len}");
        assert_eq!(e.send("GET", &key, &[], &[], Vec::new()).await.body, body);
        for (a, n) in [(0usize, 256 << 10), (1, 256 << 10), (5, (256 << 10) + 1)] {
            let range = format!("bytes={a}-{}", a + n - 1);
            let g = get_h(&e, &key, vec![("Range", range)]).await;
            assert_eq!(
                (g.status, &g.body[..]),
                (206, &body[a..a + n]),
                "{len} {a}+{n}"
            );
        }
        let source = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/{key}");
        let c = e
            .send(
                "PUT",
                &format!("{key}-copy"),
                &[],
                &[("x-cos-copy-source", &source)],
                Vec::new(),
            )
            .await;
        assert_eq!(c.status, 200, "{len}: {}", c.text());
        let g = e
            .send("GET", &format!("{key}-copy"), &[], &[], Vec::new())
            .await;
        assert_eq!(
            (g.body == body, g.h("etag")),
            (true, Some(md5.clone())),
            "{len}"
        );
        // The copy is its own object: replacing, then deleting the source leaves it whole.
        e.send("PUT", &key, &[], &[], b"other".to_vec()).await;
        e.send("DELETE", &key, &[], &[], Vec::new()).await;
        let g = e
            .send("GET", &format!("{key}-copy"), &[], &[], Vec::new())
            .await;
        assert_eq!(
            (g.body == body, g.h("etag")),
            (true, Some(md5)),
            "{len} after"
        );
    }
}

#[tokio::test]
async fn conditional_requests() {
    let e = Emu::start().await;
    let etag = e.put("c", b"cond").await.h("etag").unwrap();
    let lm = e
        .send("HEAD", "c", &[], &[], Vec::new())
        .await
        .h("last-modified")
        .unwrap();
    let get = |h: Vec<(&'static str, String)>| get_h(&e, "c", h);
    assert_eq!(get(vec![("If-Match", etag.clone())]).await.status, 200);
    let r = get(vec![("If-Match", "\"nope\"".into())]).await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    let r = get(vec![("If-None-Match", etag.trim_matches('"').to_string())]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(
        get(vec![("If-None-Match", "\"other\"".into())])
            .await
            .status,
        200
    );
    assert_eq!(
        get(vec![("If-Modified-Since", lm.clone())]).await.status,
        304
    );
    let old = "Mon, 01 Jan 2001 00:00:00 GMT".to_string();
    assert_eq!(
        get(vec![("If-Modified-Since", old.clone())]).await.status,
        200
    );
    assert_eq!(
        get(vec![("If-Unmodified-Since", old.clone())]).await.status,
        412
    );
    assert_eq!(
        get(vec![("If-Unmodified-Since", lm.clone())]).await.status,
        200
    );
    // If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
    assert_eq!(
        get(vec![
            ("If-Match", etag.clone()),
            ("If-Unmodified-Since", old.clone())
        ])
        .await
        .status,
        200
    );
    assert_eq!(
        get(vec![
            ("If-None-Match", "\"other\"".into()),
            ("If-Modified-Since", lm.clone())
        ])
        .await
        .status,
        200
    );
    let h = e
        .send(
            "HEAD",
            "c",
            &[],
            &[("If-Modified-Since", lm.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(h.status, 304);
}

#[tokio::test]
async fn response_overrides_for_signed_requests_only() {
    let e = Emu::start().await;
    e.send(
        "PUT",
        "o",
        &[],
        &[("x-cos-acl", "public-read")],
        b"o".to_vec(),
    )
    .await;
    let r = e
        .send(
            "GET",
            "o",
            &[
                ("response-content-type", "application/pdf"),
                ("response-cache-control", "no-cache"),
            ],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.h("content-type").as_deref(), Some("application/pdf"));
    assert_eq!(r.h("cache-control").as_deref(), Some("no-cache"));
    let r = e.anon("GET", "o", &[]).await;
    assert_eq!(r.status, 200);
    let r = e
        .anon("GET", "o", &[("response-content-type", "text/html")])
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn delete_is_idempotent_and_bucket_errors() {
    let e = Emu::start().await;
    e.put("x", b"1").await;
    assert_eq!(
        e.send("DELETE", "x", &[], &[("Content-Length", "0")], Vec::new())
            .await
            .status,
        204
    );
    assert_eq!(
        e.send("DELETE", "x", &[], &[], Vec::new()).await.status,
        204
    );
    let r = e.send("GET", "x", &[], &[], Vec::new()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    assert!(r.xml("Resource").unwrap().ends_with("/x"));
    // Unknown bucket, path style.
    let url = format!("http://{}/nobucket-1250000000/k", e.host());
    let r = e.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>NoSuchBucket</Code>"));
}

#[tokio::test]
async fn key_length_limit() {
    let e = Emu::start().await;
    let long = "k".repeat(850);
    assert_eq!(
        e.send("PUT", &long, &[], &[], b"ok".to_vec()).await.status,
        200
    );
    let too_long = "k".repeat(851);
    let r = e.send("PUT", &too_long, &[], &[], b"no".to_vec()).await;
    assert_eq!((r.status, r.code().as_str()), (400, "KeyTooLong"));
}

#[tokio::test]
async fn copy_with_directives_and_conditions() {
    let e = Emu::start().await;
    let src_hs = [
        ("Content-Type", "text/plain"),
        ("x-cos-meta-a", "1"),
        ("x-cos-storage-class", "STANDARD_IA"),
        ("x-cos-acl", "public-read"),
    ];
    let put = e
        .send(
            "PUT",
            "src/源 文件+1.txt",
            &[],
            &src_hs,
            b"copy me".to_vec(),
        )
        .await;
    let etag = put.h("etag").unwrap();
    let source = format!(
        "{BUCKET}.cos.ap-guangzhou.myqcloud.com/{}",
        encode_path("src/源 文件+1.txt")
    );
    // Copy (default): metadata kept, storage class and ACL not.
    let r = e
        .send(
            "PUT",
            "dst/a.txt",
            &[],
            &[("x-cos-copy-source", &source), ("x-cos-meta-b", "ignored")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("ETag").unwrap(), etag);
    assert_eq!(
        r.xml("CRC64").unwrap(),
        put.h("x-cos-hash-crc64ecma").unwrap()
    );
    assert!(r.xml("LastModified").unwrap().ends_with('Z'));
    let h = e.send("HEAD", "dst/a.txt", &[], &[], Vec::new()).await;
    assert_eq!(h.h("x-cos-meta-a").as_deref(), Some("1"));
    assert!(h.h("x-cos-meta-b").is_none());
    assert_eq!(h.h("content-type").as_deref(), Some("text/plain"));
    assert!(h.h("x-cos-storage-class").is_none());
    assert_eq!(e.anon("GET", "dst/a.txt", &[]).await.status, 403);
    // Replaced: metadata from the request only; path-style source form.
    let path_src = format!("/{BUCKET}/{}", encode_path("src/源 文件+1.txt"));
    let r = e
        .send(
            "PUT",
            "dst/b.txt",
            &[],
            &[
                ("x-cos-copy-source", &path_src),
                ("x-cos-metadata-directive", "Replaced"),
                ("x-cos-meta-b", "2"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    let h = e.send("HEAD", "dst/b.txt", &[], &[], Vec::new()).await;
    assert_eq!(h.h("x-cos-meta-b").as_deref(), Some("2"));
    assert!(h.h("x-cos-meta-a").is_none());
    assert_eq!(
        h.h("content-type").as_deref(),
        Some("application/octet-stream")
    );
    // Self copy needs Replaced.
    let self_src = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/dst/b.txt");
    let r = e
        .send(
            "PUT",
            "dst/b.txt",
            &[],
            &[("x-cos-copy-source", &self_src)],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidRequest"));
    let r = e
        .send(
            "PUT",
            "dst/b.txt",
            &[],
            &[
                ("x-cos-copy-source", &self_src),
                ("x-cos-metadata-directive", "Replaced"),
                ("x-cos-storage-class", "ARCHIVE"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    // Copy-source conditions.
    for (h, v) in [
        ("x-cos-copy-source-If-Match", "\"nope\""),
        ("x-cos-copy-source-If-None-Match", etag.as_str()),
        (
            "x-cos-copy-source-If-Unmodified-Since",
            "Mon, 01 Jan 2001 00:00:00 GMT",
        ),
        (
            "x-cos-copy-source-If-Modified-Since",
            "Fri, 01 Jan 2100 00:00:00 GMT",
        ),
    ] {
        let r = e
            .send(
                "PUT",
                "dst/c.txt",
                &[],
                &[("x-cos-copy-source", &source), (h, v)],
                Vec::new(),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (412, "PreconditionFailed"),
            "{h}"
        );
    }
    let r = e
        .send(
            "PUT",
            "dst/c.txt",
            &[],
            &[
                ("x-cos-copy-source", &source),
                ("x-cos-copy-source-If-Match", &etag),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    // Missing source; archived source.
    let missing = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/none");
    let r = e
        .send(
            "PUT",
            "dst/d.txt",
            &[],
            &[("x-cos-copy-source", &missing)],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    let r = e
        .send(
            "PUT",
            "dst/d.txt",
            &[],
            &[("x-cos-copy-source", &self_src)],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidObjectState"));
}

#[tokio::test]
async fn data_survives_a_restart() {
    let e = Emu::start().await;
    e.send(
        "PUT",
        "keep/me.txt",
        &[],
        &[("x-cos-meta-k", "v")],
        b"persistent".to_vec(),
    )
    .await;
    e.put("gone", b"x").await;
    e.send("DELETE", "gone", &[], &[], Vec::new()).await;
    let up = e
        .send("POST", "big", &[("uploads", "")], &[], Vec::new())
        .await;
    let upload_id = up.xml("UploadId").unwrap();
    let Emu { emu, dir, .. } = e;
    emu.shutdown().await;
    // Debris of a crash: an unreferenced body in a shard and a half-received upload body.
    let objects = dir.path().join("buckets").join(BUCKET).join("objects");
    let shard = std::fs::read_dir(&objects)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let orphan = shard.join("orphan-0000.data");
    std::fs::write(&orphan, b"junk").unwrap();
    let partial = dir
        .path()
        .join("buckets")
        .join(BUCKET)
        .join("tmp")
        .join("x.part");
    std::fs::write(&partial, b"junk").unwrap();
    let e = Emu::start_in(dir).await;
    assert!(!orphan.exists() && !partial.exists());
    let r = e.send("GET", "keep/me.txt", &[], &[], Vec::new()).await;
    assert_eq!(r.body, b"persistent");
    assert_eq!(r.h("x-cos-meta-k").as_deref(), Some("v"));
    assert_eq!(
        e.send("GET", "gone", &[], &[], Vec::new()).await.status,
        404
    );
    let parts = e
        .send("GET", "big", &[("uploadId", &upload_id)], &[], Vec::new())
        .await;
    assert_eq!(parts.status, 200);
}

#[tokio::test]
async fn virtual_hosted_and_single_bucket_addressing() {
    let e = Emu::start().await;
    e.put("vh.txt", b"virtual").await;
    let host = e.host();
    // Virtual-hosted: Host names the bucket, path is the key (signed path is /key).
    let t = now();
    let vhost = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com");
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "GET",
        "/vh.txt",
        &[],
        &[("host", &vhost)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .get(format!("http://{host}/vh.txt"))
        .header("host", &vhost)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"virtual");
    // Single configured bucket: a key whose first segment looks like NAME-NUMBER (but not a
    // 10-digit APPID) stays a key.
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "PUT",
        "/run-71416806/x",
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .put(format!("http://{host}/run-71416806/x"))
        .header("authorization", auth)
        .body("k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(e
        .emu
        .state()
        .storage
        .bucket(BUCKET)
        .unwrap()
        .get("run-71416806/x")
        .is_some());
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "GET",
        "/absent-1250000000/",
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .get(format!("http://{host}/absent-1250000000/"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("NoSuchBucket"));
    // Single configured bucket: a plain 127.0.0.1 host maps to it.
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "GET",
        "/vh.txt",
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .get(format!("http://{host}/vh.txt"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn user_metadata_limit_is_two_kilobytes() {
    let e = Emu::start().await;
    let ok = "v".repeat(2048 - 1);
    let r = e
        .send("PUT", "m", &[], &[("x-cos-meta-a", &ok)], b"x".to_vec())
        .await;
    assert_eq!(r.status, 200);
    let big = "v".repeat(2048);
    let r = e
        .send("PUT", "m", &[], &[("x-cos-meta-a", &big)], b"x".to_vec())
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "MetadataTooLarge"));
    let r = e
        .send(
            "POST",
            "m2",
            &[("uploads", "")],
            &[("x-cos-meta-a", &big)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn get_service_lists_buckets_when_several_exist() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cosfuse::emulator::EmulatorConfig::new(dir.path())
        .bucket("alpha-1250000000")
        .bucket("beta-1250000000")
        .credential(ID, KEY);
    let emu = cosfuse::emulator::Emulator::start(cfg).await.unwrap();
    let host = emu.addr().to_string();
    let client = http_client();
    let t = now();
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "GET",
        "/",
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = client
        .get(format!("http://{host}/"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<Name>alpha-1250000000</Name>")
            && body.contains("<Name>beta-1250000000</Name>"),
        "{body}"
    );
    // Anonymous: refused. Path style to the second bucket works.
    assert_eq!(
        client
            .get(format!("http://{host}/"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let path = "/beta-1250000000/k";
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "PUT",
        path,
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = client
        .put(format!("http://{host}{path}"))
        .header("authorization", auth)
        .body("b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(emu
        .state()
        .storage
        .bucket("beta-1250000000")
        .unwrap()
        .get("k")
        .is_some());
    assert!(emu
        .state()
        .storage
        .bucket("alpha-1250000000")
        .unwrap()
        .get("k")
        .is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_writers_readers_and_deleters_stay_consistent() {
    let e = std::sync::Arc::new(Emu::start().await);
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("race/{}", i % 4);
            match i % 3 {
                0 => {
                    let body = vec![(i % 251) as u8; 64 * 1024 + i as usize];
                    e.send("PUT", &key, &[], &[], body).await.status
                }
                1 => {
                    let r = e.send("GET", &key, &[], &[], Vec::new()).await;
                    if r.status == 200 {
                        // A body is always one whole version: one repeated byte, matching length.
                        let b = r.body[0];
                        assert!(r.body.iter().all(|x| *x == b));
                        // Writer i (< 251) wrote byte i, 64 KiB + i long.
                        assert_eq!(r.body.len(), 64 * 1024 + b as usize);
                    }
                    r.status
                }
                _ => e.send("DELETE", &key, &[], &[], Vec::new()).await.status,
            }
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(matches!(status, 200 | 204 | 404), "{status}");
    }
    // Every surviving object reads back whole, and the listing agrees with HEAD.
    let l = e
        .send("GET", "", &[("prefix", "race/")], &[], Vec::new())
        .await;
    for key in l.xml_all("Key") {
        let h = e.send("HEAD", &key, &[], &[], Vec::new()).await;
        assert_eq!(h.status, 200);
        let g = e.send("GET", &key, &[], &[], Vec::new()).await;
        assert_eq!(g.body.len().to_string(), h.h("content-length").unwrap());
    }
}
