//! `cosfuse-emulator`: a local, file-backed COS-compatible endpoint (issue 2 item 4).
//!
//! The emulator answers the COS XML object API the way the real service does (wire rules in
//! `docs/protocol.md`): q-sign (header and presigned) and SigV4 verification with COS's
//! error codes, path-style and virtual-hosted addressing, listing and paging, ranged and
//! conditional reads, copy, multipart, ACLs enforced for anonymous callers, archive restore,
//! CORS, POST Object; plus test-only extras: bounded fault injection and per-operation request
//! counters at `GET /-/stats` (`POST /-/stats/reset` or `GET /-/stats?reset` zeroes them, when
//! signed with the emulator's own credentials). Limits protect it from clients: XML nesting and
//! body sizes, a header-read timeout, a connection limit, a free-space guard, strict keys.
//!
//! Command line (`src/bin/cosfuse-emulator.rs`): `cosfuse-emulator --data DIR [--listen ADDR]
//! [--bucket NAME-APPID]... [--secret-id ID --secret-key KEY] [--region R] [--restore-delay SECS]
//! [--latency-ms N] [--slowdown-every N] [--drop-every N] [--error-in-200-every N]
//! [--fault-limit N] [--tls-cert FILE --tls-key FILE] [--header-timeout-secs S]
//! [--max-connections N] [--min-free-mb MB]`. The first stdout line is
//! `listening on http://127.0.0.1:PORT` (`https://` with `--tls-cert`, see [`tls`]).
//! Credentials also come from `COS_SECRET_ID` / `COS_SECRET_KEY`; with none at all the
//! [`DEFAULT_SECRET_ID`] / [`DEFAULT_SECRET_KEY`] pair is accepted (and printed to stderr).
//!
//! Layout: [`server`] (accept loop, addressing, auth, dispatch, common headers), [`auth`] (pure
//! verifier), `ops/` (one file per operation family), [`storage`] (data directory + index),
//! [`xml`] (the emulator's own XML), [`faults`], [`stats`], [`tls`] (certificate loading).
//!
//! In-process use (tests):
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cosfuse::emulator::{Emulator, EmulatorConfig, FaultConfig};
//! let dir = std::env::temp_dir().join("emu-doc");
//! let cfg = EmulatorConfig::new(&dir)
//!     .bucket("examplebucket-1250000000")
//!     .credential("AKIDexample", "secret");
//! let emu = Emulator::start(cfg).await?;
//! println!("{}", emu.endpoint()); // http://127.0.0.1:PORT
//! emu.faults().set(FaultConfig { slowdown_every: 3, limit: Some(2), ..FaultConfig::default() });
//! emu.state().set_restore_delay(std::time::Duration::from_secs(1));
//! println!("{}", emu.stats().get("PutObject"));
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
pub mod auth;
pub mod faults;
mod header_case;
mod ops;
mod render;
pub mod server;
pub mod stats;
pub mod storage;
pub mod tls;
pub mod xml;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FaultConfig, Faults};
pub use stats::Stats;
pub use storage::Storage;

/// Secret id used when no credentials are configured at all (printed to stderr by the binary).
pub const DEFAULT_SECRET_ID: &str = "AKIDcosfuseEMULATOR0000000000000000";
/// Secret key paired with [`DEFAULT_SECRET_ID`].
pub const DEFAULT_SECRET_KEY: &str = "cosfuseEMULATORsecretKEY00000000";

/// One accepted key pair. `Debug` never shows the secret key.
#[derive(Clone)]
pub struct Credential {
    /// The SecretId (`q-ak`, SigV4 access key id).
    pub secret_id: String,
    /// The SecretKey.
    pub secret_key: String,
    /// When set, requests with this id must carry this `x-cos-security-token`.
    pub token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credential {
    /// A permanent key pair.
    pub fn new(secret_id: &str, secret_key: &str) -> Credential {
        Credential {
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            token: None,
        }
    }
}

/// Everything needed to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Data directory (buckets, objects, uploads); survives restarts.
    pub data_dir: PathBuf,
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Buckets (`name-appid`) created at start.
    pub buckets: Vec<String>,
    /// Accepted credentials; empty means [`DEFAULT_SECRET_ID`]/[`DEFAULT_SECRET_KEY`].
    pub credentials: Vec<Credential>,
    /// Region reported in `x-cos-bucket-region` and used for SigV4 scopes.
    pub region: String,
    /// How long an archive restore takes.
    pub restore_delay: Duration,
    /// Initial fault injection (off by default).
    pub faults: FaultConfig,
    /// Serve HTTPS with this configuration (see [`tls::server_config`]); None = plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A connection that has not sent a complete request head within this time is closed, so
    /// half-sent requests cannot pin tasks and sockets (idle keep-alive connections too).
    pub header_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Writes that would leave less free space than this on the data directory's file system
    /// are refused with 503 `ServiceUnavailable` rather than filling the disk.
    pub min_free_bytes: u64,
}

/// Default for [`EmulatorConfig::header_timeout`]: hyper's own default. hyper also applies it
/// to idle keep-alive connections, and a shorter one would make clients (whose pools keep idle
/// connections for up to 90 s) race the server's close more often.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`EmulatorConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default for [`EmulatorConfig::min_free_bytes`] (64 MiB).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;

impl EmulatorConfig {
    /// Defaults: listen on `127.0.0.1:0`, no buckets, default credentials, `ap-guangzhou`,
    /// 3 s restore delay, no faults, and the `DEFAULT_*` limits.
    pub fn new(data_dir: &Path) -> EmulatorConfig {
        EmulatorConfig {
            data_dir: data_dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            buckets: Vec::new(),
            credentials: Vec::new(),
            region: "ap-guangzhou".to_string(),
            restore_delay: Duration::from_secs(3),
            faults: FaultConfig::default(),
            tls: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }

    /// Adds a bucket created at start (builder style).
    pub fn bucket(mut self, name: &str) -> EmulatorConfig {
        self.buckets.push(name.to_string());
        self
    }

    /// Adds an accepted key pair (builder style).
    pub fn credential(mut self, secret_id: &str, secret_key: &str) -> EmulatorConfig {
        self.credentials
            .push(Credential::new(secret_id, secret_key));
        self
    }
}

/// Shared state of a running emulator, handed to every request.
pub struct State {
    /// File-backed buckets.
    pub storage: Storage,
    /// Accepted credentials (never empty).
    pub credentials: Vec<Credential>,
    /// Region name.
    pub region: String,
    /// Fault injection switches.
    pub faults: Faults,
    /// Per-operation request counters.
    pub stats: Stats,
    /// See [`EmulatorConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`EmulatorConfig::max_connections`] (at least 1).
    pub max_connections: usize,
    /// See [`EmulatorConfig::min_free_bytes`].
    pub min_free_bytes: u64,
    /// Data directory, for the free-space guard.
    pub data_dir: PathBuf,
    /// Clock override in Unix seconds; `i64::MIN` = use the system clock.
    now_override: AtomicI64,
    /// Restore duration; guarded by a std mutex, never held across `.await`.
    restore_delay: Mutex<Duration>,
}

impl State {
    /// Builds the state: opens the data directory and creates the configured buckets.
    pub fn new(config: &EmulatorConfig) -> std::io::Result<State> {
        let storage = Storage::open(&config.data_dir)?;
        for b in &config.buckets {
            if !storage::valid_bucket_name(b) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("invalid bucket name {b:?} (expected NAME-APPID)"),
                ));
            }
            storage.create_bucket(b)?;
        }
        let credentials = if config.credentials.is_empty() {
            vec![Credential::new(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)]
        } else {
            config.credentials.clone()
        };
        Ok(State {
            storage,
            credentials,
            region: config.region.clone(),
            faults: Faults::new(config.faults.clone()),
            stats: Stats::default(),
            header_timeout: config.header_timeout,
            max_connections: config.max_connections.max(1),
            min_free_bytes: config.min_free_bytes,
            data_dir: config.data_dir.clone(),
            now_override: AtomicI64::new(i64::MIN),
            restore_delay: Mutex::new(config.restore_delay),
        })
    }

    /// Current time in Unix seconds (the override when set).
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Current time in Unix milliseconds (the override when set).
    pub fn now_ms(&self) -> i64 {
        match self.now_override.load(Ordering::Relaxed) {
            i64::MIN => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            s => s.saturating_mul(1000),
        }
    }

    /// Freezes the clock at `unix_secs` (None = back to the system clock).
    pub fn set_now(&self, unix_secs: Option<i64>) {
        self.now_override
            .store(unix_secs.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    /// How long a restore takes.
    pub fn restore_delay(&self) -> Duration {
        match self.restore_delay.lock() {
            Ok(d) => *d,
            Err(p) => *p.into_inner(),
        }
    }

    /// Changes how long restores started from now on take.
    pub fn set_restore_delay(&self, d: Duration) {
        match self.restore_delay.lock() {
            Ok(mut g) => *g = d,
            Err(p) => *p.into_inner() = d,
        }
    }

    /// Refuses a write of `incoming` more bytes when it would leave less than
    /// `min_free_bytes` available on the data directory's file system: 503
    /// `ServiceUnavailable`, which COS clients treat as "try again later" (an emulator whose
    /// disk filled up should be able to recover once space is freed, not corrupt its index).
    pub fn check_free_space(&self, incoming: u64) -> Result<(), ops::EmuError> {
        let Some(avail) = available_bytes(&self.data_dir) else {
            return Ok(());
        };
        if avail.saturating_sub(incoming) < self.min_free_bytes {
            log::warn!(
                "refusing a write of {incoming} bytes: {avail} bytes free, minimum {}",
                self.min_free_bytes
            );
            return Err(ops::EmuError::new(
                503,
                "ServiceUnavailable",
                "The server does not have enough free space to store this request.",
            ));
        }
        Ok(())
    }

    /// Looks up a credential by SecretId.
    pub fn credential(&self, secret_id: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.secret_id == secret_id)
    }
}

/// Bytes available to unprivileged writers on the file system holding `dir` (None when it
/// cannot be asked, in which case the guard stays out of the way).
fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
    let avail = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    Some(avail)
}

/// A running emulator: its address, shared state and a way to stop it.
pub struct Emulator {
    /// Bound address.
    addr: SocketAddr,
    /// Shared state (storage, faults, stats, clock).
    state: Arc<State>,
    /// Fires the shutdown future of `serve`.
    stop: Option<oneshot::Sender<()>>,
    /// The accept loop task.
    task: Option<JoinHandle<()>>,
    /// True when serving HTTPS (the endpoint's scheme).
    tls: bool,
}

impl Emulator {
    /// Binds `config.listen`, creates the buckets and serves in a background task.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        let state = Arc::new(State::new(&config)?);
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let tls = config.tls.clone();
        let https = tls.is_some();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            match tls {
                Some(t) => server::serve_tls(listener, st, t, stop).await,
                None => server::serve(listener, st, stop).await,
            }
        });
        Ok(Emulator {
            addr,
            state,
            stop: Some(tx),
            task: Some(task),
            tls: https,
        })
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Shared state: storage, clock (`set_now`), restore delay, faults and stats.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Fault injection switches (`set`, `clear`).
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Request counters (`snapshot`, `get`, `reset`).
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
