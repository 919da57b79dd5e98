//! The emulator's protective limits (issue 11 item 6), over real HTTP: XML nesting depth and
//! body sizes, temp files of abandoned requests, header-read timeout and connection limit, who
//! may reset the counters, key validity, and the free-space guard.

mod emulator_support;

use std::time::Duration;

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
    s.write_all(&vec![b'x'; 1 << 20]).await.unwrap();
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
