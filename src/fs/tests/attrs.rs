//! Directories, symlinks, refusals, chmod/chown/utimes persistence and the mount prefix.

use super::*;

#[tokio::test]
async fn dirs_symlinks_and_refusals() {
    let e = env();
    let d = e.fs.mkdir(ROOT_INO, os("d"), 0o40750, 1, 2).await.unwrap();
    assert_eq!(
        e.store.meta("d/").unwrap().headers.user_meta["mode"],
        (libc::S_IFDIR | 0o750).to_string()
    );
    assert_eq!(
        e.fs.mkdir(ROOT_INO, os("d"), 0o755, 1, 2)
            .await
            .unwrap_err(),
        FsError::Exists
    );
    write_file(&e.fs, d.attr.ino, "f", b"1").await;
    e.uploads.upload_all().await.unwrap();
    assert_eq!(
        e.fs.rmdir(ROOT_INO, os("d")).await.unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    e.fs.unlink(d.attr.ino, os("f")).await.unwrap();
    e.fs.rmdir(ROOT_INO, os("d")).await.unwrap();
    e.fs.flush_deletes().await;
    assert!(e.store.keys().is_empty());
    let l =
        e.fs.symlink(ROOT_INO, os("l"), std::path::Path::new("../t a"), 1, 2)
            .await
            .unwrap();
    assert_eq!(l.attr.kind, FileKind::Symlink);
    assert_eq!(e.fs.readlink(l.attr.ino).await.unwrap(), b"../t a");
    assert_eq!(
        e.store.meta("l").unwrap().headers.user_meta["mode"],
        (libc::S_IFLNK | 0o777).to_string()
    );
    // A fresh mount sees the symlink from its metadata.
    let e2 = env_with(e.store.clone(), |_| {});
    assert_eq!(
        e2.fs.lookup(ROOT_INO, os("l")).await.unwrap().attr.kind,
        FileKind::Symlink
    );
    assert_eq!(
        e.fs.link(l.attr.ino, ROOT_INO, os("h"))
            .await
            .unwrap_err()
            .errno(),
        libc::EPERM
    );
    // Special files are empty objects whose mode says what they are.
    let fifo =
        e.fs.mknod(ROOT_INO, os("p"), libc::S_IFIFO | 0o644, 0, 1, 2)
            .await
            .unwrap();
    assert_eq!(fifo.attr.kind, FileKind::Fifo);
    let dev =
        e.fs.mknod(ROOT_INO, os("c"), libc::S_IFCHR | 0o600, 0x0103, 1, 2)
            .await
            .unwrap();
    assert_eq!(
        (dev.attr.kind, dev.attr.rdev),
        (FileKind::CharDevice, 0x0103)
    );
    let meta = e.store.head_object("c").await.unwrap();
    assert_eq!(
        meta.headers.user_meta.get("mode").map(String::as_str),
        Some((libc::S_IFCHR | 0o600).to_string().as_str())
    );
    assert_eq!(
        meta.headers.user_meta.get("rdev").map(String::as_str),
        Some("259")
    );
    let long = "n".repeat(256);
    assert_eq!(
        e.fs.lookup(ROOT_INO, os(&long)).await.unwrap_err().errno(),
        libc::ENAMETOOLONG
    );
    let deep = "n".repeat(250);
    let mut parent = ROOT_INO;
    for _ in 0..3 {
        parent =
            e.fs.mkdir(parent, os(&deep), 0o755, 1, 2)
                .await
                .unwrap()
                .attr
                .ino;
    }
    let err =
        e.fs.create(parent, os(&deep), 0o644, libc::O_WRONLY, 1, 2)
            .await
            .unwrap_err();
    assert_eq!(err.errno(), libc::ENAMETOOLONG);
    let bad = OsString::from("nul\0name");
    assert_eq!(
        e.fs.create(ROOT_INO, &bad, 0o644, 0, 1, 2)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    // Control characters other than NUL are valid names (COS keys may hold them).
    let (ent, fh) =
        e.fs.create(ROOT_INO, &OsString::from("cr\r"), 0o644, 0, 1, 2)
            .await
            .unwrap();
    e.fs.release(ent.attr.ino, fh).await.unwrap();
    assert!(e.fs.statfs(ROOT_INO).await.unwrap().bavail > 1 << 30);
}

#[tokio::test]
async fn chmod_chown_utimes_persist_pending_or_by_copy() {
    let e = env();
    let ino = write_file(&e.fs, ROOT_INO, "f", b"abc").await;
    // Pending: folded into the upload, no copy.
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let set = SetAttr {
        mode: Some(0o600),
        mtime: Some(SetTime::At(t)),
        ..Default::default()
    };
    let a = e.fs.setattr(ino, set, None).await.unwrap();
    assert_eq!((a.perm, a.mtime), (0o600, t));
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.count("PutObjectCopy"), 0);
    assert_eq!(
        e.store.meta("f").unwrap().headers.user_meta["mtime"],
        "1500000000"
    );
    // In COS: copy in place with Replaced.
    let a =
        e.fs.setattr(
            ino,
            SetAttr {
                uid: Some(42),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.uid, 42);
    assert_eq!(e.store.count("PutObjectCopy"), 1);
    let m = e.store.meta("f").unwrap();
    assert_eq!(m.headers.user_meta["uid"], "42");
    assert_eq!(
        m.headers.user_meta["mode"],
        (libc::S_IFREG | 0o600).to_string()
    );
    // A listing afterwards keeps the attributes (no HEAD).
    e.store.reset_counts();
    names(&e.fs, ROOT_INO).await;
    let a = e.fs.lookup(ROOT_INO, os("f")).await.unwrap().attr;
    assert_eq!((a.uid, a.perm, a.mtime), (42, 0o600, t));
    assert_eq!(e.store.count("HeadObject"), 0);
    // Defaults for objects without metadata.
    e.store
        .insert("plain", b"x".to_vec(), &PutOptions::default());
    let a = e.fs.lookup(ROOT_INO, os("plain")).await.unwrap().attr;
    assert_eq!((a.perm, a.uid, a.gid), (0o644, 1000, 1000));
}

#[tokio::test]
async fn mount_prefix_confines_keys() {
    let store = MemoryStore::new();
    store.insert("other", b"x".to_vec(), &PutOptions::default());
    store.insert("p/q/in", b"y".to_vec(), &PutOptions::default());
    let e = env_with(store, |c| c.prefix = "p/q/".into());
    assert_eq!(names(&e.fs, ROOT_INO).await, ["in"]);
    write_file(&e.fs, ROOT_INO, "new", b"z").await;
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.get("p/q/new").unwrap(), &b"z"[..]);
}

#[tokio::test]
async fn a_directory_this_mount_made_counts_its_subdirectories_in_nlink() {
    let e = env_with(MemoryStore::new(), |_| {});
    let d = e.fs.mkdir(ROOT_INO, os("d"), 0o755, 1, 2).await.unwrap();
    let d = d.attr.ino;
    let other = e.fs.mkdir(ROOT_INO, os("o"), 0o755, 1, 2).await.unwrap();
    let other = other.attr.ino;
    e.fs.mkdir(d, os("a"), 0o755, 1, 2).await.unwrap();
    e.fs.mkdir(d, os("b"), 0o755, 1, 2).await.unwrap();
    e.fs.mknod(d, os("p"), libc::S_IFIFO | 0o644, 0, 1, 2)
        .await
        .unwrap();
    assert_eq!(e.fs.getattr(d).await.unwrap().nlink, 4, "2 + a + b");
    e.fs.rename(d, os("a"), other, os("a"), 0).await.unwrap();
    assert_eq!(e.fs.getattr(d).await.unwrap().nlink, 3);
    assert_eq!(e.fs.getattr(other).await.unwrap().nlink, 3);
    e.fs.rmdir(d, os("b")).await.unwrap();
    assert_eq!(e.fs.getattr(d).await.unwrap().nlink, 2);
    // A directory the mount neither made nor listed: 2, as s3fs reports (no listing per stat).
    e.store
        .insert("x/y/z", b"1".to_vec(), &PutOptions::default());
    let x = e.fs.lookup(ROOT_INO, os("x")).await.unwrap().attr;
    assert_eq!(x.nlink, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_answered_before_a_chmod_does_not_undo_it_here_or_after_a_remount() {
    // `stat` and `chmod` of one file at once: the stat's HEAD reads the object, the chmod
    // copies it in place (same ETag: the content did not change), and the HEAD's answer
    // arrives last. It must not stand for the file's metadata, now or in a later mount.
    let meta = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let with_meta = |c: &mut FsConfig| {
        c.meta_dir = Some(meta.path().to_path_buf());
        // Every getattr revalidates (one HEAD).
        c.meta_ttl = Duration::ZERO;
    };
    let e = env_with(store.clone(), with_meta);
    let ino = write_file(&e.fs, ROOT_INO, "f", b"data").await;
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.fs.getattr(ino).await.unwrap().perm, 0o644);

    let gate = store.answer_gate("HeadObject", 1);
    let fs = e.fs.clone();
    let stat = tokio::spawn(async move { fs.getattr(ino).await });
    assert!(gate.wait_for_arrivals(1).await, "the stat's HEAD was sent");
    let set = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    assert_eq!(e.fs.setattr(ino, set, None).await.unwrap().perm, 0o600);
    gate.release();
    assert_eq!(
        stat.await.unwrap().unwrap().perm,
        0o600,
        "the stat's answer"
    );
    assert_eq!(e.fs.getattr(ino).await.unwrap().perm, 0o600, "a later stat");

    // A new mount with the same metadata cache: the listing's ETag is known, no HEAD.
    let e2 = env_with(store.clone(), |c| {
        c.meta_dir = Some(meta.path().to_path_buf());
    });
    let heads = store.count("HeadObject");
    assert_eq!(names(&e2.fs, ROOT_INO).await, vec!["f".to_string()]);
    let a = e2.fs.lookup(ROOT_INO, os("f")).await.unwrap().attr;
    assert_eq!(a.perm, 0o600, "after a remount");
    assert_eq!(store.count("HeadObject"), heads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_heads_answer_from_before_a_chmod_is_not_kept_for_later_mounts() {
    // `ls -l` learns the metadata of a file another client replaced (one HEAD) while a chmod
    // of it copies it in place: the HEAD's older answer must not be what the persistent
    // metadata cache keeps for the object's ETag.
    let meta = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let with_meta = |c: &mut FsConfig| c.meta_dir = Some(meta.path().to_path_buf());
    let e = env_with(store.clone(), with_meta);
    let ino = write_file(&e.fs, ROOT_INO, "f", b"data").await;
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.fs.getattr(ino).await.unwrap().perm, 0o644);
    let mut opts = PutOptions::default();
    opts.headers
        .user_meta
        .insert("mode".into(), (libc::S_IFREG | 0o644).to_string());
    store.insert("f", &b"other"[..], &opts);

    let gate = store.answer_gate("HeadObject", 1);
    let fs = e.fs.clone();
    let ls = tokio::spawn(async move { names(&fs, ROOT_INO).await });
    assert!(
        gate.wait_for_arrivals(1).await,
        "the listing's HEAD was sent"
    );
    let set = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    assert_eq!(e.fs.setattr(ino, set, None).await.unwrap().perm, 0o600);
    gate.release();
    assert_eq!(ls.await.unwrap(), vec!["f".to_string()]);

    let e2 = env_with(store.clone(), with_meta);
    let heads = store.count("HeadObject");
    assert_eq!(names(&e2.fs, ROOT_INO).await, vec!["f".to_string()]);
    let a = e2.fs.lookup(ROOT_INO, os("f")).await.unwrap().attr;
    assert_eq!((a.perm, a.size), (0o600, 5), "after a remount");
    assert_eq!(store.count("HeadObject"), heads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chmod_is_not_lost_to_a_rename_of_the_directory_above() {
    // chmod of a/sub reads its key, then HEADs it; a rename of a/ meanwhile must wait, or its
    // copy carries the old mode to b/sub/ and the chmod lands on the old key.
    let e = env();
    let a = e.fs.mkdir(ROOT_INO, os("a"), 0o755, 1, 2).await.unwrap();
    let sub =
        e.fs.mkdir(a.attr.ino, os("sub"), 0o755, 1, 2)
            .await
            .unwrap();
    let gate = e.store.answer_gate("HeadObject", 1);
    let fs = e.fs.clone();
    let ino = sub.attr.ino;
    let chmod = tokio::spawn(async move {
        let set = SetAttr {
            mode: Some(0o700),
            ..Default::default()
        };
        fs.setattr(ino, set, None).await
    });
    assert!(gate.wait_for_arrivals(1).await, "the chmod's HEAD was sent");
    let mut rename = Box::pin(e.fs.rename(ROOT_INO, os("a"), ROOT_INO, os("b"), 0));
    for _ in 0..20 {
        assert!(
            futures::poll!(&mut rename).is_pending(),
            "the rename ran while the chmod was between its key and its copy"
        );
        tokio::task::yield_now().await;
    }
    gate.release();
    assert_eq!(chmod.await.unwrap().unwrap().perm, 0o700);
    rename.await.unwrap();
    e.fs.flush_deletes().await;
    let mode = e.store.meta("b/sub/").unwrap().headers.user_meta["mode"].clone();
    assert_eq!(
        mode,
        (libc::S_IFDIR | 0o700).to_string(),
        "the moved marker"
    );
    assert!(e.store.meta("a/sub/").is_none(), "the old key is gone");
}

#[tokio::test]
async fn a_directory_renamed_where_another_was_shows_its_own_mode() {
    // COS lists directories without ETags, so a marker's known metadata is used whatever its
    // ETag: a removed directory's must go with it, and a renamed one's must move with it.
    let e = env();
    let t = e.fs.mkdir(ROOT_INO, os("t"), 0o755, 1, 2).await.unwrap();
    e.fs.mkdir(t.attr.ino, os("x"), 0o700, 1, 2).await.unwrap();
    let s = e.fs.mkdir(ROOT_INO, os("s"), 0o755, 1, 2).await.unwrap();
    e.fs.mkdir(s.attr.ino, os("x"), 0o750, 1, 2).await.unwrap();
    e.fs.rmdir(t.attr.ino, os("x")).await.unwrap();
    e.fs.rmdir(ROOT_INO, os("t")).await.unwrap();
    e.fs.rename(ROOT_INO, os("s"), ROOT_INO, os("t"), 0)
        .await
        .unwrap();
    e.fs.flush_deletes().await;
    let t = e.fs.lookup(ROOT_INO, os("t")).await.unwrap();
    let heads = e.store.count("HeadObject");
    assert_eq!(names(&e.fs, t.attr.ino).await, vec!["x".to_string()]);
    let x = e.fs.lookup(t.attr.ino, os("x")).await.unwrap().attr;
    assert_eq!(x.perm, 0o750, "the moved directory's mode");
    assert_eq!(e.store.count("HeadObject"), heads, "known without a HEAD");
    assert_eq!(
        e.store.meta("t/x/").unwrap().headers.user_meta["mode"],
        (libc::S_IFDIR | 0o750).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inode_whose_name_became_a_directory_meanwhile_is_gone_not_a_directory() {
    // getattr of file f reads its path, then HEADs it; meanwhile f is removed and a directory
    // f made. Answering with the directory's attributes for the file's inode would make the
    // kernel mark the inode bad (EIO for whoever still uses it).
    let e = env_with(MemoryStore::new(), |c| c.meta_ttl = Duration::ZERO);
    let ino = write_file(&e.fs, ROOT_INO, "f", b"data").await;
    e.uploads.upload_all().await.unwrap();
    e.fs.getattr(ino).await.unwrap();
    let gate = e.store.answer_gate("HeadObject", 1);
    let fs = e.fs.clone();
    let stat = tokio::spawn(async move { fs.getattr(ino).await });
    assert!(
        gate.wait_for_arrivals(1).await,
        "the getattr's HEAD was sent"
    );
    e.fs.unlink(ROOT_INO, os("f")).await.unwrap();
    let d = e.fs.mkdir(ROOT_INO, os("f"), 0o755, 1, 2).await.unwrap();
    gate.release();
    match stat.await.unwrap() {
        Ok(a) => assert_eq!(a.kind, FileKind::File, "the file's inode answered as {a:?}"),
        Err(err) => assert_eq!(err, FsError::NotFound),
    }
    assert_eq!(e.fs.getattr(d.attr.ino).await.unwrap().kind, FileKind::Dir);
}
