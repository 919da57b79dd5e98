//! fsync hands off without an fsync of its own (`HandOff::Fsync`) and makes the data durable
//! locally whenever it ends without COS having it: an error, or the caller gone.

use tokio::sync::mpsc;

use super::*;

/// `ManualUploads` that records held hand-offs and `persist` calls, and whose `wait_key`
/// answers what the test says (or never, while `answer` is None).
struct Held {
    inner: Arc<ManualUploads>,
    /// Keys handed off as `Durability::Held`.
    held: mpsc::UnboundedSender<String>,
    /// Keys persisted.
    persisted: mpsc::UnboundedSender<String>,
    /// What `wait_key` returns; None: it never returns.
    answer: Option<crate::store::StoreError>,
}

#[async_trait::async_trait]
impl Uploads for Held {
    forward_uploads!(
        new_staging_file,
        pending,
        pending_under,
        update_pending_opts,
        discard
    );
    fn enqueue(&self, h: crate::fs::uploads::Handover) -> std::io::Result<u64> {
        if h.durability == crate::fs::uploads::Durability::Held {
            assert!(h.early.is_none());
            self.held.send(h.key.clone()).unwrap();
        }
        self.inner.enqueue(h)
    }
    fn persist(&self, key: &str) -> std::io::Result<()> {
        self.persisted.send(key.to_string()).unwrap();
        Ok(())
    }
    async fn wait_key(&self, _key: &str) -> Result<(), crate::store::StoreError> {
        match &self.answer {
            Some(e) => Err(e.clone()),
            None => std::future::pending().await,
        }
    }
}

/// A file "f" with unsynced bytes, on an Fs over `Held`; returns the fs, its ino and handle,
/// and the receivers of held keys and persisted keys.
async fn written(
    dir: &std::path::Path,
    answer: Option<crate::store::StoreError>,
) -> (
    Arc<Fs>,
    InodeNo,
    Fh,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedReceiver<String>,
) {
    let store: Arc<dyn ObjectStore> = MemoryStore::new();
    let (held, held_rx) = mpsc::unbounded_channel();
    let (persisted, persisted_rx) = mpsc::unbounded_channel();
    let uploads = Arc::new(Held {
        inner: ManualUploads::new(store.clone(), dir.to_path_buf()),
        held,
        persisted,
        answer,
    });
    let fs = Fs::new(store, FsConfig::default(), uploads);
    let (en, fh) = fs
        .create(ROOT_INO, os("f"), 0o644, libc::O_WRONLY, 1, 1)
        .await
        .unwrap();
    fs.write(en.attr.ino, fh, 0, b"must not be lost")
        .await
        .unwrap();
    (fs, en.attr.ino, fh, held_rx, persisted_rx)
}

#[tokio::test]
async fn an_fsync_whose_caller_is_gone_makes_the_data_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, ino, fh, mut held, mut persisted) = written(dir.path(), None).await;
    let f = fs.clone();
    let waiting = tokio::spawn(async move { f.fsync(ino, fh, false).await });
    assert_eq!(held.recv().await.as_deref(), Some("f"), "handed off held");
    assert!(
        persisted.try_recv().is_err(),
        "persisted while COS may still take it"
    );
    // The caller is interrupted while COS has not answered.
    waiting.abort();
    let got = tokio::time::timeout(Duration::from_secs(10), persisted.recv()).await;
    assert_eq!(got.unwrap().as_deref(), Some("f"));
}

#[tokio::test]
async fn an_fsync_that_fails_makes_the_data_durable_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let err = crate::store::StoreError::Io("the endpoint went away".into());
    let (fs, ino, fh, mut held, mut persisted) = written(dir.path(), Some(err)).await;
    assert!(fs.fsync(ino, fh, false).await.is_err());
    assert_eq!(held.try_recv().as_deref(), Ok("f"));
    assert_eq!(
        persisted.try_recv().as_deref(),
        Ok("f"),
        "not persisted before fsync returned"
    );
}
