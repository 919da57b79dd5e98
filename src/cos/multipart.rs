//! The multipart family of `CosClient` (docs/protocol.md §4.12): initiate, upload part, upload
//! part - copy, complete (200-with-`<Error>` and missing ETag are failures), abort, list parts,
//! list multipart uploads. The high-level parallel upload and copy live in `transfer.rs`.

use std::time::SystemTime;

use bytes::Bytes;
use reqwest::Method;

use super::client::CosClient;
use super::error::{CosError, CODE_CHECKSUM, CODE_PROTOCOL};
use super::headers;
use super::objects::{copy_output, with_payload};
use super::request::Request;
use super::types::{Conditions, CopyOutput};
use super::xml;
use crate::store::{CompletedPart, Payload, PutOptions, PutResult};

fn protocol(msg: impl Into<String>) -> CosError {
    CosError::client(200, CODE_PROTOCOL, msg)
}

/// List Parts paging parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPartsOptions {
    /// `max-parts` (default 1000).
    pub max_parts: Option<u32>,
    /// `part-number-marker`: list parts after this number.
    pub part_number_marker: Option<u32>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number.
    pub part_number: u32,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time.
    pub last_modified: Option<SystemTime>,
}

/// A List Parts answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPartsOutput {
    /// Parts in number order.
    pub parts: Vec<PartInfo>,
    /// More parts follow.
    pub is_truncated: bool,
    /// Marker for the next page.
    pub next_part_number_marker: Option<u32>,
    /// Storage class of the upload.
    pub storage_class: Option<String>,
}

/// List Multipart Uploads parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsOptions {
    /// `prefix`.
    pub prefix: Option<String>,
    /// `delimiter`.
    pub delimiter: Option<String>,
    /// `key-marker`.
    pub key_marker: Option<String>,
    /// `upload-id-marker`.
    pub upload_id_marker: Option<String>,
    /// `max-uploads` (default 1000).
    pub max_uploads: Option<u32>,
}

/// One in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// Decoded key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Storage class.
    pub storage_class: Option<String>,
    /// When it was initiated (any §6 date form).
    pub initiated: Option<SystemTime>,
}

/// A List Multipart Uploads answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsOutput {
    /// Uploads in key order.
    pub uploads: Vec<UploadInfo>,
    /// Decoded common prefixes.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub is_truncated: bool,
    /// `NextKeyMarker` (decoded).
    pub next_key_marker: Option<String>,
    /// `NextUploadIdMarker`.
    pub next_upload_id_marker: Option<String>,
}

impl CosClient {
    /// Initiate Multipart Upload (headers as PUT Object): returns the upload id. Resent only
    /// after 503/SlowDown (COS did not run it); not after other failures that may have reached
    /// COS (a second upload id would be orphaned).
    pub async fn initiate(&self, key: &str, opts: &PutOptions) -> Result<String, CosError> {
        let req = headers::with_put_options(
            Request::new(Method::POST, Some(key)).query("uploads", ""),
            opts,
        )
        .non_idempotent();
        let resp = self.execute(&req).await?;
        let r: xml::InitiateResult = xml::parse(&resp.text()).map_err(protocol)?;
        if r.upload_id.is_empty() {
            return Err(protocol("InitiateMultipartUploadResult without UploadId"));
        }
        Ok(r.upload_id)
    }

    /// Upload Part; checks what COS stored against the bytes sent: the returned CRC64, or,
    /// from a server that returns none, the ETag against the part's MD5 (when it is one).
    /// No `Content-MD5` is sent: hashing every part with MD5 before sending cost about as
    /// much CPU as the rest of the upload, and the CRC64 check (SIMD-fast) catches the same
    /// corruption. Returns the part's ETag (no quotes).
    pub async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: impl Into<Payload>,
    ) -> Result<String, CosError> {
        let body = body.into();
        let n = part_number.to_string();
        let req = Request::new(Method::PUT, Some(key))
            .query("partNumber", &n)
            .query("uploadId", upload_id);
        let (req, sent) = with_payload(req, body.clone(), false);
        let resp = self.execute(&req).await?;
        let crc = sent.crc64();
        let etag = headers::etag(&resp);
        if etag.is_empty() {
            return Err(protocol("Upload Part answer without ETag"));
        }
        let mismatch = match headers::crc64(&resp) {
            Some(r) if r != crc => Some(format!("server CRC64 {r} differs from {crc}")),
            Some(_) => None,
            // An MD5 ETag (32 hex digits; not under SSE-KMS) can still be checked, for a body
            // in memory (COS answers parts with a CRC64, so a streamed one is not read again).
            None if etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let Payload::Bytes(body) = &body else {
                    return Ok(etag);
                };
                let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(body));
                (!md5.eq_ignore_ascii_case(&etag))
                    .then(|| format!("server ETag {etag} differs from the MD5 {md5}"))
            }
            None => None,
        };
        if let Some(why) = mismatch {
            return Err(CosError::client(
                resp.status,
                CODE_CHECKSUM,
                format!("part {part_number} of {key}: {why}"),
            ));
        }
        Ok(etag)
    }

    /// Upload Part - Copy of `src_key` (this bucket), bytes `range` (inclusive first..=last;
    /// None = whole source), with the four copy-source conditions.
    pub async fn put_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src_key: &str,
        range: Option<(u64, u64)>,
        source: &Conditions,
    ) -> Result<CopyOutput, CosError> {
        let n = part_number.to_string();
        let mut req = Request::new(Method::PUT, Some(key))
            .query("partNumber", &n)
            .query("uploadId", upload_id)
            .header("x-cos-copy-source", &self.copy_source(src_key, None))
            .header_opt(
                "x-cos-copy-source-range",
                range.map(|(a, b)| format!("bytes={a}-{b}")).as_deref(),
            )
            .errors_in_200();
        let c = source;
        req = req
            .header_opt(
                "x-cos-copy-source-if-match",
                c.if_match.as_deref().map(xml::quote_etag).as_deref(),
            )
            .header_opt(
                "x-cos-copy-source-if-none-match",
                c.if_none_match.as_deref().map(xml::quote_etag).as_deref(),
            )
            .header_opt(
                "x-cos-copy-source-if-modified-since",
                c.if_modified_since.map(headers::http_date).as_deref(),
            )
            .header_opt(
                "x-cos-copy-source-if-unmodified-since",
                c.if_unmodified_since.map(headers::http_date).as_deref(),
            );
        let resp = self.execute(&req).await?;
        copy_output(&resp.text())
    }

    /// Complete Multipart Upload. Parts must be numbered 1..N ascending. A 200 carrying
    /// `<Error>`, or without `ETag`, is a failure.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<PutResult, CosError> {
        let body = xml::CompleteRequest {
            parts: parts
                .iter()
                .map(|p| xml::CompletePart {
                    part_number: p.part_number,
                    etag: xml::quote_etag(&p.etag),
                })
                .collect(),
        };
        let text = xml::to_xml("CompleteMultipartUpload", &body).map_err(protocol)?;
        let req = Request::new(Method::POST, Some(key))
            .query("uploadId", upload_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(text), true)
            .errors_in_200()
            .non_idempotent();
        let resp = self.execute(&req).await?;
        let r: xml::CompleteResult = xml::parse(&resp.text()).map_err(protocol)?;
        let etag = r
            .etag
            .as_deref()
            .map(xml::unquote_etag)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| protocol("CompleteMultipartUploadResult without ETag"))?;
        Ok(PutResult {
            etag,
            crc64: headers::crc64(&resp),
        })
    }

    /// Abort Multipart Upload.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), CosError> {
        let req = Request::new(Method::DELETE, Some(key)).query("uploadId", upload_id);
        self.execute(&req).await.map(|_| ())
    }

    /// List Parts (one page).
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
        opts: &ListPartsOptions,
    ) -> Result<ListPartsOutput, CosError> {
        let max = opts.max_parts.map(|m| m.to_string());
        let marker = opts.part_number_marker.map(|m| m.to_string());
        let req = Request::new(Method::GET, Some(key))
            .query("uploadId", upload_id)
            .query_opt("max-parts", max.as_deref())
            .query_opt("part-number-marker", marker.as_deref())
            .query("encoding-type", "url");
        let resp = self.execute(&req).await?;
        let r: xml::ListPartsResult = xml::parse(&resp.text()).map_err(protocol)?;
        Ok(ListPartsOutput {
            parts: r
                .parts
                .into_iter()
                .map(|p| PartInfo {
                    part_number: p.part_number.trim().parse().unwrap_or(0),
                    etag: xml::unquote_etag(&p.etag),
                    size: p.size.trim().parse().unwrap_or(0),
                    last_modified: xml::parse_date(&p.last_modified),
                })
                .collect(),
            is_truncated: r.is_truncated.trim().eq_ignore_ascii_case("true"),
            next_part_number_marker: r
                .next_part_number_marker
                .and_then(|m| m.trim().parse().ok()),
            storage_class: r.storage_class,
        })
    }

    /// List Multipart Uploads (one page), `encoding-type=url` requested and decoded.
    pub async fn list_multipart_uploads(
        &self,
        opts: &ListUploadsOptions,
    ) -> Result<ListUploadsOutput, CosError> {
        let max = opts.max_uploads.map(|m| m.to_string());
        let req = Request::new(Method::GET, None)
            .query("uploads", "")
            .query_opt("prefix", opts.prefix.as_deref())
            .query_opt("delimiter", opts.delimiter.as_deref())
            .query_opt("key-marker", opts.key_marker.as_deref())
            .query_opt("upload-id-marker", opts.upload_id_marker.as_deref())
            .query_opt("max-uploads", max.as_deref())
            .query("encoding-type", "url");
        let resp = self.execute(&req).await?;
        let r: xml::ListUploadsResult = xml::parse(&resp.text()).map_err(protocol)?;
        let url = r
            .encoding_type
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("url"));
        let dec = |s: String| if url { xml::url_decode(&s) } else { s };
        Ok(ListUploadsOutput {
            uploads: r
                .uploads
                .into_iter()
                .map(|u| UploadInfo {
                    key: dec(u.key),
                    upload_id: u.upload_id,
                    storage_class: u.storage_class,
                    initiated: xml::parse_date(&u.initiated),
                })
                .collect(),
            common_prefixes: r
                .common_prefixes
                .into_iter()
                .map(|p| dec(p.prefix))
                .collect(),
            is_truncated: r.is_truncated.trim().eq_ignore_ascii_case("true"),
            next_key_marker: r.next_key_marker.filter(|m| !m.is_empty()).map(dec),
            next_upload_id_marker: r.next_upload_id_marker.filter(|m| !m.is_empty()),
        })
    }
}
