//! Real mounts over HTTPS (issue 15): `cosfuse-emulator --tls-cert/--tls-key` with a CA made
//! at run time. With `cafile=` (or `SSL_CERT_FILE`) a mount works end to end; without the CA,
//! or with a certificate for another host name, the mount fails with a one-line reason that
//! names the host and the TLS problem; `vhost` puts the bucket into the host name.

mod common;
mod tls_support;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tls_support::Pki;

const BUCKET: &str = "tlsmount-1250000000";
const OTHER: &str = "tlsother-1250000000";

/// Starts `cosfuse-emulator` serving HTTPS with `pki`'s server certificate.
fn tls_emulator(pki: &Pki, buckets: &[&str]) -> Emulator {
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let emu = Emulator::start(buckets, &["--tls-cert", cert, "--tls-key", key]);
    assert!(
        emu.endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        emu.endpoint
    );
    emu
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs `cosfuse` as a user would (it daemonizes; the parent reports the outcome) and returns
/// (exit code, stderr). `cache` must outlive the mount: the daemon keeps using it.
fn mount_daemon(
    endpoint: &str,
    dir: &Path,
    cache: &Path,
    opts: &str,
    envs: &[(&str, &str)],
) -> (i32, String) {
    let mut o = format!("url={endpoint},cache={}", cache.display());
    if !opts.is_empty() {
        o = format!("{o},{opts}");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosfuse"));
    cmd.arg(BUCKET)
        .arg(dir)
        .args(["-o", &o])
        .env("COS_SECRET_ID", SECRET_ID)
        .env("COS_SECRET_KEY", SECRET_KEY)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cosfuse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Asserts a refused mount: non-zero exit, a one-line reason, nothing left mounted.
fn assert_refused(code: i32, dir: &Path, err: &str) {
    let mounted = is_mounted(dir);
    if mounted {
        let _ = Command::new("fusermount3").arg("-uz").arg(dir).status();
    }
    assert_ne!(code, 0, "mount succeeded: {err}");
    assert!(!mounted, "left mounted: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
}

#[test]
fn with_a_cafile_the_mount_works_end_to_end() {
    let pki = Pki::new(&["127.0.0.1"]);
    let emu = tls_emulator(&pki, &[BUCKET]);
    let opts = format!("cafile={}", pki.ca.display());
    let m = Mount::new(&emu, BUCKET, &opts);
    let data = pattern(300_000, 15);
    fs::write(m.p("a.bin"), &data).unwrap();
    fs::create_dir(m.p("d")).unwrap();
    fs::rename(m.p("a.bin"), m.p("d/b.bin")).unwrap();
    let names: Vec<String> = fs::read_dir(m.p("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["b.bin"]);
    assert!(!m.p("a.bin").exists());
    let b = m.p("d/b.bin");
    run(Command::new("setfattr")
        .args(["-n", "user.cos.meta.project", "-v", "tls"])
        .arg(&b));
    let v = run(Command::new("getfattr")
        .args(["--only-values", "-n", "user.cos.meta.project"])
        .arg(&b));
    assert_eq!(v, "tls");
    let cache = m.unmount();
    // A fresh mount reads what the first one uploaded, over TLS again.
    let m = Mount::with_cache(&emu, BUCKET, &opts, cache);
    assert_eq!(difference(&fs::read(m.p("d/b.bin")).unwrap(), &data), None);
    let v = run(Command::new("getfattr")
        .args(["--only-values", "-n", "user.cos.meta.project"])
        .arg(m.p("d/b.bin")));
    assert_eq!(v, "tls");
    m.unmount();
}

#[test]
fn without_the_ca_the_mount_fails_with_unknown_issuer() {
    let pki = Pki::new(&["127.0.0.1"]);
    let emu = tls_emulator(&pki, &[BUCKET]);
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (code, err) = mount_daemon(&emu.endpoint, dir.path(), cache.path(), "", &[]);
    assert_refused(code, dir.path(), &err);
    assert!(
        err.contains("TLS with 127.0.0.1 failed") && err.contains("unknown issuer"),
        "{err}"
    );
    assert!(err.contains("cafile="), "{err}");
}

#[test]
fn a_certificate_for_another_host_fails_naming_the_host() {
    let pki = Pki::new(&["cos.elsewhere.test"]);
    let emu = tls_emulator(&pki, &[BUCKET]);
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = format!("cafile={}", pki.ca.display());
    let (code, err) = mount_daemon(&emu.endpoint, dir.path(), cache.path(), &opts, &[]);
    assert_refused(code, dir.path(), &err);
    assert!(
        err.contains("not valid for the host name 127.0.0.1") && err.contains("cos.elsewhere.test"),
        "{err}"
    );
}

#[test]
fn ssl_cert_file_is_honoured_like_a_cafile() {
    let pki = Pki::new(&["127.0.0.1"]);
    let emu = tls_emulator(&pki, &[BUCKET]);
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = pki.ca.to_str().unwrap();
    let (code, err) = mount_daemon(
        &emu.endpoint,
        dir.path(),
        cache.path(),
        "",
        &[("SSL_CERT_FILE", ca)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(is_mounted(dir.path()));
    fs::write(dir.path().join("f.txt"), b"via SSL_CERT_FILE").unwrap();
    let back = fs::read(dir.path().join("f.txt"));
    fusermount_u(dir.path());
    assert_eq!(back.unwrap(), b"via SSL_CERT_FILE");
    assert!(wait_until(Duration::from_secs(30), || !is_mounted(
        dir.path()
    )));
}

#[test]
fn vhost_puts_the_bucket_into_the_host_name_and_sni() {
    // The certificate names only BUCKET.localhost, and the emulator holds two buckets, so the
    // mount works only if the host name (SNI, certificate check, Host header) carries the
    // bucket and the paths do not.
    let vhost = format!("{BUCKET}.localhost");
    let pki = Pki::new(&[vhost.as_str()]);
    let emu = tls_emulator(&pki, &[BUCKET, OTHER]);
    let port = emu.addr.rsplit(':').next().unwrap();
    // The later url= wins over the harness's https://127.0.0.1 one; resolve= stands in for
    // DNS, which does not map *.localhost here.
    let opts = format!(
        "url=https://localhost:{port},vhost,resolve={vhost}:127.0.0.1,cafile={}",
        pki.ca.display()
    );
    let m = Mount::new(&emu, BUCKET, &opts);
    fs::write(m.p("v.txt"), b"virtual host").unwrap();
    fs::create_dir(m.p("sub")).unwrap();
    fs::rename(m.p("v.txt"), m.p("sub/v.txt")).unwrap();
    assert_eq!(fs::read(m.p("sub/v.txt")).unwrap(), b"virtual host");
    let cache = m.unmount();
    let m = Mount::with_cache(&emu, BUCKET, &opts, cache);
    assert_eq!(fs::read(m.p("sub/v.txt")).unwrap(), b"virtual host");
    m.unmount();
}
