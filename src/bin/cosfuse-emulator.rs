//! `cosfuse-emulator`: a local, file-backed COS-compatible endpoint.
//!
//! Contract (scripts rely on it): the first stdout line is exactly
//! `listening on http://127.0.0.1:PORT` (`https://...` with `--tls-cert`/`--tls-key`), flushed
//! before any request is served.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use cosfuse::emulator::{
    server, Credential, EmulatorConfig, FaultConfig, State, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY,
};

/// A local COS (XML API) endpoint backed by a data directory.
#[derive(Parser, Debug)]
#[command(name = "cosfuse-emulator", version)]
struct Args {
    /// Data directory (created if missing); data survives restarts.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Bucket to create at start (NAME-APPID); repeatable.
    #[arg(long = "bucket")]
    buckets: Vec<String>,
    /// Accepted SecretId (also COS_SECRET_ID).
    #[arg(long, env = "COS_SECRET_ID", hide_env_values = true)]
    secret_id: Option<String>,
    /// Accepted SecretKey (also COS_SECRET_KEY).
    #[arg(long, env = "COS_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Region reported in x-cos-bucket-region.
    #[arg(long, default_value = "ap-guangzhou")]
    region: String,
    /// Seconds an archive restore takes.
    #[arg(long, default_value_t = 3.0)]
    restore_delay: f64,
    /// Close a connection whose request head is not complete (or that sits idle between
    /// requests) after this many seconds.
    #[arg(long, default_value_t = 30.0, help_heading = "Limits")]
    header_timeout_secs: f64,
    /// Serve at most this many connections at once (others wait in the listen backlog).
    #[arg(long, default_value_t = 512, help_heading = "Limits")]
    max_connections: usize,
    /// Refuse writes (503 ServiceUnavailable) that would leave less than this many MiB free on
    /// the data directory's file system.
    #[arg(long, default_value_t = 64, help_heading = "Limits")]
    min_free_mb: u64,
    /// Fault: latency added to every bucket request, in milliseconds.
    #[arg(long, default_value_t = 0, help_heading = "Fault injection")]
    latency_ms: u64,
    /// Fault: answer every Nth bucket request with 503 SlowDown.
    #[arg(long, default_value_t = 0, help_heading = "Fault injection")]
    slowdown_every: u64,
    /// Fault: drop the connection mid-body on every Nth object GET/PUT.
    #[arg(long, default_value_t = 0, help_heading = "Fault injection")]
    drop_every: u64,
    /// Fault: answer every Nth copy / complete-multipart with HTTP 200 and an <Error> body.
    #[arg(long, default_value_t = 0, help_heading = "Fault injection")]
    error_in_200_every: u64,
    /// Fault: stop injecting after this many faults in total.
    #[arg(long, help_heading = "Fault injection")]
    fault_limit: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let mut config = EmulatorConfig::new(&args.data);
    config.listen = args.listen;
    config.buckets = args.buckets.clone();
    config.region = args.region.clone();
    config.restore_delay = Duration::from_secs_f64(args.restore_delay.max(0.0));
    // At least 0.1 s: a zero timeout would close every connection before its first byte.
    config.header_timeout = Duration::from_secs_f64(args.header_timeout_secs.clamp(0.1, 86_400.0));
    config.max_connections = args.max_connections.max(1);
    config.min_free_bytes = args.min_free_mb.saturating_mul(1 << 20);
    config.faults = FaultConfig {
        latency_ms: args.latency_ms,
        slowdown_every: args.slowdown_every,
        drop_every: args.drop_every,
        error_in_200_every: args.error_in_200_every,
        limit: args.fault_limit,
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match cosfuse::emulator::tls::server_config(cert, key) {
            Ok(t) => config.tls = Some(t),
            Err(e) => {
                eprintln!("cosfuse-emulator: {e}");
                std::process::exit(2);
            }
        }
    }
    match (&args.secret_id, &args.secret_key) {
        (Some(id), Some(key)) => config.credentials.push(Credential::new(id, key)),
        (None, None) => eprintln!(
            "cosfuse-emulator: no credentials given; accepting the default pair\n  COS_SECRET_ID={DEFAULT_SECRET_ID}\n  COS_SECRET_KEY={DEFAULT_SECRET_KEY}"
        ),
        _ => {
            eprintln!("cosfuse-emulator: --secret-id and --secret-key must be given together");
            std::process::exit(2);
        }
    }
    let state = match State::new(&config) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!(
                "cosfuse-emulator: cannot start on {}: {e}",
                args.data.display()
            );
            std::process::exit(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cosfuse-emulator: cannot listen on {}: {e}", config.listen);
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cosfuse-emulator: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(out, "listening on {scheme}://{addr}");
    let _ = out.flush();
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    match config.tls {
        Some(tls) => server::serve_tls(listener, state, tls, shutdown).await,
        None => server::serve(listener, state, shutdown).await,
    }
}
