//! Shared harness for the real-mount integration tests: starts `cosfuse-emulator` (the binary)
//! on 127.0.0.1, mounts buckets with the `cosfuse` binary in the foreground, and talks to the
//! emulator over plain signed HTTP so tests can create objects directly and read its request
//! counters (`GET /-/stats`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cosfuse::cos::sign;

/// Test credentials the emulator is started with.
pub const SECRET_ID: &str = "AKIDcosfuseTEST0000000000000000000";
/// Test secret key.
pub const SECRET_KEY: &str = "cosfuseTESTsecretKEY000000000000";

/// A running `cosfuse-emulator` process.
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when started with `--tls-cert`).
    pub endpoint: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its data directory.
    pub data: tempfile::TempDir,
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Emulator {
    /// Starts an emulator with the given buckets and extra flags.
    pub fn start(buckets: &[&str], extra: &[&str]) -> Emulator {
        let data = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosfuse-emulator"));
        cmd.arg("--data").arg(data.path());
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--secret-id",
            SECRET_ID,
            "--secret-key",
            SECRET_KEY,
        ]);
        for b in buckets {
            cmd.args(["--bucket", b]);
        }
        cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let addr = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        Emulator {
            child,
            endpoint,
            addr,
            data,
        }
    }

    /// Sends one signed request (path style: `/bucket/key`) and returns status, headers, body.
    pub fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.request_as(
            SECRET_ID, SECRET_KEY, method, bucket, key, query, headers, body,
        )
    }

    /// Like `request`, with explicit credentials.
    #[allow(clippy::too_many_arguments)]
    pub fn request_as(
        &self,
        id: &str,
        secret: &str,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let path = format!("/{bucket}/{key}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let len = body.len().to_string();
        let mut signed: Vec<(&str, &str)> = headers.to_vec();
        signed.push(("host", &self.addr));
        signed.push(("content-length", &len));
        let auth = sign::authorization(
            id,
            secret,
            method,
            &path,
            query,
            &signed,
            now - 60,
            now + 600,
        );
        let mut all: Vec<(String, String)> = signed
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        all.push(("authorization".into(), auth));
        let target = encode_target(&path, query);
        raw_http(&self.addr, method, &target, &all, body)
    }

    /// PUT an object directly (bypassing any mount).
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let r = self.request("PUT", bucket, key, &[], &[], body);
        assert_eq!(
            r.status,
            200,
            "PUT {key}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// GET an object directly, retrying the emulator's injected faults (bounded: 20 tries).
    pub fn get_retrying(&self, bucket: &str, key: &str) -> Vec<u8> {
        for _ in 0..20 {
            if let Some(r) = self.try_request("GET", bucket, key) {
                let complete = r
                    .header("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_none_or(|n| n == r.body.len());
                // A dropped connection mid-body shows as a short body.
                if r.status == 200 && complete {
                    return r.body;
                }
                if r.status == 200 {
                    continue;
                }
                assert!(r.status >= 500, "GET {key}: {}", r.status);
            }
        }
        panic!("GET {key}: still failing after 20 tries");
    }

    /// GET an object directly: its body when it is there (200), else None.
    #[allow(dead_code)]
    pub fn try_get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.try_request("GET", bucket, key)
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    }

    /// One signed request that tolerates a dropped connection (None).
    fn try_request(&self, method: &str, bucket: &str, key: &str) -> Option<Response> {
        let this = std::panic::AssertUnwindSafe(self);
        std::panic::catch_unwind(move || this.request(method, bucket, key, &[], &[], b"")).ok()
    }

    /// HEAD an object directly; returns the response.
    pub fn head(&self, bucket: &str, key: &str) -> Response {
        self.request("HEAD", bucket, key, &[], &[], b"")
    }

    /// GET an object directly; returns its body (panics unless 200).
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let r = self.request("GET", bucket, key, &[], &[], b"");
        assert_eq!(r.status, 200, "GET {key}");
        r.body
    }

    /// The emulator's per-operation request counters.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let r = raw_http(&self.addr, "GET", "/-/stats", &[], b"");
        assert_eq!(r.status, 200, "stats");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("stats json");
        v["requests"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills the emulator process (to simulate an unreachable endpoint).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After `kill`: starts a new emulator on the same address and data directory (objects and
    /// buckets survive), as a backend coming back after an outage. `extra` are fault flags.
    /// The port may be briefly unavailable after the kill: bounded retries (10 × 200 ms).
    pub fn start_again(&mut self, buckets: &[&str], extra: &[&str]) {
        for _ in 0..10 {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosfuse-emulator"));
            cmd.arg("--data").arg(self.data.path());
            cmd.args([
                "--listen",
                &self.addr,
                "--secret-id",
                SECRET_ID,
                "--secret-key",
                SECRET_KEY,
            ]);
            for b in buckets {
                cmd.args(["--bucket", b]);
            }
            cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
            let mut child = cmd.spawn().expect("spawn emulator");
            let stdout = child.stdout.take().expect("stdout");
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim().starts_with("listening on ") {
                self.child = child;
                return;
            }
            // Bind failed (the old socket not yet released): try again shortly.
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("emulator could not listen on {} again", self.addr);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counter differences `after - before` for the named operation.
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, op: &str) -> u64 {
    after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0)
}

/// A plain HTTP/1.1 response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// First header value with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn encode_target(path: &str, query: &[(&str, &str)]) -> String {
    let enc: String = path
        .split('/')
        .map(sign::cos_encode)
        .collect::<Vec<_>>()
        .join("/");
    if query.is_empty() {
        enc
    } else {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    sign::cos_encode(k)
                } else {
                    format!("{}={}", sign::cos_encode(k), sign::cos_encode(v))
                }
            })
            .collect();
        format!("{enc}?{}", q.join("&"))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), read to the end.
pub fn raw_http(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect emulator");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    let mut has_host = false;
    let mut has_len = false;
    for (n, v) in headers {
        has_host |= n.eq_ignore_ascii_case("host");
        has_len |= n.eq_ignore_ascii_case("content-length");
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !has_host {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    if !has_len {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    parse_response(&buf, method == "HEAD")
}

fn parse_response(buf: &[u8], head: bool) -> Response {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head_text = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let raw = &buf[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(raw)
    } else {
        raw.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..pos]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        raw = &raw[pos + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[..size.min(raw.len())]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    out
}

/// Unmounts `dir` cleanly (`fusermount3 -u`), retrying while it is busy (bounded: 10 s).
///
/// A process another test thread is starting holds a copy of every descriptor of this test
/// process between its fork and its exec, files of this mount included, so a clean unmount can
/// briefly find the mount busy.
pub fn fusermount_u(dir: &Path) {
    let unmounted = wait_until(Duration::from_secs(10), || {
        let out = Command::new("fusermount3")
            .arg("-u")
            .arg(dir)
            .output()
            .expect("fusermount3");
        let busy = String::from_utf8_lossy(&out.stderr).contains("busy");
        assert!(
            out.status.success() || busy,
            "fusermount3 -u failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    });
    assert!(unmounted, "fusermount3 -u: the mount stayed busy for 10 s");
}

/// A live `cosfuse` mount (the binary, run in the foreground with `-f`).
pub struct Mount {
    child: Option<Child>,
    /// The mount point.
    pub dir: tempfile::TempDir,
    /// The cache directory (kept across remounts when reused).
    pub cache: PathBuf,
    /// Where the daemon's stderr goes.
    pub log: PathBuf,
}

/// True when `dir` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mounted(dir: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = dir.to_string_lossy().to_string();
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Runs `cosfuse` to mount `bucket` with `-o url=...` plus `opts`; returns the process handle
/// without waiting (for mount-failure tests).
pub fn spawn_cosfuse(
    emu_endpoint: &str,
    bucket: &str,
    dir: &Path,
    cache: &Path,
    opts: &str,
    log: &Path,
) -> Child {
    let mut o = format!("url={emu_endpoint},cache={}", cache.display());
    if !opts.is_empty() {
        o.push(',');
        o.push_str(opts);
    }
    let logf = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg(bucket)
        .arg(dir)
        .args(["-f", "-o", &o])
        .env("COS_SECRET_ID", SECRET_ID)
        .env("COS_SECRET_KEY", SECRET_KEY)
        // COSFUSE_TEST_LOG=debug keeps more of the daemon's story when chasing a failure.
        .env(
            "RUST_LOG",
            std::env::var("COSFUSE_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .expect("spawn cosfuse")
}

impl Mount {
    /// Mounts `bucket` of `emu` on a fresh directory with a fresh cache directory.
    pub fn new(emu: &Emulator, bucket: &str, opts: &str) -> Mount {
        let cache = tempfile::tempdir().expect("cache").keep();
        Mount::with_cache(emu, bucket, opts, cache)
    }

    /// Mounts with a given cache directory (to test recovery across daemons).
    pub fn with_cache(emu: &Emulator, bucket: &str, opts: &str, cache: PathBuf) -> Mount {
        let dir = tempfile::tempdir().expect("mountpoint");
        let log = cache.with_extension("log");
        let mut child = spawn_cosfuse(&emu.endpoint, bucket, dir.path(), &cache, opts, &log);
        let ok = wait_until(Duration::from_secs(30), || {
            is_mounted(dir.path()) || matches!(child.try_wait(), Ok(Some(_)))
        });
        if !ok || !is_mounted(dir.path()) {
            let _ = child.kill();
            panic!(
                "mount failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Mount {
            child: Some(child),
            dir,
            cache,
            log,
        }
    }

    /// The mount point path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path()/rel`.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Unmounts cleanly (fusermount3 -u) and waits for the daemon to exit (it drains uploads).
    pub fn unmount(mut self) -> PathBuf {
        fusermount_u(self.dir.path());
        if let Some(mut c) = self.child.take() {
            let exited = wait_until(Duration::from_secs(120), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            assert!(exited, "daemon did not exit after unmount");
        }
        self.cache.clone()
    }

    /// Kills the daemon with SIGKILL (simulated crash) and detaches the dead mount.
    pub fn kill9(mut self) -> PathBuf {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(self.dir.path())
            .status();
        self.cache.clone()
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(self.dir.path())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cosfuse ARGS... MOUNTPOINT` (a tool subcommand against a live mount), panicking with
/// its stderr when it fails; returns stdout.
pub fn cosfuse_tool(args: &[&str], m: &Mount) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .args(args)
        .arg(m.path())
        .output()
        .expect("spawn cosfuse");
    assert!(
        out.status.success(),
        "cosfuse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs a shell command in `cwd`, panicking with its output when it fails; returns stdout.
pub fn sh(cwd: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes `data` to `path` (created, or truncated) from a child process (`dd`), so this test
/// process never holds a descriptor of the file.
///
/// Why: FUSE gets a FLUSH at every close of a descriptor, and a program that another test
/// thread starts meanwhile inherits a copy of every open descriptor and closes it at `exec`
/// (close-on-exec). cosfuse treats that FLUSH like any close and hands the half-written file to
/// the upload queue as a task of its own; a test that expects one task (or one upload) per
/// `fs::write` then sees two. `dd` starts no programs while it holds the file.
pub fn write_in_child(path: &Path, data: &[u8]) {
    let src = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(src.path(), data).expect("write temp file");
    let out = Command::new("dd")
        .arg(format!("if={}", src.path().display()))
        .arg(format!("of={}", path.display()))
        .args(["bs=1M", "status=none"])
        .output()
        .expect("spawn dd");
    assert!(
        out.status.success(),
        "dd to {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `None` when `got == want`, else what differs: both lengths and the first differing offset
/// (a prefix shows up as a shorter length with no differing byte).
pub fn difference(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    Some(format!(
        "{} bytes, expected {}; first differing byte at {}",
        got.len(),
        want.len(),
        first.map_or("none (one is a prefix of the other)".to_string(), |o| o
            .to_string())
    ))
}

/// Deterministic pseudo-random bytes (xorshift), so content checks need no stored fixtures.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
