//! Single-object operations: PUT, GET (ranges, overrides, conditionals), HEAD, DELETE and
//! PUT Object - Copy (docs/protocol.md §4.2, §4.4, §4.5, §4.7, §4.8).

use std::path::Path;

use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    acl_from_headers, check_key, conditions, object_headers, readable, receive, stored_headers,
    Body, BodyHash, CondFail, Ctx, EmuError, OpResult, Received, Resp, MAX_PUT,
};
use crate::emulator::storage::{Acl, ObjectMeta};
use crate::emulator::xml::Writer;

/// Storage classes the emulator accepts.
const CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "ARCHIVE",
    "DEEP_ARCHIVE",
    "MAZ_STANDARD",
    "MAZ_STANDARD_IA",
    "MAZ_INTELLIGENT_TIERING",
];

/// `x-cos-storage-class` of the request (STANDARD when absent).
pub fn storage_class(ctx: &Ctx) -> Result<String, EmuError> {
    let sc = ctx
        .header("x-cos-storage-class")
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "STANDARD".into());
    if !CLASSES.contains(&sc.as_str()) {
        return Err(EmuError::new(
            400,
            "NotSupportedStorageClass",
            "The storage class you specified is not supported.",
        ));
    }
    Ok(sc)
}

/// Metadata of a freshly written object (body fields from `r`).
pub fn new_meta(ctx: &Ctx, key: &str, r: &Received, sc: String, acl: Acl) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: r.size,
        etag: r.md5.clone(),
        crc64: Some(r.crc64),
        last_modified: ctx.state.now(),
        headers: stored_headers(ctx),
        storage_class: sc,
        acl,
        restore: None,
        data_file: String::new(),
    }
}

/// PUT Object.
pub async fn put(ctx: &Ctx, body: Incoming) -> OpResult {
    check_key(&ctx.key)?;
    super::require_length(ctx)?;
    super::check_meta_size(ctx)?;
    let acl = acl_from_headers(ctx)?.unwrap_or_default();
    let sc = storage_class(ctx)?;
    let drop = ctx.state.faults.drop_now();
    let tmp = ctx.bucket.tmp_path();
    let r = receive(ctx, body, &tmp, drop).await?;
    let meta = new_meta(ctx, &ctx.key, &r, sc, acl);
    ctx.bucket.put(meta, &tmp).map_err(EmuError::io)?;
    Ok(Resp::empty(200)
        .with("ETag", format!("\"{}\"", r.md5))
        .with("x-cos-hash-crc64ecma", r.crc64.to_string()))
}

/// Parses a single `Range` against `size`: Ok(None) = whole object, Err = 416.
fn parse_range(v: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    let Ok(first) = a.parse::<u64>() else {
        return Ok(None);
    };
    let last = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(l) if l >= first => l,
            _ => return Ok(None),
        }
    };
    if first >= size {
        return Err(());
    }
    Ok(Some((first, last.min(size - 1))))
}

fn precondition(e: CondFail, meta: &ObjectMeta) -> OpResult {
    match e {
        CondFail::Precondition => Err(EmuError::code("PreconditionFailed")),
        CondFail::NotModified => Ok(Resp::empty(304)
            .with("ETag", format!("\"{}\"", meta.etag))
            .with("Last-Modified", super::http_date(meta.last_modified))),
    }
}

/// The object, if the caller may read it: anonymous callers only see public-read objects. A
/// missing key is AccessDenied for them in a private bucket (no names leak), but NoSuchKey in a
/// public-read one, whose listing shows every name anyway.
fn readable_object(ctx: &Ctx) -> Result<ObjectMeta, EmuError> {
    match ctx.bucket.get(&ctx.key) {
        Some(m) if !ctx.anonymous() || super::acl::anonymous_may_read(ctx, &m.acl) => Ok(m),
        Some(_) => Err(EmuError::code("AccessDenied")),
        None if ctx.anonymous() && !ctx.bucket.lock().config.acl.public_read() => {
            Err(EmuError::code("AccessDenied"))
        }
        None => Err(EmuError::code("NoSuchKey")),
    }
}

/// HEAD Object.
pub async fn head(ctx: &Ctx) -> OpResult {
    check_key(&ctx.key)?;
    let meta = readable_object(ctx)?;
    if let Err(e) = conditions(ctx, "", &meta) {
        return precondition(e, &meta);
    }
    let mut r = Resp::empty(200);
    r.headers = object_headers(&meta, ctx.state.now_ms());
    r.headers
        .push(("Content-Length".into(), meta.size.to_string()));
    r.headers.push(("Accept-Ranges".into(), "bytes".into()));
    Ok(r)
}

/// GET Object.
pub async fn get(ctx: &Ctx) -> OpResult {
    check_key(&ctx.key)?;
    let meta = readable_object(ctx)?;
    let overrides: Vec<(&str, &str)> = ctx
        .query
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("response-").map(|n| (n, v.as_str())))
        .collect();
    if ctx.anonymous() && !overrides.is_empty() {
        return Err(EmuError::code("AccessDenied"));
    }
    // An override becomes a response header: CR, LF or other controls cannot be sent in one
    // (and must never split the response), so the request is invalid.
    if let Some((name, _)) = overrides
        .iter()
        .find(|(_, v)| v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f))
    {
        return Err(EmuError::invalid_argument(&format!(
            "response-{name} contains a control character"
        )));
    }
    if let Err(e) = conditions(ctx, "", &meta) {
        return precondition(e, &meta);
    }
    let now_ms = ctx.state.now_ms();
    if !readable(&meta, now_ms) {
        return Err(EmuError::code("InvalidObjectState")
            .with("x-cos-storage-class", meta.storage_class.clone()));
    }
    let range = match ctx.header("range") {
        Some(v) => parse_range(v, meta.size).map_err(|_| {
            EmuError::code("InvalidRange").with("Content-Range", format!("bytes */{}", meta.size))
        })?,
        None => None,
    };
    let mut headers = object_headers(&meta, now_ms);
    for (name, value) in overrides {
        let h = match name {
            "content-type" => "Content-Type",
            "content-language" => "Content-Language",
            "expires" => "Expires",
            "cache-control" => "Cache-Control",
            "content-disposition" => "Content-Disposition",
            "content-encoding" => "Content-Encoding",
            _ => continue,
        };
        headers.retain(|(n, _)| n != h);
        headers.push((h.to_string(), value.to_string()));
    }
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    let (status, offset, len) = match range {
        Some((a, b)) => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {a}-{b}/{}", meta.size),
            ));
            (206, a, b - a + 1)
        }
        None => (200, 0, meta.size),
    };
    let drop_after = ctx.state.faults.drop_now().then_some(len / 2);
    headers.push(("Content-Length".into(), len.to_string()));
    if len <= SMALL_READ && drop_after.is_none() {
        // Read here: each tokio file operation is a thread hop each way (open, seek, read),
        // which cost more than reading a small range from the page cache.
        let body = read_small(&ctx.bucket.data_path(&meta), offset, len)?;
        return Ok(Resp {
            status,
            headers,
            body: Body::Bytes(body),
        });
    }
    let mut file = match tokio::fs::File::open(ctx.bucket.data_path(&meta)).await {
        Ok(f) => f,
        Err(_) => return Err(EmuError::code("NoSuchKey")),
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(EmuError::io)?;
    Ok(Resp {
        status,
        headers,
        body: Body::File {
            file,
            len,
            drop_after,
        },
    })
}

/// Ranges up to this size are read in one go and sent from memory.
const SMALL_READ: u64 = 256 * 1024;

/// `len` bytes at `offset` of the body file at `path` (a vanished file is NoSuchKey).
fn read_small(path: &Path, offset: u64, len: u64) -> Result<bytes::Bytes, EmuError> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).map_err(|_| EmuError::code("NoSuchKey"))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset).map_err(EmuError::io)?;
    Ok(bytes::Bytes::from(buf))
}

/// DELETE Object: 204 whether or not the key existed.
pub async fn delete(ctx: &Ctx) -> OpResult {
    check_key(&ctx.key)?;
    ctx.bucket.delete(&ctx.key).map_err(EmuError::io)?;
    Ok(Resp::empty(204))
}

/// A whole object's body at `src` as a new file `dst`, hashed: a hard link when the data
/// directory allows one (bodies are never changed in place, only replaced), so a copy in place
/// that only changes metadata (cosfuse storing a large file's times, `chmod`) reads the body
/// once instead of writing it again; else a copy.
async fn copy_whole(src: &Path, len: u64, dst: &Path) -> Result<Received, EmuError> {
    if len <= SMALL_READ || std::fs::hard_link(src, dst).is_err() {
        return copy_range(src, 0, len, dst).await;
    }
    let path = dst.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut hash = BodyHash::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match f.read(&mut buf)? {
                0 => return Ok(hash.finish()),
                n => hash.update(&buf[..n]),
            }
        }
    })
    .await
    .map_err(|e| EmuError::io(std::io::Error::other(e.to_string())))?;
    hashed.map_err(EmuError::io)
}

/// Copies `len` bytes at `offset` of `src` into a new file `dst`, hashing them.
pub async fn copy_range(
    src: &Path,
    offset: u64,
    len: u64,
    dst: &Path,
) -> Result<Received, EmuError> {
    if len <= SMALL_READ {
        // In one go, as `get` does for small ranges: no thread hops.
        let body = read_small(src, offset, len)?;
        std::fs::write(dst, &body).map_err(EmuError::io)?;
        let mut hash = BodyHash::new();
        hash.update(&body);
        return Ok(hash.finish());
    }
    let mut input = tokio::fs::File::open(src)
        .await
        .map_err(|_| EmuError::code("NoSuchKey"))?;
    input
        .seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(EmuError::io)?;
    let mut out = tokio::fs::File::create(dst).await.map_err(EmuError::io)?;
    let mut hash = BodyHash::new();
    let mut left = len;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = input.read(&mut buf[..want]).await.map_err(EmuError::io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).await.map_err(EmuError::io)?;
        left -= n as u64;
    }
    out.flush().await.map_err(EmuError::io)?;
    Ok(hash.finish())
}

/// A parsed `x-cos-copy-source`.
pub struct CopySource {
    /// Source bucket name.
    pub bucket: String,
    /// Decoded source key.
    pub key: String,
    /// `versionId`, when given.
    pub version_id: Option<String>,
}

/// Parses `bucket-appid.cos.region.myqcloud.com/key[?versionId=]`, `/bucket-appid/key`,
/// `bucket-appid/key` or `host:port/bucket-appid/key`.
pub fn parse_copy_source(v: &str) -> Result<CopySource, EmuError> {
    let bad = || EmuError::new(400, "InvalidArgument", "x-cos-copy-source is malformed");
    let v = v.trim();
    let v = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .unwrap_or(v);
    let (path, query) = v.split_once('?').unwrap_or((v, ""));
    let version_id = crate::emulator::auth::parse_query(query)
        .into_iter()
        .find(|(k, _)| k == "versionId")
        .map(|(_, v)| v);
    let path = path.trim_start_matches('/');
    let (first, rest) = path.split_once('/').ok_or_else(bad)?;
    let label = first.split('.').next().unwrap_or("");
    let (bucket, key_raw) = if crate::emulator::storage::valid_bucket_name(label) {
        (label.to_string(), rest)
    } else {
        let (b, k) = rest.split_once('/').ok_or_else(bad)?;
        (b.to_string(), k)
    };
    let key = super::decode_key(key_raw, false).map_err(|_| bad())?;
    if key.is_empty() {
        return Err(bad());
    }
    Ok(CopySource {
        bucket,
        key,
        version_id,
    })
}

/// Resolves and checks a copy source: exists, readable, conditions hold.
pub fn copy_source_meta(
    ctx: &Ctx,
    src: &CopySource,
) -> Result<(std::sync::Arc<crate::emulator::storage::Bucket>, ObjectMeta), EmuError> {
    let b = ctx
        .state
        .storage
        .bucket(&src.bucket)
        .ok_or_else(|| EmuError::code("NoSuchBucket"))?;
    super::check_version(src.version_id.as_deref())?;
    let meta = b.get(&src.key).ok_or_else(|| EmuError::code("NoSuchKey"))?;
    if !readable(&meta, ctx.state.now_ms()) {
        return Err(EmuError::code("InvalidObjectState"));
    }
    if conditions(ctx, "x-cos-copy-source-", &meta).is_err() {
        return Err(EmuError::code("PreconditionFailed"));
    }
    Ok((b, meta))
}

/// PUT Object - Copy.
pub async fn copy(ctx: &Ctx, source: &str) -> OpResult {
    check_key(&ctx.key)?;
    let src = parse_copy_source(source)?;
    let (sb, smeta) = copy_source_meta(ctx, &src)?;
    let replaced = match ctx.header("x-cos-metadata-directive").map(str::trim) {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("Copy") => false,
        Some(d) if d.eq_ignore_ascii_case("Replaced") || d.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => {
            return Err(EmuError::invalid_argument(
                "x-cos-metadata-directive must be Copy or Replaced",
            ))
        }
    };
    if src.bucket == ctx.bucket.name && src.key == ctx.key && !replaced {
        return Err(EmuError::new(
            400,
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if replaced {
        super::check_meta_size(ctx)?;
    }
    if smeta.size > MAX_PUT {
        return Err(EmuError::code("EntityTooLarge"));
    }
    let acl = acl_from_headers(ctx)?.unwrap_or_default();
    let sc = storage_class(ctx)?;
    if ctx.state.faults.error_in_200_now() {
        let mut e = EmuError::code("InternalError");
        e.in_200 = true;
        return Err(e);
    }
    ctx.state.check_free_space(smeta.size)?;
    let tmp = ctx.bucket.tmp_path();
    let r = copy_whole(&sb.data_path(&smeta), smeta.size, &tmp).await?;
    let mut meta = new_meta(ctx, &ctx.key, &r, sc, acl);
    if !replaced {
        meta.headers = smeta.headers.clone();
    }
    let meta = ctx.bucket.put(meta, &tmp).map_err(EmuError::io)?;
    let mut w = Writer::new();
    w.start("CopyObjectResult")
        .elem("ETag", &format!("\"{}\"", meta.etag))
        .elem("CRC64", &r.crc64.to_string())
        .elem("LastModified", &super::iso_secs(meta.last_modified))
        .end();
    let mut resp = Resp::xml(w.finish());
    if let Some(v) = src.version_id {
        resp = resp.with("x-cos-copy-source-version-id", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4", 11), Ok(Some((0, 4))));
        assert_eq!(parse_range("bytes=6-", 11), Ok(Some((6, 10))));
        assert_eq!(parse_range("bytes=-3", 11), Ok(Some((8, 10))));
        assert_eq!(parse_range("bytes=-30", 11), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=5-100", 11), Ok(Some((5, 10))));
        assert_eq!(parse_range("bytes=11-", 11), Err(()));
        assert_eq!(parse_range("bytes=0-", 0), Err(()));
        assert_eq!(parse_range("bytes=5-2", 11), Ok(None));
        assert_eq!(parse_range("items=0-1", 11), Ok(None));
    }

    #[test]
    fn copy_source_forms() {
        let s = parse_copy_source(
            "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/src/%E6%BA%90%20%E6%96%87%E4%BB%B6%2B1.txt?versionId=v1",
        )
        .unwrap();
        assert_eq!(s.bucket, "examplebucket-1250000000");
        assert_eq!(s.key, "src/源 文件+1.txt");
        assert_eq!(s.version_id.as_deref(), Some("v1"));
        let s = parse_copy_source("/b-1250000000/a/b.txt").unwrap();
        assert_eq!(
            (s.bucket.as_str(), s.key.as_str()),
            ("b-1250000000", "a/b.txt")
        );
        let s = parse_copy_source("127.0.0.1:9000/b-1250000000/k").unwrap();
        assert_eq!((s.bucket.as_str(), s.key.as_str()), ("b-1250000000", "k"));
        assert!(parse_copy_source("nokey").is_err());
    }
}
