//! The seeded reference-model test (random operations on Fs and on a model), and Fs over the real upload queue.

use super::*;

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
        let dir = dirs[rng.random_range(0..dirs.len())].clone();
        let name = pool[rng.random_range(0..pool.len())];
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let pino = resolve(fs, &dir).await.unwrap();
        let existing = model.get(&path).cloned();
        let op = rng.random_range(0..8);
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
                let len = rng.random_range(0..30);
                let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let off = if existing.is_some() {
                    rng.random_range(0..20usize)
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
                // A zero-length write changes nothing (POSIX), not even the size.
                if !data.is_empty() && cur.len() < off + data.len() {
                    cur.resize(off + data.len(), 0);
                }
                if !data.is_empty() {
                    cur[off..off + data.len()].copy_from_slice(&data);
                }
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
                let to_dir = dirs[rng.random_range(0..dirs.len())].clone();
                let to_name = pool[rng.random_range(0..pool.len())];
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
                    let size = rng.random_range(0..40usize);
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
                if rng.random_bool(0.5) {
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
    // Multipart above the threshold (an early upload's object is then copied in place to
    // store its times, which gives it a plain ETag: count the Complete instead).
    assert_eq!(
        store.count("CompleteMultipartUpload"),
        1,
        "multipart above the threshold"
    );
    assert_eq!(
        read_all(&fs, e.attr.ino).await.unwrap(),
        b"0123456789abcdef"
    );
    queue.drain().await;
}
