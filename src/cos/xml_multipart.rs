//! quick-xml (serde) types of the multipart bodies (docs/protocol.md §4.12): initiate, complete
//! (request and result), list parts, list multipart uploads. Part of `cos::xml`, re-exported
//! there; same conventions (wire text kept as `String`, lenient `EncodingType`/`Encoding-Type`).

use serde::{Deserialize, Serialize};

use super::{CommonPrefix, Principal};

/// `InitiateMultipartUploadResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InitiateResult {
    /// `Bucket`.
    #[serde(rename = "Bucket", default)]
    pub bucket: String,
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `UploadId`.
    #[serde(rename = "UploadId", default)]
    pub upload_id: String,
}

/// `CompleteMultipartUpload` request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRequest {
    /// `Part` entries, ascending part numbers 1..N.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

/// One `Part` of a Complete request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletePart {
    /// `PartNumber`.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// `ETag`, with its quotes.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// `CompleteMultipartUploadResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CompleteResult {
    /// `Location`.
    #[serde(rename = "Location", default)]
    pub location: Option<String>,
    /// `Bucket`.
    #[serde(rename = "Bucket", default)]
    pub bucket: Option<String>,
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: Option<String>,
    /// `ETag`, quoted; a 200 without it is a failure (§4.12).
    #[serde(rename = "ETag", default)]
    pub etag: Option<String>,
}

/// `ListPartsResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListPartsResult {
    /// `Bucket`.
    #[serde(rename = "Bucket", default)]
    pub bucket: String,
    /// `EncodingType` / `Encoding-Type`.
    #[serde(rename = "EncodingType", alias = "Encoding-Type", default)]
    pub encoding_type: Option<String>,
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `UploadId`.
    #[serde(rename = "UploadId", default)]
    pub upload_id: String,
    /// `Initiator`.
    #[serde(rename = "Initiator", default)]
    pub initiator: Option<Principal>,
    /// `Owner`.
    #[serde(rename = "Owner", default)]
    pub owner: Option<Principal>,
    /// `PartNumberMarker`.
    #[serde(rename = "PartNumberMarker", default)]
    pub part_number_marker: Option<String>,
    /// `Part` entries.
    #[serde(rename = "Part", default)]
    pub parts: Vec<PartEntry>,
    /// `NextPartNumberMarker`.
    #[serde(rename = "NextPartNumberMarker", default)]
    pub next_part_number_marker: Option<String>,
    /// `StorageClass`.
    #[serde(rename = "StorageClass", default)]
    pub storage_class: Option<String>,
    /// `MaxParts`.
    #[serde(rename = "MaxParts", default)]
    pub max_parts: Option<String>,
    /// `IsTruncated`.
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: String,
}

/// One `Part` of ListParts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PartEntry {
    /// `PartNumber`.
    #[serde(rename = "PartNumber", default)]
    pub part_number: String,
    /// `LastModified`.
    #[serde(rename = "LastModified", default)]
    pub last_modified: String,
    /// `ETag`, quoted.
    #[serde(rename = "ETag", default)]
    pub etag: String,
    /// `Size`.
    #[serde(rename = "Size", default)]
    pub size: String,
}

/// `ListMultipartUploadsResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListUploadsResult {
    /// `Bucket`.
    #[serde(rename = "Bucket", default)]
    pub bucket: String,
    /// `EncodingType` / `Encoding-Type` (the doc spells it with a hyphen here).
    #[serde(rename = "EncodingType", alias = "Encoding-Type", default)]
    pub encoding_type: Option<String>,
    /// `KeyMarker`.
    #[serde(rename = "KeyMarker", default)]
    pub key_marker: Option<String>,
    /// `UploadIdMarker`.
    #[serde(rename = "UploadIdMarker", default)]
    pub upload_id_marker: Option<String>,
    /// `NextKeyMarker`.
    #[serde(rename = "NextKeyMarker", default)]
    pub next_key_marker: Option<String>,
    /// `NextUploadIdMarker`.
    #[serde(rename = "NextUploadIdMarker", default)]
    pub next_upload_id_marker: Option<String>,
    /// `MaxUploads`.
    #[serde(rename = "MaxUploads", default)]
    pub max_uploads: Option<String>,
    /// `Prefix`.
    #[serde(rename = "Prefix", default)]
    pub prefix: Option<String>,
    /// `Delimiter`.
    #[serde(rename = "Delimiter", default)]
    pub delimiter: Option<String>,
    /// `IsTruncated`.
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: String,
    /// `Upload` entries.
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<UploadEntry>,
    /// `CommonPrefixes` entries.
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<CommonPrefix>,
}

/// One `Upload` of ListMultipartUploads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UploadEntry {
    /// `Key`.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// `UploadId`.
    #[serde(rename = "UploadId", default)]
    pub upload_id: String,
    /// `StorageClass`.
    #[serde(rename = "StorageClass", default)]
    pub storage_class: Option<String>,
    /// `Initiator`.
    #[serde(rename = "Initiator", default)]
    pub initiator: Option<Principal>,
    /// `Owner`.
    #[serde(rename = "Owner", default)]
    pub owner: Option<Principal>,
    /// `Initiated` (ISO 8601, or ctime form in old examples).
    #[serde(rename = "Initiated", default)]
    pub initiated: String,
}
