//! Handles: flush before write, readers of unreleased changes, and pending copies that vanish.

use super::*;

#[tokio::test]
async fn flush_before_any_write_does_not_upload_twice() {
    let e = env();
    // A shell's `echo x > f`: open, dup2 + close (flush), write, close (flush), release.
    let (en, fh) =
        e.fs.create(
            ROOT_INO,
            os("f"),
            0o644,
            libc::O_WRONLY | libc::O_TRUNC,
            1,
            1,
        )
        .await
        .unwrap();
    let ino = en.attr.ino;
    e.fs.flush(ino, fh).await.unwrap();
    assert_eq!(e.uploads.pending_count(), 0);
    assert_eq!(
        e.fs.lookup(ROOT_INO, os("f")).await.unwrap().attr.size,
        0,
        "still visible"
    );
    e.fs.write(ino, fh, 0, b"x\n").await.unwrap();
    e.fs.flush(ino, fh).await.unwrap();
    e.fs.release(ino, fh).await.unwrap();
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.count("PutObject"), 1);
    // An empty new file is still created at release.
    let (en, fh) =
        e.fs.create(ROOT_INO, os("empty"), 0o644, libc::O_WRONLY, 1, 1)
            .await
            .unwrap();
    e.fs.flush(en.attr.ino, fh).await.unwrap();
    e.fs.release(en.attr.ino, fh).await.unwrap();
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.get("empty").map(|b| b.len()), Some(0));
}

#[tokio::test]
async fn copy_in_place_keeps_the_acl() {
    let e = env();
    let ino = write_file(&e.fs, ROOT_INO, "f", b"x").await;
    e.fs.setxattr(ino, os("user.cos.acl"), b"public-read", 0)
        .await
        .unwrap();
    e.fs.setattr(
        ino,
        SetAttr {
            mode: Some(0o600),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.acl").await.unwrap(),
        "public-read"
    );
    let grant = "id=\"qcs::cam::uin/1:uin/11\"";
    e.fs.setxattr(ino, os("user.cos.grant-read"), grant.as_bytes(), 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.cos.meta.k"), b"v", 0)
        .await
        .unwrap();
    assert!(getx(&e.fs, ino, "user.cos.grant-read")
        .await
        .unwrap()
        .contains("uin/11"));
}

#[tokio::test]
async fn mtimes_survive_uploads_copies_renames_and_listings() {
    let e = env();
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_150_000_000);
    let set = SetAttr {
        mtime: Some(SetTime::At(t)),
        ..Default::default()
    };
    // Uploaded first, then utimes (copy in place), then renamed (copy + delete).
    let ino = write_file(&e.fs, ROOT_INO, ".tmp1", b"abc").await;
    e.uploads.upload_all().await.unwrap();
    e.fs.setattr(ino, set.clone(), None).await.unwrap();
    e.fs.rename(ROOT_INO, os(".tmp1"), ROOT_INO, os("one"), 0)
        .await
        .unwrap();
    // Pending: utimes folded in, then renamed (re-targeted), uploaded later.
    let ino = write_file(&e.fs, ROOT_INO, ".tmp2", b"defg").await;
    e.fs.setattr(ino, set, None).await.unwrap();
    e.fs.rename(ROOT_INO, os(".tmp2"), ROOT_INO, os("two"), 0)
        .await
        .unwrap();
    e.fs.lookup(ROOT_INO, os("two")).await.unwrap();
    e.uploads.upload_all().await.unwrap();
    e.store.reset_counts();
    names(&e.fs, ROOT_INO).await;
    for n in ["one", "two"] {
        assert_eq!(
            e.fs.lookup(ROOT_INO, os(n)).await.unwrap().attr.mtime,
            t,
            "{n}"
        );
    }
    assert_eq!(e.store.count("HeadObject"), 0);
}

#[tokio::test]
async fn readers_see_changes_of_a_handle_not_yet_released() {
    let e = env();
    let ino = write_file(&e.fs, ROOT_INO, "f", b"old content").await;
    e.uploads.upload_all().await.unwrap();
    let w =
        e.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC)
            .await
            .unwrap();
    e.fs.flush(ino, w).await.unwrap(); // nothing written: stays local
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"");
    let fh = e.fs.open(ino, libc::O_RDWR).await.unwrap();
    e.fs.setattr(
        ino,
        SetAttr {
            size: Some(3),
            ..Default::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    e.fs.release(ino, w).await.unwrap();
    e.fs.flush(ino, fh).await.unwrap(); // ftruncate is published by close
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), [0u8; 3]); // the file was empty (O_TRUNC), then extended
    e.fs.release(ino, fh).await.unwrap();
}

/// `ManualUploads` whose next `pending` look-up answers with a copy that is already gone: the
/// upload of that copy finished (its staging file deleted) right after the look-up, before the
/// fs opened it.
struct VanishingPending {
    inner: Arc<ManualUploads>,
    /// The last copy handed off.
    last: std::sync::Mutex<Option<PendingUpload>>,
    /// Answered once by `pending`, then cleared.
    ghost: std::sync::Mutex<Option<PendingUpload>>,
}

#[async_trait::async_trait]
impl Uploads for VanishingPending {
    forward_uploads!(
        new_staging_file,
        pending_under,
        update_pending_opts,
        discard
    );
    fn enqueue(&self, h: crate::fs::uploads::Handover) -> std::io::Result<u64> {
        *self.last.lock().unwrap() = Some(PendingUpload {
            path: h.file.clone(),
            size: h.size,
            opts: h.opts.clone(),
        });
        self.inner.enqueue(h)
    }
    async fn wait_key(&self, key: &str) -> Result<(), crate::store::StoreError> {
        self.inner.wait_key(key).await
    }
    async fn wait_landed(&self, key: &str) -> Result<(), crate::store::StoreError> {
        self.inner.wait_landed(key).await
    }
    fn pending(&self, key: &str) -> Option<PendingUpload> {
        let ghost = self.ghost.lock().unwrap().take();
        ghost.or_else(|| self.inner.pending(key))
    }
}

#[tokio::test]
async fn a_write_after_an_early_flush_survives_the_upload_finishing_meanwhile() {
    // A program started by the writer closes its inherited descriptor mid-write (a FLUSH): the
    // first part goes to the queue, and the next write starts a new staging copy from that
    // pending copy. When its upload finishes between the look-up and the copy, the data is in
    // COS: the write must go on from there, neither fail nor start from nothing.
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let uploads = Arc::new(VanishingPending {
        inner: ManualUploads::new(dynstore.clone(), dir.path().to_path_buf()),
        last: Default::default(),
        ghost: Default::default(),
    });
    let fs = Fs::new(dynstore, FsConfig::default(), uploads.clone());
    let (en, fh) = fs
        .create(ROOT_INO, os("f"), 0o644, libc::O_WRONLY, 1, 1)
        .await
        .unwrap();
    let ino = en.attr.ino;
    fs.write(ino, fh, 0, b"hello ").await.unwrap();
    fs.flush(ino, fh).await.unwrap(); // waits for the small upload (close_wait)
    assert_eq!(store.get("f").as_deref(), Some(&b"hello "[..]));
    let gone = uploads.last.lock().unwrap().take().unwrap();
    assert!(!gone.path.exists(), "the uploaded copy was deleted");
    *uploads.ghost.lock().unwrap() = Some(gone);
    fs.write(ino, fh, 6, b"world").await.unwrap();
    fs.release(ino, fh).await.unwrap();
    uploads.inner.upload_all().await.unwrap();
    assert_eq!(store.get("f").as_deref(), Some(&b"hello world"[..]));
    assert!(
        uploads.ghost.lock().unwrap().is_none(),
        "the ghost was looked up"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "staging files left: {left:?}");
}

#[tokio::test]
async fn a_file_handed_off_then_unlinked_while_open_keeps_its_bytes() {
    // A descriptor inherited by a child process and closed at its exec sends a FLUSH: the
    // file is handed off, and then unlinked while this handle is still open.
    let e = env();
    let (en, fh) =
        e.fs.create(ROOT_INO, os("f"), 0o644, libc::O_RDWR, 1, 1)
            .await
            .unwrap();
    let ino = en.attr.ino;
    e.fs.write(ino, fh, 0, b"before, ").await.unwrap();
    e.fs.flush(ino, fh).await.unwrap();
    e.fs.unlink(ROOT_INO, os("f")).await.unwrap();
    e.fs.write(ino, fh, 8, b"after").await.unwrap();
    assert_eq!(
        &e.fs.read(ino, fh, 0, 100).await.unwrap()[..],
        b"before, after"
    );
    assert_eq!(e.fs.getattr(ino).await.unwrap().nlink, 0);
    e.fs.release(ino, fh).await.unwrap();
    e.uploads.upload_all().await.unwrap();
    e.fs.flush_deletes().await;
    assert_eq!(e.store.get("f"), None, "never uploaded under its old name");
}
