//! `CosClient`: the HTTP engine shared by every operation — builds the URL, signs each attempt
//! (with a clock offset learnt from the server), sends through reqwest (rustls), reads the
//! answer, turns failures into `CosError`, and applies the retry policy.
//!
//! The operations themselves live in `objects.rs`, `multipart.rs`, `transfer.rs`,
//! `presign.rs` and `store_impl.rs` as further `impl CosClient` blocks.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderName, HeaderValue};

use super::config::{CosConfig, SigningScheme};
use super::error::{CosError, CODE_CONNECT, CODE_CREDENTIALS, CODE_NETWORK, CODE_PROTOCOL};
use super::request::{self, Request, Response, Target};
use super::retry::{Decision, RETRY_HEADER};

/// A client for one COS bucket. Cheap to clone (shares the connection pool and clock offset).
#[derive(Clone)]
pub struct CosClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The configuration (credentials inside; never logged).
    cfg: CosConfig,
    /// Where requests go.
    target: Target,
    /// reqwest client with the connection pool and timeouts.
    http: reqwest::Client,
    /// Server time minus local time, in seconds, learnt from a `Date` header after a
    /// clock-skew refusal. Atomic: read by every request, written rarely, no ordering needs.
    clock_offset: AtomicI64,
}

impl std::fmt::Debug for CosClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // CosConfig's Debug redacts the secrets.
        f.debug_struct("CosClient")
            .field("cfg", &self.inner.cfg)
            .field("target", &self.inner.target)
            .finish()
    }
}

/// Current Unix time in seconds (0 if the clock is before 1970, which signing then reports).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl CosClient {
    /// Builds a client. Fails on an unusable endpoint URL or TLS setup.
    pub fn new(cfg: CosConfig) -> Result<CosClient, CosError> {
        let target = Target::new(
            cfg.endpoint.as_deref(),
            cfg.endpoint_style,
            &cfg.bucket,
            &cfg.region,
        )
        .map_err(|m| CosError::client(0, CODE_PROTOCOL, m))?;
        let builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .user_agent(cfg.user_agent.clone());
        let http = super::tls::configure(builder, &cfg.ca_files, &cfg.resolve)?
            .build()
            .map_err(|e| CosError::client(0, CODE_PROTOCOL, format!("HTTP client setup: {e}")))?;
        Ok(CosClient {
            inner: Arc::new(Inner {
                cfg,
                target,
                http,
                clock_offset: AtomicI64::new(0),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &CosConfig {
        &self.inner.cfg
    }

    /// The bucket's host as used in `x-cos-copy-source` and `Resource`
    /// (`<bucket>.cos.<region>.myqcloud.com`, whatever the endpoint).
    pub fn bucket_host(&self) -> String {
        self.inner.cfg.default_host()
    }

    /// Base URL + path prefix of objects (`http://127.0.0.1:9000/<bucket>` or
    /// `https://<bucket>.cos.<region>.myqcloud.com`).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.inner.target.base_url, self.inner.target.prefix)
    }

    pub(crate) fn target(&self) -> &Target {
        &self.inner.target
    }

    /// Sends one request as given — no signing, no retries — to a full URL (presigned URLs,
    /// POST Object forms). Non-2xx answers become `CosError`.
    pub async fn send_unsigned(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(String, String)],
        body: bytes::Bytes,
    ) -> Result<Response, CosError> {
        let mut builder = self.inner.http.request(method, url);
        for (n, v) in headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        if !body.is_empty() {
            builder = builder.body(body);
        }
        let resp = builder.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport_error)?;
        if !(200..300).contains(&status) {
            return Err(CosError::from_response(status, &headers, &body));
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Clock-corrected Unix time used for signatures.
    pub fn now(&self) -> i64 {
        unix_now() + self.inner.clock_offset.load(Ordering::Relaxed)
    }

    /// The current clock offset (server − local, seconds).
    pub fn clock_offset(&self) -> i64 {
        self.inner.clock_offset.load(Ordering::Relaxed)
    }

    /// Sets the clock offset (server − local, seconds); used after a skew refusal, and by tests.
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.clock_offset.store(secs, Ordering::Relaxed);
    }

    /// Sends any request (e.g. bucket sub-resources this client has no method for) signed and
    /// under the retry policy, like every operation does.
    pub async fn send(&self, req: &Request) -> Result<Response, CosError> {
        self.execute(req).await
    }

    /// Sends `req` under the retry policy: every attempt is re-signed; retries carry
    /// `x-cos-sdk-retry: true`; a clock-skew refusal resyncs the offset from `Date` once.
    pub(crate) async fn execute(&self, req: &Request) -> Result<Response, CosError> {
        let policy = &self.inner.cfg.retry;
        let mut attempt: u32 = 0;
        let mut resynced = false;
        let mut refreshed = false;
        let started = std::time::Instant::now();
        loop {
            attempt += 1;
            let err = match self.attempt(req, attempt > 1).await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            let decision = if !resynced && self.bodyless_skew(&err) {
                Decision::ResyncClock
            } else if err.code == "ExpiredToken"
                && !refreshed
                && self.inner.cfg.credentials_provider.is_some()
            {
                // Temporary keys expired: the provider re-reads them for the next attempt.
                refreshed = true;
                log::info!("COS says the session token expired; retrying with fresh credentials");
                attempt -= 1;
                continue;
            } else {
                policy.decide(
                    &err,
                    attempt,
                    req.idempotent,
                    resynced,
                    started.elapsed(),
                    rand::random::<f64>(),
                )
            };
            match decision {
                Decision::Fail => return Err(err),
                Decision::RetryAfter(delay) => {
                    log::debug!(
                        "COS {} {:?}: attempt {attempt} failed ({err}); retrying in {delay:?}",
                        req.method,
                        req.key
                    );
                    tokio::time::sleep(delay).await;
                }
                Decision::ResyncClock => {
                    resynced = true;
                    if let Some(server) = err.server_date {
                        let server = server
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(0);
                        let offset = server - unix_now();
                        log::warn!(
                            "COS refused the request signature as {} ({}); local clock is off by {offset} s, resyncing",
                            err.code,
                            err.message
                        );
                        self.set_clock_offset(offset);
                    }
                    // The resync attempt does not consume the retry budget.
                    attempt -= 1;
                }
            }
        }
    }

    /// A HEAD refusal has no body, so "Request has expired" / RequestTimeTooSkewed cannot be
    /// read from it: a body-less 403 whose `Date` is 30 s or more away from our clock is taken
    /// as a clock problem (the Node SDK's threshold) and earns one resync.
    fn bodyless_skew(&self, err: &CosError) -> bool {
        let Some(server) = err.server_date else {
            return false;
        };
        let server = server
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        err.status == 403 && err.message.is_empty() && (server - self.now()).abs() >= 30
    }

    /// One signed attempt.
    async fn attempt(&self, req: &Request, is_retry: bool) -> Result<Response, CosError> {
        let cfg = &self.inner.cfg;
        let target = &self.inner.target;
        // Fetched per attempt so refreshed temporary keys are picked up by retries.
        let creds = cfg
            .current_credentials()
            .map_err(|m| CosError::client(0, CODE_CREDENTIALS, m))?;
        let mut headers = req.headers.clone();
        if req.body_len() > 0 || matches!(req.method, reqwest::Method::PUT | reqwest::Method::POST)
        {
            headers.push(("content-length".into(), req.body_len().to_string()));
        }
        if let Some(token) = &creds.session_token {
            headers.push(("x-cos-security-token".into(), token.trim().to_string()));
        }
        if is_retry {
            headers.push((RETRY_HEADER.into(), "true".into()));
        }
        if cfg.signing == SigningScheme::SigV4 {
            request::to_amz_names(&mut headers);
        }
        let auth = request::sign_headers(
            cfg.signing,
            &creds,
            &cfg.region,
            &req.method,
            target,
            req.key.as_deref(),
            &req.query,
            &headers,
            req.file.is_none().then_some(&req.body[..]),
            self.now(),
            cfg.sign_validity.as_secs() as i64,
        );
        headers.extend(auth);
        let url = target.url(req.key.as_deref(), &req.query);
        let mut builder = self.inner.http.request(req.method.clone(), &url);
        let mut map = reqwest::header::HeaderMap::new();
        map.insert(
            reqwest::header::HOST,
            HeaderValue::from_str(&target.host)
                .map_err(|e| CosError::client(0, CODE_PROTOCOL, format!("bad host: {e}")))?,
        );
        for (n, v) in &headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|e| CosError::client(0, CODE_PROTOCOL, format!("bad header {n}: {e}")))?;
            let value = HeaderValue::from_str(v).map_err(|e| {
                CosError::client(0, CODE_PROTOCOL, format!("bad value for header {n}: {e}"))
            })?;
            map.append(name, value);
        }
        builder = builder.headers(map);
        if let Some((range, sent)) = &req.file {
            // A new stream per attempt: a retry re-reads the file and restarts the digest.
            builder = builder.body(reqwest::Body::wrap_stream(range.stream(sent.clone())));
        } else if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let resp = builder.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_body(resp).await.map_err(transport_error)?;
        if !(200..300).contains(&status) {
            return Err(CosError::from_response(status, &headers, &body));
        }
        if req.error_in_200 {
            if let Some(e) = CosError::from_200_body(&headers, &body) {
                return Err(e);
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A reqwest failure as a `CosError`: connect failures are distinguished because resending
/// them is always safe; a refused certificate gets `CODE_TLS` because resending never helps.
fn transport_error(e: reqwest::Error) -> CosError {
    if let Some(refused) = super::tls::certificate_error(&e) {
        return refused;
    }
    let code = if e.is_connect() {
        CODE_CONNECT
    } else {
        CODE_NETWORK
    };
    // Without the URL: a presigned URL is a bearer credential until it expires. reqwest's
    // Display never contains headers, so no signature or token leaks here.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    CosError::client(0, code, msg)
}

/// Reads a response body. A large one (a ranged GET of read-ahead or of a background fill) goes
/// into a reused buffer (`bufpool::GET_BODIES`): collected the ordinary way, each body got a
/// fresh buffer of its size besides the received chunks, and fresh memory that large is page
/// faults, zeroing and unmapping: a quarter of the daemon's CPU time in a cold random read.
async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, reqwest::Error> {
    use crate::store::bufpool::{GET_BODIES, GET_BODY_POOLED_FROM};
    let len = resp
        .content_length()
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(0);
    if !(GET_BODY_POOLED_FROM..=GET_BODIES.size()).contains(&len) {
        return resp.bytes().await;
    }
    let mut buf = GET_BODIES.take(len);
    let mut at = 0;
    // Bounded: hyper ends the body at its Content-Length.
    while let Some(chunk) = resp.chunk().await? {
        let Some(dst) = buf.as_mut_slice().get_mut(at..at + chunk.len()) else {
            // More than announced (hyper would have refused it): keep it all, unpooled.
            let mut all = buf[..at].to_vec();
            all.extend_from_slice(&chunk);
            while let Some(c) = resp.chunk().await? {
                all.extend_from_slice(&c);
            }
            return Ok(all.into());
        };
        dst.copy_from_slice(&chunk);
        at += chunk.len();
    }
    Ok(if at == len {
        buf.freeze()
    } else {
        bytes::Bytes::copy_from_slice(&buf[..at])
    })
}

#[cfg(test)]
mod tests {
    //! The engine against a scripted loopback server: retries carry `x-cos-sdk-retry: true`
    //! and a fresh signature; non-idempotent requests are not resent after a 503.
    use super::*;
    use crate::cos::config::CosCredentials;
    use crate::cos::retry::RetryPolicy;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves the canned `answers` in order (one per connection), recording request heads.
    async fn scripted(answers: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen2
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_ascii_lowercase());
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (format!("http://{addr}"), seen)
    }

    const SLOWDOWN: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: 61\r\n\r\n<Error><Code>SlowDown</Code><Message>slow</Message></Error>\r\n";
    const OK: &str =
        "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

    fn client(endpoint: &str) -> CosClient {
        let mut cfg = CosConfig::new("b-1250000000", "ap-x", CosCredentials::new("AKIDx", "k"))
            .with_endpoint(endpoint);
        cfg.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            full_jitter: false,
            ..RetryPolicy::default()
        };
        CosClient::new(cfg).unwrap()
    }

    fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::trim)
    }

    #[tokio::test]
    async fn retries_are_marked_and_signed_again() {
        let (ep, seen) = scripted(vec![SLOWDOWN, OK]).await;
        let c = client(&ep);
        let req = Request::new(reqwest::Method::GET, Some("k"));
        let resp = c.send(&req).await.unwrap();
        assert_eq!(resp.status, 200);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(header_of(&seen[0], RETRY_HEADER), None);
        assert_eq!(header_of(&seen[1], RETRY_HEADER), Some("true"));
        // The retry header is signed: it appears in the second request's header list.
        let auth = header_of(&seen[1], "authorization").unwrap();
        assert!(
            auth.contains("q-header-list=host;x-cos-sdk-retry&"),
            "{auth}"
        );
        assert_ne!(header_of(&seen[0], "authorization"), Some(auth));
    }

    const INTERNAL: &str = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: 63\r\n\r\n<Error><Code>InternalError</Code><Message>x</Message></Error>\r\n";

    #[tokio::test]
    async fn non_idempotent_requests_are_not_resent_after_500() {
        let (ep, seen) = scripted(vec![INTERNAL, OK]).await;
        let c = client(&ep);
        let req = Request::new(reqwest::Method::POST, Some("k"))
            .query("uploads", "")
            .non_idempotent();
        let err = c.send(&req).await.unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (500, "InternalError"));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn throttled_non_idempotent_requests_are_resent() {
        // A 503 SlowDown means COS never ran the request: Initiate is safe to resend.
        let (ep, seen) = scripted(vec![SLOWDOWN, OK]).await;
        let c = client(&ep);
        let req = Request::new(reqwest::Method::POST, Some("k"))
            .query("uploads", "")
            .non_idempotent();
        let resp = c.send(&req).await.unwrap();
        assert_eq!(resp.status, 200);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(header_of(&seen[1], RETRY_HEADER), Some("true"));
    }

    #[tokio::test]
    async fn a_part_is_checked_by_its_crc64_or_else_by_its_md5_etag() {
        let body = bytes::Bytes::from_static(b"hello part");
        let crc = crate::cos::objects::crc64_of(&body);
        let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
        let answer = |extra: String| -> &'static str {
            Box::leak(
                format!("HTTP/1.1 200 OK\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n")
                    .into_boxed_str(),
            )
        };
        let cases = [
            (
                format!("ETag: \"{md5}\"\r\nx-cos-hash-crc64ecma: {crc}\r\n"),
                true,
            ),
            (
                format!("ETag: \"{md5}\"\r\nx-cos-hash-crc64ecma: {}\r\n", crc ^ 1),
                false,
            ),
            (format!("ETag: \"{md5}\"\r\n"), true),
            (
                "ETag: \"00000000000000000000000000000000\"\r\n".to_string(),
                false,
            ),
            // Not an MD5 (SSE-KMS) and no CRC64: nothing to check against.
            ("ETag: \"opaque-etag\"\r\n".to_string(), true),
        ];
        for (extra, ok) in cases {
            let (ep, seen) = scripted(vec![answer(extra.clone())]).await;
            let r = client(&ep).put_part("k", "u", 1, body.clone()).await;
            assert_eq!(r.is_ok(), ok, "{extra}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.code, crate::cos::error::CODE_CHECKSUM, "{e:?}");
            }
            let head = seen.lock().unwrap()[0].clone();
            assert!(!head.contains("content-md5"), "{head}");
        }
    }

    #[tokio::test]
    async fn connection_refused_is_a_network_error() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(&format!("http://127.0.0.1:{port}"));
        let err = c
            .send(&Request::new(reqwest::Method::HEAD, Some("k")))
            .await
            .unwrap_err();
        assert_eq!(err.status, 0);
        assert!(
            err.code == CODE_CONNECT || err.code == CODE_NETWORK,
            "{err:?}"
        );
        assert!(matches!(
            crate::store::StoreError::from(err),
            crate::store::StoreError::Network(_)
        ));
    }
}
