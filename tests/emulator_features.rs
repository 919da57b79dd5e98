//! Delete Multiple, object ACLs, archive restore, CORS, POST Object, fault injection, request
//! counters and the binary's command-line contract, against the emulator.

mod emulator_support;

use std::time::Duration;

use base64::Engine;
use cosfuse::cos::sign;
use cosfuse::emulator::FaultConfig;
use emulator_support::*;

fn md5_b64(b: &[u8]) -> String {
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b))
}

#[tokio::test]
async fn delete_multiple_verbose_quiet_and_limits() {
    let e = Emu::start().await;
    for k in ["docs/a.txt", "docs/目录/文件 b.txt", "keep"] {
        e.put(k, b"x").await;
    }
    let body = "<Delete><Object><Key>docs/a.txt</Key></Object><Object><Key>docs/目录/文件 b.txt</Key></Object><Object><Key>never-existed</Key></Object><Quiet>false</Quiet></Delete>";
    let md5 = md5_b64(body.as_bytes());
    let r = e
        .send(
            "POST",
            "",
            &[("delete", "")],
            &[("Content-MD5", &md5)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.xml_all("Key"),
        ["docs/a.txt", "docs/目录/文件 b.txt", "never-existed"]
    );
    assert!(!r.text().contains("<Error>"));
    let l = e.send("GET", "", &[], &[], Vec::new()).await;
    assert_eq!(l.xml_all("Key"), ["keep"]);
    // Quiet: nothing reported on success; Quiet first, with a declaration (Python's order).
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Delete><Quiet>true</Quiet><Object><Key>keep</Key></Object></Delete>";
    let r = e.send("POST", "", &[("delete", "")], &[], body).await;
    assert_eq!(r.status, 200);
    assert!(r.xml_all("Key").is_empty());
    // Wrong Content-MD5, too many keys.
    let r = e
        .send(
            "POST",
            "",
            &[("delete", "")],
            &[("Content-MD5", &md5)],
            "<Delete><Object><Key>x</Key></Object></Delete>",
        )
        .await;
    assert_eq!(r.code(), "BadDigest");
    let many: String = (0..1001)
        .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
        .collect();
    let r = e
        .send(
            "POST",
            "",
            &[("delete", "")],
            &[],
            format!("<Delete>{many}</Delete>"),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "MalformedXML"));
}

#[tokio::test]
async fn object_acl_round_trip_and_anonymous_access() {
    let e = Emu::start().await;
    e.put("docs/a.txt", b"acl").await;
    assert_eq!(e.anon("GET", "docs/a.txt", &[]).await.status, 403);
    let r = e
        .send("GET", "docs/a.txt", &[("acl", "")], &[], Vec::new())
        .await;
    assert_eq!(r.h("x-cos-acl").as_deref(), Some("default"));
    assert!(r.text().contains("<Permission>FULL_CONTROL</Permission>"));
    // Headers form.
    let r = e
        .send(
            "PUT",
            "docs/a.txt",
            &[("acl", "")],
            &[
                ("x-cos-acl", "public-read"),
                (
                    "x-cos-grant-read",
                    "id=\"qcs::cam::uin/100000000001:uin/100000000011\"",
                ),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = e.anon("GET", "docs/a.txt", &[]).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b"acl"[..]));
    assert_eq!(e.anon("HEAD", "docs/a.txt", &[]).await.status, 200);
    let r = e
        .send("GET", "docs/a.txt", &[("acl", "")], &[], Vec::new())
        .await;
    assert_eq!(r.h("x-cos-acl").as_deref(), Some("public-read"));
    let t = r.text();
    assert!(t.contains("xsi:type=\"Group\""), "{t}");
    assert!(t.contains("<URI>http://cam.qcloud.com/groups/global/AllUsers</URI>"));
    assert!(t.contains("<DisplayName>qcs::cam::uin/100000000001:uin/100000000011</DisplayName>"));
    // XML body forms (each SDK's).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/xml-samples/");
    let node = std::fs::read(format!("{dir}request-acl-policy.nodejs-no-type.xml")).unwrap();
    let md5 = md5_b64(&node);
    let r = e
        .send(
            "PUT",
            "docs/a.txt",
            &[("acl", "")],
            &[("Content-MD5", &md5), ("Content-Type", "application/xml")],
            node,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.anon("GET", "docs/a.txt", &[]).await.status, 403);
    let r = e
        .send("GET", "docs/a.txt", &[("acl", "")], &[], Vec::new())
        .await;
    assert!(r.text().contains("<Permission>READ</Permission>"));
    let py = std::fs::read(format!("{dir}request-acl-policy.python-xsi-attribute.xml")).unwrap();
    assert_eq!(
        e.send("PUT", "docs/a.txt", &[("acl", "")], &[], py)
            .await
            .status,
        200
    );
    assert_eq!(e.anon("GET", "docs/a.txt", &[]).await.status, 200);
    let r = e
        .send(
            "PUT",
            "docs/a.txt",
            &[("acl", "")],
            &[("x-cos-acl", "private")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(e.anon("GET", "docs/a.txt", &[]).await.status, 403);
    // A missing key is AccessDenied for anonymous callers (no name leaks), NoSuchKey otherwise.
    assert_eq!(e.anon("GET", "docs/none.txt", &[]).await.status, 403);
    assert_eq!(
        e.send("GET", "docs/none.txt", &[], &[], Vec::new())
            .await
            .status,
        404
    );
    // Anonymous callers cannot read or change the ACL itself.
    assert_eq!(
        e.anon("GET", "docs/a.txt", &[("acl", "")]).await.status,
        403
    );
}

async fn restore_header(e: &Emu, key: &str) -> Option<String> {
    e.send("HEAD", key, &[], &[], Vec::new())
        .await
        .h("x-cos-restore")
}

#[tokio::test]
async fn archive_restore_lifecycle() {
    let e = Emu::start().await;
    e.emu.state().set_restore_delay(Duration::from_secs(1));
    let hs = [
        ("x-cos-storage-class", "ARCHIVE"),
        ("x-cos-acl", "public-read"),
    ];
    e.send("PUT", "archive/obj.dat", &[], &hs, b"frozen".to_vec())
        .await;
    let r = e.send("GET", "archive/obj.dat", &[], &[], Vec::new()).await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidObjectState"));
    assert_eq!(r.h("x-cos-storage-class").as_deref(), Some("ARCHIVE"));
    let h = e
        .send("HEAD", "archive/obj.dat", &[], &[], Vec::new())
        .await;
    assert_eq!(h.status, 200);
    assert_eq!(h.h("x-cos-storage-class").as_deref(), Some("ARCHIVE"));
    assert!(h.h("x-cos-restore").is_none());
    let body = "<RestoreRequest><Days>1</Days><CASJobParameters><Tier>Expedited</Tier></CASJobParameters></RestoreRequest>";
    let r = e
        .send("POST", "archive/obj.dat", &[("restore", "")], &[], body)
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let h = e
        .send("HEAD", "archive/obj.dat", &[], &[], Vec::new())
        .await;
    assert_eq!(
        h.h("x-cos-restore").as_deref(),
        Some("ongoing-request=\"true\"")
    );
    assert!(h
        .h("x-cos-restore-status")
        .unwrap()
        .starts_with("tier=\"expedited\"; request-date=\""));
    let r = e.send("GET", "archive/obj.dat", &[], &[], Vec::new()).await;
    assert_eq!(r.code(), "InvalidObjectState");
    let r = e
        .send("POST", "archive/obj.dat", &[("restore", "")], &[], body)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "RestoreAlreadyInProgress")
    );
    let l = e
        .send("GET", "", &[("prefix", "archive/")], &[], Vec::new())
        .await;
    assert_eq!(l.xml("RestoreStatus").as_deref(), Some("ONGOING"));
    let done = wait_for(Duration::from_secs(15), || async {
        restore_header(&e, "archive/obj.dat")
            .await
            .is_some_and(|v| v.starts_with("ongoing-request=\"false\", expiry-date=\""))
    })
    .await;
    assert!(done, "restore did not complete");
    let r = e.send("GET", "archive/obj.dat", &[], &[], Vec::new()).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"frozen"[..]));
    let l = e
        .send("GET", "", &[("prefix", "archive/")], &[], Vec::new())
        .await;
    assert_eq!(l.xml("RestoreStatus").as_deref(), Some("DONE"));
    // A restored copy: 200 and the expiry is re-set.
    let r = e
        .send(
            "POST",
            "archive/obj.dat",
            &[("restore", "")],
            &[],
            body.replace("<Days>1", "<Days>3"),
        )
        .await;
    assert_eq!(r.status, 200);
    // After the expiry the object is unreadable again (clock moved 4 days ahead; anonymous
    // read of the public object, since signatures are checked against the same clock).
    e.emu.state().set_now(Some(now() + 4 * 86_400));
    let r = e.anon("GET", "archive/obj.dat", &[]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidObjectState"));
    e.emu.state().set_now(None);
    // Non-archive objects.
    e.put("plain", b"x").await;
    let r = e.send("POST", "plain", &[("restore", "")], &[], body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (405, "RestoreNonArchiveObject")
    );
    // Deep archive: no Expedited tier.
    let hs = [("x-cos-storage-class", "DEEP_ARCHIVE")];
    e.send("PUT", "deep", &[], &hs, b"d".to_vec()).await;
    let r = e.send("POST", "deep", &[("restore", "")], &[], body).await;
    assert_eq!(r.status, 400);
    let bulk = body.replace("Expedited", "Bulk");
    let r = e.send("POST", "deep", &[("restore", "")], &[], bulk).await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn cors_rules_and_preflight() {
    let e = Emu::start().await;
    let url = e.url(&format!("/{BUCKET}/docs/a.txt"), &[]);
    let preflight = |origin: &'static str, method: &'static str| {
        e.client
            .request(reqwest::Method::OPTIONS, url.clone())
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-cos-meta-a",
            )
            .send()
    };
    let r = preflight("https://www.example.com", "PUT").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("AccessForbidden"));
    let r = e.send("GET", "", &[("cors", "")], &[], Vec::new()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "NoSuchCORSConfiguration")
    );
    let cfg = "<CORSConfiguration><CORSRule><ID>r1</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>";
    let r = e
        .send(
            "PUT",
            "",
            &[("cors", "")],
            &[("Content-MD5", &md5_b64(cfg.as_bytes()))],
            cfg,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.send("GET", "", &[("cors", "")], &[], Vec::new()).await;
    assert_eq!(r.xml_all("AllowedMethod"), ["PUT", "GET"]);
    assert_eq!(r.xml("MaxAgeSeconds").as_deref(), Some("600"));
    let r = preflight("https://www.example.com", "PUT").await.unwrap();
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        h("access-control-allow-origin").as_deref(),
        Some("https://www.example.com")
    );
    assert_eq!(
        h("access-control-allow-methods").as_deref(),
        Some("PUT,GET")
    );
    assert_eq!(
        h("access-control-allow-headers").as_deref(),
        Some("content-type,x-cos-meta-a")
    );
    assert_eq!(h("access-control-expose-headers").as_deref(), Some("ETag"));
    assert_eq!(h("access-control-max-age").as_deref(), Some("600"));
    // Actual requests from an allowed origin carry the CORS headers too.
    e.put("docs/a.txt", b"cors").await;
    let g = e
        .send(
            "GET",
            "docs/a.txt",
            &[],
            &[("Origin", "https://www.example.com")],
            Vec::new(),
        )
        .await;
    assert_eq!(
        g.h("access-control-allow-origin").as_deref(),
        Some("https://www.example.com")
    );
    assert_eq!(
        g.h("access-control-expose-headers").as_deref(),
        Some("ETag")
    );
    let g = e
        .send(
            "GET",
            "docs/a.txt",
            &[],
            &[("Origin", "https://evil.example")],
            Vec::new(),
        )
        .await;
    assert!(g.h("access-control-allow-origin").is_none());
    assert_eq!(
        preflight("https://evil.example", "PUT")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        preflight("https://www.example.com", "DELETE")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        e.send("DELETE", "", &[("cors", "")], &[], Vec::new())
            .await
            .status,
        204
    );
    assert_eq!(
        preflight("https://www.example.com", "PUT")
            .await
            .unwrap()
            .status(),
        403
    );
}

fn form(fields: &[(&str, &str)], filename: &str, file: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--BOUND\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(
        format!("--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(b"\r\n--BOUND--\r\n");
    b
}

#[tokio::test]
async fn post_object_form_upload_with_policy() {
    let e = Emu::start().await;
    let t = now();
    let key_time = format!("{};{}", t - 60, t + 600);
    let exp = chrono::DateTime::from_timestamp(t + 600, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let policy = format!(
        "{{\"expiration\":\"{exp}\",\"conditions\":[{{\"q-sign-algorithm\":\"sha1\"}},{{\"q-ak\":\"{ID}\"}},{{\"q-sign-time\":\"{key_time}\"}},{{\"bucket\":\"{BUCKET}\"}},[\"starts-with\",\"$key\",\"uploads/\"],[\"content-length-range\",1,100]]}}"
    );
    let sig = sign::post_policy_signature(KEY, &key_time, &policy);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&policy);
    let fields = |key: &'static str, sig: String| {
        vec![
            ("key", key.to_string()),
            ("Content-Type", "text/plain".to_string()),
            ("x-cos-meta-src", "form".to_string()),
            ("success_action_status", "201".to_string()),
            ("policy", b64.clone()),
            ("q-sign-algorithm", "sha1".to_string()),
            ("q-ak", ID.to_string()),
            ("q-key-time", key_time.clone()),
            ("q-signature", sig),
        ]
    };
    let post = |f: Vec<(&'static str, String)>, file: &'static [u8]| {
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let body = form(&refs, "hello.txt", file);
        e.client
            .post(format!("http://{}/{BUCKET}/", e.host()))
            .header("Content-Type", "multipart/form-data; boundary=BOUND")
            .body(body)
            .send()
    };
    let r = post(fields("uploads/${filename}", sig.clone()), b"form body")
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let want = {
        use md5::Digest;
        format!("\"{}\"", hex::encode(md5::Md5::digest(b"form body")))
    };
    assert_eq!(r.headers()["etag"].to_str().unwrap(), want);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Key>uploads/hello.txt</Key>"));
    let g = e
        .send("GET", "uploads/hello.txt", &[], &[], Vec::new())
        .await;
    assert_eq!(g.body, b"form body");
    assert_eq!(g.h("x-cos-meta-src").as_deref(), Some("form"));
    assert_eq!(g.h("content-type").as_deref(), Some("text/plain"));
    // Policy conditions and signature are enforced.
    let r = post(fields("elsewhere/x", sig.clone()), b"x")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(fields("uploads/y", "0".repeat(40)), b"x")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn injected_slowdowns_are_every_nth_and_bounded() {
    let e = Emu::start().await;
    e.put("f", b"x").await;
    e.emu.faults().set(FaultConfig {
        slowdown_every: 2,
        limit: Some(2),
        ..FaultConfig::default()
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = e.send("GET", "f", &[], &[], Vec::new()).await;
        if r.status == 503 {
            assert_eq!(r.code(), "SlowDown");
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 503, 200, 503, 200, 200]);
    e.emu.faults().clear();
    assert_eq!(e.send("GET", "f", &[], &[], Vec::new()).await.status, 200);
}

#[tokio::test]
async fn dropped_connections_mid_body() {
    let e = Emu::start().await;
    let body = vec![5u8; 512 * 1024];
    e.put("big", &body).await;
    e.emu.faults().set(FaultConfig {
        drop_every: 1,
        limit: Some(2),
        ..FaultConfig::default()
    });
    // GET: headers arrive, the body is cut short.
    let r = e
        .client
        .get(e.url(&format!("/{BUCKET}/big"), &[]))
        .header("authorization", auth_for(&e, "GET", "big"))
        .send()
        .await;
    let cut = match r {
        Ok(resp) => resp.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(cut, "GET body was not cut");
    // PUT: the connection drops before any answer, and nothing is stored.
    let r = e
        .client
        .put(e.url(&format!("/{BUCKET}/new"), &[]))
        .header("authorization", auth_for(&e, "PUT", "new"))
        .body(body.clone())
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status() != 200);
    assert_eq!(e.emu.faults().injected(), 2);
    assert_eq!(
        e.send("HEAD", "new", &[], &[], Vec::new()).await.status,
        404
    );
    // Limit reached: transfers work again.
    assert_eq!(e.send("GET", "big", &[], &[], Vec::new()).await.body, body);
}

fn auth_for(e: &Emu, method: &str, key: &str) -> String {
    let t = now();
    let host = e.host();
    sign::authorization(
        ID,
        KEY,
        method,
        &format!("/{BUCKET}/{key}"),
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    )
}

#[tokio::test]
async fn error_inside_200_for_copy() {
    let e = Emu::start().await;
    e.put("s", b"x").await;
    e.emu.faults().set(FaultConfig {
        error_in_200_every: 1,
        limit: Some(1),
        ..FaultConfig::default()
    });
    let src = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/s");
    let r = e
        .send("PUT", "d", &[], &[("x-cos-copy-source", &src)], Vec::new())
        .await;
    assert_eq!((r.status, r.code().as_str()), (200, "InternalError"));
    let r = e
        .send("PUT", "d", &[], &[("x-cos-copy-source", &src)], Vec::new())
        .await;
    assert!(r.xml("ETag").is_some());
}

#[tokio::test]
async fn request_counters() {
    let e = Emu::start().await;
    e.put("a", b"1").await;
    e.put("b", b"2").await;
    e.send("HEAD", "a", &[], &[], Vec::new()).await;
    e.send("GET", "", &[], &[], Vec::new()).await;
    let body = "<Delete><Object><Key>a</Key></Object></Delete>";
    e.send("POST", "", &[("delete", "")], &[], body).await;
    let src = format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/b");
    e.send("PUT", "c", &[], &[("x-cos-copy-source", &src)], Vec::new())
        .await;
    let stats = e.emu.stats();
    assert_eq!(stats.get("PutObject"), 2);
    assert_eq!(stats.get("HeadObject"), 1);
    assert_eq!(stats.get("GetBucket"), 1);
    assert_eq!(stats.get("DeleteMultipleObjects"), 1);
    assert_eq!(stats.get("PutObjectCopy"), 1);
    assert_eq!(stats.get("DeleteObject"), 0);
    let r = e
        .client
        .get(format!("http://{}/-/stats", e.host()))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["requests"]["PutObject"], 2);
    assert_eq!(v["requests"]["GetObject"], 0);
    // Resetting takes the emulator's own credentials (a signed request).
    let host = e.host();
    let t = now();
    let auth = sign::authorization(
        ID,
        KEY,
        "POST",
        "/-/stats/reset",
        &[],
        &[("host", &host)],
        t - 60,
        t + 600,
    );
    let r = e
        .client
        .post(format!("http://{host}/-/stats/reset"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["requests"]["PutObject"], 0);
    assert_eq!(stats.get("PutObject"), 0);
}

#[tokio::test]
async fn binary_contract_first_line_and_persistence() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_cosfuse-emulator"))
            .args([
                "--data",
                dir.path().to_str().unwrap(),
                "--bucket",
                BUCKET,
                "--secret-id",
                ID,
                "--secret-key",
                KEY,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    for round in 0..2 {
        let mut child = spawn();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let addr = first
            .strip_prefix("listening on http://127.0.0.1:")
            .map(|p| format!("127.0.0.1:{p}"));
        let addr = addr.unwrap_or_else(|| panic!("bad first line {first:?}"));
        let client = http_client();
        let t = now();
        let path = format!("/{BUCKET}/persist.txt");
        let method = if round == 0 { "PUT" } else { "GET" };
        let auth = sign::authorization(
            ID,
            KEY,
            method,
            &path,
            &[],
            &[("host", &addr)],
            t - 60,
            t + 600,
        );
        let req = client
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .header("authorization", auth);
        let r = if round == 0 {
            req.body("survives").send().await.unwrap()
        } else {
            req.send().await.unwrap()
        };
        assert_eq!(r.status(), 200);
        if round == 1 {
            assert_eq!(r.text().await.unwrap(), "survives");
        }
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn header_names_are_spelled_as_cos_spells_them() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let e = Emu::start().await;
    e.put("spell.txt", b"abc").await;
    let auth = auth_for(&e, "HEAD", "spell.txt");
    let mut s = tokio::net::TcpStream::connect(e.emu.addr()).await.unwrap();
    let req = format!(
        "HEAD /{BUCKET}/spell.txt HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n",
        e.host()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    for name in [
        "\r\nETag: ",
        "\r\nContent-Length: 3\r\n",
        "\r\nLast-Modified: ",
        "\r\nx-cos-hash-crc64ecma: ",
        "\r\nx-cos-request-id: ",
        "\r\nServer: tencent-cos",
    ] {
        assert!(raw.contains(name), "{name:?} missing in {raw}");
    }
}

#[tokio::test]
async fn bucket_acl_is_inherited_by_default_objects() {
    let e = Emu::start().await;
    e.put("inherit.txt", b"inherit").await;
    e.send(
        "PUT",
        "own.txt",
        &[],
        &[("x-cos-acl", "private")],
        b"own".to_vec(),
    )
    .await;
    let r = e.send("GET", "", &[("acl", "")], &[], Vec::new()).await;
    assert_eq!(r.h("x-cos-acl").as_deref(), Some("private"));
    assert_eq!(e.anon("GET", "inherit.txt", &[]).await.status, 403);
    assert_eq!(e.anon("GET", "", &[]).await.status, 403);
    let r = e
        .send(
            "PUT",
            "",
            &[("acl", "")],
            &[("x-cos-acl", "public-read")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.send("GET", "", &[("acl", "")], &[], Vec::new()).await;
    assert_eq!(r.h("x-cos-acl").as_deref(), Some("public-read"));
    // `default` objects follow the bucket; an explicit private ACL does not.
    assert_eq!(e.anon("GET", "inherit.txt", &[]).await.body, b"inherit");
    assert_eq!(e.anon("GET", "own.txt", &[]).await.status, 403);
    let l = e.anon("GET", "", &[]).await;
    assert_eq!(l.status, 200);
    assert_eq!(l.xml_all("Key"), ["inherit.txt", "own.txt"]);
    // The bucket ACL survives setting CORS rules.
    let cfg = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    assert_eq!(
        e.send("PUT", "", &[("cors", "")], &[], cfg).await.status,
        200
    );
    assert_eq!(e.anon("GET", "inherit.txt", &[]).await.status, 200);
    // Anonymous callers still cannot write.
    assert_eq!(e.anon("PUT", "new.txt", &[]).await.status, 403);
}
