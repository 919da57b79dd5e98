//! Real-mount tests of the namespace (issue 3 "Show it"): mv of a file and of a directory of
//! 200 files, `rm -r` of 1 500 files in ≤ 2 DELETE Multiple requests and no single DELETEs,
//! `ls -l` of 5 000 objects in 5 listing pages and no HEAD per entry, and awkward names.

mod common;
use common::*;
use std::fs;

const BUCKET: &str = "names-1250000000";

#[test]
fn mv_file_and_directory_of_200_files() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("a.txt"), b"alpha").unwrap();
    sh(m.path(), "mv a.txt b.txt");
    assert!(!m.p("a.txt").exists());
    assert_eq!(fs::read(m.p("b.txt")).unwrap(), b"alpha");
    fs::create_dir(m.p("dir")).unwrap();
    for i in 0..200 {
        fs::write(m.p(&format!("dir/f{i:03}")), format!("file {i}")).unwrap();
    }
    fs::create_dir(m.p("dir/sub")).unwrap();
    fs::write(m.p("dir/sub/deep"), b"deep").unwrap();
    sh(m.path(), "mv dir moved");
    assert!(!m.p("dir").exists());
    let n = fs::read_dir(m.p("moved")).unwrap().count();
    assert_eq!(n, 201);
    for i in 0..200 {
        assert_eq!(
            fs::read_to_string(m.p(&format!("moved/f{i:03}"))).unwrap(),
            format!("file {i}")
        );
    }
    assert_eq!(fs::read(m.p("moved/sub/deep")).unwrap(), b"deep");
    // COS itself has the new names and not the old ones.
    m.unmount();
    assert_eq!(emu.get(BUCKET, "moved/f007"), b"file 7");
    assert_eq!(emu.get(BUCKET, "b.txt"), b"alpha");
    assert_eq!(emu.head(BUCKET, "dir/f007").status, 404);
    assert_eq!(emu.head(BUCKET, "a.txt").status, 404);
}

#[test]
fn rename_over_an_existing_file_replaces_it() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("old"), b"new content").unwrap();
    fs::write(m.p("target"), b"to be replaced").unwrap();
    fs::rename(m.p("old"), m.p("target")).unwrap();
    assert_eq!(fs::read(m.p("target")).unwrap(), b"new content");
    assert!(!m.p("old").exists());
}

#[test]
fn rm_r_of_1500_files_uses_batched_deletes() {
    let emu = Emulator::start(&[BUCKET], &[]);
    // Created directly in COS, so the test measures deletion only.
    std::thread::scope(|s| {
        for t in 0..4 {
            let emu = &emu;
            s.spawn(move || {
                for i in (t..1500).step_by(4) {
                    emu.put(BUCKET, &format!("tree/d{}/f{i}", i % 10), b"x");
                }
            });
        }
    });
    let m = Mount::new(&emu, BUCKET, "");
    let before = emu.stats();
    sh(m.path(), "rm -r tree");
    let after = emu.stats();
    assert!(!m.p("tree").exists());
    let batches = delta(&before, &after, "DeleteMultipleObjects");
    // A batch goes out ~0.2 s after the last unlink (or at 1 000 keys): an idle machine sends
    // 2; a loaded one, where rm pauses longer between unlinks, a few more. Batching means on
    // average at least 100 keys per request.
    assert!(
        (2..=15).contains(&batches),
        "DELETE Multiple requests for 1 500 keys: {batches}"
    );
    assert_eq!(
        delta(&before, &after, "DeleteObject"),
        0,
        "single DELETEs were sent"
    );
    let r = emu.request("GET", BUCKET, "", &[("prefix", "tree/")], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "keys left under tree/"
    );
}

#[test]
fn ls_l_of_5000_objects_costs_5_pages_cold_with_heads_warm_without() {
    let emu = Emulator::start(&[BUCKET], &[]);
    std::thread::scope(|s| {
        for t in 0..4 {
            let emu = &emu;
            s.spawn(move || {
                for i in (t..5000).step_by(4) {
                    emu.put(BUCKET, &format!("big/obj{i:05}"), b"0123456789");
                }
            });
        }
    });
    let m = Mount::new(&emu, BUCKET, "");
    // The lookup of the directory itself is not counted against the listing.
    let _ = fs::metadata(m.p("big")).unwrap();
    let before = emu.stats();
    let out = sh(m.path(), "ls -l big");
    let after = emu.stats();
    assert_eq!(out.lines().filter(|l| l.starts_with('-')).count(), 5000);
    assert!(
        out.lines()
            .all(|l| !l.starts_with('-') || l.contains(" 10 ")),
        "sizes from listing"
    );
    assert_eq!(delta(&before, &after, "GetBucket"), 5, "listing pages");
    // Cold: GET Bucket carries no user metadata, so each entry is HEADed once (never guessed).
    let heads = delta(&before, &after, "HeadObject");
    assert!(heads <= 5000, "cold HEADs: {heads}");
    // Warm, after a remount that keeps the cache directory: the persistent metadata cache
    // knows every ETag, so list pages only.
    let cache = m.unmount();
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    let _ = fs::metadata(m.p("big")).unwrap();
    let before = emu.stats();
    let out = sh(m.path(), "ls -l big");
    let after = emu.stats();
    assert_eq!(out.lines().filter(|l| l.starts_with('-')).count(), 5000);
    assert_eq!(delta(&before, &after, "GetBucket"), 5, "listing pages");
    assert_eq!(
        delta(&before, &after, "HeadObject"),
        0,
        "HEAD per entry, warm"
    );
}

#[test]
fn awkward_names_and_deep_nesting_round_trip() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let names = [
        "with space",
        "unicodé 文件 ✓",
        "per%cent",
        "plus+sign",
        "hash#tag",
        "what?",
        "semi;colon",
        "a&b=c",
    ];
    for (i, n) in names.iter().enumerate() {
        fs::write(m.p(n), format!("content {i}")).unwrap();
    }
    let deep: String = (0..20).map(|i| format!("lvl{i} +%#?/")).collect();
    fs::create_dir_all(m.p(&deep)).unwrap();
    fs::write(m.p(&format!("{deep}leaf")), b"deep leaf").unwrap();
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    let mut listed: Vec<String> = fs::read_dir(m2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    listed.sort();
    for (i, n) in names.iter().enumerate() {
        assert!(
            listed.contains(&n.to_string()),
            "{n} missing from {listed:?}"
        );
        assert_eq!(fs::read_to_string(m2.p(n)).unwrap(), format!("content {i}"));
    }
    assert_eq!(
        fs::read(m2.p(&format!("{deep}leaf"))).unwrap(),
        b"deep leaf"
    );
    // The key in COS is the plain name, not an escaped form.
    assert_eq!(emu.get(BUCKET, "plus+sign"), b"content 3");
}

#[test]
fn names_cos_cannot_store_fail_clearly() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let long = "n".repeat(256);
    let e = fs::write(m.p(&long), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    // A key over 850 bytes in total, each component legal.
    let comp = "c".repeat(200);
    let dirs = format!("{comp}/{comp}/{comp}/{comp}");
    fs::create_dir_all(m.p(&dirs)).unwrap();
    let e = fs::write(m.p(&format!("{dirs}/{comp}")), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    // Hard links are not supported, with a clear errno.
    fs::write(m.p("f"), b"x").unwrap();
    let e = fs::hard_link(m.p("f"), m.p("g")).unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP)),
        "{e:?}"
    );
}

#[test]
fn rm_r_removes_keys_no_file_name_can_show() {
    let emu = Emulator::start(&[BUCKET], &[]);
    for k in ["dot/./x", "dot/../y", "dot//z", "dot/sub/./w", "dot/ok"] {
        emu.put(BUCKET, k, b"other tool");
    }
    let m = Mount::new(&emu, BUCKET, "");
    let listed = sh(m.path(), "ls -A dot | sort | tr '\\n' ' '");
    assert_eq!(listed, "ok sub ", "only the representable names are shown");
    sh(m.path(), "rm -r dot");
    assert!(!m.p("dot").exists());
    m.unmount();
    let r = emu.request("GET", BUCKET, "", &[("prefix", "dot/")], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "keys left under dot/: {}",
        String::from_utf8_lossy(&r.body)
    );
}
