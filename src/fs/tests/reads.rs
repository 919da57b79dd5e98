//! Reads against `MemoryStore` with operation counts: random reads fetch small blocks, the read
//! cache serves re-reads without a request while the ETag holds, and a new ETag is never served
//! from old bytes.

use super::*;

const BLOCK: u64 = 64;
const PART: u64 = 1024;

fn reads_env(cache: u64) -> Env {
    env_with(MemoryStore::new(), |c| {
        c.read_part_size = PART;
        c.readahead_parts = 4;
        c.readahead_budget = 64 * 1024;
        c.read_block = BLOCK;
        c.read_cache_size = cache;
        c.open_revalidate = Duration::ZERO;
    })
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| r.random()).collect()
}

#[tokio::test]
async fn random_reads_fetch_only_their_block_and_rereads_cost_nothing() {
    let e = reads_env(1 << 20);
    let data = bytes(64 * 1024, 1);
    e.store.insert("big", data.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "big").await.unwrap();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    e.store.reset_counts();
    // Offsets far apart (never within a part of the previous read): random access.
    let offsets: Vec<u64> = (0..20u64).map(|i| 7_000 + (i * 9_973) % 50_000).collect();
    for &off in &offsets {
        let b = e.fs.read(ino, fh, off as i64, 16).await.unwrap();
        assert_eq!(&b[..], &data[off as usize..off as usize + 16], "at {off}");
    }
    let gets = e.store.count("GetObject");
    assert!(gets <= offsets.len() as u64, "{gets} GETs");
    // Every downloaded byte lands in the cache: a block or two per read, never parts.
    let fetched = e.fs.readcache.used();
    assert!(
        fetched <= offsets.len() as u64 * 2 * BLOCK,
        "{fetched} bytes fetched for {} reads",
        offsets.len()
    );
    // The same ranges again, through a new handle: no request at all.
    e.fs.release(ino, fh).await.unwrap();
    e.store.reset_counts();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    for &off in offsets.iter().rev() {
        let b = e.fs.read(ino, fh, off as i64, 16).await.unwrap();
        assert_eq!(&b[..], &data[off as usize..off as usize + 16]);
    }
    e.fs.release(ino, fh).await.unwrap();
    assert_eq!(e.store.count("GetObject"), 0, "{:?}", e.store.counts());
}

#[tokio::test]
async fn sequential_reads_use_parts_and_are_cached_whole() {
    let e = reads_env(1 << 20);
    let data = bytes(10 * PART as usize + 100, 2);
    e.store.insert("seq", data.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "seq").await.unwrap();
    e.store.reset_counts();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    let mut got = Vec::new();
    loop {
        let b = e.fs.read(ino, fh, got.len() as i64, 100).await.unwrap();
        if b.is_empty() {
            break;
        }
        got.extend_from_slice(&b);
    }
    e.fs.release(ino, fh).await.unwrap();
    assert_eq!(got, data);
    // One GET per part, each part once.
    assert_eq!(e.store.count("GetObject"), 11);
    e.store.reset_counts();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), data);
    assert_eq!(e.store.count("GetObject"), 0);
}

/// The kernel's read-ahead READs arrive out of order (by up to 3 MiB under
/// POSIX_FADV_SEQUENTIAL, as `cat` and `cp` ask): within two parts of the furthest end read so
/// far, a read is still sequential, so nothing is dropped or fetched twice.
#[tokio::test]
async fn reads_out_of_order_by_up_to_two_parts_stay_sequential() {
    let e = reads_env(1 << 20);
    let data = bytes(10 * PART as usize + 100, 8);
    e.store.insert("ooo", data.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "ooo").await.unwrap();
    e.store.reset_counts();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    for i in [0u64, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9] {
        let off = i * PART;
        let b = e.fs.read(ino, fh, off as i64, PART as u32).await.unwrap();
        let end = (off + PART).min(data.len() as u64) as usize;
        assert_eq!(&b[..], &data[off as usize..end], "part {i}");
    }
    e.fs.release(ino, fh).await.unwrap();
    // One GET per part, each part once: no read-ahead dropped, no block fetched, no fill.
    assert_eq!(e.store.count("GetObject"), 11, "{:?}", e.store.counts());
}

#[tokio::test]
async fn a_new_etag_is_never_served_from_old_bytes() {
    let e = reads_env(1 << 20);
    let old = bytes(4 * PART as usize, 3);
    e.store.insert("f", old.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "f").await.unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), old);
    // Another client replaces the object (same size, new ETag).
    let new = bytes(4 * PART as usize, 4);
    e.store.insert("f", new.clone(), &PutOptions::default());
    e.store.reset_counts();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), new);
    assert!(e.store.count("GetObject") > 0);
    // And the new bytes are cached in turn.
    e.store.reset_counts();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), new);
    assert_eq!(e.store.count("GetObject"), 0);
}

#[tokio::test]
async fn a_cache_smaller_than_the_file_still_reads_correctly() {
    let e = reads_env(3 * BLOCK);
    let data = bytes(8 * PART as usize + 7, 5);
    e.store.insert("f", data.clone(), &PutOptions::default());
    let ino = resolve(&e.fs, "f").await.unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), data);
    assert!(e.fs.readcache.used() <= 3 * BLOCK);
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    for off in [5_000u64, 100, 7_000, 3_000, 8 * PART] {
        let b = e.fs.read(ino, fh, off as i64, 300).await.unwrap();
        let end = (off as usize + 300).min(data.len());
        assert_eq!(&b[..], &data[off as usize..end], "at {off}");
    }
    e.fs.release(ino, fh).await.unwrap();
}

#[tokio::test]
async fn random_reads_fill_objects_up_to_read_fill_max_only() {
    let e = env_with(MemoryStore::new(), |c| {
        c.read_part_size = PART;
        c.read_block = BLOCK;
        c.read_cache_size = 1 << 20;
        c.read_fill_max = 16 * 1024;
        c.open_revalidate = Duration::ZERO;
    });
    let small = bytes(12 * 1024, 6);
    let large = bytes(64 * 1024, 7);
    e.store
        .insert("small", small.clone(), &PutOptions::default());
    e.store
        .insert("large", large.clone(), &PutOptions::default());
    // Far-apart offsets (never within a part of the previous read): random access.
    let offsets = [9_000u64, 3_000, 6_500];
    for (name, data) in [("large", &large), ("small", &small)] {
        let ino = resolve(&e.fs, name).await.unwrap();
        let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
        for off in offsets {
            let b = e.fs.read(ino, fh, off as i64, 16).await.unwrap();
            assert_eq!(
                &b[..],
                &data[off as usize..off as usize + 16],
                "{name} at {off}"
            );
        }
        // Whatever the fill does, it does while the handle is open.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while name == "small" && e.fs.readcache.used() < 3 * BLOCK + small.len() as u64 {
            assert!(std::time::Instant::now() < deadline, "no fill");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        e.fs.release(ino, fh).await.unwrap();
    }
    // The small object is cached whole: any read is free. The large one only has its blocks.
    e.store.reset_counts();
    let ino = resolve(&e.fs, "small").await.unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), small);
    assert_eq!(e.store.count("GetObject"), 0, "{:?}", e.store.counts());
    let ino = resolve(&e.fs, "large").await.unwrap();
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), large);
    assert!(
        e.store.count("GetObject") > 0,
        "the large object was filled"
    );
}

/// Reads all of `name` through a fresh handle and closes it.
async fn read_whole(e: &Env, name: &str, len: usize) {
    let ino = resolve(&e.fs, name).await.unwrap();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    let b = e.fs.read(ino, fh, 0, len as u32).await.unwrap();
    assert_eq!(b.len(), len, "{name}");
    e.fs.release(ino, fh).await.unwrap();
}

#[tokio::test]
async fn unlink_and_rename_give_back_cached_bytes_unless_the_file_is_open() {
    let e = reads_env(1 << 20);
    let len = 4 * PART as usize;
    for (i, name) in ["gone", "moved", "open"].iter().enumerate() {
        e.store
            .insert(name, bytes(len, 10 + i as u64), &PutOptions::default());
        read_whole(&e, name, len).await;
    }
    let all = e.fs.readcache.used();
    assert_eq!(all, 3 * len as u64, "every byte read is cached");
    e.fs.unlink(ROOT_INO, os("gone")).await.unwrap();
    assert_eq!(e.fs.readcache.used(), all - len as u64, "unlink drops them");
    e.fs.rename(ROOT_INO, os("moved"), ROOT_INO, os("there"), 0)
        .await
        .unwrap();
    assert_eq!(
        e.fs.readcache.used(),
        len as u64,
        "rename drops the old name's"
    );
    // An open descriptor may still read through the cache after the name is gone.
    let ino = resolve(&e.fs, "open").await.unwrap();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.unwrap();
    e.fs.unlink(ROOT_INO, os("open")).await.unwrap();
    assert_eq!(e.fs.readcache.used(), len as u64, "kept while open");
    let b = e.fs.read(ino, fh, 0, len as u32).await.unwrap();
    assert_eq!(b.len(), len);
    e.fs.release(ino, fh).await.unwrap();
}
