//! `MemoryStore`: an in-memory `ObjectStore` with COS semantics, operation counters and fault
//! hooks, for unit tests of the fs core and the upload queue.
//!
//! Faithful where the fs core can observe it (docs/protocol.md §4): listing order by UTF-8 bytes,
//! `delimiter` rolling keys into CommonPrefixes, `max-keys` counting Contents plus prefixes,
//! `NextMarker` = last key or prefix returned (also without a delimiter), ETag = MD5 hex for
//! PUT/copy and `md5(concat(part md5s))-N` for multipart, CRC64 on every object, copy directives
//! (self-copy only with `Replaced`; storage class and ACL not copied), canned ACLs and grants,
//! ARCHIVE/DEEP_ARCHIVE refusing GET until a restore completes (tests complete it with
//! [`MemoryStore::complete_restore`]).
//!
//! Counters are keyed by COS API names: `GetBucket`, `HeadObject`, `GetObject`, `PutObject`,
//! `PutObjectCopy`, `DeleteObject`, `DeleteMultipleObjects`, `PostObjectRestore`,
//! `GetObjectACL`, `PutObjectACL`, `InitiateMultipartUpload`, `UploadPart`, `UploadPartCopy`,
//! `CompleteMultipartUpload`, `AbortMultipartUpload`. A call is counted when it starts, before
//! any gate or injected fault.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    AccessControlPolicy, AclSpec, CompletedPart, CopyOptions, DeleteError, GetResult, ListPage,
    ListRequest, MetadataDirective, ObjectHeaders, ObjectMeta, ObjectStore, Payload, PutOptions,
    PutResult, RestoreOutcome, RestoreState, RestoreTier, StorageClass, StoreError, StoreResult,
};

mod hooks;
pub use hooks::Gate;
use hooks::{lock, Hooks};

mod acl;
mod list;
mod multipart;
use acl::{acl_from_headers, ObjAcl};
/// COS's limit on a single PUT / copy.
const MAX_SINGLE: u64 = 5 * 1024 * 1024 * 1024;

/// One stored object.
#[derive(Debug, Clone)]
struct Obj {
    /// The body.
    data: Bytes,
    /// ETag without quotes.
    etag: String,
    /// Last-Modified, whole seconds like COS.
    last_modified: SystemTime,
    /// Storage class.
    class: StorageClass,
    /// Stored headers and user metadata.
    headers: ObjectHeaders,
    /// CRC64-ECMA of the body.
    crc64: u64,
    /// Restore state (archives only).
    restore: Option<RestoreState>,
    /// Days asked for by the running restore (used by `complete_restore`).
    restore_days: u32,
    /// ACL.
    acl: ObjAcl,
}

/// One multipart upload in progress.
#[derive(Debug, Clone)]
struct Upload {
    /// Target key.
    key: String,
    /// Options from Initiate.
    opts: PutOptions,
    /// Uploaded parts: number → (body, md5 hex).
    parts: BTreeMap<u32, (Bytes, String)>,
}

/// Everything the store holds, behind one mutex (never held across `.await`).
#[derive(Debug, Default)]
struct State {
    /// Objects by key; BTreeMap<String> orders by UTF-8 bytes, as COS lists.
    objects: BTreeMap<String, Obj>,
    /// Multipart uploads by upload id.
    uploads: HashMap<String, Upload>,
    /// Counter for upload ids.
    next_upload: u64,
}

/// In-memory `ObjectStore` with COS semantics, counters and fault hooks (see module doc).
#[derive(Debug)]
pub struct MemoryStore {
    /// Objects and uploads.
    state: Mutex<State>,
    /// Counters, injected faults and gates.
    hooks: Hooks,
    /// Minimum size of non-last parts checked at Complete (COS: 1 MiB).
    min_part_size: Mutex<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            state: Mutex::new(State::default()),
            hooks: Hooks::default(),
            min_part_size: Mutex::new(1024 * 1024),
        }
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn crc64(data: &[u8]) -> u64 {
    let mut d = crc64fast::Digest::new();
    d.write(data);
    d.sum64()
}

/// Now, truncated to whole seconds (COS's Last-Modified granularity).
fn now_secs() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn invalid(code: &str, message: &str) -> StoreError {
    StoreError::InvalidRequest {
        code: code.to_string(),
        message: message.to_string(),
    }
}

fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidName("empty key".into()));
    }
    if key.len() > 850 {
        return Err(StoreError::KeyTooLong(format!("{} bytes", key.len())));
    }
    Ok(())
}

impl Obj {
    fn new(data: Bytes, etag: String, headers: ObjectHeaders, opts: &PutOptions) -> Obj {
        let mut headers = headers;
        if headers.content_type.is_none() {
            headers.content_type = Some("application/octet-stream".into());
        }
        Obj {
            crc64: crc64(&data),
            data,
            etag,
            last_modified: now_secs(),
            class: opts.storage_class.clone().unwrap_or_default(),
            headers,
            restore: None,
            restore_days: 0,
            acl: acl_from_headers(
                opts.acl.as_deref(),
                opts.grant_read.as_deref(),
                opts.grant_full_control.as_deref(),
            ),
        }
    }

    /// True when GET must be refused (archived and no live restored copy).
    fn archived_state(&self) -> Option<StoreError> {
        if !self.class.is_archive() {
            return None;
        }
        match &self.restore {
            Some(RestoreState::Restored { expiry }) if *expiry > SystemTime::now() => None,
            Some(RestoreState::InProgress) => Some(StoreError::Archived { restoring: true }),
            _ => Some(StoreError::Archived { restoring: false }),
        }
    }

    fn meta(&self, key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: self.data.len() as u64,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            storage_class: self.class.clone(),
            headers: self.headers.clone(),
            crc64: Some(self.crc64),
            object_type: Some("normal".into()),
            restore: self.restore.clone(),
        }
    }
}

fn clip(range: &Range<u64>, len: u64) -> Range<usize> {
    let start = range.start.min(len);
    let end = range.end.min(len).max(start);
    start as usize..end as usize
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Arc<MemoryStore> {
        Arc::new(MemoryStore::default())
    }

    /// Calls per COS operation name since creation or the last [`Self::reset_counts`].
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.hooks.counts()
    }

    /// Calls of one operation (0 when never called).
    pub fn count(&self, op: &str) -> u64 {
        self.hooks.counts().get(op).copied().unwrap_or(0)
    }

    /// Zeroes every counter.
    pub fn reset_counts(&self) {
        self.hooks.reset_counts()
    }

    /// The next `n` calls of `op` fail with `err` (after being counted).
    pub fn fail_next(&self, op: &'static str, n: usize, err: StoreError) {
        self.hooks.fail_next(op, n, err)
    }

    /// Drops every pending injected fault.
    pub fn clear_faults(&self) {
        self.hooks.clear_faults()
    }

    /// Installs a closed gate on `op`: its calls wait until [`Gate::release`].
    pub fn gate(&self, op: &'static str) -> Arc<Gate> {
        self.hooks.gate(op)
    }

    /// Holds the answers of the first `hold` calls of `op` after the store has read them,
    /// until released (a reply in flight while the object changes). HeadObject only.
    pub fn answer_gate(&self, op: &'static str, hold: usize) -> Arc<Gate> {
        self.hooks.answer_gate(op, hold)
    }

    /// Removes (and releases) the gate on `op`.
    pub fn remove_gate(&self, op: &'static str) {
        self.hooks.remove_gate(op)
    }

    /// Sets the minimum size of non-last parts checked at Complete (COS: 1 MiB), so tests can
    /// exercise multipart with small files.
    pub fn set_min_part_size(&self, bytes: u64) {
        *lock(&self.min_part_size) = bytes;
    }

    /// Stores an object directly (uncounted, no hooks): test setup.
    pub fn insert(&self, key: &str, data: impl Into<Bytes>, opts: &PutOptions) {
        let data = data.into();
        let etag = md5_hex(&data);
        let obj = Obj::new(data, etag, opts.headers.clone(), opts);
        lock(&self.state).objects.insert(key.to_string(), obj);
    }

    /// The body of an object (uncounted): test inspection.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        lock(&self.state).objects.get(key).map(|o| o.data.clone())
    }

    /// HEAD without counting: test inspection.
    pub fn meta(&self, key: &str) -> Option<ObjectMeta> {
        lock(&self.state).objects.get(key).map(|o| o.meta(key))
    }

    /// All keys, in listing order (uncounted).
    pub fn keys(&self) -> Vec<String> {
        lock(&self.state).objects.keys().cloned().collect()
    }

    /// Multipart uploads not yet completed or aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.state).uploads.len()
    }

    /// Finishes a running restore of `key`: the restored copy is readable for the days asked.
    /// Returns false when no restore is in progress for the key.
    pub fn complete_restore(&self, key: &str) -> bool {
        let mut st = lock(&self.state);
        match st.objects.get_mut(key) {
            Some(o) if o.restore == Some(RestoreState::InProgress) => {
                let days = u64::from(o.restore_days.max(1));
                o.restore = Some(RestoreState::Restored {
                    expiry: now_secs() + Duration::from_secs(days * 86_400),
                });
                true
            }
            _ => false,
        }
    }

    /// Sets the Last-Modified of an object (test setup for cache validation).
    pub fn set_last_modified(&self, key: &str, t: SystemTime) -> bool {
        match lock(&self.state).objects.get_mut(key) {
            Some(o) => {
                o.last_modified = t;
                true
            }
            None => false,
        }
    }

    fn list_sync(&self, req: &ListRequest) -> StoreResult<ListPage> {
        Ok(list::list(&lock(&self.state).objects, req))
    }

    fn copy_sync(&self, src: &str, dst: &str, opts: &CopyOptions) -> StoreResult<PutResult> {
        check_key(dst)?;
        let mut st = lock(&self.state);
        let s = st
            .objects
            .get(src)
            .ok_or_else(|| StoreError::NotFound(src.to_string()))?;
        if let Some(e) = s.archived_state() {
            return Err(e);
        }
        if let Some(m) = &opts.if_match {
            if m.trim_matches('"') != s.etag {
                return Err(StoreError::PreconditionFailed(format!("copy source {src}")));
            }
        }
        if src == dst && opts.directive == MetadataDirective::Copy {
            return Err(invalid(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata",
            ));
        }
        if s.data.len() as u64 > MAX_SINGLE {
            return Err(StoreError::TooLarge(format!("copy source {src}")));
        }
        let headers = match &opts.directive {
            MetadataDirective::Copy => s.headers.clone(),
            MetadataDirective::Replaced(h) => h.clone(),
        };
        let put = PutOptions {
            headers: headers.clone(),
            storage_class: opts.storage_class.clone(),
            acl: opts.acl.clone(),
            ..Default::default()
        };
        let obj = Obj::new(s.data.clone(), md5_hex(&s.data), headers, &put);
        let res = PutResult {
            etag: obj.etag.clone(),
            crc64: Some(obj.crc64),
        };
        st.objects.insert(dst.to_string(), obj);
        Ok(res)
    }

    fn restore_sync(&self, key: &str, days: u32) -> StoreResult<RestoreOutcome> {
        let mut st = lock(&self.state);
        let o = st
            .objects
            .get_mut(key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        if !o.class.is_archive() {
            return Err(invalid(
                "RestoreNonArchiveObject",
                "the object is not archived",
            ));
        }
        match &o.restore {
            Some(RestoreState::InProgress) => Ok(RestoreOutcome::InProgress),
            Some(RestoreState::Restored { expiry }) if *expiry > SystemTime::now() => {
                o.restore = Some(RestoreState::Restored {
                    expiry: now_secs() + Duration::from_secs(u64::from(days.max(1)) * 86_400),
                });
                Ok(RestoreOutcome::AlreadyRestored)
            }
            _ => {
                o.restore = Some(RestoreState::InProgress);
                o.restore_days = days;
                Ok(RestoreOutcome::Started)
            }
        }
    }

    fn get_acl_sync(&self, key: &str) -> StoreResult<AccessControlPolicy> {
        let st = lock(&self.state);
        let o = st
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        Ok(o.acl.policy())
    }

    fn put_acl_sync(&self, key: &str, acl: &AclSpec) -> StoreResult<()> {
        let mut st = lock(&self.state);
        let o = st
            .objects
            .get_mut(key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        o.acl = ObjAcl::from_spec(acl);
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn list_objects(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.hooks.enter("GetBucket").await?;
        self.list_sync(req)
    }

    async fn head_object(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.hooks.enter("HeadObject").await?;
        let meta = self.meta(key);
        self.hooks.answer("HeadObject").await;
        meta.ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    async fn get_object(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<GetResult> {
        self.hooks.enter("GetObject").await?;
        let st = lock(&self.state);
        let o = st
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        if let Some(e) = o.archived_state() {
            return Err(e);
        }
        let len = o.data.len() as u64;
        let data = match range {
            Some(r) => o.data.slice(clip(&r, len)),
            None => o.data.clone(),
        };
        Ok(GetResult {
            data,
            total_size: len,
            etag: o.etag.clone(),
        })
    }

    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        opts: &PutOptions,
    ) -> StoreResult<PutResult> {
        self.hooks.enter("PutObject").await?;
        let body = body.into_bytes().await?;
        check_key(key)?;
        if body.len() as u64 > MAX_SINGLE {
            return Err(StoreError::TooLarge(key.to_string()));
        }
        let etag = md5_hex(&body);
        let obj = Obj::new(body, etag, opts.headers.clone(), opts);
        let res = PutResult {
            etag: obj.etag.clone(),
            crc64: Some(obj.crc64),
        };
        lock(&self.state).objects.insert(key.to_string(), obj);
        Ok(res)
    }

    async fn copy_object(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
    ) -> StoreResult<PutResult> {
        self.hooks.enter("PutObjectCopy").await?;
        self.copy_sync(src, dst, opts)
    }

    async fn delete_object(&self, key: &str) -> StoreResult<()> {
        self.hooks.enter("DeleteObject").await?;
        lock(&self.state).objects.remove(key);
        Ok(())
    }

    async fn delete_objects(&self, keys: &[String]) -> StoreResult<Vec<DeleteError>> {
        self.hooks.enter("DeleteMultipleObjects").await?;
        if keys.is_empty() || keys.len() > 1000 {
            return Err(invalid("MalformedXML", "1..=1000 keys per request"));
        }
        let mut st = lock(&self.state);
        for k in keys {
            st.objects.remove(k);
        }
        Ok(Vec::new())
    }

    async fn restore_object(
        &self,
        key: &str,
        days: u32,
        _tier: RestoreTier,
    ) -> StoreResult<RestoreOutcome> {
        self.hooks.enter("PostObjectRestore").await?;
        self.restore_sync(key, days)
    }

    async fn get_object_acl(&self, key: &str) -> StoreResult<AccessControlPolicy> {
        self.hooks.enter("GetObjectACL").await?;
        self.get_acl_sync(key)
    }

    async fn put_object_acl(&self, key: &str, acl: &AclSpec) -> StoreResult<()> {
        self.hooks.enter("PutObjectACL").await?;
        self.put_acl_sync(key, acl)
    }

    async fn initiate_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        self.hooks.enter("InitiateMultipartUpload").await?;
        check_key(key)?;
        let mut st = lock(&self.state);
        st.next_upload += 1;
        let id = format!(
            "{:016x}memupload{}",
            st.next_upload.wrapping_mul(0x9e37_79b9),
            st.next_upload
        );
        st.uploads.insert(
            id.clone(),
            Upload {
                key: key.to_string(),
                opts: opts.clone(),
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Payload,
    ) -> StoreResult<String> {
        self.hooks.enter("UploadPart").await?;
        let body = body.into_bytes().await?;
        self.add_part(key, upload_id, part_number, body)
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src_key: &str,
        range: Range<u64>,
    ) -> StoreResult<String> {
        self.hooks.enter("UploadPartCopy").await?;
        let body = {
            let st = lock(&self.state);
            let s = st
                .objects
                .get(src_key)
                .ok_or_else(|| StoreError::NotFound(src_key.to_string()))?;
            if let Some(e) = s.archived_state() {
                return Err(e);
            }
            let len = s.data.len() as u64;
            if range.start >= range.end || range.end > len {
                return Err(invalid(
                    "InvalidArgument",
                    "copy source range outside the object",
                ));
            }
            s.data.slice(clip(&range, len))
        };
        self.add_part(key, upload_id, part_number, body)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutResult> {
        self.hooks.enter("CompleteMultipartUpload").await?;
        self.complete_sync(key, upload_id, parts)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.hooks.enter("AbortMultipartUpload").await?;
        let mut st = lock(&self.state);
        match st.uploads.get(upload_id) {
            Some(u) if u.key == key => {
                st.uploads.remove(upload_id);
                Ok(())
            }
            _ => Err(StoreError::NotFound(format!("NoSuchUpload {upload_id}"))),
        }
    }

    fn presign_get(&self, key: &str, expires: Duration) -> Option<String> {
        Some(format!("memory:///{key}?expires={}", expires.as_secs()))
    }
}

#[cfg(test)]
mod tests;
