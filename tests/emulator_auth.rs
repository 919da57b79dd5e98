//! The emulator's signature verifier against recorded SDK traffic
//! (`cos-vectors/observed-requests.json`), tampering, the time rules, and a few checks over HTTP.

mod emulator_support;

use cosfuse::cos::{sign, sigv4};
use cosfuse::emulator::auth::{self, AuthRequest, Identity};
use cosfuse::emulator::Credential;
use emulator_support::*;
use serde_json::Value;

const VEC_ID: &str = "AKIDcosVECTORexample00000000000000000";
const VEC_KEY: &str = "cosVECTORsecretKEYexample0000000";

/// One recorded request.
struct Recorded {
    label: String,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    ok: bool,
}

fn recorded() -> Vec<Recorded> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/observed-requests.json"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let mut out = Vec::new();
    for ex in v["exchanges"].as_array().unwrap() {
        for (i, a) in ex["attempts"].as_array().unwrap().iter().enumerate() {
            let r = &a["request"];
            let check = &a["independent_signature_check"];
            if check["present"] != true {
                continue;
            }
            out.push(Recorded {
                label: format!("{}#{i}", ex["label"].as_str().unwrap()),
                method: r["method"].as_str().unwrap().to_string(),
                target: r["request_target"].as_str().unwrap().to_string(),
                headers: r["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_string(),
                            h[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
                ok: check["ok"] == true,
            });
        }
    }
    out
}

fn creds() -> Vec<Credential> {
    vec![Credential::new(VEC_ID, VEC_KEY)]
}

/// The request's signed window start (header or presigned query), plus its lists.
fn sig_fields(r: &Recorded) -> (i64, i64, Vec<String>, Vec<String>) {
    let fields: Vec<(String, String)> = match auth::header(&r.headers, "authorization") {
        Some(a) => a
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
        None => auth::parse_query(r.target.split_once('?').unwrap().1),
    };
    let get = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (s, e) = get("q-sign-time")
        .split_once(';')
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .unwrap();
    let list = |n: &str| {
        get(n)
            .split(';')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    (s, e, list("q-header-list"), list("q-url-param-list"))
}

fn check(
    r: &Recorded,
    target: &str,
    headers: &[(String, String)],
    now: i64,
) -> Result<Identity, String> {
    auth::verify(
        &AuthRequest {
            method: &r.method,
            target,
            headers,
        },
        &creds(),
        now,
    )
    .map_err(|e| e.code.to_string())
}

#[test]
fn every_correctly_signed_recorded_request_is_accepted() {
    let all = recorded();
    assert!(all.len() >= 70, "only {} recorded requests", all.len());
    let mut accepted = 0;
    for r in all.iter().filter(|r| r.ok) {
        let (start, _, _, _) = sig_fields(r);
        let got = check(r, &r.target, &r.headers, start + 30);
        assert!(
            matches!(got, Ok(Identity::Signed { .. })),
            "{}: {got:?}",
            r.label
        );
        accepted += 1;
    }
    assert!(accepted >= 70);
}

#[test]
fn python_host_without_port_is_tolerated() {
    let r = recorded()
        .into_iter()
        .find(|r| r.label.starts_with("py.custom_domain_with_port"))
        .unwrap();
    assert!(!r.ok);
    let (start, _, _, _) = sig_fields(&r);
    assert!(check(&r, &r.target, &r.headers, start + 30).is_ok());
    // The leniency only strips the port: another host still fails.
    let mut h = r.headers.clone();
    for (n, v) in h.iter_mut() {
        if n.eq_ignore_ascii_case("host") {
            *v = "127.0.0.2:18081".into();
        }
    }
    assert_eq!(
        check(&r, &r.target, &h, start + 30),
        Err("SignatureDoesNotMatch".into())
    );
}

#[test]
fn changing_any_signed_byte_is_rejected() {
    let mut tampered = 0;
    for r in recorded().iter().filter(|r| r.ok) {
        let (start, _, header_list, param_list) = sig_fields(r);
        let now = start + 30;
        // 1. The path.
        let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
        let t = if query.is_empty() {
            format!("{path}x")
        } else {
            format!("{path}x?{query}")
        };
        assert_eq!(
            check(r, &t, &r.headers, now),
            Err("SignatureDoesNotMatch".into()),
            "{} path",
            r.label
        );
        tampered += 1;
        // 2. Every signed header value.
        for name in &header_list {
            let mut h = r.headers.clone();
            let slot = h
                .iter_mut()
                .find(|(n, _)| n.to_ascii_lowercase() == *name)
                .unwrap_or_else(|| panic!("{}: signed header {name} not sent", r.label));
            slot.1.push('x');
            assert_eq!(
                check(r, &r.target, &h, now),
                Err("SignatureDoesNotMatch".into()),
                "{} header {name}",
                r.label
            );
            tampered += 1;
        }
        // 3. Every signed query value.
        for name in &param_list {
            let pairs: Vec<String> = query
                .split('&')
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    if sign::cos_encode(&auth::percent_decode(k, true)).to_lowercase() == *name {
                        format!("{k}={v}x")
                    } else {
                        p.to_string()
                    }
                })
                .collect();
            let t = format!("{path}?{}", pairs.join("&"));
            assert_ne!(t, r.target);
            assert_eq!(
                check(r, &t, &r.headers, now),
                Err("SignatureDoesNotMatch".into()),
                "{} param {name}",
                r.label
            );
            tampered += 1;
        }
    }
    assert!(tampered > 200, "{tampered}");
}

#[test]
fn time_window_and_key_rules() {
    let r = recorded()
        .into_iter()
        .find(|r| r.ok && r.label.starts_with("node.getObject.nosuchkey"))
        .unwrap();
    let (start, end, _, _) = sig_fields(&r);
    let err = |now| {
        auth::verify(
            &AuthRequest {
                method: &r.method,
                target: &r.target,
                headers: &r.headers,
            },
            &creds(),
            now,
        )
        .unwrap_err()
    };
    let e = err(end + 1);
    assert_eq!(
        (e.status, e.code, e.message.as_str()),
        (403, "AccessDenied", "Request has expired")
    );
    assert_eq!(err(start - 901).code, "RequestTimeTooSkewed");
    assert!(check(&r, &r.target, &r.headers, start - 899).is_ok());
    let other = [Credential::new("AKIDother", VEC_KEY)];
    let e = auth::verify(
        &AuthRequest {
            method: &r.method,
            target: &r.target,
            headers: &r.headers,
        },
        &other,
        start + 1,
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidAccessKeyId");
    // Wrong secret: mismatch with the server's StringToSign and FormatString.
    let wrong = [Credential::new(VEC_ID, "not-the-secret")];
    let e = auth::verify(
        &AuthRequest {
            method: &r.method,
            target: &r.target,
            headers: &r.headers,
        },
        &wrong,
        start + 1,
    )
    .unwrap_err();
    assert_eq!(e.code, "SignatureDoesNotMatch");
    assert!(e.format_string.unwrap().starts_with("get\n/missing.txt\n"));
    assert!(e.string_to_sign.unwrap().starts_with("sha1\n"));
}

#[test]
fn temporary_token_must_match_when_configured() {
    let r = recorded()
        .into_iter()
        .find(|r| r.label.starts_with("py.put_object.temporary_credentials"))
        .unwrap();
    let (start, _, _, _) = sig_fields(&r);
    let mut c = Credential::new(VEC_ID, VEC_KEY);
    c.token = Some("tmpTOKENexample+/=abc123".into());
    let req = AuthRequest {
        method: &r.method,
        target: &r.target,
        headers: &r.headers,
    };
    assert!(auth::verify(&req, &[c.clone()], start + 5).is_ok());
    c.token = Some("another".into());
    assert!(auth::verify(&req, &[c], start + 5).is_err());
}

#[tokio::test]
async fn over_http_wrong_secret_and_anonymous_are_refused() {
    let e = Emu::start().await;
    e.put("a.txt", b"hello").await;
    let r = e
        .send_as(Some((ID, "wrong")), "GET", "a.txt", &[], &[], Vec::new())
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    assert!(r.xml("StringToSign").unwrap().starts_with("sha1\n"));
    assert!(r
        .xml("FormatString")
        .unwrap()
        .starts_with("get\n/examplebucket-1250000000/a.txt\n"));
    assert!(r.h("x-cos-trace-id").is_some() && r.h("x-cos-request-id").is_some());
    assert_eq!(r.h("server").as_deref(), Some("tencent-cos"));
    assert!(r.h("date").is_some());
    let r = e
        .send_as(
            Some(("AKIDunknown", KEY)),
            "GET",
            "a.txt",
            &[],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.code(), "InvalidAccessKeyId");
    let r = e.anon("GET", "a.txt", &[]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    let r = e.anon("PUT", "b.txt", &[]).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn over_http_presigned_url_works_with_both_semicolon_forms() {
    let e = Emu::start().await;
    e.put("docs/a b.txt", b"presigned").await;
    let t = now();
    let host = e.host();
    let path = format!("/{BUCKET}/docs/a b.txt");
    let q = sign::presign_query(
        ID,
        KEY,
        "GET",
        &path,
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let url = format!("http://{host}{}?{q}", encode_path(&path));
    let r = e.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"presigned");
    // Node's form: `;` left raw.
    let raw = url.replace("%3B", ";");
    assert_ne!(raw, url);
    assert_eq!(e.client.get(&raw).send().await.unwrap().status(), 200);
    // Expired URL.
    let q = sign::presign_query(
        ID,
        KEY,
        "GET",
        &path,
        &[],
        &[("host", &host)],
        t - 600,
        t - 10,
    );
    let url = format!("http://{host}{}?{q}", encode_path(&path));
    let r = e.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Request has expired"));
}

fn sigv4_headers(
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    sigv4_headers_with(method, host, path, &sigv4::sha256_hex(body), extra)
}

fn sigv4_headers_with(
    method: &str,
    host: &str,
    path: &str,
    payload: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let payload = payload.to_string();
    let mut hs: Vec<(&str, &str)> = vec![
        ("host", host),
        ("x-amz-content-sha256", &payload),
        ("x-amz-date", &amz_date),
    ];
    hs.extend_from_slice(extra);
    let mut names: Vec<String> = hs.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    let signed = names.join(";");
    let creq = sigv4::canonical_request(
        method,
        &sigv4::uri_encode(path, false),
        "",
        &hs,
        &signed,
        &payload,
    );
    let scope = format!("{date}/ap-guangzhou/s3/aws4_request");
    let sts = sigv4::string_to_sign(&amz_date, &scope, &creq);
    let sig = sigv4::signature(&sigv4::signing_key(KEY, date, "ap-guangzhou", "s3"), &sts);
    let mut out: Vec<(String, String)> = hs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={ID}/{scope}, SignedHeaders={signed}, Signature={sig}"
        ),
    ));
    out
}

#[tokio::test]
async fn over_http_sigv4_with_amz_names() {
    let e = Emu::start().await;
    let host = e.host();
    let path = format!("/{BUCKET}/s3/obj.txt");
    let body = b"from an s3 tool".to_vec();
    let hs = sigv4_headers(
        "PUT",
        &host,
        &path,
        &body,
        &[
            ("x-amz-meta-color", "blue"),
            ("x-amz-storage-class", "STANDARD_IA"),
        ],
    );
    let mut req = e.client.put(format!("http://{host}{path}"));
    for (n, v) in &hs {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let r = req.body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let head = e.send("HEAD", "s3/obj.txt", &[], &[], Vec::new()).await;
    assert_eq!(head.h("x-cos-meta-color").as_deref(), Some("blue"));
    assert_eq!(
        head.h("x-cos-storage-class").as_deref(),
        Some("STANDARD_IA")
    );
    // Wrong secret under SigV4.
    let mut req = e.client.get(format!("http://{host}{path}"));
    for (n, v) in sigv4_headers("GET", &host, &path, b"", &[]) {
        if n == "authorization" {
            req = req.header(n, v.replace("Signature=", "Signature=0"));
        } else if n != "host" {
            req = req.header(n, v);
        }
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));
    // The body must match the signed payload hash.
    let hs = sigv4_headers("PUT", &host, &path, b"signed body", &[]);
    let mut req = e.client.put(format!("http://{host}{path}"));
    for (n, v) in &hs {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let r = req.body("other body!").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("XAmzContentSHA256Mismatch"));
    let get = e.send("GET", "s3/obj.txt", &[], &[], Vec::new()).await;
    assert_eq!(get.body, body);
    // Mixing families is refused.
    let r = e
        .send(
            "PUT",
            "mixed.txt",
            &[],
            &[("x-amz-meta-a", "1"), ("x-cos-meta-b", "2")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn over_http_sigv4_presigned_url() {
    let e = Emu::start().await;
    e.put("p.txt", b"presigned v4").await;
    let host = e.host();
    let path = format!("/{BUCKET}/p.txt");
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let scope = format!("{date}/ap-guangzhou/s3/aws4_request");
    let cred = format!("{ID}/{scope}");
    let url_for = |expires: &str, date: &str| {
        let q: Vec<(&str, &str)> = vec![
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", &cred),
            ("X-Amz-Date", date),
            ("X-Amz-Expires", expires),
            ("X-Amz-SignedHeaders", "host"),
        ];
        let cq = sigv4::canonical_query(&q);
        let creq = sigv4::canonical_request(
            "GET",
            &path,
            &cq,
            &[("host", &host)],
            "host",
            "UNSIGNED-PAYLOAD",
        );
        let sts = sigv4::string_to_sign(date, &scope, &creq);
        let sig = sigv4::signature(
            &sigv4::signing_key(KEY, &date[..8], "ap-guangzhou", "s3"),
            &sts,
        );
        format!("http://{host}{path}?{cq}&X-Amz-Signature={sig}")
    };
    let r = e
        .client
        .get(url_for("300", &amz_date))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"presigned v4");
    // Signed an hour ago for 60 s: expired.
    let old = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let r = e.client.get(url_for("60", &old)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Request has expired"));
}

#[tokio::test]
async fn over_http_sigv4_streaming_aws_chunked_body() {
    let e = Emu::start().await;
    let host = e.host();
    let path = format!("/{BUCKET}/s3/chunked.txt");
    let hs = sigv4_headers_with(
        "PUT",
        &host,
        &path,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
    );
    let mut req = e.client.put(format!("http://{host}{path}"));
    for (n, v) in &hs {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let body = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    let r = req.body(body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let g = e.send("GET", "s3/chunked.txt", &[], &[], Vec::new()).await;
    assert_eq!(g.body, b"hello world");
    assert!(g.h("content-encoding").is_none());
}
