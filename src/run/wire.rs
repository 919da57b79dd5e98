//! Builds the parts of a mount from a `Config`: COS client (with one cheap request that proves
//! bucket and credentials), cache directory, upload queue (with crash recovery), fs core and
//! fuser adapter, plus the control-channel handler over them.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheDir, UploadConfig, UploadQueue};
use crate::config::{Config, CredentialsProvider};
use crate::cos::{CosClient, CosConfig, CosError};
use crate::fs::{Fs, FsConfig};
use crate::fuse::adapter::FuseAdapter;
use crate::store::{ObjectStore, StorageClass};

use super::adapters::{Control, QueueDrain};
use super::lifecycle::Assembled;

/// Builds every part of the mount, failing with a one-line reason (COS code and message for a
/// wrong key, a missing bucket or an unreachable endpoint).
pub async fn assemble(
    cfg: &Config,
    creds: Box<dyn CredentialsProvider>,
) -> Result<Assembled<impl fuser::Filesystem>, String> {
    let client = Arc::new(client(cfg, Arc::from(creds))?);
    prove_access(cfg, &client).await?;
    let cache = CacheDir::open(&cfg.cache_dir)
        .map_err(|e| format!("cache directory {}: {e}", cfg.cache_dir.display()))?;
    let store: Arc<dyn ObjectStore> = client.clone();
    let metrics = Arc::new(crate::store::metrics::Metrics::default());
    // The queue's transfers are counted, not bounded (parts are long transfers).
    let counted: Arc<dyn ObjectStore> =
        crate::store::DeadlineStore::counting(store.clone(), metrics.clone());
    let queue = UploadQueue::new(counted, cache.clone(), upload_config(cfg));
    // Names first: a rename or delete left half-done is finished before its uploads re-run.
    queue.recover_intents().await;
    match queue.recover().await {
        Ok(r) if r == Default::default() => {}
        Ok(r) => log::warn!(
            "previous daemon left uploads: {} re-queued, {} already in COS, {} kept in {} ({:?}), {} lost ({:?})",
            r.requeued,
            r.already_uploaded,
            r.recovered.len() + r.orphans.len(),
            cache.recovery_dir().display(),
            r.recovered.iter().chain(&r.orphans).collect::<Vec<_>>(),
            r.lost.len(),
            r.lost
        ),
        Err(e) => log::error!(
            "recovering pending uploads from {}: {e}",
            cfg.cache_dir.display()
        ),
    }
    // The queue is the fs core's `Uploads` (impl in fs/uploads.rs).
    // Every request of a filesystem call ends within the deadline (retries included).
    let bounded: Arc<dyn ObjectStore> =
        crate::store::DeadlineStore::new(store, cfg.op_timeout, metrics.clone());
    let mut fcfg = fs_config(cfg);
    fcfg.metrics = metrics.clone();
    let fs = Fs::new(bounded, fcfg, queue.clone());
    let kernel_fs = fs.clone();
    let on_mounted = Box::new(move |n: fuser::Notifier| {
        kernel_fs.attach_kernel(Arc::new(crate::fuse::reply::KernelNotifier(n)))
    });
    let filesystem = FuseAdapter::new(fs, tokio::runtime::Handle::current());
    Ok(Assembled {
        filesystem,
        control: Arc::new(Control::new(
            queue.clone(),
            client,
            cfg.prefix.clone(),
            metrics,
        )),
        uploads: Arc::new(QueueDrain(queue)),
        on_mounted,
    })
}

fn client(cfg: &Config, creds: Arc<dyn CredentialsProvider>) -> Result<CosClient, String> {
    // The provider is asked before every attempt, so STS keys in a passwd file are re-read
    // before they expire and a long mount keeps working.
    let cos = CosConfig::from_mount_config(cfg, creds)?;
    CosClient::new(cos).map_err(|e| format!("cannot create the COS client: {e}"))
}

/// One GET Bucket (max-keys 1) under the mounted prefix.
async fn prove_access(cfg: &Config, client: &CosClient) -> Result<(), String> {
    let opts = crate::cos::types::ListOptions {
        prefix: cfg.prefix.clone(),
        max_keys: Some(1),
        ..Default::default()
    };
    client
        .list_page(&opts)
        .await
        .map(|_| ())
        .map_err(|e| access_error(cfg, &e))
}

/// The one-line reason a mount fails when the first request does.
pub fn access_error(cfg: &Config, e: &CosError) -> String {
    if e.code == crate::cos::error::CODE_TLS {
        // The message already names the host and what is wrong with its certificate.
        format!("cannot connect to {}: {}", cfg.endpoint.base_url, e.message)
    } else if e.status == 0 {
        format!(
            "cannot connect to {} ({}: {})",
            cfg.endpoint.base_url, e.code, e.message
        )
    } else {
        let mut s = format!(
            "bucket {}: {}: {} (HTTP {}",
            cfg.bucket.as_str(),
            e.code,
            e.message,
            e.status
        );
        if !e.request_id.is_empty() {
            s.push_str(&format!(", request id {}", e.request_id));
        }
        s.push(')');
        s
    }
}

fn upload_config(cfg: &Config) -> UploadConfig {
    UploadConfig {
        part_size: cfg.upload.part_size,
        multipart_threshold: cfg.upload.multipart_threshold,
        part_parallelism: cfg.upload.parallel,
        max_concurrent_uploads: 4,
        // Failed uploads are retried forever (see cache::worker): 1 s doubling up to the cap.
        retry_initial: cfg.upload.retry_max_delay.min(Duration::from_secs(1)),
        retry_max_delay: cfg.upload.retry_max_delay,
    }
}

fn fs_config(cfg: &Config) -> FsConfig {
    FsConfig {
        prefix: cfg.prefix.clone(),
        uid: cfg.ownership.uid,
        gid: cfg.ownership.gid,
        umask: cfg.ownership.umask,
        // The kernel's own cache stays short (other clients may change the bucket); our cache
        // revalidates cheaply through listings (ETag + LastModified).
        entry_ttl: cfg.ttl.attr.min(Duration::from_secs(1)),
        meta_ttl: cfg.ttl.attr,
        negative_ttl: cfg.ttl.negative,
        // Reads keep `FsConfig`'s part size and parts ahead: sized for memory, not uploads.
        readahead_budget: cfg.read.readahead,
        read_block: cfg.read.block,
        read_cache_size: cfg.read.cache_size,
        read_cache_evict: cfg.read.evict,
        read_cache_dir: Some(cfg.cache_dir.join("read")),
        read_fill_max: cfg.read.fill_max,
        storage_class: cfg.storage_class.as_deref().map(StorageClass::parse),
        content_type: match cfg.content_type.as_deref() {
            None | Some("auto") => crate::fs::ContentType::Auto,
            Some("off") => crate::fs::ContentType::Off,
            Some(t) => crate::fs::ContentType::Fixed(t.to_string()),
        },
        acl: cfg.acl.clone(),
        presign_expiry: cfg.presign_expires,
        read_only: cfg.fuse.read_only,
        meta_dir: Some(cfg.cache_dir.clone()),
        open_revalidate: cfg.ttl.revalidate,
        list_ttl: cfg.ttl.list,
        op_timeout: cfg.op_timeout,
        close_wait: cfg.upload.close_wait,
        ..FsConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{options, HostDefaults};

    fn cfg(items: &[&str]) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let o = options::parse_items(items).unwrap();
        Config::build(
            "photos-1250000000:/docs",
            dir.path(),
            o,
            true,
            false,
            &HostDefaults::current(),
        )
        .unwrap()
    }

    #[test]
    fn access_errors_carry_the_cos_code_or_the_connect_failure() {
        let c = cfg(&["url=http://127.0.0.1:9"]);
        let mut e = CosError::client(404, "NoSuchBucket", "The specified bucket does not exist.");
        e.request_id = "req-1".into();
        let msg = access_error(&c, &e);
        assert_eq!(
            msg,
            "bucket photos-1250000000: NoSuchBucket: The specified bucket does not exist. (HTTP 404, request id req-1)"
        );
        let e = CosError::client(0, "ClientConnectError", "connection refused");
        let msg = access_error(&c, &e);
        assert!(
            msg.starts_with("cannot connect to http://127.0.0.1:9"),
            "{msg}"
        );
        let e = CosError::client(
            0,
            crate::cos::error::CODE_TLS,
            "TLS with 127.0.0.1 failed: certificate has expired",
        );
        assert_eq!(
            access_error(&c, &e),
            "cannot connect to http://127.0.0.1:9: TLS with 127.0.0.1 failed: certificate has expired"
        );
    }

    #[test]
    fn options_reach_the_fs_and_queue_configs() {
        let c = cfg(&[
            "url=http://127.0.0.1:9",
            "uid=7",
            "gid=8",
            "umask=077",
            "attr_ttl=30",
            "neg_ttl=2",
            "part_size=4M",
            "parallel=3",
            "multipart_threshold=5M",
            "retry_max_delay=0.5",
            "storage_class=STANDARD_IA",
            "acl=private",
            "presign_expires=9",
            "ro",
        ]);
        let f = fs_config(&c);
        assert_eq!(f.prefix, "docs/");
        assert_eq!((f.uid, f.gid, f.umask), (7, 8, 0o077));
        assert_eq!(f.meta_ttl, Duration::from_secs(30));
        assert_eq!(f.entry_ttl, Duration::from_secs(1));
        assert_eq!(f.negative_ttl, Duration::from_secs(2));
        assert_eq!(f.storage_class, Some(StorageClass::StandardIa));
        assert_eq!(f.acl.as_deref(), Some("private"));
        assert_eq!(f.presign_expiry, Duration::from_secs(9));
        assert!(f.read_only);
        let u = upload_config(&c);
        assert_eq!(u.part_size, 4 << 20);
        assert_eq!(u.part_parallelism, 3);
        assert_eq!(u.multipart_threshold, 5 << 20);
        assert_eq!(u.retry_max_delay, Duration::from_millis(500));
        assert_eq!(u.retry_initial, Duration::from_millis(500));
        let d = upload_config(&cfg(&["url=http://127.0.0.1:9"]));
        assert_eq!(
            (d.retry_initial, d.retry_max_delay),
            (Duration::from_secs(1), Duration::from_secs(300))
        );
    }
}
