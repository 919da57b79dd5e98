//! Reads through a real mount, counted at the emulator's `/-/stats`: a re-read of a range the
//! read cache holds costs no request while the object's ETag is unchanged; random 4 KiB reads
//! of an object above `read_fill_max` download small blocks (measured as the read cache's disk
//! usage, where every downloaded byte lands), not whole parts; random reads of a smaller object
//! fill all of it into the cache in the background, after which any read costs no request; a
//! changed ETag is never served from old bytes; concurrent readers get exact bytes.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

const BUCKET: &str = "reads-1250000000";

/// Total requests of every kind between two snapshots.
fn requests(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> u64 {
    after.keys().map(|op| delta(before, after, op)).sum()
}

/// Bytes allocated on disk by the files under `dir` (sparse files count what they hold).
fn disk_usage(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.blocks() * 512)
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn rereads_of_cached_ranges_cost_no_request() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let data = pattern(6 << 20, 11);
    emu.put(BUCKET, "f.bin", &data);
    // A long revalidation window: an open within it needs no HEAD, so any request counted
    // below would be a read that missed the cache.
    let m = Mount::new(&emu, BUCKET, "revalidate=600");
    assert_eq!(fs::read(m.p("f.bin")).unwrap(), data);
    let f = fs::File::open(m.p("f.bin")).unwrap();
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, 5 << 20).unwrap();
    drop(f);
    let before = emu.stats();
    // Each open drops the kernel's page cache of the file (no keep_cache): these reads reach
    // the daemon, which answers them from its read cache.
    assert_eq!(fs::read(m.p("f.bin")).unwrap(), data);
    let f = fs::File::open(m.p("f.bin")).unwrap();
    for off in [5u64 << 20, 12_345, 3 << 20, 0] {
        f.read_exact_at(&mut buf, off).unwrap();
        assert!(
            difference(&buf, &data[off as usize..off as usize + 4096]).is_none(),
            "at {off}"
        );
    }
    drop(f);
    let after = emu.stats();
    assert_eq!(requests(&before, &after), 0, "{before:?} -> {after:?}");
}

#[test]
fn removing_a_file_gives_back_its_read_cache_space() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let data = pattern(6 << 20, 21);
    emu.put(BUCKET, "gone.bin", &data);
    emu.put(BUCKET, "moved.bin", &data);
    let m = Mount::new(&emu, BUCKET, "");
    let read_dir = m.cache.join("read");
    assert_eq!(fs::read(m.p("gone.bin")).unwrap(), data);
    assert_eq!(fs::read(m.p("moved.bin")).unwrap(), data);
    // The cache writes behind the reader: wait (bounded) until both files are on disk.
    let both = 2 * data.len() as u64;
    assert!(
        wait_until(Duration::from_secs(30), || disk_usage(&read_dir) >= both),
        "read cache holds {} bytes",
        disk_usage(&read_dir)
    );
    // The cache files are deleted behind the request (bounded wait).
    fs::remove_file(m.p("gone.bin")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || disk_usage(&read_dir)
            <= data.len() as u64),
        "rm gave nothing back: {} bytes",
        disk_usage(&read_dir)
    );
    fs::rename(m.p("moved.bin"), m.p("there.bin")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || disk_usage(&read_dir) == 0),
        "mv of the last cached file left {} bytes",
        disk_usage(&read_dir)
    );
    // The renamed file still reads right (from COS now).
    assert_eq!(fs::read(m.p("there.bin")).unwrap(), data);
}

#[test]
fn random_4k_reads_fetch_small_blocks() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let size: u64 = 64 << 20;
    let data = pattern(size as usize, 12);
    emu.put(BUCKET, "big.bin", &data);
    // Above read_fill_max: random reads never download the whole object.
    let m = Mount::new(&emu, BUCKET, "read_fill_max=32M");
    let f = fs::File::open(m.p("big.bin")).unwrap();
    let before = emu.stats();
    let reads = 64u64;
    let mut buf = vec![0u8; 4096];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..reads {
        // A fixed LCG: far-apart 4 KiB-aligned offsets, away from the start of the file.
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let off = (8 << 20) + (x >> 11) % ((size - (8 << 20)) / 4096) * 4096;
        f.read_exact_at(&mut buf, off).unwrap();
        assert!(
            difference(&buf, &data[off as usize..off as usize + 4096]).is_none(),
            "at {off}"
        );
    }
    drop(f);
    let after = emu.stats();
    let gets = delta(&before, &after, "GetObject");
    assert!(
        gets >= 1 && gets <= 2 * reads,
        "{gets} GETs for {reads} reads"
    );
    // Every downloaded byte is in the read cache: a few 128 KiB blocks per read at most
    // (whole 8 MiB parts, as before, would be 64 × 8 MiB).
    let fetched = disk_usage(&m.cache.join("read"));
    assert!(fetched > 0, "nothing cached");
    assert!(
        fetched <= reads * 3 * (128 << 10),
        "{fetched} bytes fetched for {reads} random 4 KiB reads"
    );
}

/// Offsets of `n` 4 KiB-aligned reads of a file of `size` bytes, from a fixed LCG.
fn random_offsets(n: usize, size: u64, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) % (size / 4096) * 4096
        })
        .collect()
}

fn check_at(f: &fs::File, data: &[u8], off: u64, len: usize) {
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, off).unwrap();
    let want = &data[off as usize..off as usize + len];
    assert!(
        difference(&buf, want).is_none(),
        "at {off}: {:?}",
        difference(&buf, want)
    );
}

#[test]
fn random_reads_fill_a_small_object_then_every_read_is_free() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let size: u64 = 24 << 20;
    let data = pattern(size as usize, 13);
    emu.put(BUCKET, "fill.bin", &data);
    let m = Mount::new(&emu, BUCKET, "revalidate=600");
    let f = fs::File::open(m.p("fill.bin")).unwrap();
    let before = emu.stats();
    let offsets = random_offsets(40, size, 7);
    for &off in &offsets {
        check_at(&f, &data, off, 4096);
    }
    // The fill lands every byte in the read cache while the file stays open (observed on disk,
    // without a request).
    let cache = m.cache.join("read");
    assert!(
        wait_until(Duration::from_secs(60), || disk_usage(&cache) >= size),
        "read cache holds {} of {size} bytes",
        disk_usage(&cache)
    );
    let filled = emu.stats();
    // Large ranges: at most one GET per read, plus one per 4 MiB of the object.
    let gets = delta(&before, &filled, "GetObject");
    assert!(
        gets <= offsets.len() as u64 + size.div_ceil(4 << 20),
        "{gets} GETs"
    );
    // Any range now, through this handle and through a new open: no request.
    for &off in random_offsets(200, size, 99).iter() {
        check_at(&f, &data, off, 4096);
    }
    check_at(&f, &data, size - 5000, 5000);
    drop(f);
    let whole = fs::read(m.p("fill.bin")).unwrap();
    assert!(difference(&whole, &data).is_none());
    let after = emu.stats();
    assert_eq!(requests(&filled, &after), 0, "{filled:?} -> {after:?}");
}

#[test]
fn a_changed_etag_is_read_anew_after_open() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let size = 6 << 20;
    let old = pattern(size, 21);
    emu.put(BUCKET, "c.bin", &old);
    // Every open revalidates (one HEAD), as another client may change the object.
    let m = Mount::new(&emu, BUCKET, "revalidate=0");
    assert!(difference(&fs::read(m.p("c.bin")).unwrap(), &old).is_none());
    let f = fs::File::open(m.p("c.bin")).unwrap();
    for off in random_offsets(8, size as u64, 3) {
        check_at(&f, &old, off, 4096);
    }
    drop(f);
    // Another client overwrites it (same size, new bytes, new ETag).
    let new = pattern(size, 22);
    emu.put(BUCKET, "c.bin", &new);
    let f = fs::File::open(m.p("c.bin")).unwrap();
    for off in random_offsets(8, size as u64, 3) {
        check_at(&f, &new, off, 4096);
    }
    drop(f);
    assert!(difference(&fs::read(m.p("c.bin")).unwrap(), &new).is_none());
}

#[test]
fn concurrent_readers_of_one_file_get_exact_bytes() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let size: u64 = 20 << 20;
    let data = std::sync::Arc::new(pattern(size as usize, 31));
    emu.put(BUCKET, "many.bin", &data);
    let m = Mount::new(&emu, BUCKET, "");
    let shared = std::sync::Arc::new(fs::File::open(m.p("many.bin")).unwrap());
    std::thread::scope(|s| {
        // Random readers, each with its own descriptor; random readers sharing one; and
        // whole-file sequential readers, all at once.
        for t in 0..3u64 {
            let (data, path) = (data.clone(), m.p("many.bin"));
            s.spawn(move || {
                let f = fs::File::open(path).unwrap();
                for off in random_offsets(60, size - (20 << 10), 100 + t) {
                    check_at(&f, &data, off, 4096 * (1 + (off as usize / 4096) % 5));
                }
            });
        }
        for t in 0..2u64 {
            let (data, f) = (data.clone(), shared.clone());
            s.spawn(move || {
                for off in random_offsets(60, size - (64 << 10), 200 + t) {
                    check_at(&f, &data, off, 64 << 10);
                }
            });
        }
        for _ in 0..2 {
            let (data, path) = (data.clone(), m.p("many.bin"));
            s.spawn(move || {
                let got = fs::read(path).unwrap();
                assert!(difference(&got, &data).is_none(), "sequential reader");
            });
        }
    });
}
