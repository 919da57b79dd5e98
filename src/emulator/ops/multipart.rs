//! Multipart upload (docs/protocol.md §4.12): initiate, upload part, upload part - copy,
//! complete (with COS's validation and the S3-convention ETag), abort and list parts.

use bytes::Bytes;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::object::{copy_range, copy_source_meta, parse_copy_source, storage_class};
use super::{
    acl_from_headers, check_key, check_md5, iso_ms, iso_secs, new_id, read_body, receive, Body,
    Ctx, EmuError, OpResult, Resp,
};
use crate::emulator::storage::{ObjectMeta, Part, Upload};
use crate::emulator::xml::{self, Writer};

/// Smallest non-last part (1 MiB).
const MIN_PART: u64 = 1024 * 1024;

/// Initiate Multipart Upload (`POST /key?uploads`).
pub async fn initiate(ctx: &Ctx) -> OpResult {
    check_key(&ctx.key)?;
    super::check_meta_size(ctx)?;
    let acl = acl_from_headers(ctx)?.unwrap_or_default();
    let sc = storage_class(ctx)?;
    let now_ms = ctx.state.now_ms();
    let id = format!("{}{}", now_ms / 1000, new_id(24));
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        size: 0,
        etag: String::new(),
        crc64: None,
        last_modified: 0,
        headers: super::stored_headers(ctx),
        storage_class: sc,
        acl,
        restore: None,
        data_file: String::new(),
    };
    ctx.bucket
        .create_upload(Upload {
            id: id.clone(),
            key: ctx.key.clone(),
            initiated_ms: now_ms,
            meta,
            parts: Default::default(),
        })
        .map_err(EmuError::io)?;
    let mut w = Writer::new();
    w.start("InitiateMultipartUploadResult")
        .elem("Bucket", &ctx.bucket.name)
        .elem("Key", &ctx.key)
        .elem("UploadId", &id)
        .end();
    Ok(Resp::xml(w.finish()))
}

fn upload_of(ctx: &Ctx, id: &str) -> Result<Upload, EmuError> {
    match ctx.bucket.upload(id) {
        Some(u) if u.key == ctx.key => Ok(u),
        _ => Err(EmuError::code("NoSuchUpload")),
    }
}

fn part_number(ctx: &Ctx) -> Result<u32, EmuError> {
    ctx.param("partNumber")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| EmuError::invalid_argument("partNumber must be 1..10000"))
}

/// Upload Part (`PUT /key?partNumber=N&uploadId=ID`).
pub async fn upload_part(ctx: &Ctx, body: Incoming, id: &str) -> OpResult {
    super::require_length(ctx)?;
    let n = part_number(ctx)?;
    upload_of(ctx, id)?;
    let drop = ctx.state.faults.drop_now();
    let tmp = ctx.bucket.tmp_path();
    let r = receive(ctx, body, &tmp, drop).await?;
    let part = Part {
        size: r.size,
        etag: r.md5.clone(),
        crc64: r.crc64,
        last_modified_ms: ctx.state.now_ms(),
        data_file: String::new(),
    };
    if !ctx
        .bucket
        .put_part(id, n, part, &tmp)
        .map_err(EmuError::io)?
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(EmuError::code("NoSuchUpload"));
    }
    Ok(Resp::empty(200)
        .with("ETag", format!("\"{}\"", r.md5))
        .with("x-cos-hash-crc64ecma", r.crc64.to_string()))
}

/// Upload Part - Copy (`PUT /key?partNumber=N&uploadId=ID` with `x-cos-copy-source`).
pub async fn upload_part_copy(ctx: &Ctx, id: &str, source: &str) -> OpResult {
    let n = part_number(ctx)?;
    upload_of(ctx, id)?;
    let src = parse_copy_source(source)?;
    let (sb, smeta) = copy_source_meta(ctx, &src)?;
    let (offset, len) = match ctx.header("x-cos-copy-source-range") {
        None => (0, smeta.size),
        Some(v) => {
            let bad = || {
                EmuError::code("InvalidRange")
                    .with("Content-Range", format!("bytes */{}", smeta.size))
            };
            let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
            let (a, b) = spec.split_once('-').ok_or_else(bad)?;
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            if a > b || b >= smeta.size {
                return Err(bad());
            }
            (a, b - a + 1)
        }
    };
    ctx.state.check_free_space(len)?;
    let tmp = ctx.bucket.tmp_path();
    let r = copy_range(&sb.data_path(&smeta), offset, len, &tmp).await?;
    let now_ms = ctx.state.now_ms();
    let part = Part {
        size: r.size,
        etag: r.md5.clone(),
        crc64: r.crc64,
        last_modified_ms: now_ms,
        data_file: String::new(),
    };
    if !ctx
        .bucket
        .put_part(id, n, part, &tmp)
        .map_err(EmuError::io)?
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(EmuError::code("NoSuchUpload"));
    }
    let mut w = Writer::new();
    w.start("CopyPartResult")
        .elem("ETag", &format!("\"{}\"", r.md5))
        .elem("LastModified", &iso_secs(now_ms / 1000))
        .elem("CRC64", &r.crc64.to_string())
        .end();
    Ok(Resp::xml(w.finish()))
}

/// Parses the CompleteMultipartUpload body into (part number, ETag without quotes).
fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, EmuError> {
    let root = xml::parse(body).map_err(|_| EmuError::code("MalformedXML"))?;
    if root.name != "CompleteMultipartUpload" {
        return Err(EmuError::code("MalformedXML"));
    }
    let mut out = Vec::new();
    for p in root.all("Part") {
        let n = p
            .child_text("PartNumber")
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| EmuError::code("MalformedXML"))?;
        let etag = p
            .child_text("ETag")
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        out.push((n, etag));
    }
    if out.is_empty() {
        return Err(EmuError::code("MalformedXML"));
    }
    Ok(out)
}

/// Complete Multipart Upload (`POST /key?uploadId=ID`): validates, concatenates the parts and
/// answers 200 with chunked whitespace before the result (as COS does).
pub async fn complete(ctx: &Ctx, body: Incoming, id: &str) -> OpResult {
    let body = read_body(body, 4 * 1024 * 1024).await?;
    check_md5(ctx, &body)?;
    let up = upload_of(ctx, id)?;
    let listed = parse_complete(&body)?;
    for w in listed.windows(2) {
        if w[1].0 <= w[0].0 {
            return Err(EmuError::code("InvalidPartOrder"));
        }
    }
    let mut parts = Vec::new();
    for (i, (n, etag)) in listed.iter().enumerate() {
        let p = up
            .parts
            .get(n)
            .ok_or_else(|| EmuError::code("InvalidPart"))?;
        // Parts must be numbered 1..N without gaps.
        if *n as usize != i + 1 || *etag != p.etag {
            return Err(EmuError::code("InvalidPart"));
        }
        parts.push(p.clone());
    }
    // Sizes are checked only once every listed part is known to be valid (as S3 does).
    if parts[..parts.len() - 1].iter().any(|p| p.size < MIN_PART) {
        return Err(EmuError::code("EntityTooSmall"));
    }
    if ctx.state.faults.error_in_200_now() {
        let mut e = EmuError::code("InternalError");
        e.in_200 = true;
        return Err(e);
    }
    ctx.state
        .check_free_space(parts.iter().map(|p| p.size).sum())?;
    let tmp = ctx.bucket.tmp_path();
    let mut out = tokio::fs::File::create(&tmp).await.map_err(EmuError::io)?;
    let mut etag_md5 = Md5::new();
    let mut crc = crc64fast::Digest::new();
    let mut size = 0u64;
    for p in &parts {
        let mut f = tokio::fs::File::open(ctx.bucket.part_path(id, p))
            .await
            .map_err(EmuError::io)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf)
                .await
                .map_err(EmuError::io)?;
            if n == 0 {
                break;
            }
            crc.write(&buf[..n]);
            out.write_all(&buf[..n]).await.map_err(EmuError::io)?;
            size += n as u64;
        }
        etag_md5.update(hex::decode(&p.etag).unwrap_or_default());
    }
    out.flush().await.map_err(EmuError::io)?;
    drop(out);
    let etag = format!("{}-{}", hex::encode(etag_md5.finalize()), parts.len());
    let crc64 = crc.sum64();
    let mut meta = up.meta.clone();
    meta.size = size;
    meta.etag = etag.clone();
    meta.crc64 = Some(crc64);
    meta.last_modified = ctx.state.now();
    ctx.bucket.put(meta, &tmp).map_err(EmuError::io)?;
    ctx.bucket.remove_upload(id).map_err(EmuError::io)?;
    // COS streams whitespace while it assembles; the document after it therefore carries no
    // XML declaration (one after whitespace is not well-formed, and the Python SDK rejects it).
    let mut w = Writer::bare();
    w.start_attrs(
        "CompleteMultipartUploadResult",
        &[("xmlns", "http://www.qcloud.com/document/product/436/7751")],
    )
    .elem("Location", &format!("http://{}/{}", ctx.host, ctx.key))
    .elem("Bucket", &ctx.bucket.name)
    .elem("Key", &ctx.key)
    .elem("ETag", &format!("\"{etag}\""))
    .end();
    Ok(Resp {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/xml".into()),
            ("x-cos-hash-crc64ecma".into(), crc64.to_string()),
        ],
        body: Body::Chunks(vec![Bytes::from_static(b"\n  \n"), Bytes::from(w.finish())]),
    })
}

/// Abort Multipart Upload (`DELETE /key?uploadId=ID`).
pub async fn abort(ctx: &Ctx, id: &str) -> OpResult {
    upload_of(ctx, id)?;
    if !ctx.bucket.remove_upload(id).map_err(EmuError::io)? {
        return Err(EmuError::code("NoSuchUpload"));
    }
    Ok(Resp::empty(204))
}

/// List Parts (`GET /key?uploadId=ID`).
pub async fn list_parts(ctx: &Ctx, id: &str) -> OpResult {
    let up = upload_of(ctx, id)?;
    let max = match ctx.param("max-parts").filter(|v| !v.is_empty()) {
        None => 1000,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| EmuError::invalid_argument("max-parts is invalid"))?
            .min(1000),
    };
    let marker: u32 = match ctx.param("part-number-marker").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| EmuError::invalid_argument("part-number-marker is invalid"))?,
    };
    let url = ctx
        .param("encoding-type")
        .is_some_and(|v| v.eq_ignore_ascii_case("url"));
    let after: Vec<(&u32, &Part)> = up.parts.range(marker.saturating_add(1)..).collect();
    let truncated = after.len() > max;
    let shown = &after[..after.len().min(max)];
    let owner = ctx.owner_id();
    let mut w = Writer::new();
    w.start("ListPartsResult").elem("Bucket", &ctx.bucket.name);
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "Key",
        &if url {
            super::list::url_encode_key(&up.key)
        } else {
            up.key.clone()
        },
    )
    .elem("UploadId", id)
    .start("Initiator")
    .elem("ID", &owner)
    .elem("DisplayName", "100000000001")
    .end()
    .start("Owner")
    .elem("ID", &owner)
    .elem("DisplayName", "100000000001")
    .end()
    .elem("PartNumberMarker", &marker.to_string());
    for (n, p) in shown {
        w.start("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso_ms(p.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string())
            .end();
    }
    let next = shown.last().map(|(n, _)| **n).unwrap_or(marker);
    w.elem("NextPartNumberMarker", &next.to_string())
        .elem("StorageClass", &up.meta.storage_class)
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" })
        .end();
    Ok(Resp::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_sdk_complete_bodies() {
        for f in [
            "request-complete-multipart.nodejs.xml",
            "request-complete-multipart.python.xml",
        ] {
            let p = format!(
                "{}/tests/vectors/xml-samples/{f}",
                env!("CARGO_MANIFEST_DIR")
            );
            let parts = parse_complete(&std::fs::read(p).unwrap()).unwrap();
            assert_eq!(
                parts[0],
                (1, "ba82b57cfdfda8bd17ad4e5879ebb4fe".to_string())
            );
            assert_eq!(parts.len(), 2);
        }
    }
}
