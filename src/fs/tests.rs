//! Tests of the fs core against `MemoryStore` with operation counts, and a seeded reference
//! model test (random operations on `Fs` and on an in-memory model, compared as they go).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::*;
use crate::store::{MemoryStore, ObjectStore, PutOptions, StorageClass};

struct Env {
    fs: Arc<Fs>,
    store: Arc<MemoryStore>,
    uploads: Arc<ManualUploads>,
    _dir: tempfile::TempDir,
}

fn env_with(store: Arc<MemoryStore>, f: impl FnOnce(&mut FsConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let uploads = ManualUploads::new(dynstore.clone(), dir.path().to_path_buf());
    let mut cfg = FsConfig {
        uid: 1000,
        gid: 1000,
        delete_delay: Duration::from_secs(3600),
        read_part_size: 8,
        readahead_parts: 2,
        readahead_budget: 64,
        ..Default::default()
    };
    f(&mut cfg);
    let fs = Fs::new(dynstore, cfg, uploads.clone());
    Env {
        fs,
        store,
        uploads,
        _dir: dir,
    }
}

fn env() -> Env {
    env_with(MemoryStore::new(), |_| {})
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

async fn resolve(fs: &Fs, path: &str) -> FsResult<InodeNo> {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fs.lookup(ino, os(c)).await?.attr.ino;
    }
    Ok(ino)
}

async fn write_file(fs: &Fs, parent: InodeNo, name: &str, data: &[u8]) -> InodeNo {
    let (e, fh) = fs
        .create(parent, os(name), 0o100644, libc::O_WRONLY, 1000, 1000)
        .await
        .unwrap();
    if !data.is_empty() {
        assert_eq!(
            fs.write(e.attr.ino, fh, 0, data).await.unwrap() as usize,
            data.len()
        );
    }
    fs.release(e.attr.ino, fh).await.unwrap();
    e.attr.ino
}

async fn read_all(fs: &Fs, ino: InodeNo) -> FsResult<Vec<u8>> {
    let fh = fs.open(ino, libc::O_RDONLY).await?;
    let mut out = Vec::new();
    loop {
        let b = fs.read(ino, fh, out.len() as i64, 5).await?;
        if b.is_empty() {
            break;
        }
        out.extend_from_slice(&b);
    }
    fs.release(ino, fh).await?;
    Ok(out)
}

async fn names(fs: &Fs, ino: InodeNo) -> Vec<String> {
    let fh = fs.opendir(ino, 0).await.unwrap();
    let mut v: Vec<DirEntry> = Vec::new();
    fs.readdir(ino, fh, 0, &mut v).await.unwrap();
    fs.releasedir(ino, fh).await.unwrap();
    v.into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect()
}

#[tokio::test]
async fn ls_l_of_5000_keys_is_5_list_pages_and_no_head() {
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
    let fifo =
        e.fs.mknod(ROOT_INO, os("p"), libc::S_IFIFO | 0o644, 1, 2)
            .await
            .unwrap_err();
    assert_eq!(fifo.errno(), libc::ENOTSUP);
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
    let bad = OsString::from("tab\tname");
    assert_eq!(
        e.fs.create(ROOT_INO, &bad, 0o644, 0, 1, 2)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
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

/// The reference model: path → file contents, or None for a directory.
type Model = BTreeMap<String, Option<Vec<u8>>>;

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn base_of(p: &str) -> &str {
    p.rsplit_once('/').map(|(_, b)| b).unwrap_or(p)
}

async fn check_tree(fs: &Fs, model: &Model, seed: u64, step: usize) {
    for dir in std::iter::once(String::new()).chain(
        model
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone()),
    ) {
        let ino = resolve(fs, &dir).await.unwrap();
        let mut got = names(fs, ino).await;
        got.sort();
        let want: Vec<String> = model
            .keys()
            .filter(|k| parent_of(k) == dir && !k.is_empty())
            .map(|k| base_of(k).to_string())
            .collect();
        assert_eq!(got, want, "seed {seed} step {step} dir {dir:?}");
    }
    for (path, v) in model {
        if let Some(data) = v {
            let ino = resolve(fs, path).await.unwrap();
            assert_eq!(
                &read_all(fs, ino)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed} {path}: {e}")),
                data,
                "seed {seed} step {step} {path}"
            );
        }
    }
}

#[tokio::test]
async fn reference_model_random_operations() {
    let seed: u64 = std::env::var("COSFUSE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("reference model seed: {seed} (rerun with COSFUSE_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let e = env();
    let fs = &e.fs;
    let mut model: Model = BTreeMap::new();
    let pool = ["a", "b", "c d", "é"];
    for step in 0..300 {
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(
                model
                    .iter()
                    .filter(|(k, v)| v.is_none() && k.matches('/').count() < 2)
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        let dir = dirs[rng.gen_range(0..dirs.len())].clone();
        let name = pool[rng.gen_range(0..pool.len())];
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let pino = resolve(fs, &dir).await.unwrap();
        let existing = model.get(&path).cloned();
        let op = rng.gen_range(0..8);
        if std::env::var("COSFUSE_TRACE").is_ok() {
            println!(
                "step {step}: op {op} path {path:?} existing {:?}",
                existing.as_ref().map(|e| e.as_ref().map(|d| d.len()))
            );
        }
        match op {
            0 | 1 => {
                // create or overwrite with random data, maybe at an offset
                if existing == Some(None) {
                    continue;
                }
                let len = rng.gen_range(0..30);
                let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let off = if existing.is_some() {
                    rng.gen_range(0..20usize)
                } else {
                    0
                };
                let (ino, fh) = match existing {
                    Some(_) => {
                        let ino = resolve(fs, &path).await.unwrap();
                        (ino, fs.open(ino, libc::O_RDWR).await.unwrap())
                    }
                    None => {
                        let (en, fh) = fs
                            .create(pino, os(name), 0o644, libc::O_RDWR, 1, 1)
                            .await
                            .unwrap();
                        (en.attr.ino, fh)
                    }
                };
                fs.write(ino, fh, off as i64, &data).await.unwrap();
                fs.release(ino, fh).await.unwrap();
                let mut cur = existing.flatten().unwrap_or_default();
                if cur.len() < off + data.len() {
                    cur.resize(off + data.len(), 0);
                }
                cur[off..off + data.len()].copy_from_slice(&data);
                model.insert(path, Some(cur));
            }
            2 => {
                let r = fs.mkdir(pino, os(name), 0o755, 1, 1).await;
                match existing {
                    Some(_) => {
                        assert_eq!(r.unwrap_err(), FsError::Exists, "seed {seed} step {step}")
                    }
                    None => {
                        r.unwrap();
                        model.insert(path, None);
                    }
                }
            }
            3 => {
                let r = fs.unlink(pino, os(name)).await;
                match existing {
                    Some(Some(_)) => {
                        r.unwrap();
                        model.remove(&path);
                    }
                    Some(None) => assert_eq!(r.unwrap_err(), FsError::IsDir),
                    None => assert_eq!(r.unwrap_err(), FsError::NotFound),
                }
            }
            4 => {
                let r = fs.rmdir(pino, os(name)).await;
                let has_children = model.keys().any(|k| k.starts_with(&format!("{path}/")));
                match existing {
                    Some(None) if has_children => assert_eq!(r.unwrap_err(), FsError::NotEmpty),
                    Some(None) => {
                        r.unwrap();
                        model.remove(&path);
                    }
                    Some(Some(_)) => assert_eq!(r.unwrap_err(), FsError::NotDir),
                    None => assert_eq!(r.unwrap_err(), FsError::NotFound),
                }
            }
            5 => {
                // rename to another name in a random dir
                let to_dir = dirs[rng.gen_range(0..dirs.len())].clone();
                let to_name = pool[rng.gen_range(0..pool.len())];
                let to = if to_dir.is_empty() {
                    to_name.to_string()
                } else {
                    format!("{to_dir}/{to_name}")
                };
                let Some(src) = existing else { continue };
                if to == path || to.starts_with(&format!("{path}/")) {
                    continue;
                }
                let dst = model.get(&to).cloned();
                let dst_nonempty = model.keys().any(|k| k.starts_with(&format!("{to}/")));
                let to_ino = resolve(fs, &to_dir).await.unwrap();
                let r = fs.rename(pino, os(name), to_ino, os(to_name), 0).await;
                if std::env::var("COSFUSE_TRACE").is_ok() {
                    println!(
                        "  rename {path:?} -> {to:?}: {r:?}; keys {:?}",
                        e.store.keys()
                    );
                }
                match (&src, &dst) {
                    (None, Some(Some(_))) => assert_eq!(r.unwrap_err(), FsError::NotDir),
                    (Some(_), Some(None)) => assert_eq!(r.unwrap_err(), FsError::IsDir),
                    (None, Some(None)) if dst_nonempty => {
                        assert_eq!(r.unwrap_err(), FsError::NotEmpty)
                    }
                    _ => {
                        r.unwrap_or_else(|err| {
                            panic!("seed {seed} step {step}: rename {path} {to}: {err}")
                        });
                        let moved: Vec<(String, Option<Vec<u8>>)> = model
                            .iter()
                            .filter(|(k, _)| **k == path || k.starts_with(&format!("{path}/")))
                            .map(|(k, v)| (format!("{to}{}", &k[path.len()..]), v.clone()))
                            .collect();
                        model.retain(|k, _| !(*k == path || k.starts_with(&format!("{path}/"))));
                        model.remove(&to);
                        model.extend(moved);
                    }
                }
            }
            6 => {
                if let Some(Some(cur)) = existing {
                    let ino = resolve(fs, &path).await.unwrap();
                    let size = rng.gen_range(0..40usize);
                    fs.setattr(
                        ino,
                        SetAttr {
                            size: Some(size as u64),
                            ..Default::default()
                        },
                        None,
                    )
                    .await
                    .unwrap();
                    let mut cur = cur;
                    cur.resize(size, 0);
                    model.insert(path, Some(cur));
                }
            }
            _ => {
                if rng.gen_bool(0.5) {
                    e.uploads.upload_all().await.unwrap();
                } else {
                    fs.flush_deletes().await;
                }
            }
        }
        if step % 25 == 0 {
            check_tree(fs, &model, seed, step).await;
        }
    }
    check_tree(fs, &model, seed, 300).await;
    e.uploads.upload_all().await.unwrap();
    fs.shutdown().await;
    // A fresh mount over the same bucket sees the same tree.
    let e2 = env_with(e.store.clone(), |_| {});
    check_tree(&e2.fs, &model, seed, 301).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_with_the_real_upload_queue() {
    use crate::cache::staging::CacheDir;
    use crate::cache::upload::UploadQueue;
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    store.set_min_part_size(1);
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let cache = CacheDir::open(dir.path()).unwrap();
    let ucfg = crate::cache::task::UploadConfig {
        part_size: 4,
        multipart_threshold: 10,
        ..Default::default()
    };
    let queue = UploadQueue::new(dynstore.clone(), cache, ucfg);
    let fs = Fs::new(dynstore, FsConfig::default(), queue.clone());
    let (e, fh) = fs
        .create(ROOT_INO, os("m"), 0o644, libc::O_RDWR, 1, 1)
        .await
        .unwrap();
    fs.write(e.attr.ino, fh, 0, b"0123456789abcdef")
        .await
        .unwrap();
    fs.flush(e.attr.ino, fh).await.unwrap();
    // Served locally or from COS, the bytes are the same.
    assert_eq!(
        &fs.read(e.attr.ino, fh, 10, 6).await.unwrap()[..],
        b"abcdef"
    );
    fs.fsync(e.attr.ino, fh, false).await.unwrap();
    fs.release(e.attr.ino, fh).await.unwrap();
    assert_eq!(store.get("m").unwrap(), &b"0123456789abcdef"[..]);
    assert!(
        store.meta("m").unwrap().etag.ends_with("-4"),
        "multipart above the threshold"
    );
    assert_eq!(
        read_all(&fs, e.attr.ino).await.unwrap(),
        b"0123456789abcdef"
    );
    queue.drain().await;
}

async fn getx(fs: &Fs, ino: InodeNo, name: &str) -> FsResult<String> {
    fs.getxattr(ino, os(name))
        .await
        .map(|v| String::from_utf8(v).unwrap())
}

#[tokio::test]
async fn xattrs_acl_class_restore_and_metadata() {
    let e = env();
    let ino = write_file(&e.fs, ROOT_INO, "f", b"payload").await;
    // The pending upload is waited for: ACL calls see the object.
    assert_eq!(getx(&e.fs, ino, "user.cos.acl").await.unwrap(), "default");
    e.fs.setxattr(ino, os("user.cos.acl"), b"public-read", 0)
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
    assert!(getx(&e.fs, ino, "user.cos.grant-read")
        .await
        .unwrap()
        .contains("uin/11"));
    let policy = getx(&e.fs, ino, "user.cos.acl-policy").await.unwrap();
    assert!(
        policy.contains("uin/11") && policy.contains("READ"),
        "{policy}"
    );
    e.fs.setxattr(ino, os("user.cos.acl-policy"), policy.as_bytes(), 0)
        .await
        .unwrap();
    assert!(getx(&e.fs, ino, "user.cos.acl-policy")
        .await
        .unwrap()
        .contains("uin/11"));

    e.fs.setxattr(ino, os("user.cos.meta.project"), b"apollo", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.cos.content-type"), b"text/html", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.anything"), "free ü".as_bytes(), 0)
        .await
        .unwrap();
    let m = e.store.meta("f").unwrap();
    assert_eq!(m.headers.user_meta["project"], "apollo");
    assert_eq!(m.headers.content_type.as_deref(), Some("text/html"));
    assert!(
        m.headers.user_meta.contains_key("mode"),
        "mode kept by the copy"
    );
    let e2 = env_with(e.store.clone(), |_| {});
    let ino2 = resolve(&e2.fs, "f").await.unwrap();
    assert_eq!(getx(&e2.fs, ino2, "user.anything").await.unwrap(), "free ü");
    assert_eq!(
        getx(&e2.fs, ino2, "user.cos.meta.project").await.unwrap(),
        "apollo"
    );
    let list = String::from_utf8(e2.fs.listxattr(ino2).await.unwrap()).unwrap();
    for n in [
        "user.cos.acl\0",
        "user.cos.etag\0",
        "user.cos.meta.project\0",
        "user.anything\0",
        "user.cos.content-type\0",
    ] {
        assert!(list.contains(n), "{n} in {list:?}");
    }
    assert!(!list.contains("user.cos.meta.mode"));
    e2.fs.removexattr(ino2, os("user.anything")).await.unwrap();
    assert_eq!(
        getx(&e2.fs, ino2, "user.anything").await.unwrap_err(),
        FsError::NoAttr
    );
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.etag"), b"x", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EPERM
    );
    let big = vec![b'v'; 4096];
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.meta.big"), &big, 0)
            .await
            .unwrap_err()
            .errno(),
        libc::E2BIG
    );
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.meta.a_b"), b"1", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    assert_eq!(
        getx(&e.fs, ino, "security.selinux")
            .await
            .unwrap_err()
            .errno(),
        libc::ENODATA
    );
    assert_eq!(
        e.fs.setxattr(ino, os("trusted.x"), b"1", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::ENOTSUP
    );
    assert!(getx(&e.fs, ino, "user.cos.url")
        .await
        .unwrap()
        .contains("f"));

    // Archive, refused read, restore, read.
    e.fs.setxattr(ino, os("user.cos.storage-class"), b"ARCHIVE", 0)
        .await
        .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.storage-class").await.unwrap(),
        "ARCHIVE"
    );
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EACCES
    );
    assert_eq!(getx(&e.fs, ino, "user.cos.restore").await.unwrap(), "none");
    e.fs.setxattr(ino, os("user.cos.restore"), b"days=1,tier=Expedited", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.cos.restore"), b"days=1,tier=Expedited", 0)
        .await
        .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.restore").await.unwrap(),
        "in-progress"
    );
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EAGAIN
    );
    assert!(e.store.complete_restore("f"));
    assert!(getx(&e.fs, ino, "user.cos.restore")
        .await
        .unwrap()
        .starts_with("restored until"));
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"payload");
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.restore"), b"weeks=2", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
}

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
    fn new_staging_file(&self) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
        self.inner.new_staging_file()
    }
    fn enqueue(
        &self,
        key: &str,
        file: std::path::PathBuf,
        size: u64,
        opts: PutOptions,
        base_etag: Option<String>,
    ) -> std::io::Result<u64> {
        *self.last.lock().unwrap() = Some(PendingUpload {
            path: file.clone(),
            size,
            opts: opts.clone(),
        });
        self.inner.enqueue(key, file, size, opts, base_etag)
    }
    async fn wait_key(&self, key: &str) -> Result<(), crate::store::StoreError> {
        self.inner.wait_key(key).await
    }
    fn pending(&self, key: &str) -> Option<PendingUpload> {
        let ghost = self.ghost.lock().unwrap().take();
        ghost.or_else(|| self.inner.pending(key))
    }
    fn pending_under(&self, prefix: &str) -> Vec<(String, PendingUpload)> {
        self.inner.pending_under(prefix)
    }
    fn update_pending_opts(&self, key: &str, f: &mut dyn FnMut(&mut PutOptions)) -> bool {
        self.inner.update_pending_opts(key, f)
    }
    fn discard(&self, key: &str) {
        self.inner.discard(key)
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
