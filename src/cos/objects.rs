//! Single-object and bucket-listing operations of `CosClient` (docs/protocol.md §4.1–§4.11):
//! GET Bucket (with paging to the end), PUT (Content-MD5 sent, CRC64 checked), HEAD and GET with
//! conditionals, ranges and overrides, OPTIONS, copy with source conditions, DELETE, DELETE
//! Multiple, restore, and object ACLs.

use bytes::Bytes;
use reqwest::Method;

use super::client::CosClient;
use super::error::{CosError, CODE_CHECKSUM, CODE_NOT_MODIFIED, CODE_PROTOCOL};
use super::headers::{self, http_date};
use super::request::{encode_path, Request};
use super::types::*;
use super::xml;
use crate::store::{
    AccessControlPolicy, AclSpec, CopyOptions, Grant, Grantee, MetadataDirective, Payload,
    PutOptions, RestoreOutcome, RestoreTier, SentDigest, StorageClass,
};

/// Upper bound of pages `list_all` fetches (1000 keys each), so a runaway listing ends.
pub const MAX_LIST_PAGES: usize = 100_000;

/// `req` with `body`: bytes in memory (with `Content-MD5` when `md5`) or a file range streamed;
/// the digest gives the CRC-64 of what was sent once the request has answered.
pub(crate) fn with_payload(req: Request, body: Payload, md5: bool) -> (Request, SentDigest) {
    let sent = SentDigest::default();
    match body {
        Payload::Bytes(b) => {
            sent.record(&b);
            (req.body(b, md5), sent)
        }
        Payload::File(r) => (req.file_body(r, sent.clone()), sent),
    }
}

/// CRC-64/XZ (COS's `x-cos-hash-crc64ecma`) of a byte slice.
pub fn crc64_of(data: &[u8]) -> u64 {
    let mut d = crc64fast::Digest::new();
    d.write(data);
    d.sum64()
}

fn protocol(msg: impl Into<String>) -> CosError {
    CosError::client(200, CODE_PROTOCOL, msg)
}

/// Adds the four conditional headers, with the given name prefix (`` or
/// `x-cos-copy-source-`).
fn with_conditions(req: Request, prefix: &str, c: &Conditions) -> Request {
    req.header_opt(
        &format!("{prefix}if-match"),
        c.if_match.as_deref().map(xml::quote_etag).as_deref(),
    )
    .header_opt(
        &format!("{prefix}if-none-match"),
        c.if_none_match
            .as_deref()
            .map(|v| {
                if v == "*" {
                    v.to_string()
                } else {
                    xml::quote_etag(v)
                }
            })
            .as_deref(),
    )
    .header_opt(
        &format!("{prefix}if-modified-since"),
        c.if_modified_since.map(http_date).as_deref(),
    )
    .header_opt(
        &format!("{prefix}if-unmodified-since"),
        c.if_unmodified_since.map(http_date).as_deref(),
    )
}

fn listed(c: xml::Contents, url: bool) -> ListedObject {
    let dec = |s: &str| {
        if url {
            xml::url_decode(s)
        } else {
            s.to_string()
        }
    };
    ListedObject {
        key: dec(&c.key),
        size: c.size.trim().parse().unwrap_or(0),
        etag: xml::unquote_etag(&c.etag),
        last_modified: xml::parse_date(&c.last_modified).unwrap_or(std::time::UNIX_EPOCH),
        storage_class: c
            .storage_class
            .as_deref()
            .map(StorageClass::parse)
            .unwrap_or_default(),
        storage_tier: c.storage_tier,
        restore_status: c.restore_status,
        owner_id: c.owner.map(|o| o.id),
    }
}

impl CosClient {
    /// GET Bucket: one page, `encoding-type=url` requested and decoded.
    pub async fn list_page(&self, opts: &ListOptions) -> Result<ListOutput, CosError> {
        let max = opts.max_keys.unwrap_or(1000).to_string();
        let req = Request::new(Method::GET, None)
            .query("prefix", &opts.prefix)
            .query_opt("delimiter", opts.delimiter.as_deref())
            .query("marker", opts.marker.as_deref().unwrap_or(""))
            .query("max-keys", &max)
            .query("encoding-type", "url");
        let resp = self.execute(&req).await?;
        let r: xml::ListBucketResult = xml::parse(&resp.text()).map_err(protocol)?;
        let url = r
            .encoding_type
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("url"));
        let dec = |s: String| if url { xml::url_decode(&s) } else { s };
        let is_truncated = r.is_truncated.trim().eq_ignore_ascii_case("true");
        let objects: Vec<ListedObject> = r.contents.into_iter().map(|c| listed(c, url)).collect();
        let common_prefixes: Vec<String> = r
            .common_prefixes
            .into_iter()
            .map(|p| dec(p.prefix))
            .collect();
        // COS sends NextMarker whenever truncated; fall back on the last entry otherwise.
        let next_marker = r
            .next_marker
            .filter(|m| !m.is_empty())
            .map(dec)
            .or_else(|| {
                is_truncated
                    .then(|| {
                        let last_key = objects.last().map(|o| o.key.clone());
                        let last_prefix = common_prefixes.last().cloned();
                        last_key.into_iter().chain(last_prefix).max()
                    })
                    .flatten()
            });
        Ok(ListOutput {
            objects,
            common_prefixes,
            next_marker,
            is_truncated,
        })
    }

    /// GET Bucket paged to the end (at most `max_pages` pages, capped by `MAX_LIST_PAGES`):
    /// all objects and common prefixes in order. Fails if the listing would go on past the cap.
    pub async fn list_all(
        &self,
        opts: &ListOptions,
        max_pages: usize,
    ) -> Result<ListOutput, CosError> {
        let mut all = ListOutput::default();
        let mut page_opts = opts.clone();
        for _ in 0..max_pages.min(MAX_LIST_PAGES) {
            let page = self.list_page(&page_opts).await?;
            all.objects.extend(page.objects);
            all.common_prefixes.extend(page.common_prefixes);
            match (page.is_truncated, page.next_marker) {
                (true, Some(m)) if Some(&m) != page_opts.marker.as_ref() => {
                    page_opts.marker = Some(m)
                }
                (true, _) => return Err(protocol("truncated listing without a usable NextMarker")),
                (false, _) => return Ok(all),
            }
        }
        Err(protocol(format!(
            "listing longer than {max_pages} pages; narrow the prefix"
        )))
    }

    /// PUT Object with a check of the returned `x-cos-hash-crc64ecma` against the CRC64 of the
    /// bytes sent. A body in memory also carries `Content-MD5` (COS rejects a damaged body with
    /// BadDigest); one streamed from a file does not, as that would take a second read of it.
    pub async fn put(
        &self,
        key: &str,
        body: impl Into<Payload>,
        opts: &PutOptions,
    ) -> Result<PutOutput, CosError> {
        let req = headers::with_put_options(Request::new(Method::PUT, Some(key)), opts);
        let (req, sent) = with_payload(req, body.into(), true);
        let resp = self.execute(&req).await?;
        let crc = sent.crc64();
        let returned = headers::crc64(&resp);
        if let Some(r) = returned {
            if r != crc {
                return Err(CosError::client(
                    resp.status,
                    CODE_CHECKSUM,
                    format!("PUT {key}: server CRC64 {r} differs from the {crc} sent"),
                ));
            }
        }
        Ok(PutOutput {
            etag: headers::etag(&resp),
            crc64: returned,
            version_id: resp.header("x-cos-version-id").map(str::to_string),
        })
    }

    /// HEAD Object with conditions; 304 → `NotModified`.
    pub async fn head(
        &self,
        key: &str,
        conditions: &Conditions,
    ) -> Result<Conditional<crate::store::ObjectMeta>, CosError> {
        let req = with_conditions(Request::new(Method::HEAD, Some(key)), "", conditions);
        match self.execute(&req).await {
            Ok(resp) => Ok(Conditional::Found(headers::object_meta(key, &resp))),
            Err(e) if e.code == CODE_NOT_MODIFIED => Ok(Conditional::NotModified),
            Err(e) => Err(e),
        }
    }

    /// GET Object with range, conditions, `response-*` overrides and version; 304 →
    /// `NotModified`. A 416 is returned as the `InvalidRange` error.
    pub async fn get(
        &self,
        key: &str,
        opts: &GetOptions,
    ) -> Result<Conditional<GetOutput>, CosError> {
        let o = &opts.overrides;
        let mut req = Request::new(Method::GET, Some(key))
            .query_opt("response-content-type", o.content_type.as_deref())
            .query_opt("response-content-language", o.content_language.as_deref())
            .query_opt("response-expires", o.expires.as_deref())
            .query_opt("response-cache-control", o.cache_control.as_deref())
            .query_opt(
                "response-content-disposition",
                o.content_disposition.as_deref(),
            )
            .query_opt("response-content-encoding", o.content_encoding.as_deref())
            .query_opt("versionId", opts.version_id.as_deref())
            .header_opt("range", opts.range.map(|r| r.header()).as_deref());
        req = with_conditions(req, "", &opts.conditions);
        let resp = match self.execute(&req).await {
            Ok(r) => r,
            Err(e) if e.code == CODE_NOT_MODIFIED => return Ok(Conditional::NotModified),
            Err(e) if e.status == 403 && e.code == "InvalidObjectState" => {
                return Err(self.with_restore_state(key, opts, e).await)
            }
            Err(e) => return Err(e),
        };
        let mut meta = headers::object_meta(key, &resp);
        let content_range = resp.header("content-range").map(str::to_string);
        if let Some(total) = content_range
            .as_deref()
            .and_then(|cr| cr.rsplit('/').next())
            .and_then(|t| t.trim().parse().ok())
        {
            meta.size = total;
        } else {
            meta.size = resp.body.len() as u64;
        }
        Ok(Conditional::Found(GetOutput {
            status: resp.status,
            data: resp.body.clone(),
            meta,
            content_range,
            headers: resp.headers,
        }))
    }

    /// COS answers a GET of an unrestored archive with 403 InvalidObjectState whether or not a
    /// restore is running; only HEAD's `x-cos-restore: ongoing-request="true"` tells (EAGAIN
    /// rather than EACCES, docs/protocol.md §5.2). One HEAD, only on this rare path; if it
    /// fails, the GET's error stands unchanged.
    async fn with_restore_state(&self, key: &str, opts: &GetOptions, mut e: CosError) -> CosError {
        if e.restore_ongoing {
            return e;
        }
        let req = Request::new(Method::HEAD, Some(key))
            .query_opt("versionId", opts.version_id.as_deref());
        match self.execute(&req).await {
            Ok(resp) => {
                e.restore_ongoing = matches!(
                    headers::object_meta(key, &resp).restore,
                    Some(crate::store::RestoreState::InProgress)
                );
            }
            Err(h) => log::debug!("HEAD {key:?} after InvalidObjectState failed: {h}"),
        }
        e
    }

    /// OPTIONS Object: a CORS preflight for `origin` wanting `method` with `request_headers`.
    /// A 403 (no matching rule) is `allowed: false`, not an error.
    pub async fn options_object(
        &self,
        key: &str,
        origin: &str,
        method: &str,
        request_headers: &[&str],
    ) -> Result<CorsPreflight, CosError> {
        let mut req = Request::new(Method::OPTIONS, Some(key))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !request_headers.is_empty() {
            req = req.header("access-control-request-headers", &request_headers.join(","));
        }
        let resp = match self.execute(&req).await {
            Ok(r) => r,
            Err(e) if e.status == 403 => return Ok(CorsPreflight::default()),
            Err(e) => return Err(e),
        };
        let h = |n: &str| resp.header(n).map(str::to_string);
        Ok(CorsPreflight {
            allowed: true,
            allow_origin: h("access-control-allow-origin"),
            allow_methods: h("access-control-allow-methods"),
            allow_headers: h("access-control-allow-headers"),
            expose_headers: h("access-control-expose-headers"),
            max_age: h("access-control-max-age").and_then(|v| v.trim().parse().ok()),
            allow_credentials: h("access-control-allow-credentials")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The `x-cos-copy-source` value for a key of this bucket (optionally a version).
    pub fn copy_source(&self, src_key: &str, version_id: Option<&str>) -> String {
        let mut s = format!("{}/{}", self.bucket_host(), encode_path(src_key));
        if let Some(v) = version_id {
            s.push_str("?versionId=");
            s.push_str(&super::sign::cos_encode(v));
        }
        s
    }

    /// PUT Object - Copy with the metadata directive, storage class, ACL and the four
    /// copy-source conditions (`CopyOptions::if_match` is used when `source.if_match` is None).
    /// An `<Error>` inside the 200 answer is an error.
    pub async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        opts: &CopyOptions,
        source: &Conditions,
        source_version: Option<&str>,
    ) -> Result<CopyOutput, CosError> {
        let mut req = Request::new(Method::PUT, Some(dst_key))
            .header(
                "x-cos-copy-source",
                &self.copy_source(src_key, source_version),
            )
            .header_opt(
                "x-cos-storage-class",
                opts.storage_class.as_ref().map(StorageClass::as_str),
            )
            .header_opt("x-cos-acl", opts.acl.as_deref())
            .errors_in_200();
        req = match &opts.directive {
            MetadataDirective::Copy => req.header("x-cos-metadata-directive", "Copy"),
            MetadataDirective::Replaced(h) => {
                headers::with_object_headers(req.header("x-cos-metadata-directive", "Replaced"), h)
            }
        };
        let mut cond = source.clone();
        if cond.if_match.is_none() {
            cond.if_match = opts.if_match.clone();
        }
        req = with_conditions(req, "x-cos-copy-source-", &cond);
        let resp = self.execute(&req).await?;
        copy_output(&resp.text())
    }

    /// DELETE Object (204 also for a missing key).
    pub async fn delete(&self, key: &str, version_id: Option<&str>) -> Result<(), CosError> {
        let req = Request::new(Method::DELETE, Some(key)).query_opt("versionId", version_id);
        self.execute(&req).await.map(|_| ())
    }

    /// DELETE Multiple Objects (≤ 1000), quiet or verbose, with optional version ids.
    pub async fn delete_multiple(
        &self,
        targets: &[DeleteTarget],
        quiet: bool,
    ) -> Result<DeleteOutput, CosError> {
        if targets.len() > 1000 {
            return Err(CosError::client(
                0,
                "InvalidArgument",
                "DELETE Multiple Objects takes at most 1000 keys",
            ));
        }
        let body = xml::DeleteRequest {
            quiet,
            objects: targets
                .iter()
                .map(|t| xml::ObjectIdentifier {
                    key: t.key.clone(),
                    version_id: t.version_id.clone(),
                })
                .collect(),
        };
        let text = xml::to_xml("Delete", &body).map_err(protocol)?;
        let req = Request::new(Method::POST, None)
            .query("delete", "")
            .header("content-type", "application/xml")
            .body(Bytes::from(text), true);
        let resp = self.execute(&req).await?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(DeleteOutput::default());
        }
        let r: xml::DeleteResult = xml::parse(&resp.text()).map_err(protocol)?;
        Ok(DeleteOutput {
            deleted: r.deleted,
            errors: r.errors,
        })
    }

    /// POST Object restore: 202 started, 200 already restored, 409 RestoreAlreadyInProgress
    /// is `InProgress` (not an error).
    pub async fn restore(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
        version_id: Option<&str>,
    ) -> Result<RestoreOutcome, CosError> {
        let body = xml::RestoreRequest {
            days,
            job: xml::CasJobParameters {
                tier: tier.as_str().to_string(),
            },
        };
        let text = xml::to_xml("RestoreRequest", &body).map_err(protocol)?;
        let req = Request::new(Method::POST, Some(key))
            .query("restore", "")
            .query_opt("versionId", version_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(text), true);
        match self.execute(&req).await {
            Ok(r) if r.status == 202 => Ok(RestoreOutcome::Started),
            Ok(_) => Ok(RestoreOutcome::AlreadyRestored),
            Err(e) if e.code == "RestoreAlreadyInProgress" => Ok(RestoreOutcome::InProgress),
            Err(e) => Err(e),
        }
    }

    /// GET Object acl: the policy plus the canned value of the `x-cos-acl` header.
    pub async fn get_acl(&self, key: &str) -> Result<AccessControlPolicy, CosError> {
        let req = Request::new(Method::GET, Some(key)).query("acl", "");
        let resp = self.execute(&req).await?;
        let p: xml::AclPolicy = xml::parse(&resp.text()).map_err(protocol)?;
        let grants = p
            .list
            .grants
            .into_iter()
            .map(|g| Grant {
                grantee: if g.grantee.kind() == "Group" {
                    Grantee::Group {
                        uri: g.grantee.uri.unwrap_or_default(),
                    }
                } else {
                    Grantee::User {
                        id: g.grantee.id.unwrap_or_default(),
                        display_name: g.grantee.display_name,
                    }
                },
                permission: g.permission,
            })
            .collect();
        Ok(AccessControlPolicy {
            owner_id: p.owner.id,
            owner_display_name: p.owner.display_name,
            grants,
            canned: resp.header("x-cos-acl").map(str::to_string),
        })
    }

    /// PUT Object acl: headers (canned / grants) or the documented `xsi:type` XML body.
    pub async fn put_acl(&self, key: &str, acl: &AclSpec) -> Result<(), CosError> {
        let req = Request::new(Method::PUT, Some(key)).query("acl", "");
        let req = match acl {
            AclSpec::Headers {
                canned,
                grant_read,
                grant_full_control,
            } => req
                .header_opt("x-cos-acl", canned.as_deref())
                .header_opt("x-cos-grant-read", grant_read.as_deref())
                .header_opt("x-cos-grant-full-control", grant_full_control.as_deref()),
            AclSpec::Policy(p) => {
                let body = acl_body(p);
                let text = xml::to_xml("AccessControlPolicy", &body).map_err(protocol)?;
                req.header("content-type", "application/xml")
                    .body(Bytes::from(text), true)
            }
        };
        self.execute(&req).await.map(|_| ())
    }
}

/// The documented AccessControlPolicy body of a policy.
pub fn acl_body(p: &AccessControlPolicy) -> xml::AclPolicy {
    xml::AclPolicy {
        owner: xml::Principal {
            id: p.owner_id.clone(),
            display_name: None,
        },
        list: xml::AccessControlList {
            grants: p
                .grants
                .iter()
                .map(|g| xml::GrantXml {
                    grantee: match &g.grantee {
                        Grantee::User { id, .. } => {
                            xml::GranteeXml::documented("CanonicalUser", Some(id.clone()), None)
                        }
                        Grantee::Group { uri } => {
                            xml::GranteeXml::documented("Group", None, Some(uri.clone()))
                        }
                    },
                    permission: g.permission.clone(),
                })
                .collect(),
        },
    }
}

/// Parses a CopyObjectResult / CopyPartResult; a result without ETag is a failure.
pub fn copy_output(text: &str) -> Result<CopyOutput, CosError> {
    let r: xml::CopyResult = xml::parse(text).map_err(protocol)?;
    let etag = r
        .etag
        .as_deref()
        .map(xml::unquote_etag)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| protocol("copy answer without ETag"))?;
    Ok(CopyOutput {
        etag,
        crc64: r.crc64.and_then(|c| c.trim().parse().ok()),
        last_modified: r.last_modified.as_deref().and_then(xml::parse_date),
        version_id: r.version_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_checksum_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/checksums.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(crc64_of(b"123456789"), 11051210869376104954);
        assert_eq!(crc64_of(b""), 0);
        let mut checked = 0;
        for case in v["vectors"].as_array().unwrap() {
            if case["id"] == "hello-world" {
                assert_eq!(
                    crc64_of(b"hello world").to_string(),
                    case["x-cos-hash-crc64ecma"].as_str().unwrap()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 1);
    }

    #[test]
    fn copy_output_requires_etag() {
        let ok = copy_output("<CopyObjectResult><ETag>\"e\"</ETag><CRC64>16749565679157681890</CRC64><LastModified>2024-03-01T08:15:30Z</LastModified></CopyObjectResult>").unwrap();
        assert_eq!(ok.etag, "e");
        assert_eq!(ok.crc64, Some(16749565679157681890));
        assert!(ok.last_modified.is_some());
        assert!(copy_output("<CopyObjectResult></CopyObjectResult>").is_err());
    }

    #[test]
    fn byte_ranges_render() {
        assert_eq!(ByteRange::Inclusive(0, 9).header(), "bytes=0-9");
        assert_eq!(ByteRange::From(5).header(), "bytes=5-");
        assert_eq!(ByteRange::Suffix(3).header(), "bytes=-3");
    }
}
