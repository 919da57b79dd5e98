//! Real-mount tests of file data and metadata (issue 3 "Show it"): a 300 MiB file through
//! multipart, in-place edits verified byte for byte, metadata surviving a remount, and a daemon
//! killed with SIGKILL whose closed file the next mount uploads.

mod common;
use common::*;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const BUCKET: &str = "data-1250000000";

fn md5_of(path: &std::path::Path) -> String {
    sh(
        std::path::Path::new("/"),
        &format!("md5sum '{}'", path.display()),
    )
    .split_whitespace()
    .next()
    .unwrap()
    .to_string()
}

#[test]
fn file_of_300_mib_round_trips_through_multipart() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let src = tempfile::NamedTempFile::new().unwrap();
    sh(
        std::path::Path::new("/"),
        &format!(
            "dd if=/dev/urandom of={} bs=1M count=300 status=none",
            src.path().display()
        ),
    );
    let before = emu.stats();
    sh(
        m.path(),
        &format!(
            "dd if={} of=big.bin bs=1M status=none conv=fsync",
            src.path().display()
        ),
    );
    m.unmount();
    let after = emu.stats();
    assert!(
        delta(&before, &after, "UploadPart") >= 2,
        "not multipart on the wire: {after:?}"
    );
    assert_eq!(delta(&before, &after, "CompleteMultipartUpload"), 1);
    let m2 = Mount::new(&emu, BUCKET, "");
    assert_eq!(fs::metadata(m2.p("big.bin")).unwrap().len(), 300 << 20);
    assert_eq!(md5_of(&m2.p("big.bin")), md5_of(src.path()));
}

#[test]
fn overwrite_append_truncate_byte_for_byte() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let mut model = pattern(3 << 20, 7);
    fs::write(m.p("f"), &model).unwrap();
    let reopen = |m: &Mount| -> Vec<u8> { fs::read(m.p("f")).unwrap() };

    // Overwrite in the middle.
    let patch = pattern(100_000, 9);
    let mut f = OpenOptions::new().write(true).open(m.p("f")).unwrap();
    f.seek(SeekFrom::Start(1_000_000)).unwrap();
    f.write_all(&patch).unwrap();
    drop(f);
    model[1_000_000..1_100_000].copy_from_slice(&patch);
    assert!(reopen(&m) == model, "overwrite");

    // Append.
    let tail = pattern(12_345, 11);
    let mut f = OpenOptions::new().append(true).open(m.p("f")).unwrap();
    f.write_all(&tail).unwrap();
    drop(f);
    model.extend_from_slice(&tail);
    assert!(reopen(&m) == model, "append");

    // Truncate down, then up (the gap reads as zeros).
    let f = OpenOptions::new().write(true).open(m.p("f")).unwrap();
    f.set_len(500_000).unwrap();
    drop(f);
    model.truncate(500_000);
    assert!(reopen(&m) == model, "truncate down");
    let f = OpenOptions::new().write(true).open(m.p("f")).unwrap();
    f.set_len(700_000).unwrap();
    drop(f);
    model.resize(700_000, 0);
    assert!(reopen(&m) == model, "truncate up");

    // All of it is what COS has after the queue drains.
    m.unmount();
    assert!(emu.get(BUCKET, "f") == model, "COS content differs");
    let m2 = Mount::new(&emu, BUCKET, "");
    let mut got = Vec::new();
    fs::File::open(m2.p("f"))
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(got == model, "remount content differs");
}

#[test]
fn fsync_returns_only_when_cos_has_the_data() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let mut f = fs::File::create(m.p("synced")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_all().unwrap();
    // No waiting: fsync has returned, so COS must have it now.
    assert_eq!(emu.get(BUCKET, "synced"), b"durable");
}

#[test]
fn chmod_chown_touch_and_symlink_survive_remount() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("f"), b"data").unwrap();
    fs::set_permissions(m.p("f"), fs::Permissions::from_mode(0o640)).unwrap();
    sh(m.path(), "chown 1234:5678 f && touch -d '2001-02-03 04:05:06 UTC' f && ln -s f link && mkdir d && chmod 0701 d");
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    let md = fs::metadata(m2.p("f")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    assert_eq!(md.mtime(), 981_173_106);
    assert_eq!(fs::read_link(m2.p("link")).unwrap().to_str(), Some("f"));
    assert!(fs::symlink_metadata(m2.p("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(m2.p("link")).unwrap(), b"data");
    assert_eq!(fs::metadata(m2.p("d")).unwrap().mode() & 0o7777, 0o701);
    // Stored the cosfs way: x-cos-meta-mode etc.
    let h = emu.head(BUCKET, "f");
    assert_eq!(
        h.header("x-cos-meta-mode"),
        Some(&*(0o100640u32).to_string())
    );
    assert_eq!(h.header("x-cos-meta-uid"), Some("1234"));
    assert_eq!(
        h.header("x-cos-meta-mtime")
            .map(|v| v.split('.').next().unwrap().to_string()),
        Some("981173106".into())
    );
}

#[test]
fn sigkill_after_close_next_mount_uploads_the_file() {
    // Latency keeps the upload from finishing before the kill.
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "300"]);
    let m = Mount::new(&emu, BUCKET, "");
    let data = pattern(5 << 20, 3);
    fs::write(m.p("precious.bin"), &data).unwrap();
    let cache = m.kill9();
    let m2 = Mount::with_cache(&emu, BUCKET, "", cache);
    // The recovered upload shows up in COS; a bounded wait, then a clean drain.
    let got = fs::read(m2.p("precious.bin")).unwrap();
    assert!(got == data, "content after recovery differs");
    m2.unmount();
    assert!(
        emu.get(BUCKET, "precious.bin") == data,
        "COS content after recovery differs"
    );
}

#[test]
fn a_file_unlinked_while_open_keeps_working_and_is_never_uploaded() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(m.p("scratch"))
        .unwrap();
    f.write_all(b"before unlink, ").unwrap();
    fs::remove_file(m.p("scratch")).unwrap();
    assert!(!m.p("scratch").exists());
    f.write_all(b"after unlink").unwrap();
    assert_eq!(f.metadata().unwrap().len(), 27);
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "before unlink, after unlink");
    f.set_len(6).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 6);
    f.sync_all().unwrap();
    drop(f);
    // Python's tempfile.TemporaryFile is exactly this pattern.
    sh(m.path(), "python3 -c \"import tempfile; t = tempfile.TemporaryFile(dir='.'); t.write(b'x' * 100000); t.seek(0); assert len(t.read()) == 100000\"");
    m.unmount();
    assert_eq!(
        emu.head(BUCKET, "scratch").status,
        404,
        "an unlinked file was uploaded"
    );
    let r = emu.request("GET", BUCKET, "", &[], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "leftover objects: {}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn a_full_cache_disk_gives_enospc_and_loses_nothing_already_written() {
    let emu = Emulator::start(&[BUCKET], &[]);
    // A 3 MiB tmpfs as the cache directory: staging files fill it quickly.
    let cache = tempfile::tempdir().unwrap().keep();
    sh(
        std::path::Path::new("/"),
        &format!("mount -t tmpfs -o size=3m tmpfs {}", cache.display()),
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _tmpfs = Unmount(cache.clone());
    let m = Mount::with_cache(&emu, BUCKET, "", cache.clone());
    let small = pattern(512 << 10, 21);
    fs::write(m.p("fits.bin"), &small).unwrap();
    let mut f = fs::File::create(m.p("too-big.bin")).unwrap();
    let chunk = pattern(1 << 20, 22);
    let err = (0..8)
        .find_map(|_| f.write_all(&chunk).err())
        .expect("a 8 MiB write into a 3 MiB cache succeeded");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err:?}");
    drop(f);
    // The mount still works, and what was written before is intact in COS.
    fs::remove_file(m.p("too-big.bin")).ok();
    fs::write(m.p("after.txt"), b"still working").unwrap();
    m.unmount();
    assert!(
        emu.get(BUCKET, "fits.bin") == small,
        "fits.bin differs in COS"
    );
    assert_eq!(emu.get(BUCKET, "after.txt"), b"still working");
}

#[test]
fn uploads_and_reads_survive_503s_and_dropped_connections() {
    let emu = Emulator::start(&[BUCKET], &["--slowdown-every", "4", "--drop-every", "5"]);
    let m = Mount::new(&emu, BUCKET, "part_size=1M,multipart_threshold=2M");
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("f{i}.bin"),
                pattern((i * 700 + 1) << 10, 30 + i as u64),
            )
        })
        .collect();
    for (name, data) in &files {
        fs::write(m.p(name), data).unwrap();
    }
    m.unmount();
    for (name, data) in &files {
        assert!(
            emu.get_retrying(BUCKET, name) == *data,
            "{name} differs in COS"
        );
    }
    let m2 = Mount::new(&emu, BUCKET, "");
    for (name, data) in &files {
        assert!(
            fs::read(m2.p(name)).unwrap() == *data,
            "{name} differs through the mount"
        );
    }
}

#[test]
fn random_operations_with_mmap_match_a_model_here_and_in_a_fresh_mount() {
    // scripts/fsx.py: reads, writes past the end, truncates up and down, mapped reads and
    // writes, fsyncs and reopens, each checked against a model of the file's bytes; two files
    // at once, one of them past the multipart threshold. Then a mount with an empty cache
    // reads what COS holds.
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "part_size=1M,multipart_threshold=2M");
    let models = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fsx.py");
    let runs = [("small", 1, 1200, 256 * 1024), ("large", 2, 200, 3 << 20)];
    let children: Vec<_> = runs
        .iter()
        .map(|(name, seed, ops, max)| {
            std::process::Command::new("python3")
                .arg(script)
                .arg(m.p(name))
                .args([ops.to_string(), seed.to_string(), max.to_string()])
                .arg(models.path().join(name))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ((name, ..), child) in runs.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    for (name, ..) in runs {
        let want = fs::read(models.path().join(name)).unwrap();
        let got = fs::read(m2.p(name)).unwrap();
        assert_eq!(got.len(), want.len(), "{name}: size in COS");
        assert!(got == want, "{name}: bytes in COS differ from the model");
    }
}
