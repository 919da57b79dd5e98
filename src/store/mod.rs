//! The storage boundary of the filesystem: the `ObjectStore` trait, whose methods are named after
//! COS operations, and the plain value types that cross it.
//!
//! The fs core and the upload queue speak to storage only through this trait, so the same core
//! runs against `CosClient` (real HTTP) and against an in-memory store in unit tests. Nothing
//! here knows about HTTP, XML or FUSE.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;

pub mod bufpool;
pub mod deadline;
mod error;
pub mod metrics;
pub use deadline::DeadlineStore;
pub use error::StoreError;
mod memory;
pub use memory::MemoryStore;
mod payload;
pub use payload::{FileRange, Payload, SentDigest};

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// COS storage classes. `Other` keeps classes this build does not know (MAZ_*, future ones).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum StorageClass {
    /// The default class; COS omits `x-cos-storage-class` for it.
    #[default]
    Standard,
    /// Infrequent access.
    StandardIa,
    /// Intelligent tiering.
    IntelligentTiering,
    /// Archive: GET refused until restored.
    Archive,
    /// Deep archive: GET refused until restored.
    DeepArchive,
    /// Any other class name, kept verbatim (upper case as COS spells it).
    Other(String),
}

impl StorageClass {
    /// The wire name (`STANDARD`, `STANDARD_IA`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::Archive => "ARCHIVE",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::Other(s) => s,
        }
    }

    /// Parses a wire name, case-insensitively; unknown names become `Other`.
    pub fn parse(s: &str) -> StorageClass {
        match s.trim().to_ascii_uppercase().as_str() {
            "STANDARD" | "" => StorageClass::Standard,
            "STANDARD_IA" => StorageClass::StandardIa,
            "INTELLIGENT_TIERING" => StorageClass::IntelligentTiering,
            "ARCHIVE" => StorageClass::Archive,
            "DEEP_ARCHIVE" => StorageClass::DeepArchive,
            other => StorageClass::Other(other.to_string()),
        }
    }

    /// True for classes whose objects must be restored before they can be read.
    pub fn is_archive(&self) -> bool {
        matches!(self, StorageClass::Archive | StorageClass::DeepArchive)
    }
}

/// Restore state of an archived object, from HEAD's `x-cos-restore` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreState {
    /// A restore is running (`ongoing-request="true"`).
    InProgress,
    /// A restored copy is readable until the given time (`ongoing-request="false", expiry-date=...`).
    Restored {
        /// When the restored copy expires.
        expiry: SystemTime,
    },
}

/// Metadata headers stored with an object and set on PUT / copy-with-Replaced / initiate-multipart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHeaders {
    /// `Content-Type`; None on write means the server default (`application/octet-stream`).
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Expires` (kept as the raw header text).
    pub expires: Option<String>,
    /// `x-cos-meta-NAME` values keyed by lower-case NAME (without the prefix). Values are sent as
    /// given; callers percent-encode non-ASCII text.
    pub user_meta: BTreeMap<String, String>,
}

/// Options for writing a new object (PUT, initiate multipart, copy with `Replaced`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Stored metadata headers.
    pub headers: ObjectHeaders,
    /// `x-cos-storage-class`; None = bucket default (STANDARD).
    pub storage_class: Option<StorageClass>,
    /// `x-cos-acl` canned ACL (`private`, `public-read`, `default`); None = not sent.
    pub acl: Option<String>,
    /// `x-cos-grant-read` (`id="..."` list); None = not sent.
    pub grant_read: Option<String>,
    /// `x-cos-grant-full-control` (`id="..."` list); None = not sent.
    pub grant_full_control: Option<String>,
}

/// What HEAD Object tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without surrounding quotes.
    pub etag: String,
    /// `Last-Modified`.
    pub last_modified: SystemTime,
    /// Storage class (STANDARD when the header is absent).
    pub storage_class: StorageClass,
    /// Stored headers and user metadata.
    pub headers: ObjectHeaders,
    /// `x-cos-hash-crc64ecma`, when the object has one.
    pub crc64: Option<u64>,
    /// `x-cos-object-type` (`normal`, `appendable`), when sent.
    pub object_type: Option<String>,
    /// Restore state for archived objects, None when never restored.
    pub restore: Option<RestoreState>,
}

/// One `Contents` entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Full key (decoded).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// `LastModified`.
    pub last_modified: SystemTime,
    /// Storage class.
    pub storage_class: StorageClass,
}

/// One page of GET Bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ListEntry>,
    /// Common prefixes (each ends with the delimiter), in order.
    pub common_prefixes: Vec<String>,
    /// Marker for the next page when truncated.
    pub next_marker: Option<String>,
    /// True when more results follow.
    pub is_truncated: bool,
}

/// Parameters of GET Bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// `prefix`.
    pub prefix: String,
    /// `delimiter` (COS allows one character), None for a flat listing.
    pub delimiter: Option<char>,
    /// `marker`: list keys strictly after this one.
    pub marker: Option<String>,
    /// `max-keys` (1..=1000); None = 1000.
    pub max_keys: Option<u32>,
}

/// Result of a successful PUT / complete-multipart / copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// New ETag, without quotes.
    pub etag: String,
    /// `x-cos-hash-crc64ecma` of the new object, when returned.
    pub crc64: Option<u64>,
}

/// Body and metadata of GET Object.
#[derive(Debug, Clone)]
pub struct GetResult {
    /// The bytes returned (the requested range, clipped to the object size).
    pub data: Bytes,
    /// Total object size.
    pub total_size: u64,
    /// ETag of the whole object, without quotes.
    pub etag: String,
}

/// Metadata handling of PUT Object - Copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataDirective {
    /// Keep the source's metadata (`x-cos-metadata-directive: Copy`).
    Copy,
    /// Replace metadata with these headers (`Replaced`).
    Replaced(ObjectHeaders),
}

/// Options of PUT Object - Copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Metadata directive.
    pub directive: MetadataDirective,
    /// `x-cos-storage-class` of the destination (COS does not copy the class).
    pub storage_class: Option<StorageClass>,
    /// `x-cos-acl` of the destination (COS does not copy the ACL).
    pub acl: Option<String>,
    /// `x-cos-copy-source-If-Match`: copy only if the source still has this ETag.
    pub if_match: Option<String>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            directive: MetadataDirective::Copy,
            storage_class: None,
            acl: None,
            if_match: None,
        }
    }
}

/// One failed key of DELETE Multiple Objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteError {
    /// The key that was not deleted.
    pub key: String,
    /// COS error code.
    pub code: String,
    /// COS error message.
    pub message: String,
}

/// Restore tiers of POST Object restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTier {
    /// Minutes.
    Expedited,
    /// Hours.
    Standard,
    /// Many hours.
    Bulk,
}

impl RestoreTier {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        }
    }
}

/// What POST Object restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// 202: a restore was started.
    Started,
    /// 200: a restored copy existed; its expiry was extended.
    AlreadyRestored,
    /// 409 RestoreAlreadyInProgress: one is running (not an error for the user).
    InProgress,
}

/// An ACL grantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A CAM user, `qcs::cam::uin/<owner>:uin/<sub>`.
    User {
        /// The ID.
        id: String,
        /// Display name, when the server sent one.
        display_name: Option<String>,
    },
    /// A group URI (`http://cam.qcloud.com/groups/global/AllUsers`, ...).
    Group {
        /// The URI.
        uri: String,
    },
}

/// One grant of an access control policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// `READ`, `WRITE`, `FULL_CONTROL`, `READ_ACP`, `WRITE_ACP`.
    pub permission: String,
}

/// A full object ACL (GET/PUT Object acl).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessControlPolicy {
    /// Owner ID.
    pub owner_id: String,
    /// Owner display name, when known.
    pub owner_display_name: Option<String>,
    /// Grants, in document order.
    pub grants: Vec<Grant>,
    /// The canned value from the `x-cos-acl` response header (`default`, `private`,
    /// `public-read`), when sent.
    pub canned: Option<String>,
}

/// What PUT Object acl sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclSpec {
    /// Headers: `x-cos-acl` and/or grant headers (each None = not sent).
    Headers {
        /// `x-cos-acl`.
        canned: Option<String>,
        /// `x-cos-grant-read`.
        grant_read: Option<String>,
        /// `x-cos-grant-full-control`.
        grant_full_control: Option<String>,
    },
    /// An `AccessControlPolicy` XML body.
    Policy(AccessControlPolicy),
}

/// A part of a multipart upload, as listed for Complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number, 1..=10000.
    pub part_number: u32,
    /// The part's ETag, without quotes.
    pub etag: String,
}

/// The object operations the filesystem needs, named after the COS API.
///
/// Implementations: `cos::CosClient` (HTTP) and `store::MemoryStore` (tests). Keys are plain
/// decoded UTF-8 keys without a leading `/` (directory markers end in `/`).
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// GET Bucket: one page of a listing.
    async fn list_objects(&self, req: &ListRequest) -> StoreResult<ListPage>;

    /// HEAD Object. A missing key is `StoreError::NotFound`.
    async fn head_object(&self, key: &str) -> StoreResult<ObjectMeta>;

    /// GET Object, optionally a byte range `[start, end)`. A range starting at or after the end of
    /// the object returns empty data (COS's 416 is not an error for readers).
    async fn get_object(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> StoreResult<GetResult>;

    /// PUT Object with the whole body.
    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        opts: &PutOptions,
    ) -> StoreResult<PutResult>;

    /// PUT Object - Copy from `src_key` (same bucket) to `dst_key`.
    async fn copy_object(
        &self,
        src_key: &str,
        dst_key: &str,
        opts: &CopyOptions,
    ) -> StoreResult<PutResult>;

    /// DELETE Object (missing keys succeed).
    async fn delete_object(&self, key: &str) -> StoreResult<()>;

    /// DELETE Multiple Objects (≤ 1000 keys, quiet mode): returns the keys that failed.
    async fn delete_objects(&self, keys: &[String]) -> StoreResult<Vec<DeleteError>>;

    /// POST Object restore.
    async fn restore_object(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
    ) -> StoreResult<RestoreOutcome>;

    /// GET Object acl.
    async fn get_object_acl(&self, key: &str) -> StoreResult<AccessControlPolicy>;

    /// PUT Object acl.
    async fn put_object_acl(&self, key: &str, acl: &AclSpec) -> StoreResult<()>;

    /// Initiate Multipart Upload: returns the upload id.
    async fn initiate_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String>;

    /// Upload Part: returns the part's ETag (no quotes).
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Payload,
    ) -> StoreResult<String>;

    /// Upload Part - Copy of `src_key` bytes `[start, end)`: returns the part's ETag.
    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src_key: &str,
        range: std::ops::Range<u64>,
    ) -> StoreResult<String>;

    /// Complete Multipart Upload.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutResult>;

    /// Abort Multipart Upload.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()>;

    /// A presigned GET URL valid for `expires` (None when the store cannot presign).
    fn presign_get(&self, key: &str, expires: std::time::Duration) -> Option<String>;
}
