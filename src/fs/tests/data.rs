//! Staged writes, local reads of pending files, read-ahead and archived reads.

use super::*;

#[tokio::test]
async fn writes_are_staged_served_locally_and_uploaded_on_fsync() {
    let e = env();
    let (en, fh) =
        e.fs.create(ROOT_INO, os("f"), 0o100600, libc::O_RDWR, 7, 8)
            .await
            .unwrap();
    let ino = en.attr.ino;
    e.fs.write(ino, fh, 0, b"hello world").await.unwrap();
    assert_eq!(e.fs.getattr(ino).await.unwrap().size, 11);
    assert_eq!(e.fs.lookup(ROOT_INO, os("f")).await.unwrap().attr.size, 11);
    assert_eq!(names(&e.fs, ROOT_INO).await, ["f"]);
    e.fs.write(ino, fh, 6, b"WORLD!").await.unwrap();
    assert_eq!(
        &e.fs.read(ino, fh, 0, 100).await.unwrap()[..],
        b"hello WORLD!"
    );
    assert_eq!(e.store.count("PutObject"), 0);
    e.fs.fsync(ino, fh, false).await.unwrap();
    assert_eq!(e.store.get("f").unwrap(), &b"hello WORLD!"[..]);
    let m = e.store.meta("f").unwrap();
    assert_eq!(
        m.headers.user_meta["mode"],
        (libc::S_IFREG | 0o600).to_string()
    );
    assert_eq!(m.headers.user_meta["uid"], "7");
    e.fs.release(ino, fh).await.unwrap();
    assert_eq!(e.uploads.pending_count(), 0);
    // Reopen: append, overwrite in the middle, truncate up and down.
    let fh =
        e.fs.open(ino, libc::O_WRONLY | libc::O_APPEND)
            .await
            .unwrap();
    e.fs.write(ino, fh, 0, b"++").await.unwrap();
    e.fs.release(ino, fh).await.unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"hello WORLD!++");
    e.uploads.upload_all().await.unwrap();
    let fh = e.fs.open(ino, libc::O_RDWR).await.unwrap();
    e.fs.write(ino, fh, 2, b"LL").await.unwrap();
    e.fs.setattr(
        ino,
        SetAttr {
            size: Some(20),
            ..Default::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    e.fs.release(ino, fh).await.unwrap();
    let mut want = b"heLLo WORLD!++".to_vec();
    want.resize(20, 0);
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), want);
    e.fs.setattr(
        ino,
        SetAttr {
            size: Some(3),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"heL");
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.get("f").unwrap(), &b"heL"[..]);
    // O_TRUNC of an existing object does not download it.
    e.store.reset_counts();
    let fh =
        e.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC)
            .await
            .unwrap();
    e.fs.release(ino, fh).await.unwrap();
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.count("GetObject"), 0);
    assert_eq!(e.store.get("f").unwrap().len(), 0);
}

#[tokio::test]
async fn sequential_reads_fetch_ahead_in_parts() {
    let e = env();
    let data: Vec<u8> = (0..100u8).collect();
    e.store.insert("big", data.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "big").await.unwrap();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        let b = e.fs.read(ino, fh, got.len() as i64, 8).await.unwrap();
        assert!(!b.is_empty());
        got.extend_from_slice(&b);
    }
    assert_eq!(got, data);
    // 100 bytes in 8-byte parts = 13 GETs, each part fetched once despite read-ahead.
    assert_eq!(e.store.count("GetObject"), 13);
    assert_eq!(&e.fs.read(ino, fh, 50, 4).await.unwrap()[..], &data[50..54]);
    assert!(e.fs.read(ino, fh, 100, 4).await.unwrap().is_empty());
}

#[tokio::test]
async fn archived_read_fails_with_documented_errno() {
    let e = env();
    let opts = PutOptions {
        storage_class: Some(StorageClass::Archive),
        ..Default::default()
    };
    e.store.insert("cold", b"data".to_vec(), &opts);
    let ino = resolve(&e.fs, "cold").await.unwrap();
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EACCES
    );
    e.store
        .restore_object("cold", 1, crate::store::RestoreTier::Expedited)
        .await
        .unwrap();
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EAGAIN
    );
    e.store.complete_restore("cold");
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"data");
}
