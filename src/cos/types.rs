//! Option and result types of `CosClient`'s inherent operations — the features COS offers beyond
//! what the `ObjectStore` trait needs (conditional requests, overrides, CORS preflight, ...).

use std::time::SystemTime;

use bytes::Bytes;

use super::xml;
use crate::store::{ListEntry, ListPage, ObjectMeta, StorageClass};

/// GET Bucket parameters. `encoding-type=url` is always requested and decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `prefix`.
    pub prefix: String,
    /// `delimiter` (COS allows one character).
    pub delimiter: Option<String>,
    /// `marker`: list keys strictly after this one.
    pub marker: Option<String>,
    /// `max-keys` (1..=1000, counts common prefixes too); None = 1000.
    pub max_keys: Option<u32>,
}

/// One listed object with everything the listing says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Decoded key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// `LastModified`.
    pub last_modified: SystemTime,
    /// Storage class.
    pub storage_class: StorageClass,
    /// `StorageTier` (intelligent tiering).
    pub storage_tier: Option<String>,
    /// `RestoreStatus` (`ONGOING`, `DONE`, `FAILED`).
    pub restore_status: Option<String>,
    /// Owner ID (the APPID in listings).
    pub owner_id: Option<String>,
}

/// One decoded page of GET Bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOutput {
    /// Objects in key order.
    pub objects: Vec<ListedObject>,
    /// Decoded common prefixes.
    pub common_prefixes: Vec<String>,
    /// Decoded `NextMarker` when truncated.
    pub next_marker: Option<String>,
    /// More results follow.
    pub is_truncated: bool,
}

impl ListOutput {
    /// The store's view of this page.
    pub fn into_page(self) -> ListPage {
        ListPage {
            objects: self
                .objects
                .into_iter()
                .map(|o| ListEntry {
                    key: o.key,
                    size: o.size,
                    etag: o.etag,
                    last_modified: o.last_modified,
                    storage_class: o.storage_class,
                })
                .collect(),
            common_prefixes: self.common_prefixes,
            next_marker: self.next_marker,
            is_truncated: self.is_truncated,
        }
    }
}

/// The four conditional headers of HEAD/GET (also used as copy-source conditions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`: ETag (quotes optional).
    pub if_match: Option<String>,
    /// `If-None-Match`: ETag or `*`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<SystemTime>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<SystemTime>,
}

/// Result of a conditional HEAD/GET.
#[derive(Debug, Clone)]
pub enum Conditional<T> {
    /// The object (it matched, or no condition was given).
    Found(T),
    /// 304: not modified since / still matches `If-None-Match`.
    NotModified,
}

/// A byte range for GET (`Range: bytes=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, inclusive.
    Inclusive(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The `Range` header value.
    pub fn header(&self) -> String {
        match self {
            ByteRange::Inclusive(a, b) => format!("bytes={a}-{b}"),
            ByteRange::From(a) => format!("bytes={a}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// `response-*` overrides of GET Object (signed requests only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseOverrides {
    /// `response-content-type`.
    pub content_type: Option<String>,
    /// `response-content-language`.
    pub content_language: Option<String>,
    /// `response-expires`.
    pub expires: Option<String>,
    /// `response-cache-control`.
    pub cache_control: Option<String>,
    /// `response-content-disposition`.
    pub content_disposition: Option<String>,
    /// `response-content-encoding`.
    pub content_encoding: Option<String>,
}

/// GET Object options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Byte range.
    pub range: Option<ByteRange>,
    /// Conditional headers.
    pub conditions: Conditions,
    /// Response header overrides.
    pub overrides: ResponseOverrides,
    /// `versionId`.
    pub version_id: Option<String>,
}

/// A GET Object answer.
#[derive(Debug, Clone)]
pub struct GetOutput {
    /// 200 or 206.
    pub status: u16,
    /// The bytes returned.
    pub data: Bytes,
    /// Whole-object metadata; `size` is the total object size even for a 206.
    pub meta: ObjectMeta,
    /// `Content-Range` of a 206.
    pub content_range: Option<String>,
    /// The response headers as sent (to observe `response-*` overrides).
    pub headers: reqwest::header::HeaderMap,
}

/// What an OPTIONS Object (CORS preflight) answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPreflight {
    /// True on 200; false when COS refused (403 AccessForbidden: no rule matches).
    pub allowed: bool,
    /// `Access-Control-Allow-Origin`.
    pub allow_origin: Option<String>,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: Option<String>,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: Option<String>,
    /// `Access-Control-Expose-Headers`.
    pub expose_headers: Option<String>,
    /// `Access-Control-Max-Age` (seconds).
    pub max_age: Option<u64>,
    /// `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: bool,
}

/// A PUT Object answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutput {
    /// ETag without quotes.
    pub etag: String,
    /// `x-cos-hash-crc64ecma` as returned (already checked against the body sent).
    pub crc64: Option<u64>,
    /// `x-cos-version-id`.
    pub version_id: Option<String>,
}

/// A PUT Object - Copy / Upload Part - Copy answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutput {
    /// ETag without quotes.
    pub etag: String,
    /// `CRC64` of the result, when the source has one.
    pub crc64: Option<u64>,
    /// `LastModified`.
    pub last_modified: Option<SystemTime>,
    /// `VersionId` (versioned destinations).
    pub version_id: Option<String>,
}

/// One object of DELETE Multiple Objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTarget {
    /// Key.
    pub key: String,
    /// `VersionId`, for versioned buckets.
    pub version_id: Option<String>,
}

/// A DELETE Multiple Objects answer (verbose mode lists `deleted` too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutput {
    /// Deleted entries (empty in quiet mode).
    pub deleted: Vec<xml::Deleted>,
    /// Failed entries.
    pub errors: Vec<xml::DeleteErrorEntry>,
}

/// A POST Object (form upload) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutput {
    /// Status (204 default, or `success_action_status`).
    pub status: u16,
    /// ETag without quotes.
    pub etag: String,
    /// `Location` header.
    pub location: Option<String>,
    /// `x-cos-hash-crc64ecma`.
    pub crc64: Option<u64>,
}
