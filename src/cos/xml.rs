//! Client-side quick-xml (serde) types for every COS request and response body
//! (docs/protocol.md §4), plus the lenient helpers around them: body parsing that tolerates a
//! BOM, leading whitespace (Complete streams spaces first) and a default namespace, the date
//! forms of §6, and `encoding-type=url` decoding.
//!
//! Response types keep the wire text (`String` fields) exactly as the SDKs expose it; the client
//! converts to typed values (`u64`, `SystemTime`, decoded keys) at the point of use, so a field
//! that is oddly formatted fails one conversion rather than the whole document. The emulator has
//! its own XML code on purpose (ARCHITECTURE.md §2).

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// XML Schema instance namespace used by the `xsi:type` attribute of ACL grantees.
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Parses a response body into `T`, leniently: a UTF-8 BOM, an XML declaration, leading
/// whitespace and unknown elements/attributes (e.g. `xmlns`) are accepted.
pub fn parse<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    let text = body.trim_start_matches('\u{feff}').trim();
    quick_xml::de::from_str(text).map_err(|e| format!("malformed XML body: {e}"))
}

/// Serializes a request body with the given root element name, no XML declaration (as the Node
/// SDK sends; COS does not require one). Quotes are escaped as `&quot;`, the documented form of
/// ETags in a Complete body.
pub fn to_xml<T: Serialize>(root: &str, value: &T) -> Result<String, String> {
    let mut out = String::new();
    let mut ser = quick_xml::se::Serializer::with_root(&mut out, Some(root))
        .map_err(|e| format!("cannot build XML: {e}"))?;
    ser.set_quote_level(quick_xml::se::QuoteLevel::Full);
    value
        .serialize(ser)
        .map_err(|e| format!("cannot build XML: {e}"))?;
    Ok(out)
}

/// Name of the root element of a document (after trimming), e.g. `Error`. Used to spot errors
/// inside HTTP 200 answers (copy, upload part copy, complete).
pub fn root_name(body: &str) -> Option<&str> {
    let mut rest = body.trim_start_matches('\u{feff}').trim_start();
    loop {
        let lt = rest.find('<')?;
        rest = &rest[lt + 1..];
        // Skip the XML declaration, processing instructions and comments.
        if rest.starts_with('?') || rest.starts_with('!') {
            let gt = rest.find('>')?;
            rest = &rest[gt + 1..];
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        return Some(&rest[..end]);
    }
}

/// Percent-decodes a value listed with `encoding-type=url` (§4.1): plain percent-decoding, `+`
/// stays `+`. Invalid UTF-8 after decoding is kept lossily rather than failing the listing.
pub fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses every date form COS uses (§6): RFC 1123 headers, ISO 8601 with or without
/// milliseconds and `Z`, ISO 8601 without a zone (taken as UTC), and the old ctime form
/// `Wed Jan 18 16:04:17 2017` (UTC).
pub fn parse_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = httpdate::parse_http_date(s) {
        return Some(t);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc).into());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&chrono::Utc).into());
    }
    const NAIVE: [&str; 3] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%a %b %e %H:%M:%S %Y",
    ];
    NAIVE.iter().find_map(|f| {
        chrono::NaiveDateTime::parse_from_str(s, f)
            .ok()
            .map(|n| n.and_utc().into())
    })
}

/// Strips one pair of surrounding double quotes from an ETag (`"abc"` → `abc`).
pub fn unquote_etag(s: &str) -> String {
    let t = s.trim();
    t.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}

/// Wraps an ETag in double quotes unless it already has them (Complete and If-Match want them).
pub fn quote_etag(s: &str) -> String {
    let t = s.trim();
    if t.starts_with('"') && t.ends_with('"') && t.len() >= 2 {
        t.to_string()
    } else {
        format!("\"{t}\"")
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// `Owner` / `Initiator`: an ID and a display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Principal {
    /// `ID` (`qcs::cam::uin/...:uin/...`, or the APPID in listings).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// `DisplayName`, when sent.
    #[serde(
        rename = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
}

/// `CommonPrefixes` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CommonPrefix {
    /// `Prefix` (URL-encoded when the listing was).
    #[serde(rename = "Prefix", default)]
    pub prefix: String,
}

// ---------------------------------------------------------------------------------------------
// Error body (§5.1)
// ---------------------------------------------------------------------------------------------

/// `<Error>` document of a failed request (also inside HTTP 200 copy/complete answers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// `Code`.
    #[serde(rename = "Code", default)]
    pub code: String,
    /// `Message`.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// `Resource` (host + `/` + key).
    #[serde(rename = "Resource", default)]
    pub resource: Option<String>,
    /// `RequestId`.
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
    /// `TraceId`.
    #[serde(rename = "TraceId", default)]
    pub trace_id: Option<String>,
    /// `StringToSign` (SignatureDoesNotMatch only).
    #[serde(rename = "StringToSign", default)]
    pub string_to_sign: Option<String>,
    /// `FormatString`: the server's HttpString (SignatureDoesNotMatch only).
    #[serde(rename = "FormatString", default)]
    pub format_string: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// GET Bucket (§4.1)
// ---------------------------------------------------------------------------------------------

/// `ListBucketResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListBucketResult {
    /// `Name`: the bucket.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// `EncodingType` (also spelled `Encoding-Type`): `url` when keys are encoded.
    #[serde(rename = "EncodingType", alias = "Encoding-Type", default)]
    pub encoding_type: Option<String>,
    /// `Prefix`.
    #[serde(rename = "Prefix", default)]
    pub prefix: Option<String>,
    /// `Marker`.
    #[serde(rename = "Marker", default)]
    pub marker: Option<String>,
    /// `MaxKeys`.
    #[serde(rename = "MaxKeys", default)]
    pub max_keys: Option<String>,
    /// `Delimiter`.
    #[serde(rename = "Delimiter", default)]
    pub delimiter: Option<String>,
    /// `IsTruncated` (`true`/`false`).
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: String,
    /// `NextMarker` (present whenever truncated, with or without a delimiter).
    #[serde(rename = "NextMarker", default)]
    pub next_marker: Option<String>,
    /// `Contents` entries.
    #[serde(rename = "Contents", default)]
    pub contents: Vec<Contents>,
    /// `CommonPrefixes` entries.
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<CommonPrefix>,
}

/// One `Contents` entry of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Contents {
    /// `Key` (URL-encoded when the listing was).
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `LastModified` (ISO 8601).
    #[serde(rename = "LastModified", default)]
    pub last_modified: String,
    /// `ETag`, quoted.
    #[serde(rename = "ETag", default)]
    pub etag: String,
    /// `Size`.
    #[serde(rename = "Size", default)]
    pub size: String,
    /// `Owner`.
    #[serde(rename = "Owner", default)]
    pub owner: Option<Principal>,
    /// `StorageClass`.
    #[serde(rename = "StorageClass", default)]
    pub storage_class: Option<String>,
    /// `StorageTier` (intelligent tiering only).
    #[serde(rename = "StorageTier", default)]
    pub storage_tier: Option<String>,
    /// `RestoreStatus` (`ONGOING`, `DONE`, `FAILED`) for archives after a restore request.
    #[serde(rename = "RestoreStatus", default)]
    pub restore_status: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// PUT Object - Copy / Upload Part - Copy (§4.7, §4.12)
// ---------------------------------------------------------------------------------------------

/// `CopyObjectResult` and `CopyPartResult` (same fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CopyResult {
    /// `ETag`, quoted.
    #[serde(rename = "ETag", default)]
    pub etag: Option<String>,
    /// `CRC64` (unsigned decimal), when the source has one.
    #[serde(rename = "CRC64", default)]
    pub crc64: Option<String>,
    /// `LastModified`.
    #[serde(rename = "LastModified", default)]
    pub last_modified: Option<String>,
    /// `VersionId` (versioned destination only).
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// DELETE Multiple Objects (§4.9)
// ---------------------------------------------------------------------------------------------

/// `Delete` request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// `Quiet`: report only failures.
    #[serde(rename = "Quiet")]
    pub quiet: bool,
    /// `Object` entries (≤ 1000).
    #[serde(rename = "Object", default)]
    pub objects: Vec<ObjectIdentifier>,
}

/// One `Object` of a Delete request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectIdentifier {
    /// `Key`, plain UTF-8 (not URL-encoded).
    #[serde(rename = "Key")]
    pub key: String,
    /// `VersionId`, for versioned buckets.
    #[serde(rename = "VersionId", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// `DeleteResult` response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeleteResult {
    /// `Deleted` entries (omitted in quiet mode).
    #[serde(rename = "Deleted", default)]
    pub deleted: Vec<Deleted>,
    /// `Error` entries.
    #[serde(rename = "Error", default)]
    pub errors: Vec<DeleteErrorEntry>,
}

/// One `Deleted` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `VersionId`.
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
    /// `DeleteMarker`.
    #[serde(rename = "DeleteMarker", default)]
    pub delete_marker: Option<String>,
    /// `DeleteMarkerVersionId`.
    #[serde(rename = "DeleteMarkerVersionId", default)]
    pub delete_marker_version_id: Option<String>,
}

/// One `Error` entry of a DeleteResult.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeleteErrorEntry {
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `VersionId`.
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
    /// `Code`.
    #[serde(rename = "Code", default)]
    pub code: String,
    /// `Message`.
    #[serde(rename = "Message", default)]
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// POST Object restore (§4.10)
// ---------------------------------------------------------------------------------------------

/// `RestoreRequest` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// `Days` the restored copy stays readable.
    #[serde(rename = "Days")]
    pub days: u32,
    /// `CASJobParameters`.
    #[serde(rename = "CASJobParameters")]
    pub job: CasJobParameters,
}

/// `CASJobParameters` of a restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasJobParameters {
    /// `Tier`: `Expedited`, `Standard`, `Bulk`.
    #[serde(rename = "Tier")]
    pub tier: String,
}

// ---------------------------------------------------------------------------------------------
// Object ACL (§4.11)
// ---------------------------------------------------------------------------------------------

/// `AccessControlPolicy` (GET response and PUT body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicy {
    /// `Owner`.
    #[serde(rename = "Owner", default)]
    pub owner: Principal,
    /// `AccessControlList`.
    #[serde(rename = "AccessControlList", default)]
    pub list: AccessControlList,
}

/// `AccessControlList`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessControlList {
    /// `Grant` entries (≤ 100).
    #[serde(rename = "Grant", default)]
    pub grants: Vec<GrantXml>,
}

/// One `Grant`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantXml {
    /// `Grantee`.
    #[serde(rename = "Grantee", default)]
    pub grantee: GranteeXml,
    /// `Permission`.
    #[serde(rename = "Permission", default)]
    pub permission: String,
}

/// `Grantee`, in any of the three SDK forms: documented `xsi:type` attribute, Python's `<Type>`
/// element, or Node's untyped form (type inferred from `ID` vs `URI`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GranteeXml {
    /// `xmlns:xsi` declaration (sent with the attribute form).
    #[serde(
        rename = "@xmlns:xsi",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub xmlns_xsi: Option<String>,
    /// `xsi:type` attribute: `CanonicalUser` or `Group`.
    #[serde(
        rename = "@xsi:type",
        alias = "@type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub xsi_type: Option<String>,
    /// `Type` child element (Python SDK form).
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub type_element: Option<String>,
    /// `ID` of a CanonicalUser.
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `DisplayName` of a CanonicalUser (GET only).
    #[serde(
        rename = "DisplayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// `URI` of a Group.
    #[serde(rename = "URI", default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl GranteeXml {
    /// The grantee type, from the attribute, the element, or inferred from `URI` vs `ID`.
    pub fn kind(&self) -> &str {
        if let Some(t) = self.xsi_type.as_deref().or(self.type_element.as_deref()) {
            return t;
        }
        if self.uri.is_some() {
            "Group"
        } else {
            "CanonicalUser"
        }
    }

    /// A grantee in the documented attribute form (what the client sends).
    pub fn documented(kind: &str, id: Option<String>, uri: Option<String>) -> GranteeXml {
        GranteeXml {
            xmlns_xsi: Some(XSI_NS.to_string()),
            xsi_type: Some(kind.to_string()),
            type_element: None,
            id,
            display_name: None,
            uri,
        }
    }
}

// Multipart bodies (§4.12) live in their own file to keep this one small.
#[path = "xml_multipart.rs"]
mod multipart;
pub use multipart::*;

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
