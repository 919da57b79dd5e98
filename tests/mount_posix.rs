//! POSIX metadata on a real mount, read back after a remount with an empty cache: separate
//! atime and mtime with nanoseconds and dates past 2038, ctime moving on chmod, FIFOs, sockets
//! and devices with their types and device numbers; and interop: objects carrying cosfs- and
//! s3fs-style metadata (written to the emulator directly) show the right mode, owner and times;
//! directory link counts (2 + subdirectories) of directories the mount made.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const BUCKET: &str = "posix-1250000000";

#[test]
fn times_and_special_files_survive_a_remount_with_an_empty_cache() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(
        m.path(),
        "echo x > f && touch -a -d '2001-02-03 04:05:06.123456789 UTC' f \
         && touch -m -d '2040-01-02 03:04:05.987654321 UTC' f && mkfifo p && mknod c c 1 3 \
         && mknod b b 7 1 \
         && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('s')\"",
    );
    let before = fs::metadata(m.p("f")).unwrap().ctime();
    sh(m.path(), "chmod 640 f");
    let f = fs::metadata(m.p("f")).unwrap();
    assert!(f.ctime() >= before, "chmod moves ctime");
    let ctime = (f.ctime(), f.ctime_nsec());
    m.unmount();

    let m = Mount::new(&emu, BUCKET, "");
    let ls = sh(m.path(), "ls -l");
    assert!(
        ls.lines().any(|l| l.starts_with('p') && l.ends_with(" p")),
        "{ls}"
    );
    let f = fs::metadata(m.p("f")).unwrap();
    assert_eq!((f.atime(), f.atime_nsec()), (981_173_106, 123_456_789));
    assert_eq!((f.mtime(), f.mtime_nsec()), (2_209_086_245, 987_654_321));
    assert_eq!((f.ctime(), f.ctime_nsec()), ctime, "ctime kept");
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert!(fs::symlink_metadata(m.p("p"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(m.p("s"))
        .unwrap()
        .file_type()
        .is_socket());
    let c = fs::symlink_metadata(m.p("c")).unwrap();
    assert!(c.file_type().is_char_device());
    assert_eq!(
        (libc::major(c.rdev()), libc::minor(c.rdev())),
        (1, 3),
        "device number"
    );
    let b = fs::symlink_metadata(m.p("b")).unwrap();
    assert!(b.file_type().is_block_device());
    assert_eq!((libc::major(b.rdev()), libc::minor(b.rdev())), (7, 1));
    // A FIFO on the mount works as a FIFO (the kernel runs it).
    sh(
        m.path(),
        "(echo through > p &) ; read l < p; test \"$l\" = through",
    );
}

#[test]
fn cosfs_and_s3fs_style_metadata_read_back() {
    let emu = Emulator::start(&[BUCKET], &[]);
    // cosfs: mode/uid/gid/mtime as decimal strings.
    let r = emu.request(
        "PUT",
        BUCKET,
        "cosfs-file",
        &[],
        &[
            ("x-cos-meta-mode", "33184"), // 0100640
            ("x-cos-meta-uid", "1001"),
            ("x-cos-meta-gid", "1002"),
            ("x-cos-meta-mtime", "1600000000"),
        ],
        b"abc",
    );
    assert_eq!(r.status, 200);
    // s3fs: also atime and ctime, and a symlink by its mode.
    let r = emu.request(
        "PUT",
        BUCKET,
        "s3fs-link",
        &[],
        &[
            ("x-cos-meta-mode", "41471"), // 0120777
            ("x-cos-meta-mtime", "1500000000"),
            ("x-cos-meta-atime", "1500000001"),
            ("x-cos-meta-ctime", "1500000002"),
        ],
        b"target",
    );
    assert_eq!(r.status, 200);
    let m = Mount::new(&emu, BUCKET, "");
    sh(m.path(), "ls -l >/dev/null");
    let f = fs::metadata(m.p("cosfs-file")).unwrap();
    assert_eq!(
        (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
        (0o640, 1001, 1002, 1_600_000_000)
    );
    let l = fs::symlink_metadata(m.p("s3fs-link")).unwrap();
    assert!(l.file_type().is_symlink());
    assert_eq!(
        (l.mtime(), l.atime(), l.ctime()),
        (1_500_000_000, 1_500_000_001, 1_500_000_002)
    );
    assert_eq!(
        fs::read_link(m.p("s3fs-link")).unwrap().to_str(),
        Some("target")
    );
}

#[test]
fn new_objects_get_a_content_type_from_their_extension() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    for (name, data) in [
        ("a.html", "<p>hi</p>"),
        ("b.json", "{}"),
        ("c.png", "x"),
        ("d", "x"),
    ] {
        fs::write(m.p(name), data).unwrap();
    }
    m.unmount();
    let ct = |k: &str| {
        emu.head(BUCKET, k)
            .header("content-type")
            .map(str::to_string)
    };
    assert_eq!(ct("a.html").as_deref(), Some("text/html"));
    assert_eq!(ct("b.json").as_deref(), Some("application/json"));
    assert_eq!(ct("c.png").as_deref(), Some("image/png"));
    assert_ne!(
        ct("d").as_deref(),
        Some("text/html"),
        "no extension, no guess"
    );
    // A forced type.
    let m = Mount::new(&emu, BUCKET, "content_type=text/plain");
    fs::write(m.p("e.html"), "x").unwrap();
    m.unmount();
    assert_eq!(ct("e.html").as_deref(), Some("text/plain"));
}

#[test]
fn names_with_control_characters_round_trip() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let names = ["ends in cr\r", "tab\there", "bell\u{7}"];
    for n in names {
        fs::write(m.p(n), n.as_bytes()).unwrap();
    }
    fs::rename(m.p("tab\there"), m.p("moved\ttab")).unwrap();
    m.unmount();
    let m = Mount::new(&emu, BUCKET, "");
    let mut listed: Vec<String> = fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    let mut want = vec!["bell\u{7}", "ends in cr\r", "moved\ttab"];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(fs::read(m.p("ends in cr\r")).unwrap(), b"ends in cr\r");
    for n in want {
        fs::remove_file(m.p(n)).unwrap();
    }
    m.unmount();
    let r = emu.request("GET", BUCKET, "", &[], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "deleted in COS"
    );
}

#[test]
fn directory_link_counts_follow_mkdir_rename_and_rmdir() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(m.path(), "mkdir -p a/x a/y b && touch a/f");
    let n = |rel: &str| fs::metadata(m.p(rel)).unwrap().nlink();
    assert_eq!((n("a"), n("b")), (4, 2), "made here: 2 + subdirectories");
    sh(m.path(), "mv a/x b/ && rmdir a/y");
    assert_eq!((n("a"), n("b")), (2, 3));
    m.unmount();
}
