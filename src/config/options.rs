//! The `-o` option language: every `name` / `name=value` item a user, fstab or `mount.fuse3` can
//! pass, parsed into [`MountOptions`] with one-line errors that name the offending option.
//!
//! Values are parsed here (numbers, sizes, durations, octal umask) but cross-field rules (url
//! vs region, bucket names) live in `config::Config::from_args`.

use std::path::PathBuf;
use std::time::Duration;

/// Options after parsing, before cross-field validation. `None` = not given (defaults later).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountOptions {
    /// `url=`: custom endpoint (path style), as cosfs spells it.
    pub url: Option<String>,
    /// `cafile=`: PEM CA bundles trusted on top of the system roots (repeatable).
    pub ca_files: Vec<PathBuf>,
    /// `vhost` (Some(true): bucket in the host name) or `use_path_request_style` (Some(false)).
    pub vhost: Option<bool>,
    /// `resolve=HOST:ADDR` name overrides (repeatable).
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// `region=`: COS region for the default endpoint.
    pub region: Option<String>,
    /// `passwd_file=`: credentials file.
    pub passwd_file: Option<PathBuf>,
    /// `allow_other`: other users may use the mount.
    pub allow_other: bool,
    /// `allow_root`: root may use the mount too.
    pub allow_root: bool,
    /// `uid=`: default owner.
    pub uid: Option<u32>,
    /// `gid=`: default group.
    pub gid: Option<u32>,
    /// `umask=` (octal): applied to default modes.
    pub umask: Option<u32>,
    /// `ro` (or `rw` for false; the last one wins).
    pub read_only: bool,
    /// `cache=`: staging and cache directory.
    pub cache: Option<PathBuf>,
    /// `attr_ttl=` seconds.
    pub attr_ttl: Option<Duration>,
    /// `neg_ttl=` seconds.
    pub neg_ttl: Option<Duration>,
    /// `op_timeout=` seconds.
    pub op_timeout: Option<Duration>,
    /// `list_ttl=` seconds.
    pub list_ttl: Option<Duration>,
    /// `revalidate=` seconds (`metadata_ttl=` as mountpoint-s3 spells it).
    pub revalidate: Option<Duration>,
    /// `part_size=` bytes (suffixes K, M, G).
    pub part_size: Option<u64>,
    /// `parallel=`: parts in flight per file.
    pub parallel: Option<usize>,
    /// `threads=`: threads reading requests from the kernel.
    pub threads: Option<usize>,
    /// `multipart_threshold=` bytes.
    pub multipart_threshold: Option<u64>,
    /// `read_cache=` bytes: size limit of the local read cache (0 disables it).
    pub read_cache: Option<u64>,
    /// `read_cache_evict=lru|fifo`: which cached ranges leave first.
    pub read_cache_evict: Option<crate::fs::readcache::Evict>,
    /// `read_block=` bytes: what a random read fetches at least (and the cache's chunk).
    pub read_block: Option<u64>,
    /// `read_fill_max=` bytes: objects up to this size read at random are downloaded whole
    /// into the read cache in the background (0: never).
    pub read_fill_max: Option<u64>,
    /// `readahead=` bytes: memory for read-ahead of sequential readers, all files together.
    pub readahead: Option<u64>,
    /// `retry_max_delay=` seconds: the longest wait between two attempts of a failed upload.
    pub retry_max_delay: Option<Duration>,
    /// `close_wait=` seconds: how long close waits for a small file's upload (0: not at all).
    pub close_wait: Option<Duration>,
    /// `storage_class=` for new objects.
    pub storage_class: Option<String>,
    /// `content_type=` (auto, off, or a type).
    pub content_type: Option<String>,
    /// `acl=`: canned ACL for new objects.
    pub acl: Option<String>,
    /// `loglevel=`.
    pub loglevel: Option<log::LevelFilter>,
    /// `logfile=`.
    pub logfile: Option<PathBuf>,
    /// `presign_expires=` seconds for `user.cos.url`.
    pub presign_expires: Option<Duration>,
    /// `fsname=` shown in mount tables (default `cosfuse`).
    pub fsname: Option<String>,
    /// Generic kernel flags passed through to the mount (`nosuid`, `nodev`, `noexec`, ...).
    pub kernel_flags: Vec<KernelFlag>,
}

/// Generic mount flags that reach the kernel; the others fstab passes are accepted and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFlag {
    /// `suid`.
    Suid,
    /// `nosuid`.
    NoSuid,
    /// `dev`.
    Dev,
    /// `nodev`.
    NoDev,
    /// `exec`.
    Exec,
    /// `noexec`.
    NoExec,
    /// `atime`.
    Atime,
    /// `noatime`.
    NoAtime,
    /// `sync`.
    Sync,
    /// `async`.
    Async,
    /// `dirsync`.
    DirSync,
}

/// Canned ACLs COS accepts on PUT.
pub const CANNED_ACLS: &[&str] = &["private", "public-read", "default"];

/// Storage classes COS accepts on PUT.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "ARCHIVE",
    "DEEP_ARCHIVE",
    "MAZ_STANDARD",
    "MAZ_STANDARD_IA",
    "MAZ_INTELLIGENT_TIERING",
];

/// Options fstab, mount(8) or libfuse users pass that mean nothing to us: accepted silently so an
/// fstab line written for any FUSE filesystem mounts.
const IGNORED: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "_netdev",
    "nofail",
    "relatime",
    "norelatime",
    "strictatime",
    "lazytime",
    "nolazytime",
    "default_permissions",
    "auto_unmount",
    "nonempty",
    "big_writes",
    "silent",
    "loud",
];

/// Parses option items (already split on commas). The first bad item is reported.
pub fn parse_items<S: AsRef<str>>(items: &[S]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    for item in items {
        parse_one(&mut o, item.as_ref().trim())?;
    }
    Ok(o)
}

fn parse_one(o: &mut MountOptions, item: &str) -> Result<(), String> {
    if item.is_empty() {
        return Ok(());
    }
    let (name, value) = match item.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (item, None),
    };
    // `x-systemd.*`, `x-gvfs-*` and `comment=` belong to fstab consumers, not to us.
    if name.starts_with("x-") || name == "comment" {
        return Ok(());
    }
    if IGNORED.contains(&name) {
        return no_value(name, value);
    }
    if let Some(flag) = kernel_flag(name) {
        no_value(name, value)?;
        o.kernel_flags.push(flag);
        return Ok(());
    }
    match name {
        "allow_other" => set_flag(&mut o.allow_other, name, value),
        "allow_root" => set_flag(&mut o.allow_root, name, value),
        "ro" => {
            no_value(name, value)?;
            o.read_only = true;
            Ok(())
        }
        "rw" => {
            no_value(name, value)?;
            o.read_only = false;
            Ok(())
        }
        // s3fs/cosfs know only the opposite switch; both are accepted, the last one wins.
        "vhost" | "use_path_request_style" => {
            no_value(name, value)?;
            o.vhost = Some(name == "vhost");
            Ok(())
        }
        _ => {
            let v =
                value.ok_or_else(|| format!("mount option '{name}' needs a value ({name}=...)"))?;
            parse_valued(o, name, v)
        }
    }
}

fn parse_valued(o: &mut MountOptions, name: &str, v: &str) -> Result<(), String> {
    let bad = |what: &str| format!("mount option '{name}={v}': {what}");
    if v.is_empty() {
        return Err(bad("empty value"));
    }
    match name {
        "url" => o.url = Some(v.to_string()),
        "region" => o.region = Some(v.to_string()),
        "cafile" => o.ca_files.push(PathBuf::from(v)),
        "resolve" => o
            .resolve
            .push(super::tls::parse_resolve(v).map_err(|e| bad(&e))?),
        "passwd_file" => o.passwd_file = Some(PathBuf::from(v)),
        "uid" => o.uid = Some(v.parse().map_err(|_| bad("expected a numeric uid"))?),
        "gid" => o.gid = Some(v.parse().map_err(|_| bad("expected a numeric gid"))?),
        "umask" => {
            let m =
                u32::from_str_radix(v, 8).map_err(|_| bad("expected an octal umask like 022"))?;
            if m > 0o777 {
                return Err(bad("umask must be at most 0777"));
            }
            o.umask = Some(m);
        }
        "cache" | "use_cache" => o.cache = Some(PathBuf::from(v)),
        "list_ttl" => o.list_ttl = Some(duration(v).map_err(|e| bad(&e))?),
        "op_timeout" => {
            let d = duration(v).map_err(|e| bad(&e))?;
            if d.is_zero() {
                return Err(bad("must be more than 0"));
            }
            o.op_timeout = Some(d)
        }
        "revalidate" | "metadata_ttl" => o.revalidate = Some(duration(v).map_err(|e| bad(&e))?),
        "attr_ttl" | "stat_cache_expire" => o.attr_ttl = Some(duration(v).map_err(|e| bad(&e))?),
        "neg_ttl" => o.neg_ttl = Some(duration(v).map_err(|e| bad(&e))?),
        "presign_expires" => {
            let d = duration(v).map_err(|e| bad(&e))?;
            if d.is_zero() {
                return Err(bad("must be at least 1 second"));
            }
            o.presign_expires = Some(d);
        }
        "part_size" | "multipart_size" => {
            let s = size(v).map_err(|e| bad(&e))?;
            // COS: parts are 1 MiB .. 5 GiB (the last part may be smaller).
            if !(1 << 20..=5 << 30).contains(&s) {
                return Err(bad("part size must be between 1M and 5G"));
            }
            o.part_size = Some(s);
        }
        "multipart_threshold" => o.multipart_threshold = Some(size(v).map_err(|e| bad(&e))?),
        "read_cache" => o.read_cache = Some(size(v).map_err(|e| bad(&e))?),
        "read_cache_evict" => {
            o.read_cache_evict =
                Some(crate::fs::readcache::Evict::parse(v).ok_or_else(|| bad("lru or fifo"))?)
        }
        "read_block" => {
            let s = size(v).map_err(|e| bad(&e))?;
            if !(4 << 10..=64 << 20).contains(&s) {
                return Err(bad("must be between 4K and 64M"));
            }
            o.read_block = Some(s);
        }
        "readahead" => o.readahead = Some(size(v).map_err(|e| bad(&e))?),
        "read_fill_max" => o.read_fill_max = Some(size(v).map_err(|e| bad(&e))?),
        "close_wait" => o.close_wait = Some(duration(v).map_err(|e| bad(&e))?),
        "retry_max_delay" => {
            let d = duration(v).map_err(|e| bad(&e))?;
            // Zero would retry a failing upload in a tight loop.
            if d < Duration::from_millis(100) {
                return Err(bad("must be at least 0.1 seconds"));
            }
            o.retry_max_delay = Some(d);
        }
        "parallel" | "parallel_count" => {
            let n: usize = v.parse().map_err(|_| bad("expected a number"))?;
            if !(1..=64).contains(&n) {
                return Err(bad("must be between 1 and 64"));
            }
            o.parallel = Some(n);
        }
        "threads" | "max_threads" => {
            let n: usize = v.parse().map_err(|_| bad("expected a number"))?;
            if !(1..=16).contains(&n) {
                return Err(bad("must be between 1 and 16"));
            }
            o.threads = Some(n);
        }
        "content_type" => {
            // auto | off | TYPE/SUBTYPE
            if !(v == "auto" || v == "off" || (v.contains('/') && !v.contains(char::is_whitespace)))
            {
                return Err(bad("expected auto, off or a type such as text/plain"));
            }
            o.content_type = Some(v.to_string());
        }
        "storage_class" => {
            let up = v.to_ascii_uppercase();
            if !STORAGE_CLASSES.contains(&up.as_str()) {
                return Err(bad(&format!(
                    "unknown class (one of {})",
                    STORAGE_CLASSES.join(", ")
                )));
            }
            o.storage_class = Some(up);
        }
        "acl" | "default_acl" => {
            if !CANNED_ACLS.contains(&v) {
                return Err(bad(&format!(
                    "unknown canned ACL (one of {})",
                    CANNED_ACLS.join(", ")
                )));
            }
            o.acl = Some(v.to_string());
        }
        "loglevel" | "dbglevel" => {
            o.loglevel = Some(
                v.parse()
                    .map_err(|_| bad("expected error, warn, info, debug or trace"))?,
            )
        }
        "logfile" => o.logfile = Some(PathBuf::from(v)),
        "fsname" => o.fsname = Some(v.to_string()),
        // mount.fuse passes the type it was called for; ours is fixed. cosfs's `cam_role=sts`
        // only announced an STS passwd file, which we recognise by its content.
        "subtype" | "cam_role" => {}
        _ => return Err(format!("unknown mount option '{name}'")),
    }
    Ok(())
}

fn kernel_flag(name: &str) -> Option<KernelFlag> {
    Some(match name {
        "suid" => KernelFlag::Suid,
        "nosuid" => KernelFlag::NoSuid,
        "dev" => KernelFlag::Dev,
        "nodev" => KernelFlag::NoDev,
        "exec" => KernelFlag::Exec,
        "noexec" => KernelFlag::NoExec,
        "atime" => KernelFlag::Atime,
        "noatime" => KernelFlag::NoAtime,
        "sync" => KernelFlag::Sync,
        "async" => KernelFlag::Async,
        "dirsync" => KernelFlag::DirSync,
        _ => return None,
    })
}

fn no_value(name: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) => Err(format!(
            "mount option '{name}' takes no value (got '{name}={v}')"
        )),
    }
}

fn set_flag(slot: &mut bool, name: &str, value: Option<&str>) -> Result<(), String> {
    no_value(name, value)?;
    *slot = true;
    Ok(())
}

/// Parses a byte size: a plain number, or with a K/M/G/T suffix (binary, `KiB`/`KB` allowed).
pub fn size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a size like 8M".to_string())?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown size unit '{unit}'")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| "size too large".to_string())
}

/// Parses seconds (`30`, `0.5`, or with an `s`/`m`/`h` suffix).
pub fn duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (num, mult) = match v.chars().last() {
        Some('s') => (&v[..v.len() - 1], 1.0),
        Some('m') => (&v[..v.len() - 1], 60.0),
        Some('h') => (&v[..v.len() - 1], 3600.0),
        _ => (v, 1.0),
    };
    let secs: f64 = num
        .parse()
        .map_err(|_| "expected seconds like 30".to_string())?;
    let total = secs * mult;
    if !total.is_finite() || !(0.0..=1e9).contains(&total) {
        return Err("expected a non-negative number of seconds".into());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[&str]) -> MountOptions {
        parse_items(items).unwrap()
    }

    fn err(items: &[&str]) -> String {
        parse_items(items).unwrap_err()
    }

    #[test]
    fn every_valued_option_parses() {
        let o = p(&[
            "url=http://127.0.0.1:9",
            "region=ap-guangzhou",
            "passwd_file=/etc/pw",
            "uid=1000",
            "gid=100",
            "umask=027",
            "cache=/var/c",
            "attr_ttl=2",
            "neg_ttl=0.5",
            "part_size=16M",
            "parallel=8",
            "multipart_threshold=64MiB",
            "read_cache=2G",
            "read_cache_evict=FIFO",
            "read_block=256K",
            "readahead=0",
            "read_fill_max=64M",
            "retry_max_delay=2.5",
            "close_wait=0",
            "storage_class=standard_ia",
            "acl=public-read",
            "loglevel=debug",
            "logfile=/var/log/c.log",
            "presign_expires=600",
            "fsname=mine",
            "subtype=cosfuse",
            "cafile=/etc/ca.pem",
            "cafile=ca2.pem",
            "resolve=b-1.localhost:127.0.0.1",
        ]);
        assert_eq!(
            o.ca_files,
            [PathBuf::from("/etc/ca.pem"), PathBuf::from("ca2.pem")]
        );
        assert_eq!(o.resolve[0].0, "b-1.localhost");
        assert_eq!(o.url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(o.region.as_deref(), Some("ap-guangzhou"));
        assert_eq!(o.passwd_file, Some(PathBuf::from("/etc/pw")));
        assert_eq!(
            (o.uid, o.gid, o.umask),
            (Some(1000), Some(100), Some(0o027))
        );
        assert_eq!(o.cache, Some(PathBuf::from("/var/c")));
        assert_eq!(o.attr_ttl, Some(Duration::from_secs(2)));
        assert_eq!(o.neg_ttl, Some(Duration::from_millis(500)));
        assert_eq!(o.part_size, Some(16 << 20));
        assert_eq!(o.parallel, Some(8));
        assert_eq!(o.multipart_threshold, Some(64 << 20));
        assert_eq!(o.read_cache, Some(2 << 30));
        assert_eq!(o.read_cache_evict, Some(crate::fs::readcache::Evict::Fifo));
        assert_eq!((o.read_block, o.readahead), (Some(256 << 10), Some(0)));
        assert_eq!(o.read_fill_max, Some(64 << 20));
        assert_eq!(o.retry_max_delay, Some(Duration::from_millis(2500)));
        assert_eq!(o.close_wait, Some(Duration::ZERO));
        assert_eq!(o.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(o.acl.as_deref(), Some("public-read"));
        assert_eq!(o.loglevel, Some(log::LevelFilter::Debug));
        assert_eq!(o.logfile, Some(PathBuf::from("/var/log/c.log")));
        assert_eq!(o.presign_expires, Some(Duration::from_secs(600)));
        assert_eq!(o.fsname.as_deref(), Some("mine"));
    }

    #[test]
    fn flags_and_generic_fstab_options_are_accepted() {
        let o = p(&[
            "allow_other",
            "allow_root",
            "rw",
            "ro",
            "suid",
            "nosuid",
            "dev",
            "nodev",
            "exec",
            "noexec",
            "auto",
            "noauto",
            "user",
            "_netdev",
            "defaults",
            "nofail",
            "noatime",
            "x-systemd.automount",
            "comment=hi",
            "default_permissions",
        ]);
        assert!(o.allow_other && o.allow_root && o.read_only);
        assert_eq!(
            o.kernel_flags,
            vec![
                KernelFlag::Suid,
                KernelFlag::NoSuid,
                KernelFlag::Dev,
                KernelFlag::NoDev,
                KernelFlag::Exec,
                KernelFlag::NoExec,
                KernelFlag::NoAtime
            ]
        );
        assert!(!p(&["ro", "rw"]).read_only, "the last of ro/rw wins");
        assert_eq!(p(&["vhost"]).vhost, Some(true));
        assert_eq!(p(&["vhost", "use_path_request_style"]).vhost, Some(false));
        assert_eq!(p(&[]).vhost, None);
    }

    #[test]
    fn unknown_and_malformed_options_name_themselves() {
        assert_eq!(
            err(&["no_such_option=1"]),
            "unknown mount option 'no_such_option'"
        );
        assert!(err(&["bogus"]).contains("'bogus'"));
        assert!(err(&["uid=abc"]).contains("uid=abc"));
        assert!(err(&["umask=99"]).contains("umask=99"));
        assert!(err(&["umask=1777"]).contains("umask"));
        assert!(err(&["attr_ttl=-1"]).contains("attr_ttl"));
        assert!(err(&["part_size=1K"]).contains("part_size"));
        assert!(err(&["part_size=8X"]).contains("unit"));
        assert!(err(&["parallel=0"]).contains("parallel"));
        assert!(err(&["threads=0"]).contains("threads=0"));
        assert!(err(&["threads=17"]).contains("between 1 and 16"));
        assert!(err(&["read_cache_evict=mru"]).contains("read_cache_evict"));
        assert!(err(&["read_block=1K"]).contains("read_block"));
        assert!(err(&["storage_class=COLD"]).contains("storage_class=COLD"));
        assert!(err(&["acl=everyone"]).contains("acl=everyone"));
        assert!(err(&["loglevel=loud"]).contains("loglevel"));
        assert!(err(&["presign_expires=0"]).contains("presign_expires"));
        assert!(err(&["retry_max_delay=0"]).contains("retry_max_delay"));
        assert!(err(&["close_wait=-1"]).contains("close_wait"));
        assert!(err(&["op_timeout=0"]).contains("op_timeout"));
        assert!(err(&["content_type=text html"]).contains("content_type"));
        assert!(err(&["url"]).contains("needs a value"));
        assert!(err(&["url="]).contains("empty"));
        assert!(err(&["ro=1"]).contains("takes no value"));
        assert!(err(&["nodev=yes"]).contains("nodev"));
        assert!(err(&["vhost=1"]).contains("takes no value"));
        assert!(err(&["resolve=h"]).contains("resolve=h"));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size("123").unwrap(), 123);
        assert_eq!(size("4k").unwrap(), 4096);
        assert_eq!(size("1G").unwrap(), 1 << 30);
        assert!(size("M").is_err());
        assert!(size("99999999999T").is_err());
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(duration("soon").is_err());
    }
}
