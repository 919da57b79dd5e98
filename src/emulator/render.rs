//! Response assembly for the emulator's HTTP front: the headers every COS answer carries
//! (Date, Server, x-cos-request-id, x-amz-* twins for SigV4 callers), file bodies streamed with
//! optional fault-injected drops, and the `<Error>` documents of docs/protocol.md §5.1.

use std::convert::Infallible;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderValue;
use hyper::Response;
use tokio::io::AsyncReadExt;

use super::ops::{self, Body, EmuError, Resp};
use super::xml::Writer;

/// Response body type.
pub(super) type RespBody = BoxBody<Bytes, std::io::Error>;

/// Streams `len` bytes of `file`; after `drop_after` bytes the stream fails, which makes hyper
/// abort the connection mid-body.
fn file_body(file: tokio::fs::File, len: u64, drop_after: Option<u64>) -> RespBody {
    let stream = futures::stream::unfold((file, 0u64), move |(mut file, sent)| async move {
        if sent >= len {
            return None;
        }
        if drop_after.is_some_and(|d| sent >= d) {
            let e = std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault injection: dropped",
            );
            return Some((Err(e), (file, len)));
        }
        let mut want = (len - sent).min(256 * 1024);
        if let Some(d) = drop_after {
            want = want.min((d - sent).max(1));
        }
        let mut buf = vec![0u8; want as usize];
        match file.read(&mut buf).await {
            Ok(0) => {
                let e =
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object body shrank");
                Some((Err(e), (file, len)))
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), (file, sent + n as u64)))
            }
            Err(e) => Some((Err(e), (file, len))),
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Builds the hyper response with the headers every COS answer carries.
pub(super) fn render(r: Resp, request_id: &str, method: &str, sigv4: bool) -> Response<RespBody> {
    let mut b = Response::builder().status(r.status);
    let mut headers = r.headers;
    let body: RespBody = match r.body {
        Body::Empty => {
            // 204 and 304 must not carry a Content-Length; HEAD describes the object instead.
            let bodiless = method == "HEAD" || r.status == 204 || r.status == 304;
            if !bodiless
                && !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                headers.push(("Content-Length".into(), "0".into()));
            }
            Empty::new().map_err(|e: Infallible| match e {}).boxed()
        }
        Body::Bytes(bytes) => Full::new(bytes).map_err(|e: Infallible| match e {}).boxed(),
        Body::File {
            file,
            len,
            drop_after,
        } => file_body(file, len, drop_after),
        Body::Chunks(chunks) => {
            let s = futures::stream::iter(chunks).map(|c| Ok::<_, std::io::Error>(Frame::data(c)));
            BodyExt::boxed(StreamBody::new(s))
        }
    };
    headers.push((
        "Date".into(),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    ));
    headers.push(("Server".into(), "tencent-cos".into()));
    headers.push(("x-cos-request-id".into(), request_id.to_string()));
    for (n, v) in &headers {
        b = b.header(n.as_str(), v.as_str());
        if sigv4 {
            if let Some(rest) = n.strip_prefix("x-cos-") {
                b = b.header(format!("x-amz-{rest}").as_str(), v.as_str());
            }
        }
    }
    match b.body(body) {
        Ok(resp) => resp,
        Err(e) => {
            // A header value we produced was not valid HTTP; report it rather than panic, as
            // COS reports everything: an XML error with the request id (§5.1).
            log::error!("bad response header: {e}");
            internal_error(request_id, method)
        }
    }
}

/// A 500 InternalError built only from values known to be valid HTTP (the fallback when a
/// response could not be assembled).
fn internal_error(request_id: &str, method: &str) -> Response<RespBody> {
    let mut w = Writer::new();
    w.start("Error")
        .elem("Code", "InternalError")
        .elem(
            "Message",
            "We encountered an internal error. Please try again.",
        )
        .elem("RequestId", request_id)
        .end();
    let body = if method == "HEAD" {
        Bytes::new()
    } else {
        Bytes::from(w.finish())
    };
    let mut resp = Response::new(Full::new(body).map_err(|e: Infallible| match e {}).boxed());
    *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/xml"));
    h.insert("server", HeaderValue::from_static("tencent-cos"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-cos-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())) {
        h.insert("date", v);
    }
    resp
}

/// The `<Error>` document of §5.1 (no body for HEAD).
pub(super) fn render_error(
    e: EmuError,
    resource: &str,
    request_id: &str,
    method: &str,
    sigv4: bool,
) -> Response<RespBody> {
    let trace_id = base64::engine::general_purpose::STANDARD.encode(ops::new_id(32));
    let mut headers = e.headers.clone();
    headers.push(("x-cos-trace-id".into(), trace_id.clone()));
    let body = if method == "HEAD" {
        Body::Empty
    } else {
        let mut w = Writer::new();
        w.start("Error")
            .elem("Code", &e.code)
            .elem("Message", &e.message);
        for (n, v) in &e.extra {
            w.elem(n, v);
        }
        w.elem("Resource", resource)
            .elem("RequestId", request_id)
            .elem("TraceId", &trace_id)
            .end();
        headers.push(("Content-Type".into(), "application/xml".into()));
        Body::Bytes(Bytes::from(w.finish()))
    };
    let status = if e.in_200 { 200 } else { e.status };
    render(
        Resp {
            status,
            headers,
            body,
        },
        request_id,
        method,
        sigv4,
    )
}
