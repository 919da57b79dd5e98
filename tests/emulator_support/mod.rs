//! Shared helpers for the `emulator_*` integration tests: an in-process emulator on
//! 127.0.0.1:0 and signed (or anonymous) raw HTTP requests through reqwest.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cosfuse::cos::sign;
use cosfuse::emulator::{Emulator, EmulatorConfig};

/// The bucket every test uses.
pub const BUCKET: &str = "examplebucket-1250000000";
/// Test SecretId.
pub const ID: &str = "AKIDemulatorTEST000000000000000000";
/// Test SecretKey.
pub const KEY: &str = "emulatorTESTsecretKEY00000000000";

/// A running in-process emulator plus an HTTP client.
pub struct Emu {
    /// The emulator.
    pub emu: Emulator,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Data directory (kept alive).
    pub dir: tempfile::TempDir,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header value as text.
    pub fn h(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// Text of the first `<tag>` element in the body.
    pub fn xml(&self, tag: &str) -> Option<String> {
        let t = self.text();
        let open = format!("<{tag}>");
        let start = t.find(&open)? + open.len();
        let end = t[start..].find(&format!("</{tag}>"))? + start;
        Some(unescape(&t[start..end]))
    }

    /// Text of every `<tag>` element.
    pub fn xml_all(&self, tag: &str) -> Vec<String> {
        let t = self.text();
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut out = Vec::new();
        let mut rest = t.as_str();
        while let Some(i) = rest.find(&open) {
            let s = &rest[i + open.len()..];
            let Some(j) = s.find(&close) else { break };
            out.push(unescape(&s[..j]));
            rest = &s[j..];
        }
        out
    }

    /// `<Code>` of an error body.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }
}

/// Resolves the five predefined XML entities.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Encodes a key path segment by segment (as the SDKs do).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(sign::cos_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Polls `cond` until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Emu {
    /// Starts an emulator with `BUCKET` and the test credentials.
    pub async fn start() -> Emu {
        let dir = tempfile::tempdir().unwrap();
        Emu::start_in(dir).await
    }

    /// Starts an emulator on an existing data directory.
    pub async fn start_in(dir: tempfile::TempDir) -> Emu {
        let cfg = EmulatorConfig::new(dir.path())
            .bucket(BUCKET)
            .credential(ID, KEY);
        let emu = Emulator::start(cfg).await.unwrap();
        let client = http_client();
        Emu { emu, client, dir }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.emu.addr().to_string()
    }

    /// Sends a request for `/BUCKET/key` signed with the test credentials.
    pub async fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        self.send_as(Some((ID, KEY)), method, key, query, headers, body.into())
            .await
    }

    /// PUT `?acl` on `key` ("" = the bucket) with ACL headers and no body.
    #[allow(dead_code)]
    pub async fn put_acl(&self, key: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("PUT", key, &[("acl", "")], headers, Vec::new())
            .await
    }

    /// Sends an anonymous request.
    pub async fn anon(&self, method: &str, key: &str, query: &[(&str, &str)]) -> Resp {
        self.send_as(None, method, key, query, &[], Vec::new())
            .await
    }

    /// Sends a request with explicit credentials (None = anonymous).
    pub async fn send_as(
        &self,
        cred: Option<(&str, &str)>,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let path = format!("/{BUCKET}/{key}");
        let host = self.host();
        let mut signed: Vec<(&str, &str)> = headers.to_vec();
        signed.push(("host", &host));
        let mut req = self
            .client
            .request(method.parse().unwrap(), self.url(&path, query));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some((id, secret)) = cred {
            let t = now();
            let auth =
                sign::authorization(id, secret, method, &path, query, &signed, t - 60, t + 600);
            req = req.header("authorization", auth);
        }
        // Like every HTTP client COS sees, say the body length on uploads even when it is 0
        // (reqwest omits it for an empty body; COS would answer 411 MissingContentLength).
        let says_length = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if matches!(method, "PUT" | "POST") && !says_length {
            req = req.header("content-length", body.len());
        }
        let r = req.body(body).send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    /// URL for a path and query.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("http://{}{}", self.host(), encode_path(path));
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        sign::cos_encode(k)
                    } else {
                        format!("{}={}", sign::cos_encode(k), sign::cos_encode(v))
                    }
                })
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        url
    }

    /// PUT with a body; asserts 200 and returns the response.
    pub async fn put(&self, key: &str, body: &[u8]) -> Resp {
        let r = self.send("PUT", key, &[], &[], body.to_vec()).await;
        assert_eq!(r.status, 200, "PUT {key}: {}", r.text());
        r
    }
}

/// A plain reqwest client for raw requests to the emulator. reqwest 0.13 is built without a
/// crypto provider of its own, so ring is made the process default first.
pub fn http_client() -> reqwest::Client {
    cosfuse::cos::tls::install_default_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}
