//! Reads through a real mount, counted at the emulator's `/-/stats`: a re-read of a range the
//! read cache holds costs no request while the object's ETag is unchanged, and random 4 KiB
//! reads download small blocks (measured as the read cache's disk usage, where every
//! downloaded byte lands), not whole parts.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

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
fn random_4k_reads_fetch_small_blocks() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let size: u64 = 64 << 20;
    let data = pattern(size as usize, 12);
    emu.put(BUCKET, "big.bin", &data);
    let m = Mount::new(&emu, BUCKET, "");
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
