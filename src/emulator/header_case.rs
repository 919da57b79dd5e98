//! Response header names spelled as COS spells them (`ETag`, `Content-Length`, `Last-Modified`,
//! lower-case `x-cos-*`). hyper lower-cases names unless a response carries its private
//! header-case map; some SDKs copy headers into a plain dict and look up `ETag` or
//! `Content-Length` by exact spelling, so the spelling matters. The map's type is not public, so
//! it is obtained once by letting hyper parse a request whose headers have the wanted spellings,
//! and its extensions are then cloned onto every response.

use hyper::http::Extensions;

/// Canonical spellings of the standard headers the emulator sends.
const NAMES: &[&str] = &[
    "ETag",
    "Content-Length",
    "Content-Type",
    "Content-Range",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Cache-Control",
    "Expires",
    "Last-Modified",
    "Accept-Ranges",
    "Date",
    "Server",
    "Location",
    "Transfer-Encoding",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Credentials",
    "Vary",
];

/// Extensions holding hyper's header-case map for [`NAMES`]; None if hyper would not produce it.
pub async fn template() -> Option<Extensions> {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use tokio::io::AsyncWriteExt;

    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let (tx, rx) = tokio::sync::oneshot::channel::<Extensions>();
    let tx = std::sync::Mutex::new(Some(tx));
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        if let Some(tx) = tx.lock().ok().and_then(|mut g| g.take()) {
            let _ = tx.send(std::mem::take(req.extensions_mut()));
        }
        async { Ok::<_, std::convert::Infallible>(hyper::Response::new(Empty::<Bytes>::new())) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(hyper_util::rt::TokioIo::new(server), svc);
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut raw = String::from("GET / HTTP/1.1\r\n");
    for n in NAMES {
        // Content-Length 0 keeps the request valid; the other values are never used.
        let v = if *n == "Content-Length" { "0" } else { "x" };
        if *n != "Transfer-Encoding" {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    raw.push_str("\r\n");
    let ext = async {
        client.write_all(raw.as_bytes()).await.ok()?;
        rx.await.ok()
    };
    let ext = tokio::time::timeout(std::time::Duration::from_secs(5), ext)
        .await
        .ok()
        .flatten();
    task.abort();
    ext
}
