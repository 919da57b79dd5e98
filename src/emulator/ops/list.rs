//! GET Bucket (List Objects) and List Multipart Uploads (docs/protocol.md §4.1, §4.12): prefix,
//! one-character delimiter, marker strictly after in UTF-8 byte order, max-keys counting
//! CommonPrefixes, NextMarker whenever truncated, `encoding-type=url`.

use std::ops::Bound;

use super::{iso_ms, iso_secs, Ctx, EmuError, OpResult, Resp};
use crate::emulator::xml::Writer;

/// `encoding-type=url`: every byte outside `A-Za-z0-9-_.~/` as `%XX`.
pub fn url_encode_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Common listing parameters.
struct Params {
    /// `prefix`.
    prefix: String,
    /// `delimiter` (one character).
    delimiter: Option<String>,
    /// `max-keys` / `max-uploads`, capped at 1000.
    max: usize,
    /// `encoding-type=url` was asked for.
    url: bool,
}

fn params(ctx: &Ctx, max_name: &str) -> Result<Params, EmuError> {
    let delimiter = ctx
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    if delimiter.as_ref().is_some_and(|d| d.chars().count() != 1) {
        return Err(EmuError::new(
            400,
            "InvalidDelimiter",
            "The delimiter must be one character.",
        ));
    }
    let max = match ctx.param(max_name).filter(|v| !v.is_empty()) {
        None => 1000,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| EmuError::invalid_argument(&format!("{max_name} is invalid")))?
            .min(1000) as usize,
    };
    let url = match ctx.param("encoding-type") {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(_) => return Err(EmuError::invalid_argument("encoding-type must be url")),
    };
    Ok(Params {
        prefix: ctx.param("prefix").unwrap_or("").to_string(),
        delimiter,
        max,
        url,
    })
}

/// One listing entry: an object key or a common prefix.
enum Item<T> {
    /// An entry (object or upload) with its key.
    Key(String, T),
    /// A rolled-up common prefix (ends with the delimiter).
    Prefix(String),
}

/// Walks `keys` (ascending, all > marker) applying prefix/delimiter rolling; returns up to
/// `max` items and whether more exist.
fn page<T>(
    mut next: impl FnMut(&str) -> Option<(String, T)>,
    p: &Params,
    marker: &str,
) -> (Vec<Item<T>>, bool) {
    let mut out = Vec::new();
    if p.max == 0 {
        // An empty page cannot say where to resume, so it must not claim more follows (a
        // client following IsTruncated would loop forever); S3 answers the same way.
        return (out, false);
    }
    let mut cursor = marker.to_string();
    loop {
        let Some((key, v)) = next(&cursor) else {
            return (out, false);
        };
        if !key.starts_with(&p.prefix) {
            if key.as_str() > p.prefix.as_str() {
                return (out, false);
            }
            cursor = key;
            continue;
        }
        let rolled = p.delimiter.as_ref().and_then(|d| {
            key[p.prefix.len()..]
                .find(d.as_str())
                .map(|i| key[..p.prefix.len() + i + d.len()].to_string())
        });
        let item = match rolled {
            Some(cp) => {
                // Skip everything under this prefix in one jump.
                cursor = format!("{cp}{}", char::MAX);
                if cp.as_str() <= marker {
                    continue;
                }
                Item::Prefix(cp)
            }
            None => {
                cursor = key.clone();
                Item::Key(key, v)
            }
        };
        if out.len() >= p.max {
            return (out, true);
        }
        out.push(item);
    }
}

fn enc(p: &Params, s: &str) -> String {
    if p.url {
        url_encode_key(s)
    } else {
        s.to_string()
    }
}

/// GET Bucket.
pub async fn get_bucket(ctx: &Ctx) -> OpResult {
    let p = params(ctx, "max-keys")?;
    // ListObjectsV2 (`list-type=2`) for S3 tools: the continuation token is the hex of the
    // last returned key or prefix, so it pages exactly like `marker`.
    let v2 = ctx.param("list-type") == Some("2");
    let token = ctx.param("continuation-token").filter(|t| !t.is_empty());
    let marker = match (v2, token) {
        (false, _) => ctx.param("marker").unwrap_or("").to_string(),
        (true, Some(t)) => hex::decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                EmuError::invalid_argument("The continuation token provided is incorrect")
            })?,
        (true, None) => ctx.param("start-after").unwrap_or("").to_string(),
    };
    let start = if p.prefix.as_str() > marker.as_str() {
        // Start just before the prefix (keys equal to the prefix must be included).
        None
    } else {
        Some(marker.clone())
    };
    let (items, truncated) = {
        let idx = ctx.bucket.lock();
        let next = |cursor: &str| {
            let lower = match (&start, cursor.is_empty() || cursor == marker) {
                (None, true) => Bound::Included(p.prefix.clone()),
                _ => Bound::Excluded(cursor.to_string()),
            };
            idx.objects
                .range::<String, _>((lower, Bound::Unbounded))
                .next()
                .map(|(k, m)| (k.clone(), m.clone()))
        };
        page(next, &p, &marker)
    };
    let now_ms = ctx.state.now_ms();
    let appid = ctx.appid().to_string();
    let mut w = Writer::new();
    w.start("ListBucketResult").elem("Name", &ctx.bucket.name);
    if p.url {
        w.elem("EncodingType", "url");
    }
    w.elem("Prefix", &enc(&p, &p.prefix));
    if v2 {
        w.opt("ContinuationToken", token);
        if let Some(sa) = ctx.param("start-after").filter(|s| !s.is_empty()) {
            w.elem("StartAfter", &enc(&p, sa));
        }
        w.elem("KeyCount", &items.len().to_string());
    } else {
        w.elem("Marker", &enc(&p, &marker));
    }
    w.elem("MaxKeys", &p.max.to_string());
    if let Some(d) = &p.delimiter {
        w.elem("Delimiter", &enc(&p, d));
    }
    w.elem("IsTruncated", if truncated { "true" } else { "false" });
    if truncated {
        let last = match items.last() {
            Some(Item::Key(k, _)) | Some(Item::Prefix(k)) => k.clone(),
            None => marker.clone(),
        };
        if v2 {
            w.elem("NextContinuationToken", &hex::encode(last.as_bytes()));
        } else {
            w.elem("NextMarker", &enc(&p, &last));
        }
    }
    for it in &items {
        if let Item::Key(k, m) = it {
            w.start("Contents")
                .elem("Key", &enc(&p, k))
                .elem("LastModified", &iso_ms(m.last_modified * 1000))
                .elem("ETag", &format!("\"{}\"", m.etag))
                .elem("Size", &m.size.to_string())
                .start("Owner")
                .elem("ID", &appid)
                .elem("DisplayName", &appid)
                .end()
                .elem("StorageClass", &m.storage_class);
            if let Some(r) = &m.restore {
                if now_ms < r.ready_ms {
                    w.elem("RestoreStatus", "ONGOING");
                } else if now_ms < r.expiry_ms() {
                    w.elem("RestoreStatus", "DONE");
                }
            }
            w.end();
        }
    }
    for it in &items {
        if let Item::Prefix(cp) = it {
            w.start("CommonPrefixes").elem("Prefix", &enc(&p, cp)).end();
        }
    }
    w.end();
    Ok(Resp::xml(w.finish()).with("x-cos-bucket-region", ctx.state.region.clone()))
}

/// GET Bucket location (`GET /?location`), asked by S3 tools.
pub async fn get_location(ctx: &Ctx) -> OpResult {
    let mut w = Writer::new();
    w.elem("LocationConstraint", &ctx.state.region);
    Ok(Resp::xml(w.finish()))
}

/// GET Bucket versioning (`GET /?versioning`): never enabled in the emulator.
pub async fn get_versioning(_ctx: &Ctx) -> OpResult {
    let mut w = Writer::new();
    w.start("VersioningConfiguration").end();
    Ok(Resp::xml(w.finish()))
}

/// GET Service (`GET /` on the endpoint itself): every bucket, in name order.
pub fn list_buckets(names: &[String], region: &str, now_ms: i64) -> Resp {
    let owner = "qcs::cam::uin/100000000001:uin/100000000001";
    let mut w = Writer::new();
    w.start("ListAllMyBucketsResult")
        .start("Owner")
        .elem("ID", owner)
        .elem("DisplayName", "100000000001")
        .end()
        .start("Buckets");
    for n in names {
        w.start("Bucket")
            .elem("Name", n)
            .elem("Location", region)
            .elem("CreationDate", &iso_secs(now_ms / 1000))
            .end();
    }
    w.end().end();
    Resp::xml(w.finish())
}

/// List Multipart Uploads (`GET /?uploads`).
pub async fn list_uploads(ctx: &Ctx) -> OpResult {
    let p = params(ctx, "max-uploads")?;
    let key_marker = ctx.param("key-marker").unwrap_or("").to_string();
    let id_marker = ctx.param("upload-id-marker").unwrap_or("").to_string();
    let mut ups: Vec<_> = ctx.bucket.lock().uploads.values().cloned().collect();
    ups.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
    // Sort key = key + NUL + id, so "strictly after" works on one string.
    let sortkey = |k: &str, id: &str| format!("{k}\u{0}{id}");
    let marker = if key_marker.is_empty() {
        String::new()
    } else if id_marker.is_empty() {
        format!("{key_marker}\u{0}{}", char::MAX)
    } else {
        sortkey(&key_marker, &id_marker)
    };
    let mut pos = 0usize;
    let next = |cursor: &str| {
        while pos < ups.len() {
            let u = &ups[pos];
            pos += 1;
            let sk = sortkey(&u.key, &u.id);
            if sk.as_str() > cursor && (marker.is_empty() || sk > marker) {
                return Some((u.key.clone(), u.clone()));
            }
        }
        None
    };
    let (items, truncated) = page(next, &p, &key_marker);
    let owner = ctx.owner_id();
    let mut w = Writer::new();
    w.start("ListMultipartUploadsResult")
        .elem("Bucket", &ctx.bucket.name);
    if p.url {
        w.elem("EncodingType", "url");
    }
    w.elem("KeyMarker", &enc(&p, &key_marker))
        .elem("UploadIdMarker", &id_marker)
        .elem("MaxUploads", &p.max.to_string())
        .elem("Prefix", &enc(&p, &p.prefix));
    if let Some(d) = &p.delimiter {
        w.elem("Delimiter", &enc(&p, d));
    }
    w.elem("IsTruncated", if truncated { "true" } else { "false" });
    if truncated {
        match items.last() {
            Some(Item::Key(k, u)) => {
                w.elem("NextKeyMarker", &enc(&p, k))
                    .elem("NextUploadIdMarker", &u.id);
            }
            Some(Item::Prefix(cp)) => {
                w.elem("NextKeyMarker", &enc(&p, cp));
            }
            None => {}
        }
    }
    for it in &items {
        if let Item::Key(k, u) = it {
            w.start("Upload")
                .elem("Key", &enc(&p, k))
                .elem("UploadId", &u.id)
                .elem("StorageClass", &u.meta.storage_class)
                .start("Initiator")
                .elem("ID", &owner)
                .elem("DisplayName", "100000000001")
                .end()
                .start("Owner")
                .elem("ID", &owner)
                .elem("DisplayName", "100000000001")
                .end()
                .elem("Initiated", &iso_ms(u.initiated_ms))
                .end();
        }
    }
    for it in &items {
        if let Item::Prefix(cp) = it {
            w.start("CommonPrefixes").elem("Prefix", &enc(&p, cp)).end();
        }
    }
    w.end();
    Ok(Resp::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slash() {
        assert_eq!(
            url_encode_key("docs/a file+1~.txt"),
            "docs/a%20file%2B1~.txt"
        );
        assert_eq!(url_encode_key("报"), "%E6%8A%A5");
    }
}
