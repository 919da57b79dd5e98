//! The emulator's protective limits (issue 11 item 6), over real HTTP: XML nesting depth and
//! body sizes, temp files of abandoned requests, header-read timeout and connection limit, who
//! may reset the counters, key validity, and the free-space guard.

mod emulator_support;

use std::time::{Duration, Instant};

use cosfuse::emulator::{Emulator, EmulatorConfig};
use emulator_support::*;

#[tokio::test]
async fn delete_body_nesting_200000_elements_is_malformed_xml_not_a_crash() {
    let e = Emu::start().await;
    let n = 200_000;
    let body = format!("<Delete>{}{}</Delete>", "<a>".repeat(n), "</a>".repeat(n));
    let r = e.send("POST", "", &[("delete", "")], &[], body).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "MalformedXML");
    // The server survived: the next request is answered normally.
    e.put("after", b"still here").await;
}

#[tokio::test]
async fn oversized_xml_bodies_are_entity_too_large() {
    let e = Emu::start().await;
    e.put("k", b"x").await;
    let big = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(100_000)
    );
    assert!(big.len() > 2 * 1024 * 1024);
    let r = e.send("POST", "", &[("delete", "")], &[], big).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "EntityTooLarge".into()),
        "{}",
        r.text()
    );
    let acl = format!(
        "<AccessControlPolicy>{}</AccessControlPolicy>",
        " ".repeat(70_000)
    );
    let r = e.send("PUT", "k", &[("acl", "")], &[], acl).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "EntityTooLarge".into()),
        "{}",
        r.text()
    );
    // Nothing was deleted by the refused request.
    assert_eq!(e.send("HEAD", "k", &[], &[], Vec::new()).await.status, 200);
}

/// The request head of a signed request for `/BUCKET/key?query`, with `extra` header lines.
fn signed_head(method: &str, host: &str, key: &str, query: &[(&str, &str)], extra: &str) -> String {
    let path = format!("/{BUCKET}/{key}");
    let t = now();
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        method,
        &path,
        query,
        &[("host", host)],
        t - 60,
        t + 600,
    );
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.to_string()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    let target = if q.is_empty() {
        path
    } else {
        format!("{path}?{}", q.join("&"))
    };
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n{extra}\r\n")
}

/// Names of the files in the bucket's temp directory.
fn tmp_files(e: &Emu) -> Vec<std::path::PathBuf> {
    let dir = e.dir.path().join("buckets").join(BUCKET).join("tmp");
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|f| f.ok().map(|f| f.path())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn temp_file_of_an_upload_abandoned_mid_body_is_removed() {
    use tokio::io::AsyncWriteExt;
    let e = Emu::start().await;
    let mut s = tokio::net::TcpStream::connect(e.host()).await.unwrap();
    let head = signed_head("PUT", &e.host(), "big", &[], "Content-Length: 8388608\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // More than the first MiB, which the emulator keeps in memory.
    s.write_all(&vec![b'x'; 2 << 20]).await.unwrap();
    // The body is being received into a temp file...
    assert!(
        wait_for(Duration::from_secs(10), || async {
            !tmp_files(&e).is_empty()
        })
        .await
    );
    // ...until the client goes away: then the file must go too.
    drop(s);
    let gone = wait_for(Duration::from_secs(10), || async {
        tmp_files(&e).is_empty()
    })
    .await;
    assert!(gone, "left behind: {:?}", tmp_files(&e));
    assert_eq!(
        e.send("HEAD", "big", &[], &[], Vec::new()).await.status,
        404
    );
}

#[tokio::test]
async fn temp_file_of_a_complete_abandoned_by_its_client_is_removed() {
    use tokio::io::AsyncWriteExt;
    let e = Emu::start().await;
    let r = e
        .send("POST", "mp", &[("uploads", "")], &[], Vec::new())
        .await;
    let id = r.xml("UploadId").unwrap();
    let part = vec![b'p'; 24 << 20];
    let mut etags = Vec::new();
    for n in ["1", "2"] {
        let r = e
            .send(
                "PUT",
                "mp",
                &[("partNumber", n), ("uploadId", &id)],
                &[],
                part.clone(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        etags.push(r.h("etag").unwrap());
    }
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let mut s = tokio::net::TcpStream::connect(e.host()).await.unwrap();
    let extra = format!("Content-Length: {}\r\n", body.len());
    let head = signed_head("POST", &e.host(), "mp", &[("uploadId", &id)], &extra);
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    // Hang up as soon as the parts are being assembled (or the assembly already finished).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmp_files(&e).is_empty()
        && e.emu
            .state()
            .storage
            .bucket(BUCKET)
            .unwrap()
            .get("mp")
            .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "complete never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(s);
    let gone = wait_for(Duration::from_secs(20), || async {
        tmp_files(&e).is_empty()
    })
    .await;
    assert!(gone, "left behind: {:?}", tmp_files(&e));
    // Either the assembly finished before the hang-up (object stored, upload gone) or it was
    // abandoned (no object, the upload still there for a retry): never half of each.
    let b = e.emu.state().storage.bucket(BUCKET).unwrap();
    assert_ne!(b.get("mp").is_some(), b.upload(&id).is_some());
}

/// An emulator with `BUCKET`, the test credentials and `tune` applied to its configuration.
async fn start_with(tune: impl FnOnce(&mut EmulatorConfig)) -> Emu {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmulatorConfig::new(dir.path())
        .bucket(BUCKET)
        .credential(ID, KEY);
    tune(&mut cfg);
    let emu = Emulator::start(cfg).await.unwrap();
    let client = http_client();
    Emu { emu, client, dir }
}

/// Reads until the server closes the connection; the time that took, or None after `limit`.
async fn closed_within(mut s: tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    // Bounded: every read either returns data (a 408 page, at most a few KiB) or ends it.
    for _ in 0..64 {
        let left = limit.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
    None
}

#[tokio::test]
async fn sixty_half_sent_requests_are_closed_by_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let e = start_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let mut socks = Vec::new();
    for _ in 0..60 {
        let mut s = tokio::net::TcpStream::connect(e.host()).await.unwrap();
        s.write_all(b"GET /examplebucket-1250000000/k HTTP/1.1\r\nHost: 127.0.0")
            .await
            .unwrap();
        socks.push(s);
    }
    // A connection that sends nothing at all is bounded the same way.
    socks.push(tokio::net::TcpStream::connect(e.host()).await.unwrap());
    let waits = futures::future::join_all(
        socks
            .into_iter()
            .map(|s| closed_within(s, Duration::from_secs(8))),
    )
    .await;
    for (i, w) in waits.iter().enumerate() {
        let w = w.unwrap_or_else(|| panic!("connection {i} still open after 8 s"));
        assert!(w >= Duration::from_millis(500), "closed early: {w:?}");
    }
    // The server still serves complete requests.
    e.put("after", b"ok").await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    use tokio::io::AsyncWriteExt;
    let e = start_with(|c| {
        c.header_timeout = Duration::from_secs(2);
        c.max_connections = 2;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(e.host()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        idle.push(s);
    }
    // Both slots are taken by half-sent requests: a third client is served only once the
    // header timeout frees one (about 2 s), not at once.
    let start = Instant::now();
    let r = e.send("HEAD", "nothing", &[], &[], Vec::new()).await;
    let waited = start.elapsed();
    assert_eq!(r.status, 404);
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "served after {waited:?}");
    drop(idle);
}

#[tokio::test]
async fn stats_reset_needs_the_emulators_credentials() {
    let e = Emu::start().await;
    e.put("counted", b"x").await;
    let host = e.host();
    let unsigned = e
        .client
        .post(format!("http://{host}/-/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert!(unsigned
        .text()
        .await
        .unwrap()
        .contains("<Code>AccessDenied</Code>"));
    let t = now();
    let other = cosfuse::cos::sign::authorization(
        "AKIDsomebodyELSE",
        "wrong",
        "GET",
        "/-/stats",
        &[("reset", "")],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .get(format!("http://{host}/-/stats?reset"))
        .header("authorization", other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        e.emu.stats().get("PutObject"),
        1,
        "a refused reset changed the counters"
    );
    // Reading stays open.
    let r = e
        .client
        .get(format!("http://{host}/-/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "GET",
        "/-/stats",
        &[("reset", "")],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .get(format!("http://{host}/-/stats?reset"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(e.emu.stats().get("PutObject"), 0);
}

#[tokio::test]
async fn writes_are_refused_below_the_free_space_minimum() {
    let e = start_with(|c| c.min_free_bytes = u64::MAX / 2).await;
    let r = e.send("PUT", "k", &[], &[], b"data".to_vec()).await;
    assert_eq!(
        (r.status, r.code()),
        (503, "ServiceUnavailable".into()),
        "{}",
        r.text()
    );
    assert_eq!(e.send("HEAD", "k", &[], &[], Vec::new()).await.status, 404);
    assert!(tmp_files(&e).is_empty());
    // Reads and listings still work.
    assert_eq!(e.send("GET", "", &[], &[], Vec::new()).await.status, 200);
}

#[tokio::test]
async fn the_binary_takes_the_limit_flags() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cosfuse-emulator"))
        .args(["--data", dir.path().to_str().unwrap(), "--bucket", BUCKET])
        .args(["--secret-id", ID, "--secret-key", KEY])
        .args([
            "--min-free-mb",
            "1000000000000",
            "--header-timeout-secs",
            "1",
        ])
        .args(["--max-connections", "8"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let path = format!("/{BUCKET}/k");
    let t = now();
    let auth = cosfuse::cos::sign::authorization(
        ID,
        KEY,
        "PUT",
        &path,
        &[],
        &[("host", &addr)],
        t - 60,
        t + 600,
    );
    let client = http_client();
    let r = client
        .put(format!("http://{addr}{path}"))
        .header("authorization", auth)
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>ServiceUnavailable</Code>"));
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"GET / HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(closed_within(s, Duration::from_secs(8)).await.is_some());
    child.kill().await.unwrap();
}

#[tokio::test]
async fn keys_must_be_utf8_without_nul() {
    let e = Emu::start().await;
    // U+FFFD is what a lossy decode of %FF would give: it must stay a different key.
    e.put("a\u{FFFD}b", b"replacement char").await;
    for raw in ["a%FFb", "a%00b", "%C3%28", "x/%ED%A0%80"] {
        for method in ["GET", "PUT", "HEAD", "DELETE"] {
            let url = format!("http://{}/{BUCKET}/{raw}", e.host());
            let r = e
                .client
                .request(method.parse().unwrap(), url)
                .header("content-length", "0")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{method} {raw}");
            if method != "HEAD" {
                let text = r.text().await.unwrap();
                assert!(
                    text.contains("<Code>InvalidURI</Code>"),
                    "{method} {raw}: {text}"
                );
            }
        }
    }
    let g = e.send("GET", "a\u{FFFD}b", &[], &[], Vec::new()).await;
    assert_eq!(g.body, b"replacement char");
    // A NUL reached through an XML character reference is refused per key.
    let body = "<Delete><Object><Key>a&#0;b</Key></Object></Delete>";
    let r = e.send("POST", "", &[("delete", "")], &[], body).await;
    assert!(
        r.status == 400 || r.text().contains("<Code>InvalidURI</Code>"),
        "{} {}",
        r.status,
        r.text()
    );
}
