//! Issue 9's emulator items over real HTTP: versionId on an unversioned bucket, `max-keys=0`,
//! anonymous access to public-read / public-read-write buckets, sub-account grants, PUT without
//! a length, the POST Object policy's required conditions and key time, and the smaller rules
//! (Delete Multiple's Quiet and empty keys, metadata names, object ACL values, one ACL method,
//! CR/LF in overrides) — each error answered as COS's XML with a request id.

mod emulator_support;

use base64::Engine;
use cosfuse::cos::sign;
use emulator_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts a COS error answer: status, code, XML body with a RequestId, request id header.
fn assert_cos_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.code(), code, "{}", r.text());
    assert_eq!(r.h("content-type").as_deref(), Some("application/xml"));
    let id = r.h("x-cos-request-id").expect("x-cos-request-id");
    assert_eq!(r.xml("RequestId").as_deref(), Some(id.as_str()));
}

fn md5_b64(b: &[u8]) -> String {
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b))
}

async fn delete_multiple(e: &Emu, body: &str) -> Resp {
    let md5 = md5_b64(body.as_bytes());
    e.send(
        "POST",
        "",
        &[("delete", "")],
        &[("Content-MD5", md5.as_str())],
        body.as_bytes().to_vec(),
    )
    .await
}

#[tokio::test]
async fn version_ids_on_an_unversioned_bucket() {
    let e = Emu::start().await;
    e.put("v.txt", b"live").await;
    let v = [("versionId", "MTg0NDUxNzc2ODQ0NjI2NTI")];
    for method in ["GET", "DELETE"] {
        let r = e.send(method, "v.txt", &v, &[], Vec::new()).await;
        assert_cos_error(&r, 404, "NoSuchVersion");
    }
    let r = e.send("HEAD", "v.txt", &v, &[], Vec::new()).await;
    assert_eq!(r.status, 404);
    // The live object was not touched by the DELETE.
    let g = e.send("GET", "v.txt", &[], &[], Vec::new()).await;
    assert_eq!(g.body, b"live");
    // `null` is the one version an unversioned bucket has.
    let g = e
        .send("GET", "v.txt", &[("versionId", "null")], &[], Vec::new())
        .await;
    assert_eq!(g.body, b"live");
    // Copy from a named version.
    let src = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/v.txt?versionId=abc");
    let r = e
        .send(
            "PUT",
            "copy.txt",
            &[],
            &[("x-cos-copy-source", src.as_str())],
            Vec::new(),
        )
        .await;
    assert_cos_error(&r, 404, "NoSuchVersion");
    // Delete Multiple: the entry with an unknown version errs and deletes nothing.
    let r = delete_multiple(
        &e,
        "<Delete><Object><Key>v.txt</Key><VersionId>abc</VersionId></Object></Delete>",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchVersion"));
    assert!(r.xml("Deleted").is_none(), "{}", r.text());
    let g = e.send("GET", "v.txt", &[], &[], Vec::new()).await;
    assert_eq!(g.body, b"live");
}

#[tokio::test]
async fn max_keys_zero_is_an_empty_final_page() {
    let e = Emu::start().await;
    e.put("a", b"1").await;
    e.put("b", b"2").await;
    let r = e
        .send("GET", "", &[("max-keys", "0")], &[], Vec::new())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    assert!(r.xml("NextMarker").is_none(), "{}", r.text());
    assert!(r.xml_all("Key").is_empty());
}

#[tokio::test]
async fn anonymous_access_follows_the_bucket_acl() {
    let e = Emu::start().await;
    // Private bucket: a missing key leaks nothing.
    assert_cos_error(&e.anon("GET", "nope", &[]).await, 403, "AccessDenied");
    let r = e.put_acl("", &[("x-cos-acl", "public-read")]).await;
    assert_eq!(r.status, 200);
    // Public-read: the bucket is listable, so a missing key is plainly missing.
    assert_cos_error(&e.anon("GET", "nope", &[]).await, 404, "NoSuchKey");
    assert_eq!(e.anon("HEAD", "nope", &[]).await.status, 404);
    let put = e
        .send_as(None, "PUT", "anon.txt", &[], &[], b"anon".to_vec())
        .await;
    assert_cos_error(&put, 403, "AccessDenied");
    // Public-read-write: anonymous writes are allowed.
    let r = e.put_acl("", &[("x-cos-acl", "public-read-write")]).await;
    assert_eq!(r.status, 200);
    let put = e
        .send_as(None, "PUT", "anon.txt", &[], &[], b"anon".to_vec())
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(e.anon("GET", "anon.txt", &[]).await.body, b"anon");
}

#[tokio::test]
async fn sub_account_grants_name_owner_and_sub_account() {
    let e = Emu::start().await;
    e.put("g.txt", b"x").await;
    let r = e
        .put_acl(
            "g.txt",
            &[
                ("x-cos-grant-read", "id=\"100000000001/100000000011\""),
                ("x-cos-grant-full-control", "id=\"100000000001\""),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let acl = e
        .send("GET", "g.txt", &[("acl", "")], &[], Vec::new())
        .await;
    let ids = acl.xml_all("ID");
    assert!(
        ids.iter()
            .any(|i| i == "qcs::cam::uin/100000000001:uin/100000000011"),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i == "qcs::cam::uin/100000000001:uin/100000000001"),
        "{ids:?}"
    );
    assert!(!acl.text().contains("100000000001/100000000011"));
}

/// Sends raw HTTP/1.1 bytes and returns the whole answer as text.
async fn raw(e: &Emu, head: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(e.host()).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn put_without_any_length_is_411() {
    let e = Emu::start().await;
    let path = format!("/{BUCKET}/nolen.txt");
    let host = e.host();
    let t = now();
    let auth = sign::authorization(
        ID,
        KEY,
        "PUT",
        &path,
        &[],
        &[("host", host.as_str())],
        t - 60,
        t + 600,
    );
    let answer = raw(
        &e,
        &format!(
            "PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(answer.contains("<Code>MissingContentLength</Code>"));
    assert!(answer.contains("<RequestId>"));
    // Nothing was stored.
    let g = e.send("HEAD", "nolen.txt", &[], &[], Vec::new()).await;
    assert_eq!(g.status, 404);
}

fn form(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--BOUND\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(
        b"--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\n",
    );
    b.extend_from_slice(file);
    b.extend_from_slice(b"\r\n--BOUND--\r\n");
    b
}

#[tokio::test]
async fn post_policy_needs_the_signature_conditions_and_a_live_key_time() {
    let e = Emu::start().await;
    let t = now();
    let exp = chrono::DateTime::from_timestamp(t + 600, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let post = |conditions: String, key_time: String| {
        let policy = format!("{{\"expiration\":\"{exp}\",\"conditions\":[{conditions}]}}");
        let sig = sign::post_policy_signature(KEY, &key_time, &policy);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&policy);
        let body = form(
            &[
                ("key", "form.txt"),
                ("policy", &b64),
                ("q-sign-algorithm", "sha1"),
                ("q-ak", ID),
                ("q-key-time", &key_time),
                ("q-signature", &sig),
            ],
            b"form",
        );
        let url = format!("http://{}/{BUCKET}/", e.host());
        let client = e.client.clone();
        async move {
            let r = client
                .post(url)
                .header("Content-Type", "multipart/form-data; boundary=BOUND")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let live = format!("{};{}", t - 60, t + 600);
    let full = |kt: &str| {
        format!("{{\"q-sign-algorithm\":\"sha1\"}},{{\"q-ak\":\"{ID}\"}},{{\"q-sign-time\":\"{kt}\"}},{{\"bucket\":\"{BUCKET}\"}}")
    };
    // Each required condition missing in turn: refused, although correctly signed.
    for missing in ["q-sign-algorithm", "q-ak", "q-sign-time"] {
        let conds = full(&live)
            .split("},")
            .filter(|c| !c.contains(missing))
            .collect::<Vec<_>>()
            .join("},");
        let (status, text) = post(conds, live.clone()).await;
        assert_eq!(status, 400, "{missing}: {text}");
        assert!(
            text.contains("<Code>InvalidPolicyDocument</Code>"),
            "{text}"
        );
        assert!(text.contains(&format!("must include {missing}")), "{text}");
    }
    // An expired key time is refused even with a signature that matches it.
    let old = format!("{};{}", t - 7200, t - 3600);
    let (status, text) = post(full(&old), old.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Request has expired"), "{text}");
    // The complete policy in its window is accepted.
    let (status, text) = post(full(&live), live.clone()).await;
    assert_eq!(status, 204, "{text}");
}

#[tokio::test]
async fn delete_multiple_quiet_values_and_empty_keys() {
    let e = Emu::start().await;
    e.put("q.txt", b"x").await;
    let r = delete_multiple(
        &e,
        "<Delete><Quiet>yes</Quiet><Object><Key>q.txt</Key></Object></Delete>",
    )
    .await;
    assert_cos_error(&r, 400, "MalformedXML");
    assert_eq!(
        e.send("HEAD", "q.txt", &[], &[], Vec::new()).await.status,
        200
    );
    // An empty key names no object: reported without an error, nothing else touched.
    let r = delete_multiple(
        &e,
        "<Delete><Quiet>false</Quiet><Object><Key></Key></Object></Delete>",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.xml("Error").is_none(), "{}", r.text());
    assert_eq!(
        e.send("HEAD", "q.txt", &[], &[], Vec::new()).await.status,
        200
    );
    // Content-MD5 is checked when sent, not required (both SDKs send it).
    let body = b"<Delete><Object><Key>q.txt</Key></Object></Delete>".to_vec();
    let r = e.send("POST", "", &[("delete", "")], &[], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        e.send("HEAD", "q.txt", &[], &[], Vec::new()).await.status,
        404
    );
}

#[tokio::test]
async fn metadata_names_and_object_acl_rules() {
    let e = Emu::start().await;
    let r = e
        .send(
            "PUT",
            "m.txt",
            &[],
            &[("x-cos-meta-my_name", "v")],
            b"x".to_vec(),
        )
        .await;
    assert_cos_error(&r, 400, "InvalidArgument");
    let r = e
        .send(
            "PUT",
            "m.txt",
            &[],
            &[("x-cos-meta-my-name", "v")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200);
    for (h, v) in [
        ("x-cos-acl", "public-read-write"),
        ("x-cos-acl", "authenticated-read"),
        ("x-cos-grant-write", "id=\"100000000002\""),
    ] {
        let r = e.put_acl("m.txt", &[(h, v)]).await;
        assert_cos_error(&r, 400, "InvalidArgument");
    }
    let body = "<AccessControlPolicy><Owner><ID>qcs::cam::uin/100000000001:uin/100000000001</ID></Owner><AccessControlList><Grant><Grantee><ID>qcs::cam::uin/100000000002:uin/100000000002</ID></Grantee><Permission>WRITE</Permission></Grant></AccessControlList></AccessControlPolicy>";
    let r = e
        .send(
            "PUT",
            "m.txt",
            &[("acl", "")],
            &[],
            body.as_bytes().to_vec(),
        )
        .await;
    assert_cos_error(&r, 400, "InvalidArgument");
    // Headers and a body together: one method only.
    let ok_body = body.replace("WRITE", "READ");
    let r = e
        .send(
            "PUT",
            "m.txt",
            &[("acl", "")],
            &[("x-cos-acl", "private")],
            ok_body.as_bytes().to_vec(),
        )
        .await;
    assert_cos_error(&r, 400, "InvalidRequest");
    let r = e
        .send(
            "PUT",
            "m.txt",
            &[("acl", "")],
            &[],
            ok_body.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for v in ["default", "private", "public-read"] {
        let r = e.put_acl("m.txt", &[("x-cos-acl", v)]).await;
        assert_eq!(r.status, 200, "{v}: {}", r.text());
    }
}

#[tokio::test]
async fn control_characters_in_overrides_are_a_cos_error() {
    let e = Emu::start().await;
    e.put("o.txt", b"x").await;
    let r = e
        .send(
            "GET",
            "o.txt",
            &[("response-content-type", "text/plain\r\nx-evil: 1")],
            &[],
            Vec::new(),
        )
        .await;
    assert_cos_error(&r, 400, "InvalidArgument");
    assert!(r.h("x-evil").is_none());
}
