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
use super::error::{CosError, CODE_CONNECT, CODE_NETWORK, CODE_PROTOCOL};
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
        let target = Target::new(cfg.endpoint.as_deref(), &cfg.bucket, &cfg.region)
            .map_err(|m| CosError::client(0, CODE_PROTOCOL, m))?;
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .user_agent(cfg.user_agent.clone())
            .use_rustls_tls()
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
        loop {
            attempt += 1;
            let err = match self.attempt(req, attempt > 1).await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            match policy.decide(
                &err,
                attempt,
                req.idempotent,
                resynced,
                rand::random::<f64>(),
            ) {
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

    /// One signed attempt.
    async fn attempt(&self, req: &Request, is_retry: bool) -> Result<Response, CosError> {
        let cfg = &self.inner.cfg;
        let target = &self.inner.target;
        let mut headers = req.headers.clone();
        if !req.body.is_empty()
            || matches!(req.method, reqwest::Method::PUT | reqwest::Method::POST)
        {
            headers.push(("content-length".into(), req.body.len().to_string()));
        }
        if let Some(token) = &cfg.credentials.session_token {
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
            &cfg.credentials,
            &cfg.region,
            &req.method,
            target,
            req.key.as_deref(),
            &req.query,
            &headers,
            &req.body,
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
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let resp = builder.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport_error)?;
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
/// them is always safe.
fn transport_error(e: reqwest::Error) -> CosError {
    let code = if e.is_connect() {
        CODE_CONNECT
    } else {
        CODE_NETWORK
    };
    // reqwest's Display never contains our headers (so no signature or token leaks here).
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    CosError::client(0, code, msg)
}
