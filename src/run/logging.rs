//! Logging setup: env_logger to stderr (the terminal in the foreground, the log file once
//! daemonized, since the daemon's fd 2 is that file) or to `logfile=` in the foreground. A
//! daemon without `logfile=` logs to syslog/journald ([`super::syslog`]) when `/dev/log`
//! exists, as cosfs does; its fd 2 (`CACHE/cosfuse.log`) then only catches stray output.
//!
//! Level: `-d` or `loglevel=` when given, else `RUST_LOG`, else `info` for cosfuse and `warn` for
//! its dependencies (hyper and rustls are chatty at info).

use std::path::Path;

/// Installs the global logger. Safe to call once per process; later calls are ignored.
pub fn init(level: Option<log::LevelFilter>, file: Option<&Path>, daemon: bool) {
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Warn);
    b.filter_module("cosfuse", log::LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    if let Some(l) = level {
        b.filter_module("cosfuse", l);
        b.filter_module("fuser", l.min(log::LevelFilter::Info));
    }
    if daemon && file.is_none() {
        if let Ok(w) = super::syslog::SyslogWriter::connect(Path::new(super::syslog::DEV_LOG)) {
            let pid = std::process::id();
            b.format(move |buf, r| {
                use std::io::Write;
                writeln!(
                    buf,
                    "{}",
                    super::syslog::line(r.level(), pid, &format!("{}: {}", r.target(), r.args()))
                )
            });
            b.target(env_logger::Target::Pipe(Box::new(w)));
        }
    }
    // A daemon's stderr already is its log file (daemon::daemonize); in the foreground an
    // explicit logfile= takes the output away from the terminal.
    if !daemon {
        if let Some(path) = file {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => {
                    b.target(env_logger::Target::Pipe(Box::new(f)));
                }
                Err(e) => eprintln!("cosfuse: cannot open log file {}: {e}", path.display()),
            }
        }
    }
    let _ = b.try_init();
}
