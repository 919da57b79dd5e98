//! Real-mount tests of COS features through xattrs (issue 4): ACLs checked by anonymous GETs,
//! archive + restore through `user.cos.storage-class` and `user.cos.restore` (EAGAIN while a
//! restore runs), user metadata and content-type surviving a remount and visible to HEAD, and
//! presigned URLs from `user.cos.url`.

mod common;
use common::*;
use std::fs;
use std::process::Command;
use std::time::Duration;

const BUCKET: &str = "xattr-1250000000";

fn getfattr(path: &std::path::Path, name: &str) -> String {
    let out = Command::new("getfattr")
        .args(["--only-values", "-n", name])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "getfattr {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn setfattr(path: &std::path::Path, name: &str, value: &str) {
    let out = Command::new("setfattr")
        .args(["-n", name, "-v", value])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setfattr {name}={value}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn anonymous_get(emu: &Emulator, key: &str) -> u16 {
    raw_http(&emu.addr, "GET", &format!("/{BUCKET}/{key}"), &[], b"").status
}

#[test]
fn canned_acl_controls_anonymous_reads_and_grants_round_trip() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("pub.txt"), b"hello world").unwrap();
    assert_eq!(anonymous_get(&emu, "pub.txt"), 403, "private by default");
    setfattr(&m.p("pub.txt"), "user.cos.acl", "public-read");
    assert_eq!(anonymous_get(&emu, "pub.txt"), 200);
    assert_eq!(getfattr(&m.p("pub.txt"), "user.cos.acl"), "public-read");
    setfattr(&m.p("pub.txt"), "user.cos.acl", "private");
    assert_eq!(anonymous_get(&emu, "pub.txt"), 403);

    let grant = "id=\"qcs::cam::uin/100000000001:uin/100000000011\"";
    setfattr(&m.p("pub.txt"), "user.cos.grant-read", grant);
    assert!(getfattr(&m.p("pub.txt"), "user.cos.grant-read").contains("100000000011"));
    let acl = emu.request("GET", BUCKET, "pub.txt", &[("acl", "")], &[], b"");
    let body = String::from_utf8_lossy(&acl.body).to_string();
    assert!(
        body.contains("100000000011") && body.contains("<Permission>READ</Permission>"),
        "{body}"
    );
    // The full policy reads back in a form that contains every grant COS reports.
    let policy = getfattr(&m.p("pub.txt"), "user.cos.acl-policy");
    assert!(
        policy.contains("100000000011") && policy.contains("READ"),
        "{policy}"
    );
    // ... and setting it back is accepted and leaves the same grants in COS.
    setfattr(&m.p("pub.txt"), "user.cos.acl-policy", &policy);
    let again = emu.request("GET", BUCKET, "pub.txt", &[("acl", "")], &[], b"");
    assert!(String::from_utf8_lossy(&again.body).contains("100000000011"));
    let names = sh(m.path(), "getfattr -d -m - pub.txt");
    assert!(
        names.contains("user.cos.acl") && names.contains("user.cos.etag"),
        "{names}"
    );
}

#[test]
fn archive_then_restore_through_xattrs() {
    let emu = Emulator::start(&[BUCKET], &["--restore-delay", "1"]);
    let m = Mount::new(&emu, BUCKET, "");
    let data = pattern(4096, 5);
    fs::write(m.p("cold.bin"), &data).unwrap();
    setfattr(&m.p("cold.bin"), "user.cos.storage-class", "ARCHIVE");
    assert_eq!(
        getfattr(&m.p("cold.bin"), "user.cos.storage-class"),
        "ARCHIVE"
    );
    let e = fs::read(m.p("cold.bin")).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EACCES),
        "unrestored archive read: {e:?}"
    );
    assert!(
        m.log_text().contains("setfattr -n user.cos.restore"),
        "log names the restore command"
    );
    assert_eq!(getfattr(&m.p("cold.bin"), "user.cos.restore"), "none");
    setfattr(
        &m.p("cold.bin"),
        "user.cos.restore",
        "days=1,tier=Expedited",
    );
    // A second request while one runs is not an error for the user.
    setfattr(
        &m.p("cold.bin"),
        "user.cos.restore",
        "days=1,tier=Expedited",
    );
    let state = getfattr(&m.p("cold.bin"), "user.cos.restore");
    assert!(
        state == "in-progress" || state.starts_with("restored until"),
        "{state}"
    );
    let restored = wait_until(Duration::from_secs(30), || {
        getfattr(&m.p("cold.bin"), "user.cos.restore").starts_with("restored until")
    });
    assert!(restored, "restore never completed");
    assert!(fs::read(m.p("cold.bin")).unwrap() == data);
}

#[test]
fn reading_an_archive_while_its_restore_runs_is_eagain() {
    // An hour-long restore: still running when the read arrives, whatever the machine's speed.
    let emu = Emulator::start(&[BUCKET], &["--restore-delay", "3600"]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("frozen.bin"), pattern(1024, 9)).unwrap();
    setfattr(&m.p("frozen.bin"), "user.cos.storage-class", "ARCHIVE");
    let e = fs::read(m.p("frozen.bin")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "not restored: {e:?}");
    setfattr(&m.p("frozen.bin"), "user.cos.restore", "days=1,tier=Bulk");
    // COS's GET answer (403 InvalidObjectState) is the same as before; the client's HEAD sees
    // the running restore, and the reader is told to try again later.
    let e = fs::read(m.p("frozen.bin")).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EAGAIN),
        "restore running: {e:?}"
    );
}

#[test]
fn metadata_content_type_and_mode_survive_remount_and_show_in_head() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("doc.html"), b"<p>hi</p>").unwrap();
    setfattr(&m.p("doc.html"), "user.cos.meta.project", "apollo");
    setfattr(
        &m.p("doc.html"),
        "user.cos.content-type",
        "text/html; charset=utf-8",
    );
    setfattr(&m.p("doc.html"), "user.cos.cache-control", "max-age=60");
    setfattr(&m.p("doc.html"), "user.anything", "free form");
    sh(m.path(), "chmod 600 doc.html");
    m.unmount();
    let h = emu.head(BUCKET, "doc.html");
    assert_eq!(h.header("x-cos-meta-project"), Some("apollo"));
    assert_eq!(h.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(h.header("cache-control"), Some("max-age=60"));
    let m2 = Mount::new(&emu, BUCKET, "");
    assert_eq!(
        getfattr(&m2.p("doc.html"), "user.cos.meta.project"),
        "apollo"
    );
    assert_eq!(
        getfattr(&m2.p("doc.html"), "user.cos.content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(getfattr(&m2.p("doc.html"), "user.anything"), "free form");
    assert_eq!(fs::read(m2.p("doc.html")).unwrap(), b"<p>hi</p>");
    let ro = Command::new("setfattr")
        .args(["-n", "user.cos.etag", "-v", "x"])
        .arg(m2.p("doc.html"))
        .output()
        .unwrap();
    assert!(!ro.status.success(), "etag is read-only");
    let big = "v".repeat(4096);
    let tb = Command::new("setfattr")
        .args(["-n", "user.cos.meta.big", "-v", &big])
        .arg(m2.p("doc.html"))
        .output()
        .unwrap();
    assert!(
        !tb.status.success(),
        "metadata over the COS limit must be refused"
    );
}

#[test]
fn presigned_url_works_then_expires() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "presign_expires=2");
    fs::write(m.p("share.txt"), b"shared bytes").unwrap();
    let url = getfattr(&m.p("share.txt"), "user.cos.url");
    let fetch = |url: &str| -> (String, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (body.to_string(), code.to_string())
    };
    let (body, code) = fetch(&url);
    assert_eq!((body.as_str(), code.as_str()), ("shared bytes", "200"));
    let expired = wait_until(Duration::from_secs(20), || fetch(&url).1 == "403");
    assert!(expired, "presigned URL still accepted after its expiry");
}

#[test]
fn security_labels_are_not_kept_so_ls_stops_asking() {
    // `ls -l` asks every file for `security.selinux`; ENOTSUP (not ENODATA) is how a file
    // system without labels answers, and ls then stops asking for the whole mount.
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("f"), b"x").unwrap();
    for name in ["security.selinux", "trusted.x", "system.nfs4_acl"] {
        let out = Command::new("getfattr")
            .args(["-n", name])
            .arg(m.p("f"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Operation not supported"),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    setfattr(&m.p("f"), "user.kept", "yes");
    assert!(getfattr(&m.p("f"), "user.kept").contains("yes"));
}
