//! Operation handlers, one file per family, and what they share: the request context, the
//! response and error types, body reception with MD5/CRC64, conditional-header evaluation and
//! the object header set of HEAD/GET.

pub mod acl;
mod body;
pub mod cors;
pub mod delete_multiple;
pub mod list;
pub mod multipart;
pub mod object;
pub mod post;
pub mod restore;

pub use body::{check_md5, read_body, receive, BodyHash, Received};

use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::auth::Identity;
use super::storage::{Acl, Bucket, Grant, ObjectMeta, StoredHeaders};
use super::State;

/// Largest single PUT / copy body (5 GB).
pub const MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// One request, resolved to a bucket and key, authenticated.
pub struct Ctx {
    /// Shared emulator state.
    pub state: Arc<State>,
    /// HTTP method, upper case.
    pub method: String,
    /// The bucket.
    pub bucket: Arc<Bucket>,
    /// Decoded key; empty for bucket-level requests.
    pub key: String,
    /// Decoded query parameters in request order.
    pub query: Vec<(String, String)>,
    /// Request headers (`x-amz-*` already renamed to `x-cos-*` for SigV4 requests).
    pub headers: Vec<(String, String)>,
    /// Who sent it.
    pub identity: Identity,
    /// `Host` header value.
    pub host: String,
}

impl Ctx {
    /// First header value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::auth::header(&self.headers, name)
    }

    /// Query parameter value by name (exact).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for anonymous requests.
    pub fn anonymous(&self) -> bool {
        self.identity == Identity::Anonymous
    }

    /// The owner id used in ACLs and multipart documents.
    pub fn owner_id(&self) -> String {
        let uin = "100000000001";
        format!("qcs::cam::uin/{uin}:uin/{uin}")
    }

    /// The APPID of the bucket (listing Owner ID).
    pub fn appid(&self) -> &str {
        self.bucket.name.rsplit('-').next().unwrap_or("")
    }
}

/// A response body.
pub enum Body {
    /// No body.
    Empty,
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes from an opened, positioned file; `drop_after` bytes then a broken connection.
    File {
        /// The file, already seeked.
        file: tokio::fs::File,
        /// Bytes to send.
        len: u64,
        /// Fault injection: fail the stream after this many bytes.
        drop_after: Option<u64>,
    },
    /// Chunks sent with `Transfer-Encoding: chunked` (no Content-Length).
    Chunks(Vec<Bytes>),
}

/// A successful (or 3xx) answer.
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

impl Resp {
    /// Status with no body.
    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// 200 with an XML document.
    pub fn xml(doc: String) -> Resp {
        Resp {
            status: 200,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: Body::Bytes(Bytes::from(doc)),
        }
    }

    /// Adds a header (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Resp {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A COS error answer.
#[derive(Debug, Clone)]
pub struct EmuError {
    /// HTTP status.
    pub status: u16,
    /// COS code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Extra response headers (e.g. `x-cos-storage-class`, `Content-Range`).
    pub headers: Vec<(String, String)>,
    /// Extra elements inside `<Error>` (StringToSign, FormatString).
    pub extra: Vec<(String, String)>,
    /// Send the XML error document with HTTP 200 (copy/complete failures after start).
    pub in_200: bool,
    /// Abort the connection instead of answering (fault injection).
    pub drop_connection: bool,
}

impl EmuError {
    /// An error with explicit status, code and message.
    pub fn new(status: u16, code: &str, message: &str) -> EmuError {
        EmuError {
            status,
            code: code.to_string(),
            message: message.to_string(),
            headers: Vec::new(),
            extra: Vec::new(),
            in_200: false,
            drop_connection: false,
        }
    }

    /// An error by code with COS's usual status and message.
    pub fn code(code: &str) -> EmuError {
        let (status, msg) = match code {
            "NoSuchKey" => (404, "The specified key does not exist."),
            "NoSuchBucket" => (404, "The specified bucket does not exist."),
            "NoSuchUpload" => (404, "The specified multipart upload does not exist."),
            "NoSuchVersion" => (404, "The specified version does not exist."),
            "MissingContentLength" => (411, "You must provide the Content-Length HTTP header."),
            "AccessDenied" => (403, "Access Denied."),
            "PreconditionFailed" => (412, "At least one of the preconditions you specified did not hold."),
            "InvalidRange" => (416, "The requested range is not satisfiable"),
            "MalformedXML" => (400, "The XML you provided was not well-formed or did not validate against our published schema."),
            "BadDigest" => (400, "The Content-MD5 you specified did not match what we received."),
            "InvalidDigest" => (400, "The Content-MD5 you specified is not valid."),
            "EntityTooLarge" => (400, "Your proposed upload exceeds the maximum allowed object size."),
            "EntityTooSmall" => (400, "Your proposed upload is smaller than the minimum allowed object size."),
            "KeyTooLong" => (400, "Your key is too long."),
            "InvalidURI" => (400, "Couldn't parse the specified URI."),
            "InvalidObjectState" => (403, "The operation is not valid for the object storage class."),
            "InvalidPart" => (400, "One or more of the specified parts could not be found."),
            "InvalidPartOrder" => (400, "The list of parts was not in ascending order."),
            "SlowDown" => (503, "Please reduce your request rate."),
            "MethodNotAllowed" => (405, "The specified method is not allowed against this resource."),
            "InternalError" => (500, "We encountered an internal error. Please try again."),
            "IncompleteBody" => (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
            _ => (400, "Invalid request."),
        };
        EmuError::new(status, code, msg)
    }

    /// 400 InvalidArgument with a message.
    pub fn invalid_argument(msg: &str) -> EmuError {
        EmuError::new(400, "InvalidArgument", msg)
    }

    /// 500 InternalError from a local I/O failure.
    pub fn io(e: io::Error) -> EmuError {
        log::error!("emulator I/O error: {e}");
        EmuError::code("InternalError")
    }

    /// Adds a response header (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> EmuError {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Result of an operation handler.
pub type OpResult = Result<Resp, EmuError>;

/// Versions on an unversioned bucket (every emulator bucket): only `null` exists, so any other
/// `versionId` names nothing and the request must touch nothing (docs/protocol.md §4.8).
pub fn check_version(version_id: Option<&str>) -> Result<(), EmuError> {
    match version_id {
        Some(v) if v != "null" => Err(EmuError::code("NoSuchVersion")),
        _ => Ok(()),
    }
}

/// A body upload must say its length: `Content-Length`, or chunked transfer encoding. Without
/// either, HTTP/1.1 says the body is empty, and COS refuses rather than store an empty object.
pub fn require_length(ctx: &Ctx) -> Result<(), EmuError> {
    let chunked = ctx
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if ctx.header("content-length").is_none() && !chunked {
        return Err(EmuError::code("MissingContentLength"));
    }
    Ok(())
}

/// Validates a key's length (1–850 bytes) and characters: no NUL (COS keys are UTF-8 text;
/// UTF-8 itself is checked where the key is decoded, see [`decode_key`]).
pub fn check_key(key: &str) -> Result<(), EmuError> {
    if key.len() > 850 {
        return Err(EmuError::code("KeyTooLong"));
    }
    if key.contains('\0') {
        return Err(EmuError::code("InvalidURI"));
    }
    Ok(())
}

/// Decodes a percent-encoded key strictly: bytes that are not UTF-8, or a NUL, are 400
/// `InvalidURI` (as S3 answers; a lossy decode would let two different keys collide).
pub fn decode_key(raw: &str, plus_space: bool) -> Result<String, EmuError> {
    let key = String::from_utf8(super::auth::percent_decode_bytes(raw, plus_space))
        .map_err(|_| EmuError::code("InvalidURI"))?;
    if key.contains('\0') {
        return Err(EmuError::code("InvalidURI"));
    }
    Ok(key)
}

/// Stored headers from a PUT / initiate / copy-Replaced request.
pub fn stored_headers(ctx: &Ctx) -> StoredHeaders {
    let nonempty = |n: &str| {
        ctx.header(n)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut h = StoredHeaders {
        content_type: nonempty("content-type").unwrap_or_else(|| "application/octet-stream".into()),
        cache_control: nonempty("cache-control"),
        content_disposition: nonempty("content-disposition"),
        // `aws-chunked` describes the SigV4 transfer framing, not the stored content.
        content_encoding: nonempty("content-encoding").and_then(|v| {
            let rest: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
                .collect();
            (!rest.is_empty()).then(|| rest.join(","))
        }),
        content_language: nonempty("content-language"),
        expires: nonempty("expires"),
        meta: Default::default(),
    };
    for (n, v) in &ctx.headers {
        let l = n.to_ascii_lowercase();
        if l.starts_with("x-cos-meta-") {
            h.meta.insert(l, v.clone());
        }
    }
    h
}

/// Refuses user metadata over COS's 2 KB limit (names without the prefix plus values), and
/// names with anything but letters, digits and `-` (COS refuses `_`, docs/protocol.md §4.2).
pub fn check_meta_size(ctx: &Ctx) -> Result<(), EmuError> {
    for (n, _) in &ctx.headers {
        let l = n.to_ascii_lowercase();
        if let Some(name) = l.strip_prefix("x-cos-meta-") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(EmuError::invalid_argument(&format!(
                    "user metadata name {l:?} may contain only letters, digits and '-'"
                )));
            }
        }
    }
    let total: usize = ctx
        .headers
        .iter()
        .filter_map(|(n, v)| {
            let l = n.to_ascii_lowercase();
            l.strip_prefix("x-cos-meta-")
                .map(|rest| rest.len() + v.len())
        })
        .sum();
    if total > 2048 {
        return Err(EmuError::new(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size (2 KB).",
        ));
    }
    Ok(())
}

/// Parses `id="a",id="b"` grant header values.
fn parse_grants(value: &str, permission: &str, out: &mut Vec<Grant>) {
    for part in value.split(',') {
        let part = part.trim();
        let (kind, v) = part.split_once('=').unwrap_or(("id", part));
        let v = v.trim().trim_matches('"').to_string();
        if v.is_empty() {
            continue;
        }
        let group = kind.trim().eq_ignore_ascii_case("uri");
        // `id="<uin>"` is a root account (the uin on both sides); `id="<owner>/<sub>"` is a
        // sub-account of that owner (docs/protocol.md §4.11).
        let grantee = if group || v.starts_with("qcs::") {
            v
        } else if let Some((owner, sub)) = v.split_once('/') {
            format!("qcs::cam::uin/{owner}:uin/{sub}")
        } else {
            format!("qcs::cam::uin/{v}:uin/{v}")
        };
        out.push(Grant {
            group,
            grantee,
            permission: permission.to_string(),
        });
    }
}

/// Grant headers and the permission each grants.
const GRANT_HEADERS: [(&str, &str); 5] = [
    ("x-cos-grant-read", "READ"),
    ("x-cos-grant-write", "WRITE"),
    ("x-cos-grant-read-acp", "READ_ACP"),
    ("x-cos-grant-write-acp", "WRITE_ACP"),
    ("x-cos-grant-full-control", "FULL_CONTROL"),
];

/// Permissions an object ACL may grant (PUT Object acl): buckets have more.
pub const OBJECT_PERMISSIONS: [&str; 2] = ["READ", "FULL_CONTROL"];

/// True when the request carries any ACL header (`x-cos-acl`, `x-cos-grant-*`).
pub fn has_acl_headers(ctx: &Ctx) -> bool {
    ctx.header("x-cos-acl").is_some() || GRANT_HEADERS.iter().any(|(h, _)| ctx.header(h).is_some())
}

/// ACL from `x-cos-acl` / `x-cos-grant-*` headers; None when none was sent. Object requests
/// (a key is named) accept only the object ACL values: canned `default`, `private`,
/// `public-read`, and READ / FULL_CONTROL grants (docs/protocol.md §4.11).
pub fn acl_from_headers(ctx: &Ctx) -> Result<Option<Acl>, EmuError> {
    let object = !ctx.key.is_empty();
    let canned = ctx.header("x-cos-acl").map(|v| v.trim().to_string());
    if let Some(c) = &canned {
        let ok = match c.as_str() {
            "default" | "private" | "public-read" => true,
            "public-read-write" | "authenticated-read" => !object,
            _ => false,
        };
        if !ok {
            return Err(EmuError::invalid_argument("invalid x-cos-acl"));
        }
    }
    let mut grants = Vec::new();
    for (h, p) in GRANT_HEADERS {
        if let Some(v) = ctx.header(h) {
            if object && !OBJECT_PERMISSIONS.contains(&p) {
                return Err(EmuError::invalid_argument(&format!(
                    "{h} is not an object ACL header"
                )));
            }
            parse_grants(v, p, &mut grants);
        }
    }
    if canned.is_none() && grants.is_empty() {
        return Ok(None);
    }
    Ok(Some(Acl {
        canned: canned.filter(|c| c != "default"),
        grants,
    }))
}

/// RFC 1123 date of Unix seconds.
pub fn http_date(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// ISO 8601 with milliseconds (`2020-12-10T03:37:30.000Z`) of Unix ms.
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// ISO 8601 without fraction (`2020-04-10T18:20:30Z`) of Unix seconds (copy results).
pub fn iso_secs(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn parse_http_date(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim().trim_start_matches("W/").trim_matches('"');
        t == "*" || t == etag
    })
}

/// Outcome of failed conditions.
pub enum CondFail {
    /// 412 PreconditionFailed.
    Precondition,
    /// 304 Not Modified.
    NotModified,
}

/// Evaluates If-Match / If-Unmodified-Since (412) then If-None-Match / If-Modified-Since (304),
/// with header names prefixed by `prefix` (`""` or `x-cos-copy-source-`).
pub fn conditions(ctx: &Ctx, prefix: &str, meta: &ObjectMeta) -> Result<(), CondFail> {
    let h = |n: &str| ctx.header(&format!("{prefix}{n}"));
    if let Some(m) = h("if-match") {
        if !etag_matches(m, &meta.etag) {
            return Err(CondFail::Precondition);
        }
    } else if let Some(t) = h("if-unmodified-since").and_then(parse_http_date) {
        if meta.last_modified > t {
            return Err(CondFail::Precondition);
        }
    }
    if let Some(m) = h("if-none-match") {
        if etag_matches(m, &meta.etag) {
            return Err(CondFail::NotModified);
        }
    } else if let Some(t) = h("if-modified-since").and_then(parse_http_date) {
        if meta.last_modified <= t {
            return Err(CondFail::NotModified);
        }
    }
    Ok(())
}

/// `x-cos-restore` / `x-cos-restore-status` headers for an archived object at `now_ms`.
pub fn restore_headers(meta: &ObjectMeta, now_ms: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(r) = &meta.restore {
        if now_ms < r.ready_ms {
            out.push(("x-cos-restore".into(), "ongoing-request=\"true\"".into()));
            out.push((
                "x-cos-restore-status".into(),
                format!(
                    "tier=\"{}\"; request-date=\"{}\"",
                    r.tier.to_lowercase(),
                    http_date(r.requested_ms / 1000)
                ),
            ));
        } else if now_ms < r.expiry_ms() {
            out.push((
                "x-cos-restore".into(),
                format!(
                    "ongoing-request=\"false\", expiry-date=\"{}\"",
                    http_date(r.expiry_ms() / 1000)
                ),
            ));
        }
    }
    out
}

/// True when the object's body may be read now (not archived, or restored and not expired).
pub fn readable(meta: &ObjectMeta, now_ms: i64) -> bool {
    if !matches!(meta.storage_class.as_str(), "ARCHIVE" | "DEEP_ARCHIVE") {
        return true;
    }
    meta.restore
        .as_ref()
        .is_some_and(|r| now_ms >= r.ready_ms && now_ms < r.expiry_ms())
}

/// The headers HEAD and GET return for an object.
pub fn object_headers(meta: &ObjectMeta, now_ms: i64) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![
        ("Content-Type".into(), meta.headers.content_type.clone()),
        ("ETag".into(), format!("\"{}\"", meta.etag)),
        ("Last-Modified".into(), http_date(meta.last_modified)),
        ("x-cos-object-type".into(), "normal".into()),
    ];
    let opt = [
        ("Cache-Control", &meta.headers.cache_control),
        ("Content-Disposition", &meta.headers.content_disposition),
        ("Content-Encoding", &meta.headers.content_encoding),
        ("Content-Language", &meta.headers.content_language),
        ("Expires", &meta.headers.expires),
    ];
    for (n, v) in opt {
        if let Some(v) = v {
            h.push((n.into(), v.clone()));
        }
    }
    for (n, v) in &meta.headers.meta {
        h.push((n.clone(), v.clone()));
    }
    if meta.storage_class != "STANDARD" {
        h.push(("x-cos-storage-class".into(), meta.storage_class.clone()));
    }
    if let Some(c) = meta.crc64 {
        h.push(("x-cos-hash-crc64ecma".into(), c.to_string()));
    }
    h.extend(restore_headers(meta, now_ms));
    h
}

/// Looks up an object or fails with NoSuchKey.
pub fn need_object(ctx: &Ctx) -> Result<ObjectMeta, EmuError> {
    ctx.bucket
        .get(&ctx.key)
        .ok_or_else(|| EmuError::code("NoSuchKey"))
}

/// Fresh opaque id (request ids, upload ids).
pub fn new_id(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
