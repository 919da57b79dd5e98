//! Multipart upload against an in-process emulator: the checksums.json two-part example (ETag
//! and whole-object CRC64), Complete validation errors, part copy, list parts / uploads, abort.

mod emulator_support;

use emulator_support::*;

const MIB: usize = 1 << 20;

async fn initiate(e: &Emu, key: &str, hs: &[(&str, &str)]) -> String {
    let r = e
        .send("POST", key, &[("uploads", "")], hs, Vec::new())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("Key").as_deref(), Some(key));
    r.xml("UploadId").unwrap()
}

async fn part(e: &Emu, key: &str, id: &str, n: u32, body: Vec<u8>) -> Resp {
    let n = n.to_string();
    e.send(
        "PUT",
        key,
        &[("partNumber", &n), ("uploadId", id)],
        &[],
        body,
    )
    .await
}

fn complete_body(parts: &[(u32, &str)]) -> Vec<u8> {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            etag.replace('"', "&quot;")
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s.into_bytes()
}

async fn complete(e: &Emu, key: &str, id: &str, parts: &[(u32, &str)]) -> Resp {
    e.send("POST", key, &[("uploadId", id)], &[], complete_body(parts))
        .await
}

#[tokio::test]
async fn two_part_example_matches_checksums_json() {
    let e = Emu::start().await;
    let id = initiate(
        &e,
        "big/file.bin",
        &[("Content-Type", "video/mp4"), ("x-cos-meta-x", "y")],
    )
    .await;
    let ramp: Vec<u8> = (0..MIB).map(|i| i as u8).collect();
    let p1 = part(&e, "big/file.bin", &id, 1, ramp.clone()).await;
    assert_eq!(p1.status, 200);
    assert_eq!(
        p1.h("etag").unwrap(),
        "\"c35cc7d8d91728a0cb052831bc4ef372\""
    );
    assert_eq!(
        p1.h("x-cos-hash-crc64ecma").unwrap(),
        "12198584541786614250"
    );
    let p2 = part(&e, "big/file.bin", &id, 2, b"tail-part".to_vec()).await;
    assert_eq!(
        p2.h("etag").unwrap(),
        "\"7acd9aff1b7e61df1291866a88cc8718\""
    );
    assert_eq!(
        p2.h("x-cos-hash-crc64ecma").unwrap(),
        "17248732669932203204"
    );
    let r = complete(
        &e,
        "big/file.bin",
        &id,
        &[
            (1, "\"c35cc7d8d91728a0cb052831bc4ef372\""),
            (2, "7acd9aff1b7e61df1291866a88cc8718"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.h("transfer-encoding").as_deref(), Some("chunked"));
    assert!(r.text().starts_with(char::is_whitespace));
    // No XML declaration after the whitespace (that would not be well-formed).
    assert!(r
        .text()
        .trim_start()
        .starts_with("<CompleteMultipartUploadResult"));
    assert_eq!(
        r.xml("ETag").unwrap(),
        "\"915532cb2e167991717dcc7f302c8ccc-2\""
    );
    assert_eq!(r.h("x-cos-hash-crc64ecma").unwrap(), "9527122125779175662");
    let h = e.send("HEAD", "big/file.bin", &[], &[], Vec::new()).await;
    assert_eq!(
        h.h("etag").unwrap(),
        "\"915532cb2e167991717dcc7f302c8ccc-2\""
    );
    assert_eq!(h.h("x-cos-hash-crc64ecma").unwrap(), "9527122125779175662");
    assert_eq!(h.h("content-type").as_deref(), Some("video/mp4"));
    assert_eq!(h.h("x-cos-meta-x").as_deref(), Some("y"));
    let g = e.send("GET", "big/file.bin", &[], &[], Vec::new()).await;
    assert_eq!(g.body.len(), MIB + 9);
    assert_eq!(&g.body[MIB..], b"tail-part");
    // The upload is gone afterwards.
    let r = complete(&e, "big/file.bin", &id, &[(1, "x")]).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
}

#[tokio::test]
async fn complete_validation_errors() {
    let e = Emu::start().await;
    let id = initiate(&e, "v", &[]).await;
    let small = part(&e, "v", &id, 1, b"small".to_vec())
        .await
        .h("etag")
        .unwrap();
    let big = vec![7u8; MIB];
    let e2 = part(&e, "v", &id, 2, big.clone()).await.h("etag").unwrap();
    let e3 = part(&e, "v", &id, 3, b"last".to_vec())
        .await
        .h("etag")
        .unwrap();
    let r = complete(&e, "v", &id, &[(2, &e2), (1, &small)]).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPartOrder"));
    let r = complete(&e, "v", &id, &[(1, &small), (2, "\"0000\"")]).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPart"));
    let r = complete(&e, "v", &id, &[(1, &small), (4, &e3)]).await;
    assert_eq!(r.code(), "InvalidPart");
    // Non-consecutive numbers.
    let r = complete(&e, "v", &id, &[(2, &e2), (3, &e3)]).await;
    assert_eq!(r.code(), "InvalidPart");
    let r = complete(&e, "v", &id, &[(1, &small), (2, &e2)]).await;
    assert_eq!((r.status, r.code().as_str()), (400, "EntityTooSmall"));
    let r = e
        .send("POST", "v", &[("uploadId", &id)], &[], b"<nope".to_vec())
        .await;
    assert_eq!(r.code(), "MalformedXML");
    // Re-uploading part 1 replaces it; then the list completes.
    let e1 = part(&e, "v", &id, 1, big.clone()).await.h("etag").unwrap();
    let r = complete(&e, "v", &id, &[(1, &e1), (2, &e2), (3, &e3)]).await;
    assert_eq!(r.status, 200);
    assert!(r.xml("ETag").unwrap().ends_with("-3\""));
    assert_eq!(
        e.send("GET", "v", &[], &[], Vec::new()).await.body.len(),
        2 * MIB + 4
    );
    // Unknown upload ids.
    let r = part(&e, "v", "nope", 1, b"x".to_vec()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
    let r = e
        .send("DELETE", "v", &[("uploadId", "nope")], &[], Vec::new())
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn part_copy_list_parts_and_abort() {
    let e = Emu::start().await;
    let src: Vec<u8> = (0..2 * MIB).map(|i| (i % 251) as u8).collect();
    e.put("src.bin", &src).await;
    let id = initiate(&e, "dst.bin", &[]).await;
    let source = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/src.bin");
    let last = format!("bytes={}-{}", MIB, 2 * MIB - 1);
    let mut etags = Vec::new();
    for (n, range) in [(1, format!("bytes=0-{}", MIB - 1)), (2, last)] {
        let ns = n.to_string();
        let r = e
            .send(
                "PUT",
                "dst.bin",
                &[("partNumber", &ns), ("uploadId", &id)],
                &[
                    ("x-cos-copy-source", &source),
                    ("x-cos-copy-source-range", &range),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.xml("CRC64").is_some() && r.xml("LastModified").is_some());
        etags.push(r.xml("ETag").unwrap());
    }
    let r = e
        .send(
            "PUT",
            "dst.bin",
            &[("partNumber", "3"), ("uploadId", &id)],
            &[
                ("x-cos-copy-source", &source),
                ("x-cos-copy-source-range", "bytes=0-99999999"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 416);
    // List parts, paged by one.
    let r = e
        .send(
            "GET",
            "dst.bin",
            &[("uploadId", &id), ("max-parts", "1")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.xml_all("PartNumber"), ["1"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextPartNumberMarker").as_deref(), Some("1"));
    assert_eq!(r.xml("Size").as_deref(), Some("1048576"));
    let r = e
        .send(
            "GET",
            "dst.bin",
            &[("uploadId", &id), ("part-number-marker", "1")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.xml_all("PartNumber"), ["2"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    // List uploads.
    let other = initiate(&e, "other/x", &[]).await;
    let r = e.send("GET", "", &[("uploads", "")], &[], Vec::new()).await;
    assert_eq!(r.xml_all("Key"), ["dst.bin", "other/x"]);
    assert!(r.xml("Initiated").unwrap().ends_with('Z'));
    let r = e
        .send(
            "GET",
            "",
            &[
                ("uploads", ""),
                ("delimiter", "/"),
                ("encoding-type", "url"),
            ],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
    assert_eq!(r.xml_all("Key"), ["dst.bin"]);
    assert!(r.text().contains("<Prefix>other/</Prefix>"));
    let r = e
        .send(
            "GET",
            "",
            &[("uploads", ""), ("max-uploads", "1")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextKeyMarker").as_deref(), Some("dst.bin"));
    // Abort.
    assert_eq!(
        e.send(
            "DELETE",
            "other/x",
            &[("uploadId", &other)],
            &[],
            Vec::new()
        )
        .await
        .status,
        204
    );
    assert_eq!(
        e.send(
            "DELETE",
            "other/x",
            &[("uploadId", &other)],
            &[],
            Vec::new()
        )
        .await
        .status,
        404
    );
    let r = complete(&e, "dst.bin", &id, &[(1, &etags[0]), (2, &etags[1])]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        e.send("GET", "dst.bin", &[], &[], Vec::new()).await.body,
        src
    );
}
