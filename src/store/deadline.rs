//! `DeadlineStore`: every request of the filesystem core ends within a deadline, its retries
//! included, and is counted in the mount's [`Metrics`] (the upload queue's store is wrapped
//! without a deadline, for the counters only) (they run inside the one bounded call, so they share the deadline instead of
//! multiplying it). An endpoint that accepts connections and never answers then costs a
//! filesystem call at most the deadline per request, and the caller gets a clear error
//! (`StoreError::Network`, EIO) with a log line naming the operation and key.
//!
//! Copies get a longer bound (`copy_factor` deadlines): COS copies multi-gigabyte objects
//! server-side within one request. The upload queue does not go through this wrapper (its
//! parts are long transfers with their own per-attempt timeouts).
//!
//! Cancelling a request on timeout is safe at this level: for the caller it is the same as a
//! dropped connection (the request may or may not have taken effect, as with any network error).

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::Metrics;

use super::{
    AccessControlPolicy, AclSpec, CompletedPart, CopyOptions, DeleteError, GetResult, ListPage,
    ListRequest, ObjectMeta, ObjectStore, Payload, PutOptions, PutResult, RestoreOutcome,
    RestoreTier, StoreError, StoreResult,
};

/// An `ObjectStore` whose calls end within a deadline (see module doc).
pub struct DeadlineStore {
    /// The store it bounds.
    inner: Arc<dyn ObjectStore>,
    /// The deadline of one call (None: counters only).
    limit: Option<Duration>,
    /// Copies may take this many deadlines.
    copy_factor: u32,
    /// Where calls are counted.
    metrics: Arc<Metrics>,
}

impl DeadlineStore {
    /// Bounds every call of `inner` by `limit` (copies by 10 × `limit`), counting them.
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        limit: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<DeadlineStore> {
        Arc::new(DeadlineStore {
            inner,
            limit: Some(limit),
            copy_factor: 10,
            metrics,
        })
    }

    /// Counts every call of `inner` without bounding it (long transfers of the upload queue).
    pub fn counting(inner: Arc<dyn ObjectStore>, metrics: Arc<Metrics>) -> Arc<DeadlineStore> {
        Arc::new(DeadlineStore {
            inner,
            limit: None,
            copy_factor: 10,
            metrics,
        })
    }

    async fn run<T>(
        &self,
        op: &'static str,
        key: &str,
        limit: Option<Duration>,
        f: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let r = match limit {
            None => f.await,
            Some(limit) => match tokio::time::timeout(limit, f).await {
                Ok(r) => r,
                Err(_) => {
                    log::warn!("{op} {key:?}: no answer within {limit:?}; giving up");
                    Err(StoreError::Network(format!(
                        "{op} {key}: no answer within {} s",
                        limit.as_secs_f64()
                    )))
                }
            },
        };
        self.metrics
            .record(op, r.as_ref().map(|_| ()), start.elapsed());
        r
    }

    fn copy_limit(&self) -> Option<Duration> {
        self.limit.map(|l| l.saturating_mul(self.copy_factor))
    }
}

#[async_trait::async_trait]
impl ObjectStore for DeadlineStore {
    async fn list_objects(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let f = self.inner.list_objects(req);
        self.run("GetBucket", &req.prefix, self.limit, f).await
    }

    async fn head_object(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.run("HeadObject", key, self.limit, self.inner.head_object(key))
            .await
    }

    async fn get_object(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<GetResult> {
        let r = self
            .run(
                "GetObject",
                key,
                self.limit,
                self.inner.get_object(key, range),
            )
            .await;
        if let Ok(g) = &r {
            self.metrics.bytes(0, g.data.len() as u64);
        }
        r
    }

    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        opts: &PutOptions,
    ) -> StoreResult<PutResult> {
        self.metrics.bytes(body.len(), 0);
        let f = self.inner.put_object(key, body, opts);
        self.run("PutObject", key, self.limit, f).await
    }

    async fn copy_object(
        &self,
        src_key: &str,
        dst_key: &str,
        opts: &CopyOptions,
    ) -> StoreResult<PutResult> {
        let f = self.inner.copy_object(src_key, dst_key, opts);
        self.run("PutObjectCopy", dst_key, self.copy_limit(), f)
            .await
    }

    async fn delete_object(&self, key: &str) -> StoreResult<()> {
        self.run(
            "DeleteObject",
            key,
            self.limit,
            self.inner.delete_object(key),
        )
        .await
    }

    async fn delete_objects(&self, keys: &[String]) -> StoreResult<Vec<DeleteError>> {
        let first = keys.first().map(String::as_str).unwrap_or("");
        let f = self.inner.delete_objects(keys);
        self.run("DeleteMultipleObjects", first, self.limit, f)
            .await
    }

    async fn restore_object(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
    ) -> StoreResult<RestoreOutcome> {
        let f = self.inner.restore_object(key, days, tier);
        self.run("PostObjectRestore", key, self.limit, f).await
    }

    async fn get_object_acl(&self, key: &str) -> StoreResult<AccessControlPolicy> {
        self.run(
            "GET Object acl",
            key,
            self.limit,
            self.inner.get_object_acl(key),
        )
        .await
    }

    async fn put_object_acl(&self, key: &str, acl: &AclSpec) -> StoreResult<()> {
        let f = self.inner.put_object_acl(key, acl);
        self.run("PutObjectACL", key, self.limit, f).await
    }

    async fn initiate_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        let f = self.inner.initiate_multipart(key, opts);
        self.run("InitiateMultipartUpload", key, self.limit, f)
            .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Payload,
    ) -> StoreResult<String> {
        self.metrics.bytes(body.len(), 0);
        let f = self.inner.upload_part(key, upload_id, part_number, body);
        self.run("UploadPart", key, self.copy_limit(), f).await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src_key: &str,
        range: Range<u64>,
    ) -> StoreResult<String> {
        let f = self
            .inner
            .upload_part_copy(key, upload_id, part_number, src_key, range);
        self.run("UploadPartCopy", key, self.copy_limit(), f).await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutResult> {
        let f = self.inner.complete_multipart(key, upload_id, parts);
        self.run("CompleteMultipartUpload", key, self.copy_limit(), f)
            .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        let f = self.inner.abort_multipart(key, upload_id);
        self.run("AbortMultipartUpload", key, self.limit, f).await
    }

    fn presign_get(&self, key: &str, expires: Duration) -> Option<String> {
        self.inner.presign_get(key, expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose HEAD never answers.
    struct Stuck;

    #[async_trait::async_trait]
    impl ObjectStore for Stuck {
        async fn list_objects(&self, _: &ListRequest) -> StoreResult<ListPage> {
            std::future::pending().await
        }
        async fn head_object(&self, _: &str) -> StoreResult<ObjectMeta> {
            std::future::pending().await
        }
        async fn get_object(&self, _: &str, _: Option<Range<u64>>) -> StoreResult<GetResult> {
            std::future::pending().await
        }
        async fn put_object(&self, _: &str, _: Payload, _: &PutOptions) -> StoreResult<PutResult> {
            std::future::pending().await
        }
        async fn copy_object(&self, _: &str, _: &str, _: &CopyOptions) -> StoreResult<PutResult> {
            std::future::pending().await
        }
        async fn delete_object(&self, _: &str) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn delete_objects(&self, _: &[String]) -> StoreResult<Vec<DeleteError>> {
            std::future::pending().await
        }
        async fn restore_object(
            &self,
            _: &str,
            _: u32,
            _: RestoreTier,
        ) -> StoreResult<RestoreOutcome> {
            std::future::pending().await
        }
        async fn get_object_acl(&self, _: &str) -> StoreResult<AccessControlPolicy> {
            std::future::pending().await
        }
        async fn put_object_acl(&self, _: &str, _: &AclSpec) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn initiate_multipart(&self, _: &str, _: &PutOptions) -> StoreResult<String> {
            std::future::pending().await
        }
        async fn upload_part(&self, _: &str, _: &str, _: u32, _: Payload) -> StoreResult<String> {
            std::future::pending().await
        }
        async fn upload_part_copy(
            &self,
            _: &str,
            _: &str,
            _: u32,
            _: &str,
            _: Range<u64>,
        ) -> StoreResult<String> {
            std::future::pending().await
        }
        async fn complete_multipart(
            &self,
            _: &str,
            _: &str,
            _: &[CompletedPart],
        ) -> StoreResult<PutResult> {
            std::future::pending().await
        }
        async fn abort_multipart(&self, _: &str, _: &str) -> StoreResult<()> {
            std::future::pending().await
        }
        fn presign_get(&self, _: &str, _: Duration) -> Option<String> {
            None
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_ends_at_the_deadline() {
        let m = Arc::new(Metrics::default());
        let s = DeadlineStore::new(Arc::new(Stuck), Duration::from_secs(30), m.clone());
        let start = tokio::time::Instant::now();
        let e = s.head_object("k").await.unwrap_err();
        assert!(matches!(e, StoreError::Network(ref m) if m.contains("no answer within 30")));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        let start = tokio::time::Instant::now();
        assert!(s
            .copy_object("a", "b", &CopyOptions::default())
            .await
            .is_err());
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(300),
            "copies get ten deadlines"
        );
    }
}
