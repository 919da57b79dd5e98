//! Typed, validated configuration and credentials (with a redacting `Debug`).
//!
//! The command line (`cli`) is turned into a [`Config`] exactly once, here; past this point
//! nothing re-checks strings. Sub-modules: `options` (the `-o` language), `credentials` and
//! `passwd` (where keys come from), `tls` (trusted CAs, name overrides, vhost addressing).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod credentials;
pub mod options;
pub mod passwd;
pub mod tls;

pub use credentials::{
    CredentialSources, Credentials, CredentialsError, CredentialsProvider, PasswdFileProvider,
    Secret, StaticCredentials,
};
pub use options::{KernelFlag, MountOptions};
pub use tls::TlsOptions;

/// A validated bucket name, `NAME-APPID` (`[a-z0-9-]`, APPID numeric, at most 50 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketName(String);

impl BucketName {
    /// Validates `s` against the COS bucket naming rules.
    pub fn parse(s: &str) -> Result<BucketName, String> {
        let bad = |why: &str| format!("invalid bucket name '{s}': {why}");
        let (name, appid) = s
            .rsplit_once('-')
            .ok_or_else(|| bad("expected NAME-APPID, e.g. photos-1250000000"))?;
        if name.is_empty() || appid.is_empty() || !appid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "expected NAME-APPID with a numeric APPID, e.g. photos-1250000000",
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("only lower-case letters, digits and '-' are allowed"));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(bad("the name must not start or end with '-'"));
        }
        if s.len() > 50 {
            return Err(bad("at most 50 characters including the APPID"));
        }
        Ok(BucketName(s.to_string()))
    }

    /// The full name, `NAME-APPID`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How requests address the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressStyle {
    /// `https://BUCKET.cos.REGION.myqcloud.com/key` (COS's default).
    VirtualHosted,
    /// `http://HOST:PORT/BUCKET/key` (emulator, private deployments).
    PathStyle,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash; for virtual-hosted style the host already
    /// starts with the bucket.
    pub base_url: String,
    /// Addressing style.
    pub style: AddressStyle,
    /// The region when known (given, or read off a `cos.REGION.myqcloud.com` host).
    pub region: Option<String>,
}

impl Endpoint {
    /// Builds the endpoint from `url=` and/or `region=`.
    pub fn resolve(
        bucket: &BucketName,
        url: Option<&str>,
        region: Option<&str>,
    ) -> Result<Endpoint, String> {
        if let Some(r) = region {
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("invalid region '{r}' (expected e.g. ap-guangzhou)"));
            }
        }
        let Some(url) = url else {
            let region = region
                .ok_or("no endpoint: give -o region=REGION (e.g. ap-guangzhou) or -o url=URL")?;
            return Ok(Endpoint {
                base_url: format!("https://{}.cos.{region}.myqcloud.com", bucket.as_str()),
                style: AddressStyle::VirtualHosted,
                region: Some(region.to_string()),
            });
        };
        let bad = |why: &str| format!("invalid url '{url}': {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://HOST[:PORT] or https://HOST"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty()
            || host_port.contains('/')
            || host_port.contains('?')
            || host_port.contains('@')
        {
            return Err(bad("expected only scheme://host[:port], without a path"));
        }
        let host = match host_port.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || host_port.starts_with('[') => {
                p.parse::<u16>()
                    .map_err(|_| bad("the port must be a number"))?;
                h
            }
            _ => host_port,
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        // cosfs's url= names the region endpoint (cos.REGION.myqcloud.com); the bucket then
        // goes in front of the host, as COS expects. Any other host is addressed path-style.
        let host_region = host
            .strip_prefix("cos.")
            .and_then(|h| h.strip_suffix(".myqcloud.com"))
            .map(str::to_string);
        let (base_url, style) = if host_region.is_some() {
            (
                format!("{scheme}://{}.{host_port}", bucket.as_str()),
                AddressStyle::VirtualHosted,
            )
        } else if host.starts_with(&format!("{}.", bucket.as_str())) {
            (
                format!("{scheme}://{host_port}"),
                AddressStyle::VirtualHosted,
            )
        } else {
            (format!("{scheme}://{host_port}"), AddressStyle::PathStyle)
        };
        Ok(Endpoint {
            base_url,
            style,
            region: region.map(str::to_string).or(host_region),
        })
    }
}

/// Kernel-facing mount settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FuseOptions {
    /// `allow_other`.
    pub allow_other: bool,
    /// `allow_root`.
    pub allow_root: bool,
    /// `ro`.
    pub read_only: bool,
    /// Pass-through flags (`nosuid`, `nodev`, ...).
    pub kernel_flags: Vec<KernelFlag>,
    /// fsname in the mount table.
    pub fsname: String,
    /// Threads that read requests from the kernel (`threads=`, default [`DEFAULT_THREADS`]).
    pub threads: usize,
}

/// Ownership given to objects that carry no `x-cos-meta-uid/gid/mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Default uid (default: the mounting user).
    pub uid: u32,
    /// Default gid (default: the mounting user's group).
    pub gid: u32,
    /// Umask applied to the default modes 0777 (dirs) and 0666 (files).
    pub umask: u32,
}

/// Metadata cache lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    /// Attributes of files and directories.
    pub attr: Duration,
    /// "Does not exist" answers.
    pub negative: Duration,
    /// An open revalidates a file whose attributes are older than this (close-to-open).
    pub revalidate: Duration,
    /// A directory listing is reused this long.
    pub list: Duration,
}

/// Upload tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadTuning {
    /// Multipart part size in bytes.
    pub part_size: u64,
    /// Parts in flight per file.
    pub parallel: usize,
    /// Files at least this large go multipart.
    pub multipart_threshold: u64,
    /// Longest wait between two attempts of an upload that failed with a transient error.
    pub retry_max_delay: Duration,
    /// How long close waits for the upload of a file up to 8 MiB (zero: close returns once
    /// the data is in the local cache, and uploads of many closed files run in parallel).
    pub close_wait: Duration,
}

/// Read tuning (see `fs::read` and `fs::readcache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTuning {
    /// Size limit of the read cache in bytes (0: none).
    pub cache_size: u64,
    /// Eviction policy of the read cache.
    pub evict: crate::fs::readcache::Evict,
    /// Smallest fetch of a random read, and the cache's chunk.
    pub block: u64,
    /// Read-ahead memory of all sequential readers together, in bytes.
    pub readahead: u64,
    /// Objects up to this size read at random are filled into the read cache (0: never).
    pub fill_max: u64,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Explicit level (`-d` = debug, `loglevel=`); None = `RUST_LOG` or info.
    pub level: Option<log::LevelFilter>,
    /// `logfile=`; a daemon without one logs to syslog/journald (`CACHE/cosfuse.log` when there
    /// is no `/dev/log`).
    pub file: Option<PathBuf>,
}

/// Everything a mount needs, validated. Holds no secrets (credentials are resolved separately).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The bucket.
    pub bucket: BucketName,
    /// Key prefix mounted as the root: "" or `dir/sub/` (always ends in `/`).
    pub prefix: String,
    /// Absolute, canonical mount point.
    pub mountpoint: PathBuf,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// Extra trusted CAs and name overrides for the endpoint.
    pub tls: TlsOptions,
    /// `passwd_file=`, absolute.
    pub passwd_file: Option<PathBuf>,
    /// Kernel-facing options.
    pub fuse: FuseOptions,
    /// Defaults for objects without ownership metadata.
    pub ownership: Ownership,
    /// Staging and cache directory, absolute.
    pub cache_dir: PathBuf,
    /// Metadata cache lifetimes.
    pub ttl: Ttls,
    /// Deadline of one request of a filesystem call (retries included), and of fsync's wait.
    pub op_timeout: Duration,
    /// Upload tuning.
    pub upload: UploadTuning,
    /// Read tuning.
    pub read: ReadTuning,
    /// Storage class of new objects (None = bucket default).
    pub storage_class: Option<String>,
    /// `content_type=` of new objects (None = auto).
    pub content_type: Option<String>,
    /// Canned ACL of new objects (None = not sent).
    pub acl: Option<String>,
    /// Expiry of `user.cos.url` presigned URLs.
    pub presign_expires: Duration,
    /// Logging.
    pub log: LogOptions,
    /// `-f`: do not daemonize.
    pub foreground: bool,
}

/// Environment facts the defaults depend on (passed in so tests do not read the real ones).
#[derive(Debug, Clone)]
pub struct HostDefaults {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Base of default cache directories.
    pub cache_base: PathBuf,
    /// Directory relative paths are resolved against.
    pub cwd: PathBuf,
}

impl HostDefaults {
    /// The running process's values: root caches under `/var/cache/cosfuse`, other users under
    /// `$XDG_CACHE_HOME/cosfuse` (or `~/.cache/cosfuse`).
    pub fn current() -> HostDefaults {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let cache_base = if uid == 0 {
            PathBuf::from("/var/cache/cosfuse")
        } else if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(x).join("cosfuse")
        } else if let Some(h) = std::env::var_os("HOME") {
            PathBuf::from(h).join(".cache/cosfuse")
        } else {
            std::env::temp_dir().join(format!("cosfuse-{uid}"))
        };
        HostDefaults {
            uid,
            gid,
            cache_base,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}

/// Default metadata TTLs and tuning (documented in cosfuse(1)).
pub const DEFAULT_ATTR_TTL: Duration = Duration::from_secs(60);
/// Default deadline of a filesystem call's request.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default close-to-open revalidation window.
pub const DEFAULT_REVALIDATE: Duration = Duration::from_secs(1);
/// Default negative-cache TTL.
pub const DEFAULT_NEG_TTL: Duration = Duration::from_secs(1);
/// Default part size.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// Default parts in flight per file.
pub const DEFAULT_PARALLEL: usize = 4;
/// Default threads reading the kernel's requests. With one, a caller's request waits for
/// that thread to be woken on another CPU after each reply; with a second one waiting, a
/// FUSE round trip on a 2-core VM fell from about 110 to 38 µs (`ls -l` of 5 000 entries
/// after `list_ttl`: 0.59 → 0.38 s). More were not faster there.
pub const DEFAULT_THREADS: usize = 2;
/// Default size limit of the read cache.
pub const DEFAULT_READ_CACHE: u64 = 1 << 30;
/// Default random-read block.
pub const DEFAULT_READ_BLOCK: u64 = 128 << 10;
/// Default `read_fill_max`: a file of a few hundred MiB read at random is fetched whole in the
/// background (a few large GETs beat many small ones); larger objects keep block fetches.
pub const DEFAULT_READ_FILL_MAX: u64 = 512 << 20;
/// Default read-ahead budget (keeps the daemon under 64 MiB while streaming).
pub const DEFAULT_READAHEAD: u64 = 32 << 20;
/// Default multipart threshold.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 << 20;
/// Default `retry_max_delay`: failed uploads are retried at least every 5 minutes.
pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(300);
/// Default `close_wait`: a small file is in COS when close returns (as with s3fs and cosfs),
/// unless COS takes longer than this.
pub const DEFAULT_CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Default lifetime of `user.cos.url` URLs.
pub const DEFAULT_PRESIGN_EXPIRES: Duration = Duration::from_secs(3600);

/// Splits `BUCKET-APPID[:/prefix]` and normalizes the prefix to "" or `a/b/`.
pub fn split_source(source: &str) -> Result<(BucketName, String), String> {
    let (b, prefix) = match source.split_once(':') {
        Some((b, p)) => (b, p),
        None => (source, ""),
    };
    let bucket = BucketName::parse(b)?;
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(format!(
            "invalid prefix in '{source}': write BUCKET-APPID:/dir"
        ));
    }
    let parts: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(format!(
            "invalid prefix in '{source}': '.' and '..' are not allowed"
        ));
    }
    let prefix = if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    };
    Ok((bucket, prefix))
}

fn absolute(p: &Path, cwd: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

impl Config {
    /// Validates a mount request. `mountpoint` must be an existing directory.
    pub fn build(
        source: &str,
        mountpoint: &Path,
        o: MountOptions,
        foreground: bool,
        debug: bool,
        host: &HostDefaults,
    ) -> Result<Config, String> {
        let (bucket, prefix) = split_source(source)?;
        let endpoint = Endpoint::resolve(&bucket, o.url.as_deref(), o.region.as_deref())?.restyle(
            &bucket,
            o.url.is_some(),
            o.vhost,
        )?;
        let mp = absolute(mountpoint, &host.cwd);
        let mountpoint = mp
            .canonicalize()
            .map_err(|e| format!("mount point {}: {e}", mp.display()))?;
        if !mountpoint.is_dir() {
            return Err(format!(
                "mount point {} is not a directory",
                mountpoint.display()
            ));
        }
        let cache_dir = match &o.cache {
            Some(c) => absolute(c, &host.cwd),
            None => {
                let mut name = bucket.as_str().to_string();
                if !prefix.is_empty() {
                    name.push('_');
                    name.push_str(&prefix.trim_end_matches('/').replace('/', "_"));
                }
                host.cache_base.join(name)
            }
        };
        if cache_dir.starts_with(&mountpoint) {
            return Err(format!(
                "cache directory {} must not be inside the mount point",
                cache_dir.display()
            ));
        }
        Ok(Config {
            bucket,
            prefix,
            mountpoint,
            endpoint,
            tls: TlsOptions {
                ca_files: o.ca_files.iter().map(|p| absolute(p, &host.cwd)).collect(),
                resolve: o.resolve,
            },
            passwd_file: o.passwd_file.as_deref().map(|p| absolute(p, &host.cwd)),
            fuse: FuseOptions {
                allow_other: o.allow_other,
                allow_root: o.allow_root,
                read_only: o.read_only,
                kernel_flags: o.kernel_flags,
                fsname: o.fsname.unwrap_or_else(|| "cosfuse".into()),
                threads: o.threads.unwrap_or(DEFAULT_THREADS),
            },
            ownership: Ownership {
                uid: o.uid.unwrap_or(host.uid),
                gid: o.gid.unwrap_or(host.gid),
                umask: o.umask.unwrap_or(0o022),
            },
            cache_dir,
            ttl: Ttls {
                attr: o.attr_ttl.unwrap_or(DEFAULT_ATTR_TTL),
                negative: o.neg_ttl.unwrap_or(DEFAULT_NEG_TTL),
                revalidate: o.revalidate.unwrap_or(DEFAULT_REVALIDATE),
                list: o.list_ttl.unwrap_or(DEFAULT_REVALIDATE),
            },
            op_timeout: o.op_timeout.unwrap_or(DEFAULT_OP_TIMEOUT),
            upload: UploadTuning {
                part_size: o.part_size.unwrap_or(DEFAULT_PART_SIZE),
                parallel: o.parallel.unwrap_or(DEFAULT_PARALLEL),
                multipart_threshold: o.multipart_threshold.unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
                retry_max_delay: o.retry_max_delay.unwrap_or(DEFAULT_RETRY_MAX_DELAY),
                close_wait: o.close_wait.unwrap_or(DEFAULT_CLOSE_WAIT),
            },
            read: ReadTuning {
                cache_size: o.read_cache.unwrap_or(DEFAULT_READ_CACHE),
                evict: o.read_cache_evict.unwrap_or_default(),
                block: o.read_block.unwrap_or(DEFAULT_READ_BLOCK),
                readahead: o.readahead.unwrap_or(DEFAULT_READAHEAD),
                fill_max: o.read_fill_max.unwrap_or(DEFAULT_READ_FILL_MAX),
            },
            storage_class: o.storage_class,
            content_type: o.content_type,
            acl: o.acl,
            presign_expires: o.presign_expires.unwrap_or(DEFAULT_PRESIGN_EXPIRES),
            log: LogOptions {
                level: if debug {
                    Some(log::LevelFilter::Debug)
                } else {
                    o.loglevel
                },
                file: o.logfile.as_deref().map(|p| absolute(p, &host.cwd)),
            },
            foreground,
        })
    }

    /// Credential sources for this mount, from the process environment.
    pub fn credential_sources(&self) -> CredentialSources {
        CredentialSources::from_process(self.passwd_file.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(dir: &Path) -> HostDefaults {
        HostDefaults {
            uid: 1000,
            gid: 100,
            cache_base: PathBuf::from("/var/cache/cosfuse"),
            cwd: dir.to_path_buf(),
        }
    }

    fn build(source: &str, items: &[&str]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let o = options::parse_items(items)?;
        Config::build(
            source,
            dir.path(),
            o,
            false,
            false,
            &host(Path::new("/cwd")),
        )
    }

    #[test]
    fn bucket_names() {
        assert!(BucketName::parse("photos-1250000000").is_ok());
        assert!(BucketName::parse("my-photos-2-1250000000").is_ok());
        for bad in [
            "photos",
            "Photos-125",
            "photos-12a",
            "-125",
            "photos_x-125",
            "photos--125",
            "photos-",
        ] {
            let e = BucketName::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(BucketName::parse(&format!("{}-1250000000", "a".repeat(45))).is_err());
    }

    #[test]
    fn source_with_prefix() {
        let (b, p) = split_source("b-1:/a//b/").unwrap();
        assert_eq!((b.as_str(), p.as_str()), ("b-1", "a/b/"));
        assert_eq!(split_source("b-1:/").unwrap().1, "");
        assert_eq!(split_source("b-1").unwrap().1, "");
        assert!(split_source("b-1:a").is_err());
        assert!(split_source("b-1:/a/../b").is_err());
    }

    #[test]
    fn endpoints() {
        let b = BucketName::parse("b-1").unwrap();
        let e = Endpoint::resolve(&b, None, Some("ap-guangzhou")).unwrap();
        assert_eq!(e.base_url, "https://b-1.cos.ap-guangzhou.myqcloud.com");
        assert_eq!(e.style, AddressStyle::VirtualHosted);
        let e = Endpoint::resolve(&b, Some("http://127.0.0.1:9000/"), None).unwrap();
        assert_eq!(e.base_url, "http://127.0.0.1:9000");
        assert_eq!(e.style, AddressStyle::PathStyle);
        let e = Endpoint::resolve(&b, Some("http://cos.ap-beijing.myqcloud.com"), None).unwrap();
        assert_eq!(e.base_url, "http://b-1.cos.ap-beijing.myqcloud.com");
        assert_eq!(e.region.as_deref(), Some("ap-beijing"));
        assert!(Endpoint::resolve(&b, None, None)
            .unwrap_err()
            .contains("region="));
        assert!(Endpoint::resolve(&b, Some("ftp://x"), None)
            .unwrap_err()
            .contains("scheme"));
        assert!(Endpoint::resolve(&b, Some("127.0.0.1:9"), None).is_err());
        assert!(Endpoint::resolve(&b, Some("http://h:port"), None)
            .unwrap_err()
            .contains("port"));
        assert!(Endpoint::resolve(&b, Some("http://h/path"), None).is_err());
        assert!(Endpoint::resolve(&b, None, Some("AP_X"))
            .unwrap_err()
            .contains("region"));
    }

    #[test]
    fn defaults_and_overrides() {
        let c = build("b-1:/docs", &["url=http://127.0.0.1:1"]).unwrap();
        assert_eq!(c.prefix, "docs/");
        assert_eq!(c.cache_dir, PathBuf::from("/var/cache/cosfuse/b-1_docs"));
        assert_eq!(
            c.ownership,
            Ownership {
                uid: 1000,
                gid: 100,
                umask: 0o022
            }
        );
        assert_eq!(c.ttl.attr, DEFAULT_ATTR_TTL);
        assert_eq!(c.upload.part_size, DEFAULT_PART_SIZE);
        assert_eq!(c.fuse.fsname, "cosfuse");
        assert!(!c.fuse.read_only && !c.foreground);
        let c = build(
            "b-1",
            &[
                "region=ap-guangzhou",
                "uid=0",
                "gid=0",
                "umask=077",
                "ro",
                "cache=rel",
                "passwd_file=pw",
            ],
        )
        .unwrap();
        assert_eq!(
            c.ownership,
            Ownership {
                uid: 0,
                gid: 0,
                umask: 0o077
            }
        );
        assert!(c.fuse.read_only);
        assert_eq!(c.cache_dir, PathBuf::from("/cwd/rel"));
        assert!(c.passwd_file.unwrap().is_absolute());
    }

    #[test]
    fn debug_flag_sets_level() {
        let dir = tempfile::tempdir().unwrap();
        let o = options::parse_items(&["url=http://127.0.0.1:1", "loglevel=warn"]).unwrap();
        let c = Config::build("b-1", dir.path(), o, true, true, &host(dir.path())).unwrap();
        assert_eq!(c.log.level, Some(log::LevelFilter::Debug));
        assert!(c.foreground);
    }

    #[test]
    fn bad_mountpoint_and_cache_inside_mount() {
        let dir = tempfile::tempdir().unwrap();
        let o = options::parse_items(&["url=http://127.0.0.1:1"]).unwrap();
        let e = Config::build(
            "b-1",
            &dir.path().join("absent"),
            o.clone(),
            false,
            false,
            &host(dir.path()),
        );
        assert!(e.unwrap_err().contains("absent"));
        let mut o2 = o;
        o2.cache = Some(dir.path().join("c"));
        let e = Config::build("b-1", dir.path(), o2, false, false, &host(dir.path()));
        assert!(e.unwrap_err().contains("inside the mount point"));
    }
}
