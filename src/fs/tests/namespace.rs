//! Listing, rm -r and rename against MemoryStore, with request counts.

use super::*;

#[tokio::test]
async fn ls_l_of_5000_keys_is_5_list_pages_cold_heads_warm_none() {
    let store = MemoryStore::new();
    for i in 0..5000 {
        store.insert(
            &format!("big/f{i:05}"),
            vec![1u8; i % 7],
            &PutOptions::default(),
        );
    }
    let e = env_with(store, |_| {});
    let dir = resolve(&e.fs, "big").await.unwrap();
    e.store.reset_counts();
    let fh = e.fs.opendir(dir, 0).await.unwrap();
    let mut entries: Vec<DirEntry> = Vec::new();
    e.fs.readdir(dir, fh, 0, &mut entries).await.unwrap();
    assert_eq!(entries.len(), 5002);
    for d in &entries[2..] {
        let a = e.fs.lookup(dir, &d.name).await.unwrap().attr;
        assert_eq!(a.kind, FileKind::File);
    }
    let sz = e.fs.lookup(dir, os("f00006")).await.unwrap().attr.size;
    assert_eq!(sz, 6);
    assert_eq!(e.store.count("GetBucket"), 5);
    // Cold: these objects' metadata is unknown, so each is HEADed once, never guessed.
    assert!(e.store.count("HeadObject") <= 5000);
    // Warm (same ETags): list pages only.
    e.store.reset_counts();
    let fh = e.fs.opendir(dir, 0).await.unwrap();
    let mut again: Vec<DirEntry> = Vec::new();
    e.fs.readdir(dir, fh, 0, &mut again).await.unwrap();
    assert_eq!(again.len(), 5002);
    assert_eq!(e.store.count("GetBucket"), 5);
    assert_eq!(e.store.count("HeadObject"), 0);
}

#[tokio::test]
async fn readdir_offsets_are_stable_and_resume() {
    let e = env();
    for n in ["a", "b", "c", "d/x", "e/"] {
        e.store.insert(n, b"z".to_vec(), &PutOptions::default());
    }
    let fh = e.fs.opendir(ROOT_INO, 0).await.unwrap();
    struct Small(Vec<DirEntry>);
    impl DirSink for Small {
        fn add(&mut self, entry: DirEntry) -> bool {
            if self.0.len() == 3 {
                return true;
            }
            self.0.push(entry);
            false
        }
    }
    let mut first = Small(Vec::new());
    e.fs.readdir(ROOT_INO, fh, 0, &mut first).await.unwrap();
    // Something appears in COS meanwhile: the open snapshot does not change.
    e.store
        .insert("0new", b"z".to_vec(), &PutOptions::default());
    let mut rest: Vec<DirEntry> = Vec::new();
    e.fs.readdir(ROOT_INO, fh, first.0.last().unwrap().offset, &mut rest)
        .await
        .unwrap();
    let all: Vec<String> = first
        .0
        .iter()
        .chain(rest.iter())
        .map(|d| d.name.to_string_lossy().into())
        .collect();
    assert_eq!(all, [".", "..", "a", "b", "c", "d", "e"]);
    let kinds: Vec<FileKind> = rest.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [FileKind::File, FileKind::File, FileKind::Dir, FileKind::Dir]
    );
}

/// `rm -r` as fts does it: depth first, unlink files, rmdir on the way up.
fn rm_r<'a>(fs: &'a Fs, parent: InodeNo, name: &'a str) -> futures::future::BoxFuture<'a, ()> {
    Box::pin(async move {
        let e = fs.lookup(parent, os(name)).await.unwrap();
        if e.attr.kind == FileKind::Dir {
            for n in names(fs, e.attr.ino).await {
                rm_r(fs, e.attr.ino, &n).await;
            }
            fs.rmdir(parent, os(name)).await.unwrap();
        } else {
            fs.unlink(parent, os(name)).await.unwrap();
        }
    })
}

#[tokio::test]
async fn rm_r_of_1500_files_uses_two_delete_multiple() {
    let store = MemoryStore::new();
    for i in 0..1500 {
        store.insert(
            &format!("tree/d{}/f{i}", i % 10),
            b"x".to_vec(),
            &PutOptions::default(),
        );
    }
    store.insert("tree/d3/", Vec::new(), &PutOptions::default());
    store.insert("keep", b"k".to_vec(), &PutOptions::default());
    let e = env_with(store, |_| {});
    rm_r(&e.fs, ROOT_INO, "tree").await;
    // Gone from COS when rm -r returns, in two batches and no single DELETEs.
    assert_eq!(e.store.keys(), ["keep"]);
    assert_eq!(e.store.count("DeleteMultipleObjects"), 2);
    assert_eq!(e.store.count("DeleteObject"), 0);
    assert_eq!(
        e.fs.lookup(ROOT_INO, os("tree")).await.unwrap_err(),
        FsError::NotFound
    );
    assert_eq!(names(&e.fs, ROOT_INO).await, ["keep"]);
}

#[tokio::test]
async fn rmdir_refuses_non_empty_and_hides_removed_dirs() {
    let store = MemoryStore::new();
    for i in 0..30 {
        store.insert(&format!("t/f{i}"), b"x".to_vec(), &PutOptions::default());
    }
    let e = env_with(store, |_| {});
    let t = resolve(&e.fs, "t").await.unwrap();
    e.fs.unlink(t, os("f0")).await.unwrap();
    assert_eq!(
        e.fs.rmdir(ROOT_INO, os("t")).await.unwrap_err(),
        FsError::NotEmpty
    );
    for i in 1..30 {
        e.fs.unlink(t, os(&format!("f{i}"))).await.unwrap();
    }
    e.fs.rmdir(ROOT_INO, os("t")).await.unwrap();
    assert!(
        names(&e.fs, ROOT_INO).await.is_empty(),
        "removed dir hidden before the flush"
    );
    e.fs.shutdown().await;
    assert!(e.store.keys().is_empty());
    assert_eq!(e.store.count("DeleteMultipleObjects"), 1);
    // The name can be used again.
    e.fs.mkdir(ROOT_INO, os("t"), 0o755, 1, 1).await.unwrap();
    assert_eq!(names(&e.fs, ROOT_INO).await, ["t"]);
}

#[tokio::test]
async fn delete_batch_flushes_after_idle_delay() {
    let e = env_with(MemoryStore::new(), |c| {
        c.delete_delay = Duration::from_millis(10)
    });
    e.store.insert("f", b"x".to_vec(), &PutOptions::default());
    e.fs.lookup(ROOT_INO, os("f")).await.unwrap();
    e.fs.unlink(ROOT_INO, os("f")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !e.store.keys().is_empty() && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(e.store.keys().is_empty());
}

#[tokio::test]
async fn rename_dir_of_200_files_copies_and_batch_deletes() {
    let store = MemoryStore::new();
    for i in 0..200 {
        store.insert(
            &format!("src/sub/f{i}"),
            format!("{i}").into_bytes(),
            &PutOptions::default(),
        );
    }
    store.insert("src/", Vec::new(), &PutOptions::default());
    let e = env_with(store, |_| {});
    resolve(&e.fs, "src").await.unwrap();
    e.store.reset_counts();
    e.fs.rename(ROOT_INO, os("src"), ROOT_INO, os("dst"), 0)
        .await
        .unwrap();
    assert_eq!(e.store.count("PutObjectCopy"), 201);
    assert_eq!(e.store.count("DeleteMultipleObjects"), 1);
    assert_eq!(e.store.count("DeleteObject"), 0);
    assert!(e.store.keys().iter().all(|k| k.starts_with("dst/")));
    let f = resolve(&e.fs, "dst/sub/f42").await.unwrap();
    assert_eq!(read_all(&e.fs, f).await.unwrap(), b"42");
    assert_eq!(resolve(&e.fs, "src").await.unwrap_err(), FsError::NotFound);
}

#[tokio::test]
async fn rename_file_replaces_and_follows_pending_upload() {
    let e = env();
    write_file(&e.fs, ROOT_INO, "a", b"new").await;
    write_file(&e.fs, ROOT_INO, "b", b"old").await;
    e.uploads.upload_all().await.unwrap();
    write_file(&e.fs, ROOT_INO, "a", b"newer").await; // pending again
    e.store.reset_counts();
    e.fs.rename(ROOT_INO, os("a"), ROOT_INO, os("b"), 0)
        .await
        .unwrap();
    assert_eq!(
        e.store.count("PutObjectCopy"),
        0,
        "queued upload re-targeted, not copied"
    );
    // The old key leaves COS with the (journaled) delete batch; the mount hides it at once.
    assert_eq!(resolve(&e.fs, "a").await.unwrap_err(), FsError::NotFound);
    e.fs.flush_deletes().await;
    assert_eq!(e.store.get("a"), None);
    let b = resolve(&e.fs, "b").await.unwrap();
    assert_eq!(read_all(&e.fs, b).await.unwrap(), b"newer");
    e.uploads.upload_all().await.unwrap();
    assert_eq!(e.store.get("b").unwrap(), &b"newer"[..]);
    assert_eq!(
        e.fs.rename(ROOT_INO, os("b"), ROOT_INO, os("b2"), libc::RENAME_EXCHANGE)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
}

#[tokio::test]
async fn the_kernel_keeps_its_directory_cache_only_while_the_listing_it_got_is_current() {
    let e = env_with(MemoryStore::new(), |c| {
        c.list_ttl = Duration::from_secs(600)
    });
    e.store
        .insert("d/one", b"1".to_vec(), &PutOptions::default());
    let dir = resolve(&e.fs, "d").await.unwrap();
    assert!(!e.fs.kernel_dir_current(dir), "never listed");
    assert_eq!(names(&e.fs, dir).await, ["one"]);
    assert!(
        e.fs.kernel_dir_current(dir),
        "the kernel got the fresh listing"
    );
    // This mount's new name changes the listing: the kernel's copy is stale.
    write_file(&e.fs, dir, "two", b"2").await;
    assert!(!e.fs.kernel_dir_current(dir));
    assert_eq!(names(&e.fs, dir).await, ["one", "two"]);
    assert!(e.fs.kernel_dir_current(dir));
    e.fs.unlink(dir, os("one")).await.unwrap();
    assert!(!e.fs.kernel_dir_current(dir), "an unlink drops the listing");
    assert_eq!(names(&e.fs, dir).await, ["two"]);

    // A listing past its TTL is never vouched for.
    let e = env_with(MemoryStore::new(), |c| {
        c.list_ttl = Duration::from_millis(1)
    });
    e.store
        .insert("d/one", b"1".to_vec(), &PutOptions::default());
    let dir = resolve(&e.fs, "d").await.unwrap();
    assert_eq!(names(&e.fs, dir).await, ["one"]);
    // Not synchronisation: the behaviour under test is the TTL running out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(!e.fs.kernel_dir_current(dir));
}
