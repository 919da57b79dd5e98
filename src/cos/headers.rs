//! Header conversions between the store's value types and COS headers: the write headers of
//! PUT / initiate / copy-with-Replaced (§4.2), and `ObjectMeta` from HEAD/GET answers (§4.4),
//! including `x-cos-restore` and CRC64 parsing.

use std::time::{SystemTime, UNIX_EPOCH};

use super::request::{Request, Response};
use super::xml;
use crate::store::{ObjectHeaders, ObjectMeta, PutOptions, RestoreState, StorageClass};

/// Adds the stored-metadata headers (`Content-Type`, `Cache-Control`, ..., `x-cos-meta-*`).
pub fn with_object_headers(mut req: Request, h: &ObjectHeaders) -> Request {
    req = req
        .header_opt("content-type", h.content_type.as_deref())
        .header_opt("cache-control", h.cache_control.as_deref())
        .header_opt("content-disposition", h.content_disposition.as_deref())
        .header_opt("content-encoding", h.content_encoding.as_deref())
        .header_opt("expires", h.expires.as_deref());
    for (k, v) in &h.user_meta {
        req = req.header(&format!("x-cos-meta-{}", k.to_ascii_lowercase()), v);
    }
    req
}

/// Adds every header of `PutOptions`: metadata, storage class, canned ACL and grants.
pub fn with_put_options(req: Request, o: &PutOptions) -> Request {
    with_object_headers(req, &o.headers)
        .header_opt(
            "x-cos-storage-class",
            o.storage_class.as_ref().map(StorageClass::as_str),
        )
        .header_opt("x-cos-acl", o.acl.as_deref())
        .header_opt("x-cos-grant-read", o.grant_read.as_deref())
        .header_opt("x-cos-grant-full-control", o.grant_full_control.as_deref())
}

/// Parses `x-cos-hash-crc64ecma` (unsigned decimal, may exceed i64::MAX).
pub fn crc64(resp: &Response) -> Option<u64> {
    resp.header("x-cos-hash-crc64ecma")
        .and_then(|v| v.trim().parse().ok())
}

/// The ETag header without quotes (empty when absent).
pub fn etag(resp: &Response) -> String {
    resp.header("etag")
        .map(xml::unquote_etag)
        .unwrap_or_default()
}

/// Parses `x-cos-restore`: `ongoing-request="true"` or
/// `ongoing-request="false", expiry-date="Mon, 13 Apr 2020 16:00:00 GMT"`.
pub fn parse_restore(v: &str) -> Option<RestoreState> {
    let lower = v.to_ascii_lowercase();
    if lower.contains("ongoing-request=\"true\"") {
        return Some(RestoreState::InProgress);
    }
    if !lower.contains("ongoing-request=\"false\"") {
        return None;
    }
    let expiry = v
        .find("expiry-date=\"")
        .map(|i| &v[i + "expiry-date=\"".len()..])
        .and_then(|rest| rest.split('"').next())
        .and_then(xml::parse_date)
        .unwrap_or(UNIX_EPOCH);
    Some(RestoreState::Restored { expiry })
}

/// The stored headers of an object, read back from a HEAD/GET answer.
pub fn object_headers(resp: &Response) -> ObjectHeaders {
    let get = |n: &str| resp.header(n).map(str::to_string);
    let mut user_meta = std::collections::BTreeMap::new();
    for (name, value) in resp.headers.iter() {
        let n = name.as_str();
        let meta = n
            .strip_prefix("x-cos-meta-")
            .or_else(|| n.strip_prefix("x-amz-meta-"));
        if let (Some(m), Ok(v)) = (meta, value.to_str()) {
            user_meta.insert(m.to_string(), v.to_string());
        }
    }
    ObjectHeaders {
        content_type: get("content-type"),
        cache_control: get("cache-control"),
        content_disposition: get("content-disposition"),
        content_encoding: get("content-encoding"),
        expires: get("expires"),
        user_meta,
    }
}

/// `ObjectMeta` of `key` from a HEAD (or full GET) answer; `size` is the `Content-Length`.
pub fn object_meta(key: &str, resp: &Response) -> ObjectMeta {
    let size = resp
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    ObjectMeta {
        key: key.to_string(),
        size,
        etag: etag(resp),
        last_modified: resp
            .header("last-modified")
            .and_then(xml::parse_date)
            .unwrap_or(UNIX_EPOCH),
        storage_class: resp
            .header("x-cos-storage-class")
            .map(StorageClass::parse)
            .unwrap_or_default(),
        headers: object_headers(resp),
        crc64: crc64(resp),
        object_type: resp.header("x-cos-object-type").map(str::to_string),
        restore: resp.header("x-cos-restore").and_then(parse_restore),
    }
}

/// RFC 1123 form of a time, for `If-Modified-Since` and friends.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn restore_header_forms() {
        assert_eq!(
            parse_restore("ongoing-request=\"true\""),
            Some(RestoreState::InProgress)
        );
        let r = parse_restore(
            "ongoing-request=\"false\", expiry-date=\"Mon, 13 Apr 2020 16:00:00 GMT\"",
        );
        assert_eq!(
            r,
            Some(RestoreState::Restored {
                expiry: xml::parse_date("2020-04-13T16:00:00Z").unwrap()
            })
        );
        assert_eq!(parse_restore("garbage"), None);
    }

    #[test]
    fn meta_from_head_headers() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("content-length", "42"),
            ("etag", "\"abc\""),
            ("last-modified", "Fri, 10 Apr 2020 18:17:25 GMT"),
            ("x-cos-storage-class", "ARCHIVE"),
            ("x-cos-hash-crc64ecma", "16749565679157681890"),
            ("x-cos-meta-mode", "33188"),
            ("content-type", "text/plain"),
            ("x-cos-restore", "ongoing-request=\"true\""),
        ] {
            h.insert(n, HeaderValue::from_static(v));
        }
        let resp = Response {
            status: 200,
            headers: h,
            body: bytes::Bytes::new(),
        };
        let m = object_meta("k", &resp);
        assert_eq!(m.size, 42);
        assert_eq!(m.etag, "abc");
        assert_eq!(m.storage_class, StorageClass::Archive);
        assert_eq!(m.crc64, Some(16749565679157681890));
        assert_eq!(
            m.headers.user_meta.get("mode").map(String::as_str),
            Some("33188")
        );
        assert_eq!(m.headers.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.restore, Some(RestoreState::InProgress));
        assert_eq!(
            m.last_modified,
            xml::parse_date("2020-04-10T18:17:25Z").unwrap()
        );
    }
}
