//! The command line around a live mount (issues 3 and 4): `mount -t fuse.cosfuse` and an fstab
//! line (through fuse3's mount helper, as mount(8) runs it), the `mount.cosfuse` helper for
//! `-t cosfuse`, `cosfuse presign` and `cosfuse preflight`.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};

const BUCKET: &str = "cli-1250000000";

/// PATH with the directory of the built `cosfuse` first, as after `scripts/install.sh`.
fn path_with_cosfuse() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_cosfuse"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// fuse3's `mount.fuse3` (what `mount -t fuse.cosfuse` runs) resets PATH to the system
/// directories, as mount(8) helpers do, so the built `cosfuse` is linked into /usr/local/bin for
/// the test's duration, as `scripts/install.sh` would put it; whatever was there is restored.
struct Installed {
    _lock: std::sync::MutexGuard<'static, ()>,
    backup: Option<std::path::PathBuf>,
}

const INSTALLED: &str = "/usr/local/bin/cosfuse";

fn install_cosfuse() -> Installed {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = Path::new(INSTALLED);
    let backup = if target.symlink_metadata().is_ok() {
        let b = target.with_extension("cosfuse-test-backup");
        fs::rename(target, &b).unwrap();
        Some(b)
    } else {
        None
    };
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cosfuse"), target).unwrap();
    Installed {
        _lock: lock,
        backup,
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = fs::remove_file(INSTALLED);
        if let Some(b) = &self.backup {
            let _ = fs::rename(b, INSTALLED);
        }
    }
}

fn passwd_file() -> tempfile::NamedTempFile {
    let pw = tempfile::NamedTempFile::new().unwrap();
    fs::write(pw.path(), format!("{SECRET_ID}:{SECRET_KEY}\n")).unwrap();
    fs::set_permissions(pw.path(), fs::Permissions::from_mode(0o600)).unwrap();
    pw
}

fn unmount(dir: &Path) {
    fusermount_u(dir);
    assert!(wait_until(Duration::from_secs(30), || !is_mounted(dir)));
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn mount_t_fuse_cosfuse_and_an_fstab_line_work() {
    let _installed = install_cosfuse();
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "hello.txt", b"from COS");
    let pw = passwd_file();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let opts = format!(
        "url={},passwd_file={},cache={}",
        emu.endpoint,
        pw.path().display(),
        cache.path().display()
    );
    run(Command::new("mount")
        .args(["-t", "fuse.cosfuse", BUCKET])
        .arg(dir.path())
        .args(["-o", &opts])
        .env("PATH", path_with_cosfuse()));
    assert!(is_mounted(dir.path()));
    assert_eq!(fs::read(dir.path().join("hello.txt")).unwrap(), b"from COS");
    unmount(dir.path());

    // The same through an fstab line (mount -T reads an alternative fstab file).
    let fstab = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        fstab.path(),
        format!(
            "{BUCKET} {} fuse.cosfuse _netdev,{opts} 0 0\n",
            dir.path().display()
        ),
    )
    .unwrap();
    run(Command::new("mount")
        .arg("-T")
        .arg(fstab.path())
        .arg(dir.path())
        .env("PATH", path_with_cosfuse()));
    assert!(is_mounted(dir.path()));
    assert_eq!(fs::read(dir.path().join("hello.txt")).unwrap(), b"from COS");
    unmount(dir.path());
}

#[test]
fn mount_cosfuse_helper_translates_mount_8_arguments() {
    let _installed = install_cosfuse();
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "a", b"A");
    let pw = passwd_file();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let helper = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mount.cosfuse");
    // mount(8) calls helpers as: mount.TYPE SOURCE DIR [-sfnvN] [-o OPTIONS]
    run(Command::new("sh")
        .arg(helper)
        .arg(BUCKET)
        .arg(dir.path())
        .args(["-n", "-o"])
        .arg(format!(
            "rw,url={},passwd_file={},cache={}",
            emu.endpoint,
            pw.path().display(),
            cache.path().display()
        ))
        .env("PATH", path_with_cosfuse()));
    assert!(is_mounted(dir.path()));
    assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"A");
    unmount(dir.path());
}

#[test]
fn presign_prints_urls_that_work_for_get_and_put() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("shared.txt"), b"presigned content").unwrap();
    let url = run(Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("presign")
        .arg(m.p("shared.txt"))
        .args(["--expires", "300"]));
    let got = run(Command::new("curl").args(["-sf", url.trim()]));
    assert_eq!(got, "presigned content");
    let put_url = run(Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("presign")
        .arg(m.p("uploaded.txt"))
        .args(["--method", "PUT"]));
    let body = tempfile::NamedTempFile::new().unwrap();
    fs::write(body.path(), b"via presigned PUT").unwrap();
    run(Command::new("curl")
        .args(["-sf", "-T"])
        .arg(body.path())
        .arg(put_url.trim()));
    assert_eq!(emu.get(BUCKET, "uploaded.txt"), b"via presigned PUT");
}

#[test]
fn preflight_reports_allowed_and_refused_requests() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let cors =
        "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
        <AllowedHeader>x-cos-meta-*</AllowedHeader><MaxAgeSeconds>600</MaxAgeSeconds>\
        </CORSRule></CORSConfiguration>";
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(cors.as_bytes()));
    let r = emu.request(
        "PUT",
        BUCKET,
        "",
        &[("cors", "")],
        &[("content-type", "application/xml"), ("content-md5", &md5)],
        cors.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let m = Mount::new(&emu, BUCKET, "");
    fs::write(m.p("page.html"), b"<p/>").unwrap();
    let preflight = |origin: &str, method: &str| {
        Command::new(env!("CARGO_BIN_EXE_cosfuse"))
            .arg("preflight")
            .arg(m.p("page.html"))
            .args([
                "--origin",
                origin,
                "--method",
                method,
                "--headers",
                "x-cos-meta-a",
            ])
            .output()
            .unwrap()
    };
    let ok = preflight("https://app.example.com", "PUT");
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(ok.status.success(), "{text}");
    assert!(text.starts_with("allowed"), "{text}");
    assert!(
        text.contains("Access-Control-Allow-Origin: https://app.example.com"),
        "{text}"
    );
    assert!(text.contains("Access-Control-Max-Age: 600"), "{text}");
    let refused = preflight("https://evil.example.com", "PUT");
    let text = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("refused"), "{text}");
}
