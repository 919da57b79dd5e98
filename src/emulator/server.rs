//! The HTTP front of the emulator: `serve(listener, state, shutdown)` (mini-redis style), bucket
//! and key resolution (virtual-hosted Host, path style, or the single configured bucket),
//! operation naming for the counters, faults, authentication, dispatch to `ops`, and the common
//! response headers and `<Error>` documents of docs/protocol.md §3 and §5.1 (assembled in
//! `render`).

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::auth::{self, AuthRequest, Identity, Scheme};
use super::ops::{self, Body, Ctx, EmuError, OpResult, Resp};
use super::render::{render, render_error, RespBody};
use super::storage::valid_bucket_name;
use super::State;

/// Accepts connections until `shutdown` completes; each connection is served on its own task.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, state, None, shutdown).await
}

/// Like [`serve`], over TLS: every connection first completes a rustls handshake with `tls`.
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<State>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_with(listener, state, Some(acceptor), shutdown).await
}

/// A client that connects and never finishes the handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_with(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let spelling = Arc::new(super::header_case::template().await);
    // A permit per served connection: at the limit, new clients wait in the kernel's backlog
    // instead of each costing a task, buffers and a file descriptor here.
    let slots = Arc::new(tokio::sync::Semaphore::new(state.max_connections));
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let st = state.clone();
                let spelling = spelling.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let Some(acceptor) = tls else {
                        return connection(stream, st, spelling).await;
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => connection(s, st, spelling).await,
                        // A client refusing our certificate shows up here (alert: unknown CA).
                        Ok(Err(e)) => log::info!("TLS handshake failed: {e}"),
                        Err(_) => log::info!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Serves HTTP/1.1 on one accepted connection (plain TCP or TLS) until it closes.
async fn connection<I>(io: I, st: Arc<State>, spelling: Arc<Option<hyper::http::Extensions>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = st.header_timeout;
    let svc = service_fn(move |req| {
        let spelling = spelling.clone();
        let fut = handle(st.clone(), req);
        async move {
            let mut resp = fut.await?;
            if let Some(ext) = spelling.as_ref() {
                *resp.extensions_mut() = ext.clone();
            }
            Ok::<_, std::io::Error>(resp)
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(io), svc)
        .await
    {
        log::debug!("connection ended: {e}");
    }
}

/// Where a request goes.
struct Target {
    /// Bucket name, when one was named or implied.
    bucket: Option<String>,
    /// Raw (still encoded) key part of the path.
    raw_key: String,
}

/// Resolves the bucket from the Host's first label (`^[a-z0-9-]+-\d+\.cos\.`, or any host
/// whose first label is an existing bucket: virtual-hosted clients of a custom endpoint such
/// as `BUCKET.localhost`), else the first path segment when it names a bucket, else the
/// single configured bucket (§2 option b).
fn resolve(state: &State, host: &str, path: &str) -> Target {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if let Some((label, tail)) = host.split_once('.') {
        let cos_host = tail.starts_with("cos.") && valid_bucket_name(label);
        if cos_host || state.storage.bucket_names().iter().any(|n| n == label) {
            return Target {
                bucket: Some(label.to_string()),
                raw_key: rest.to_string(),
            };
        }
    }
    let (first, key) = rest.split_once('/').unwrap_or((rest, ""));
    let names = state.storage.bucket_names();
    // An unknown NAME-APPID segment is still a (missing) bucket, so path-style clients get
    // NoSuchBucket. With a single configured bucket, keys like `backup-2024/x` or
    // `run-71416806/x` must keep working, so there only APPID-shaped numbers count as a
    // bucket: real APPIDs have 10 digits (a key segment like `log-1700000000` is the price).
    let appid_like = first.rsplit('-').next().is_some_and(|a| a.len() >= 10);
    if names.iter().any(|n| n == first)
        || (valid_bucket_name(first) && (names.len() != 1 || appid_like))
    {
        return Target {
            bucket: Some(first.to_string()),
            raw_key: key.to_string(),
        };
    }
    if names.len() == 1 {
        return Target {
            bucket: names.into_iter().next(),
            raw_key: rest.to_string(),
        };
    }
    Target {
        bucket: None,
        raw_key: rest.to_string(),
    }
}

/// The COS API name of a request, for the counters and routing.
fn op_name(method: &str, object: bool, q: &[(String, String)], copy: bool) -> &'static str {
    let has = |n: &str| q.iter().any(|(k, _)| k == n);
    // Sub-resources the emulator does not implement must not fall through to a plain
    // GET/PUT (a `GET /?policy` answered with a listing would mislead a client).
    const UNSUPPORTED: &[&str] = &[
        "policy",
        "lifecycle",
        "tagging",
        "website",
        "logging",
        "replication",
        "encryption",
        "referer",
        "domain",
        "inventory",
        "intelligenttiering",
        "object-lock",
        "versions",
        "accelerate",
        "origin",
        "append",
        "select",
        "notification",
        "requestPayment",
        "uploadList",
    ];
    if UNSUPPORTED.iter().any(|n| has(n)) || (has("versioning") && method != "GET") {
        return "Unsupported";
    }
    match (method, object) {
        ("GET", false) if has("acl") => "GetBucketACL",
        ("PUT", false) if has("acl") => "PutBucketACL",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) if has("versioning") => "GetBucketVersioning",
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) if has("cors") => "GetBucketCORS",
        ("GET", false) => "GetBucket",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) if has("cors") => "PutBucketCORS",
        ("PUT", false) => "PutBucket",
        ("DELETE", false) if has("cors") => "DeleteBucketCORS",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if has("delete") => "DeleteMultipleObjects",
        ("POST", false) => "PostObject",
        ("OPTIONS", _) => "OptionsObject",
        ("GET", true) if has("acl") => "GetObjectACL",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) if has("acl") => "PutObjectACL",
        ("PUT", true) if has("uploadId") && copy => "UploadPartCopy",
        ("PUT", true) if has("uploadId") => "UploadPart",
        ("PUT", true) if copy => "PutObjectCopy",
        ("PUT", true) => "PutObject",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("POST", true) if has("uploads") => "InitiateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", true) if has("restore") => "PostObjectRestore",
        _ => "Unsupported",
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, std::io::Error> {
    let request_id = base64::engine::general_purpose::STANDARD.encode(ops::new_id(18));
    let method = req.method().as_str().to_ascii_uppercase();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
            )
        })
        .collect();
    let host = auth::header(&headers, "host").unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path == "/-/stats" || path == "/-/stats/reset" {
        let reset = path.ends_with("/reset")
            || query
                .split('&')
                .any(|p| p == "reset" || p.starts_with("reset="));
        if reset {
            // Reading the counters is open (like a metrics page); zeroing them changes what
            // every other observer sees, so only the emulator's own credentials may, signed
            // like any COS request (q-sign or SigV4, over this path).
            let who = auth::verify(
                &AuthRequest {
                    method: &method,
                    target: &target,
                    headers: &headers,
                },
                &state.credentials,
                state.now(),
            );
            let resource = format!("{host}{path}");
            match who {
                Ok(Identity::Signed { .. }) => state.stats.reset(),
                Ok(Identity::Anonymous) => {
                    let e = EmuError::code("AccessDenied");
                    return Ok(render_error(e, &resource, &request_id, &method, false));
                }
                Err(e) => {
                    let e = auth_error(e);
                    return Ok(render_error(e, &resource, &request_id, &method, false));
                }
            }
        }
        let resp = Resp {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            // The per-operation counters plus the faults injected so far (soak reports).
            body: Body::Bytes(Bytes::from(
                state
                    .stats
                    .to_json_with_faults(Some(state.faults.injected())),
            )),
        };
        return Ok(render(resp, &request_id, &method, false));
    }
    let t = resolve(&state, &host, path);
    let resource = format!("{host}/{}", auth::percent_decode(&t.raw_key, true));
    let err_resp = |e: EmuError, sigv4: bool| -> Result<Response<RespBody>, std::io::Error> {
        if e.drop_connection {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault injection: dropped",
            ));
        }
        Ok(render_error(e, &resource, &request_id, &method, sigv4))
    };
    // A key that is not UTF-8 text cannot name anything: refuse it before anything else, as
    // a URI the server cannot parse (whether `+` means space does not change the verdict).
    if let Err(e) = ops::decode_key(&t.raw_key, false) {
        return err_resp(e, false);
    }
    let params = auth::parse_query(query);
    let verify = || {
        auth::verify(
            &AuthRequest {
                method: &method,
                target: &target,
                headers: &headers,
            },
            &state.credentials,
            state.now(),
        )
    };
    let Some(bucket_name) = t.bucket else {
        // GET Service: the endpoint itself, signed.
        if method == "GET" && path == "/" {
            return match verify() {
                Ok(Identity::Signed { .. }) => {
                    let names = state.storage.bucket_names();
                    let r = ops::list::list_buckets(&names, &state.region, state.now_ms());
                    Ok(render(r, &request_id, &method, false))
                }
                Ok(Identity::Anonymous) => err_resp(EmuError::code("AccessDenied"), false),
                Err(e) => err_resp(auth_error(e), false),
            };
        }
        return err_resp(EmuError::code("NoSuchBucket"), false);
    };
    let copy = auth::header(&headers, "x-cos-copy-source").is_some()
        || auth::header(&headers, "x-amz-copy-source").is_some();
    let object = !t.raw_key.is_empty();
    let op = op_name(&method, object, &params, copy);
    state.stats.bump(op);
    if let Some(d) = state.faults.latency() {
        tokio::time::sleep(d).await;
    }
    if state.faults.slowdown_now() {
        return err_resp(EmuError::code("SlowDown"), false);
    }
    let identity = match verify() {
        Ok(i) => i,
        Err(e) => return err_resp(auth_error(e), false),
    };
    let sigv4 = matches!(
        identity,
        Identity::Signed {
            scheme: Scheme::SigV4,
            ..
        }
    );
    let Some(bucket) = state.storage.bucket(&bucket_name) else {
        if op == "PutBucket" && identity != Identity::Anonymous && valid_bucket_name(&bucket_name) {
            return match state.storage.create_bucket(&bucket_name) {
                Ok(_) => Ok(render(Resp::empty(200), &request_id, &method, sigv4)),
                Err(e) => err_resp(EmuError::io(e), sigv4),
            };
        }
        return err_resp(EmuError::code("NoSuchBucket"), sigv4);
    };
    // Anonymous callers: object reads (checked against the ACLs in the handler), preflights,
    // form uploads (policy-signed), and listings of a public-read bucket.
    // A public-read-write bucket also takes anonymous writes (PUT Bucket acl).
    let anonymous_ok = matches!(
        op,
        "GetObject" | "HeadObject" | "OptionsObject" | "PostObject"
    ) || (op == "GetBucket" && bucket.lock().config.acl.public_read())
        || (matches!(op, "PutObject" | "DeleteObject") && bucket.lock().config.acl.public_write());
    if identity == Identity::Anonymous && !anonymous_ok {
        return err_resp(EmuError::code("AccessDenied"), sigv4);
    }
    let headers = if sigv4 {
        headers
            .into_iter()
            .map(
                |(n, v)| match n.to_ascii_lowercase().strip_prefix("x-amz-") {
                    Some(rest) => (format!("x-cos-{rest}"), v),
                    None => (n, v),
                },
            )
            .collect()
    } else {
        headers
    };
    let key = match ops::decode_key(&t.raw_key, !sigv4) {
        Ok(k) => k,
        Err(e) => return err_resp(e, sigv4),
    };
    let ctx = Ctx {
        key,
        state: state.clone(),
        method: method.clone(),
        bucket,
        query: params,
        headers,
        identity,
        host: host.clone(),
    };
    let body = req.into_body();
    let cors = if op == "OptionsObject" {
        Vec::new()
    } else {
        ops::cors::actual_request_headers(&ctx)
    };
    match dispatch(&ctx, op, body).await {
        Ok(mut r) => {
            r.headers.extend(cors);
            Ok(render(r, &request_id, &method, sigv4))
        }
        Err(e) => err_resp(e, sigv4),
    }
}

/// An authentication failure as a COS error (SignatureDoesNotMatch carries the server's
/// StringToSign and FormatString).
fn auth_error(e: auth::AuthError) -> EmuError {
    let mut err = EmuError::new(e.status, e.code, &e.message);
    err.extra = [
        ("StringToSign", e.string_to_sign),
        ("FormatString", e.format_string),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.map(|v| (n.to_string(), v)))
    .collect();
    err
}

async fn dispatch(ctx: &Ctx, op: &str, body: Incoming) -> OpResult {
    if matches!(
        op,
        "GetObject"
            | "HeadObject"
            | "DeleteObject"
            | "PostObjectRestore"
            | "GetObjectACL"
            | "PutObjectACL"
    ) {
        ops::check_version(ctx.param("versionId"))?;
    }
    let id = ctx.param("uploadId").unwrap_or("").to_string();
    let copy_source = ctx.header("x-cos-copy-source").unwrap_or("").to_string();
    match op {
        "GetBucket" => ops::list::get_bucket(ctx).await,
        "ListMultipartUploads" => ops::list::list_uploads(ctx).await,
        "HeadBucket" => Ok(Resp::empty(200).with("x-cos-bucket-region", ctx.state.region.clone())),
        "PutBucket" => Err(EmuError::new(
            409,
            "BucketAlreadyOwnedByYou",
            "The bucket already exists and is owned by you.",
        )),
        "DeleteBucket" => {
            let empty = {
                let idx = ctx.bucket.lock();
                idx.objects.is_empty() && idx.uploads.is_empty()
            };
            if !empty {
                return Err(EmuError::new(
                    409,
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty.",
                ));
            }
            ctx.state
                .storage
                .delete_bucket(&ctx.bucket.name)
                .map_err(EmuError::io)?;
            Ok(Resp::empty(204))
        }
        "GetBucketCORS" => ops::cors::get_cors(ctx).await,
        "GetBucketLocation" => ops::list::get_location(ctx).await,
        "GetBucketACL" => ops::acl::get_bucket_acl(ctx).await,
        "PutBucketACL" => ops::acl::put_bucket_acl(ctx, body).await,
        "GetBucketVersioning" => ops::list::get_versioning(ctx).await,
        "PutBucketCORS" => ops::cors::put_cors(ctx, body).await,
        "DeleteBucketCORS" => ops::cors::delete_cors(ctx).await,
        "OptionsObject" => ops::cors::options(ctx).await,
        "DeleteMultipleObjects" => ops::delete_multiple::delete_multiple(ctx, body).await,
        "PostObject" => ops::post::post_object(ctx, body).await,
        "GetObject" => ops::object::get(ctx).await,
        "HeadObject" => ops::object::head(ctx).await,
        "PutObject" => ops::object::put(ctx, body).await,
        "PutObjectCopy" => ops::object::copy(ctx, &copy_source).await,
        "DeleteObject" => ops::object::delete(ctx).await,
        "GetObjectACL" => ops::acl::get_acl(ctx).await,
        "PutObjectACL" => ops::acl::put_acl(ctx, body).await,
        "InitiateMultipartUpload" => ops::multipart::initiate(ctx).await,
        "UploadPart" => ops::multipart::upload_part(ctx, body, &id).await,
        "UploadPartCopy" => ops::multipart::upload_part_copy(ctx, &id, &copy_source).await,
        "CompleteMultipartUpload" => ops::multipart::complete(ctx, body, &id).await,
        "AbortMultipartUpload" => ops::multipart::abort(ctx, &id).await,
        "ListParts" => ops::multipart::list_parts(ctx, &id).await,
        "PostObjectRestore" => ops::restore::restore(ctx, body).await,
        _ => Err(EmuError::new(
            501,
            "NotImplemented",
            "A header or parameter you provided implies functionality that is not implemented.",
        )),
    }
}
