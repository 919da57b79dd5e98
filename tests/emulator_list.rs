//! GET Bucket against an in-process emulator: byte order, prefixes and delimiters, paging with
//! NextMarker (also without a delimiter), max-keys counting CommonPrefixes, encoding-type=url.

mod emulator_support;

use emulator_support::*;

async fn list(e: &Emu, q: &[(&str, &str)]) -> Resp {
    let r = e.send("GET", "", q, &[], Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

#[tokio::test]
async fn order_prefix_delimiter_and_common_prefixes() {
    let e = Emu::start().await;
    for k in [
        "b", "a/2", "a/1", "a", "a/sub/x", "a/sub/y", "c/d", "é", "Z",
    ] {
        e.put(k, b"x").await;
    }
    let r = list(&e, &[]).await;
    // UTF-8 byte order: upper case before lower case, multibyte last.
    assert_eq!(
        r.xml_all("Key"),
        ["Z", "a", "a/1", "a/2", "a/sub/x", "a/sub/y", "b", "c/d", "é"]
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    assert!(r.xml("NextMarker").is_none());
    assert_eq!(r.h("x-cos-bucket-region").as_deref(), Some("ap-guangzhou"));
    assert_eq!(r.xml("Name").as_deref(), Some(BUCKET));
    assert_eq!(r.xml("ID").as_deref(), Some("1250000000"));
    assert_eq!(r.xml("StorageClass").as_deref(), Some("STANDARD"));
    assert!(r.xml("LastModified").unwrap().ends_with(".000Z"));
    assert_eq!(
        r.xml("ETag").unwrap(),
        "\"9dd4e461268c8034f5c8564e155c67a6\""
    );
    let r = list(&e, &[("delimiter", "/")]).await;
    assert_eq!(r.xml_all("Key"), ["Z", "a", "b", "é"]);
    let cps: Vec<String> = r
        .xml_all("CommonPrefixes")
        .iter()
        .map(|c| unescape(&c.replace("<Prefix>", "").replace("</Prefix>", "")))
        .collect();
    assert_eq!(cps, ["a/", "c/"]);
    let r = list(&e, &[("prefix", "a/"), ("delimiter", "/")]).await;
    assert_eq!(r.xml_all("Key"), ["a/1", "a/2"]);
    assert!(r
        .text()
        .contains("<CommonPrefixes><Prefix>a/sub/</Prefix></CommonPrefixes>"));
    let r = e
        .send("GET", "", &[("delimiter", "//")], &[], Vec::new())
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDelimiter"));
}

#[tokio::test]
async fn paging_counts_prefixes_and_marks_next() {
    let e = Emu::start().await;
    for k in ["a1", "a2", "d/1", "d/2", "e/1", "f1", "g1"] {
        e.put(k, b"x").await;
    }
    // Flat listing, no delimiter: NextMarker still present.
    let r = list(&e, &[("max-keys", "3")]).await;
    assert_eq!(r.xml_all("Key"), ["a1", "a2", "d/1"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextMarker").as_deref(), Some("d/1"));
    assert_eq!(r.xml("MaxKeys").as_deref(), Some("3"));
    // With a delimiter, prefixes count toward max-keys and can be the NextMarker.
    let mut marker = String::new();
    let mut seen = Vec::new();
    for page in 0..10 {
        let r = list(
            &e,
            &[("delimiter", "/"), ("max-keys", "2"), ("marker", &marker)],
        )
        .await;
        let keys = r.xml_all("Key");
        let cps: Vec<String> = r
            .xml_all("Prefix")
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        assert!(keys.len() + cps.len() <= 2, "page {page}");
        seen.extend(keys);
        seen.extend(cps);
        if r.xml("IsTruncated").as_deref() == Some("false") {
            break;
        }
        marker = r.xml("NextMarker").expect("NextMarker when truncated");
    }
    seen.sort();
    assert_eq!(seen, ["a1", "a2", "d/", "e/", "f1", "g1"]);
    // Marker is strictly after, and a prefix marker skips its whole subtree.
    let r = list(&e, &[("delimiter", "/"), ("marker", "d/")]).await;
    assert_eq!(r.xml_all("Key"), ["f1", "g1"]);
    assert!(r.text().contains("<Prefix>e/</Prefix>"));
    assert!(!r.text().contains("<Prefix>d/</Prefix>"));
    let r = list(&e, &[("marker", "a2")]).await;
    assert_eq!(r.xml_all("Key")[0], "d/1");
    // max-keys above 1000 is capped.
    let r = list(&e, &[("max-keys", "5000")]).await;
    assert_eq!(r.xml("MaxKeys").as_deref(), Some("1000"));
}

#[tokio::test]
async fn encoding_type_url() {
    let e = Emu::start().await;
    for k in ["docs/报告 Q1.pdf", "docs/sub+1/x", "docs/a~b.txt"] {
        e.put(k, b"x").await;
    }
    let r = list(
        &e,
        &[
            ("prefix", "docs/"),
            ("delimiter", "/"),
            ("encoding-type", "url"),
            ("marker", "docs/a file"),
        ],
    )
    .await;
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
    assert_eq!(r.xml("Marker").as_deref(), Some("docs/a%20file"));
    assert_eq!(
        r.xml_all("Key"),
        ["docs/a~b.txt", "docs/%E6%8A%A5%E5%91%8A%20Q1.pdf"]
    );
    assert!(r.text().contains("<Prefix>docs/sub%2B1/</Prefix>"));
    // Without encoding-type the raw key comes back.
    let r = list(&e, &[("prefix", "docs/报")]).await;
    assert_eq!(r.xml_all("Key"), ["docs/报告 Q1.pdf"]);
}

#[tokio::test]
async fn listing_five_thousand_keys_in_five_pages() {
    let e = Emu::start().await;
    {
        // Create directly through storage to keep the test fast.
        let b = e.emu.state().storage.bucket(BUCKET).unwrap();
        for i in 0..5000 {
            let tmp = b.tmp_path();
            std::fs::write(&tmp, b"").unwrap();
            let meta = cosfuse::emulator::storage::ObjectMeta {
                key: format!("dir/f{i:05}"),
                size: 0,
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
                crc64: Some(0),
                last_modified: 1_700_000_000,
                headers: Default::default(),
                storage_class: "STANDARD".into(),
                acl: Default::default(),
                restore: None,
                data_file: String::new(),
            };
            b.put(meta, &tmp).unwrap();
        }
    }
    e.emu.stats().reset();
    let mut marker = String::new();
    let mut total = 0;
    for _ in 0..10 {
        let r = list(
            &e,
            &[("prefix", "dir/"), ("delimiter", "/"), ("marker", &marker)],
        )
        .await;
        total += r.xml_all("Key").len();
        if r.xml("IsTruncated").as_deref() != Some("true") {
            break;
        }
        marker = r.xml("NextMarker").unwrap();
    }
    assert_eq!(total, 5000);
    assert_eq!(e.emu.stats().get("GetBucket"), 5);
}

#[tokio::test]
async fn list_objects_v2_location_and_unsupported_subresources() {
    let e = Emu::start().await;
    for k in ["a", "b/1", "b/2", "c", "d"] {
        e.put(k, b"x").await;
    }
    let mut token = String::new();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut q = vec![("list-type", "2"), ("delimiter", "/"), ("max-keys", "2")];
        if !token.is_empty() {
            q.push(("continuation-token", &token));
        }
        let r = list(&e, &q).await;
        let n = r.xml("KeyCount").unwrap().parse::<usize>().unwrap();
        let keys = r.xml_all("Key");
        let cps: Vec<String> = r
            .xml_all("Prefix")
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(n, keys.len() + cps.len());
        assert!(r.xml("Marker").is_none());
        seen.extend(keys);
        seen.extend(cps);
        match r.xml("NextContinuationToken") {
            Some(t) => token = t,
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b/", "c", "d"]);
    let r = list(&e, &[("list-type", "2"), ("start-after", "c")]).await;
    assert_eq!(r.xml_all("Key"), ["d"]);
    let r = list(&e, &[("location", "")]).await;
    assert_eq!(r.xml("LocationConstraint").as_deref(), Some("ap-guangzhou"));
    let r = e.send("GET", "", &[("policy", "")], &[], Vec::new()).await;
    assert_eq!((r.status, r.code().as_str()), (501, "NotImplemented"));
    let r = e
        .send("PUT", "a", &[("tagging", "")], &[], b"<Tagging/>".to_vec())
        .await;
    assert_eq!(r.status, 501);
    // The object was not overwritten by the unsupported request.
    assert_eq!(e.send("GET", "a", &[], &[], Vec::new()).await.body, b"x");
}
