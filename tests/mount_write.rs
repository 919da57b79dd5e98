//! Early multipart upload on real mounts (`cache::early`): parts of a large file written
//! sequentially reach COS before the file is closed; a change of an already sent region, a
//! truncate, an unlink or a rename while parts are in flight or sent still leave exactly the
//! file's bytes in COS (or nothing, for an unlinked file); and a daemon killed with -9 in the
//! middle of such a write leaves no multipart upload behind and loses nothing.
//!
//! Mounted with 1 MiB parts so a few MiB make a multi-part file (early uploads start at the
//! multipart threshold, at least three parts).

mod common;
use common::*;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

const BUCKET: &str = "write-1250000000";
const OPTS: &str = "part_size=1M,multipart_threshold=1M";
const MIB: usize = 1024 * 1024;

/// FUSE sends a FLUSH whenever any copy of a descriptor is closed, including the copy that a
/// process forked by another test thread holds until its exec closes it (close-on-exec): that
/// hands off a file this test keeps open, as a real close would. The tests of this file keep
/// files open across such moments, so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Multipart uploads the emulator still has open for `key`.
fn open_uploads_of(emu: &Emulator, key: &str) -> usize {
    let r = emu.request("GET", BUCKET, "", &[("uploads", "")], &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8_lossy(&r.body)
        .matches(&format!("<Key>{key}</Key>"))
        .count()
}

/// Multipart uploads the emulator still has open for the bucket.
fn open_uploads(emu: &Emulator) -> usize {
    let r = emu.request("GET", BUCKET, "", &[("uploads", "")], &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8_lossy(&r.body)
        .matches("<UploadId>")
        .count()
}

fn parts_sent(emu: &Emulator) -> u64 {
    emu.stats().get("UploadPart").copied().unwrap_or(0)
}

/// Writes `data` into `f` in 64 KiB appends.
fn append_all(f: &mut fs::File, data: &[u8]) {
    for c in data.chunks(64 * 1024) {
        f.write_all(c).unwrap();
    }
}

/// Waits until the emulator has acknowledged at least `n` parts.
fn wait_parts(emu: &Emulator, n: u64) {
    assert!(
        wait_until(Duration::from_secs(60), || parts_sent(emu) >= n),
        "only {} parts reached COS while the file was open",
        parts_sent(emu)
    );
}

fn assert_object(emu: &Emulator, key: &str, want: &[u8]) {
    let got = emu.get(BUCKET, key);
    if let Some(d) = difference(&got, want) {
        panic!("{key} in COS differs from the file: {d}");
    }
}

#[test]
fn parts_of_a_sequential_write_reach_cos_before_close() {
    let _one = one_at_a_time();
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(12 * MIB, 1);
    let mut f = fs::File::create(m.p("big")).unwrap();
    append_all(&mut f, &data);
    // Parts 1..=10 are ready (writes went one part past them); they go while the file is open.
    wait_parts(&emu, 8);
    assert_eq!(
        delta(&Default::default(), &emu.stats(), "CompleteMultipartUpload"),
        0,
        "nothing is completed before the hand-off"
    );
    let before_close = parts_sent(&emu);
    drop(f);
    m.unmount();
    assert_object(&emu, "big", &data);
    // One multipart upload of 12 parts, then one copy in place storing the final times.
    let stats = emu.stats();
    assert_eq!(
        delta(&Default::default(), &stats, "CompleteMultipartUpload"),
        1
    );
    assert_eq!(delta(&Default::default(), &stats, "PutObjectCopy"), 1);
    let head = emu.head(BUCKET, "big");
    assert!(
        head.header("x-cos-meta-mtime").is_some(),
        "the times are stored"
    );
    // Only the parts not yet sent went after close: the early ones were not sent twice.
    assert_eq!(parts_sent(&emu), 12, "{before_close} parts before close");
    assert_eq!(open_uploads(&emu), 0, "no multipart upload left open");
}

#[test]
fn a_change_to_an_already_sent_region_is_sent_again() {
    let _one = one_at_a_time();
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let mut want = pattern(10 * MIB, 2);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(m.p("patched"))
        .unwrap();
    append_all(&mut f, &want);
    wait_parts(&emu, 6);
    // A header patched at the start (part 1, surely sent) and a byte in part 3.
    f.write_all_at(b"PATCHED HEADER", 100).unwrap();
    want[100..114].copy_from_slice(b"PATCHED HEADER");
    f.write_all_at(b"x", (2 * MIB + 5) as u64).unwrap();
    want[2 * MIB + 5] = b'x';
    drop(f);
    // Truncate below the sent parts, then grow again: the dropped parts must not come back.
    let mut f = fs::File::create(m.p("truncated")).unwrap();
    let first = pattern(10 * MIB, 3);
    append_all(&mut f, &first);
    wait_parts(&emu, 14);
    f.set_len((4 * MIB + 17) as u64).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    let tail = pattern(5 * MIB, 4);
    append_all(&mut f, &tail);
    drop(f);
    let mut want2 = first[..4 * MIB + 17].to_vec();
    want2.extend_from_slice(&tail);
    m.unmount();
    assert_object(&emu, "patched", &want);
    assert_object(&emu, "truncated", &want2);
    assert_eq!(open_uploads(&emu), 0, "no multipart upload left open");
}

#[test]
fn unlink_and_rename_while_parts_are_sent() {
    let _one = one_at_a_time();
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    // Unlinked while open with parts sent: nothing lands in COS.
    let mut f = fs::File::create(m.p("gone")).unwrap();
    append_all(&mut f, &pattern(8 * MIB, 5));
    wait_parts(&emu, 4);
    fs::remove_file(m.p("gone")).unwrap();
    append_all(&mut f, &pattern(2 * MIB, 6));
    drop(f);
    // Renamed while open: the new name gets every byte, the old one nothing.
    assert!(
        wait_until(Duration::from_secs(30), || open_uploads(&emu) == 0),
        "the unlinked file's upload is aborted"
    );
    let sent = parts_sent(&emu);
    let data = pattern(9 * MIB, 7);
    let mut f = fs::File::create(m.p("old")).unwrap();
    append_all(&mut f, &data[..6 * MIB]);
    wait_parts(&emu, sent + 3);
    fs::rename(m.p("old"), m.p("new")).unwrap();
    append_all(&mut f, &data[6 * MIB..]);
    drop(f);
    m.unmount();
    assert_eq!(
        emu.try_get(BUCKET, "gone"),
        None,
        "an unlinked file never lands"
    );
    assert_eq!(emu.try_get(BUCKET, "old"), None, "the old name is gone");
    assert_object(&emu, "new", &data);
    // The rename's hand-off continued the early upload under the old key: the queue aborts it
    // (in the background) and uploads the new key afresh.
    assert!(
        wait_until(Duration::from_secs(30), || open_uploads(&emu) == 0),
        "{} multipart uploads left open",
        open_uploads(&emu)
    );
}

#[test]
fn kill9_in_the_middle_of_a_write_loses_nothing_and_leaves_no_upload() {
    let _one = one_at_a_time();
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    // A closed file whose upload may still be running at the kill.
    let closed = pattern(7 * MIB, 8);
    let mut f = fs::File::create(m.p("closed")).unwrap();
    append_all(&mut f, &closed);
    drop(f);
    // A file still open at the kill, with parts already sent.
    let open = pattern(8 * MIB, 9);
    let mut f = fs::File::create(m.p("open")).unwrap();
    append_all(&mut f, &open);
    wait_parts(&emu, 4);
    let cache = m.kill9();
    drop(f);
    let m = Mount::with_cache(&emu, BUCKET, OPTS, cache.clone());
    // Recovery aborted the early upload before serving; the closed file is uploaded again
    // (its upload may be running now, so only the unclosed file's key is checked here).
    assert_eq!(
        open_uploads_of(&emu, "open"),
        0,
        "the dead daemon's early upload was aborted"
    );
    let log2 = m.log_text();
    m.unmount();
    assert_object(&emu, "closed", &closed);
    assert!(
        emu.try_get(BUCKET, "open").is_none(),
        "an unclosed file is not published; log of the second mount:\n{}",
        log2
    );
    let kept: Vec<_> = fs::read_dir(cache.join("recovered"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("open"))
        .collect();
    assert_eq!(kept.len(), 1, "the unclosed file is kept: {kept:?}");
    let got = fs::read(&kept[0]).unwrap();
    assert!(difference(&got, &open).is_none(), "kept whole");
    assert_eq!(open_uploads(&emu), 0, "no multipart upload left open");
}

#[test]
fn a_file_uploaded_early_keeps_its_times_after_a_remount() {
    let _one = one_at_a_time();
    // COS fixes metadata at Initiate, before the last write: the queue stores the final times
    // with one copy in place after Complete, so a remount with an empty cache shows the mtime
    // the file had when it was closed, nanoseconds included.
    use std::os::unix::fs::MetadataExt;
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(6 * MIB, 11);
    let mut f = fs::File::create(m.p("timed")).unwrap();
    append_all(&mut f, &data);
    wait_parts(&emu, 3);
    f.sync_all().unwrap();
    drop(f);
    let before = fs::metadata(m.p("timed")).unwrap();
    m.unmount();
    assert_object(&emu, "timed", &data);
    let m = Mount::with_cache(&emu, BUCKET, OPTS, tempfile::tempdir().unwrap().keep());
    let after = fs::metadata(m.p("timed")).unwrap();
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec()),
        "mtime after a remount"
    );
    assert_eq!(after.mode(), before.mode());
    assert_eq!(after.len(), data.len() as u64);
}
