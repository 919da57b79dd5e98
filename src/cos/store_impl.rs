//! `impl ObjectStore for CosClient`: the trait's operations mapped onto the inherent ones,
//! with `CosError → StoreError` at the boundary and the reader-friendly special cases the
//! contract asks for (416 → empty data, DELETE of a missing key succeeds, quiet delete).

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;

use super::client::CosClient;
use super::error::{CosError, CODE_PROTOCOL};
use super::types::{ByteRange, Conditional, Conditions, DeleteTarget, GetOptions, ListOptions};
use crate::store::{
    AccessControlPolicy, AclSpec, CompletedPart, CopyOptions, DeleteError, GetResult, ListPage,
    ListRequest, ObjectMeta, ObjectStore, Payload, PutOptions, PutResult, RestoreOutcome,
    RestoreTier, StoreError, StoreResult,
};

fn unexpected_304() -> StoreError {
    StoreError::from(CosError::client(
        304,
        CODE_PROTOCOL,
        "304 to an unconditional request",
    ))
}

#[async_trait::async_trait]
impl ObjectStore for CosClient {
    async fn list_objects(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let opts = ListOptions {
            prefix: req.prefix.clone(),
            delimiter: req.delimiter.map(String::from),
            marker: req.marker.clone(),
            max_keys: req.max_keys,
        };
        Ok(self.list_page(&opts).await?.into_page())
    }

    async fn head_object(&self, key: &str) -> StoreResult<ObjectMeta> {
        match self.head(key, &Conditions::default()).await? {
            Conditional::Found(m) => Ok(m),
            Conditional::NotModified => Err(unexpected_304()),
        }
    }

    async fn get_object(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<GetResult> {
        let byte_range = match &range {
            // An empty range reads nothing; no request needed beyond the size and ETag.
            Some(r) if r.end <= r.start => {
                let m = self.head_object(key).await?;
                return Ok(GetResult {
                    data: Bytes::new(),
                    total_size: m.size,
                    etag: m.etag,
                });
            }
            Some(r) => Some(ByteRange::Inclusive(r.start, r.end - 1)),
            None => None,
        };
        let opts = GetOptions {
            range: byte_range,
            ..GetOptions::default()
        };
        match self.get(key, &opts).await {
            Ok(Conditional::Found(out)) => Ok(GetResult {
                data: out.data,
                total_size: out.meta.size,
                etag: out.meta.etag,
            }),
            Ok(Conditional::NotModified) => Err(unexpected_304()),
            // 416: the range starts at/after EOF — readers see end of file, not an error.
            Err(e) if e.status == 416 => {
                let m = self.head_object(key).await?;
                Ok(GetResult {
                    data: Bytes::new(),
                    total_size: m.size,
                    etag: m.etag,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        opts: &PutOptions,
    ) -> StoreResult<PutResult> {
        let out = self.put(key, body, opts).await?;
        Ok(PutResult {
            etag: out.etag,
            crc64: out.crc64,
        })
    }

    async fn copy_object(
        &self,
        src_key: &str,
        dst_key: &str,
        opts: &CopyOptions,
    ) -> StoreResult<PutResult> {
        Ok(self.copy_auto(src_key, dst_key, opts).await?)
    }

    async fn delete_object(&self, key: &str) -> StoreResult<()> {
        Ok(self.delete(key, None).await?)
    }

    async fn delete_objects(&self, keys: &[String]) -> StoreResult<Vec<DeleteError>> {
        let mut failed = Vec::new();
        // The trait takes any number of keys; COS takes ≤ 1000 a request.
        for chunk in keys.chunks(1000) {
            let targets: Vec<DeleteTarget> = chunk
                .iter()
                .map(|k| DeleteTarget {
                    key: k.clone(),
                    version_id: None,
                })
                .collect();
            let out = self.delete_multiple(&targets, true).await?;
            failed.extend(out.errors.into_iter().map(|e| DeleteError {
                key: e.key,
                code: e.code,
                message: e.message,
            }));
        }
        Ok(failed)
    }

    async fn restore_object(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
    ) -> StoreResult<RestoreOutcome> {
        Ok(self.restore(key, days, tier, None).await?)
    }

    async fn get_object_acl(&self, key: &str) -> StoreResult<AccessControlPolicy> {
        Ok(self.get_acl(key).await?)
    }

    async fn put_object_acl(&self, key: &str, acl: &AclSpec) -> StoreResult<()> {
        Ok(self.put_acl(key, acl).await?)
    }

    async fn initiate_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        Ok(self.initiate(key, opts).await?)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Payload,
    ) -> StoreResult<String> {
        Ok(self.put_part(key, upload_id, part_number, body).await?)
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src_key: &str,
        range: Range<u64>,
    ) -> StoreResult<String> {
        let r = (range.end > range.start).then(|| (range.start, range.end - 1));
        let out = self
            .put_part_copy(
                key,
                upload_id,
                part_number,
                src_key,
                r,
                &Conditions::default(),
            )
            .await?;
        Ok(out.etag)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutResult> {
        Ok(self.complete(key, upload_id, parts).await?)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        Ok(self.abort(key, upload_id).await?)
    }

    fn presign_get(&self, key: &str, expires: Duration) -> Option<String> {
        Some(self.presign_get_url(key, expires))
    }
}
