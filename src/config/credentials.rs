//! COS credentials: the redacting [`Secret`] and [`Credentials`] types, where they come from
//! (environment, passwd files) and a provider that re-reads an STS passwd file before expiry.
//!
//! Precedence, first match wins (documented in cosfuse(1)):
//! 1. `-o passwd_file=FILE` (an explicit file must exist, be owner-only and apply to the bucket);
//! 2. `COS_SECRET_ID` + `COS_SECRET_KEY` (+ `COS_SESSION_TOKEN`);
//! 3. cosfs's `COSACCESSKEYID` + `COSSECRETACCESSKEY`;
//! 4. `~/.passwd-cosfs`, then `/etc/passwd-cosfs` (the order cosfs and s3fs use).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::passwd;

/// A secret string: `Debug` and `Display` print a placeholder, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the signer only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One set of COS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// SecretId (`AKID...`): an identifier, but still shown only by prefix in `Debug`.
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: Secret,
    /// STS session token (`x-cos-security-token`), for temporary keys.
    pub session_token: Option<Secret>,
    /// When temporary keys expire (None = permanent keys).
    pub expires: Option<SystemTime>,
}

impl Credentials {
    /// Permanent or temporary credentials without an expiry.
    pub fn new(
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Credentials {
        Credentials {
            secret_id: secret_id.into(),
            secret_key: Secret::new(secret_key),
            session_token: session_token.map(Secret::new),
            expires: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id_prefix: String = self.secret_id.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("secret_id", &format_args!("{id_prefix}..."))
            .field("secret_key", &self.secret_key)
            .field("session_token", &self.session_token)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Why no usable credentials were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The passwd file is group/other readable or writable.
    #[error("passwd file {path} is readable or writable by group or others (mode {mode:03o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The passwd file could not be read.
    #[error("cannot read passwd file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A line of the passwd file is malformed.
    #[error("passwd file {path} line {line}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 = the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The passwd file has no line for this bucket.
    #[error("passwd file {path} has no credentials for bucket {bucket}")]
    NoEntry {
        /// The file.
        path: PathBuf,
        /// The bucket.
        bucket: String,
    },
    /// One of a pair of environment variables is set without the other.
    #[error("{set} is set but {missing} is not")]
    HalfEnv {
        /// The variable that is set.
        set: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// Nothing anywhere.
    #[error("no credentials: set COS_SECRET_ID and COS_SECRET_KEY, or use -o passwd_file=FILE (SecretId:SecretKey, mode 600)")]
    Missing,
}

/// Supplies current credentials to the COS client; called before each signature.
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// The credentials to sign with now.
    fn credentials(&self) -> Result<Credentials, CredentialsError>;
}

/// Credentials that never change (environment variables, permanent keys in a file).
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

impl CredentialsProvider for StaticCredentials {
    fn credentials(&self) -> Result<Credentials, CredentialsError> {
        Ok(self.0.clone())
    }
}

/// How long before `COSAccessTokenExpire` the file is read again (cosfs re-reads "when needed";
/// a margin keeps requests in flight from being signed with a key about to die).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An STS passwd file re-read when its credentials are within [`REFRESH_MARGIN`] of expiry.
#[derive(Debug)]
pub struct PasswdFileProvider {
    /// The file.
    path: PathBuf,
    /// The bucket the credentials are for (selects `bucket:` lines).
    bucket: String,
    /// The last good read. Guards only this value; held for a file read at most.
    current: Mutex<Credentials>,
}

impl PasswdFileProvider {
    /// Reads the file once (errors are returned so the mount fails up front).
    pub fn new(path: &Path, bucket: &str) -> Result<PasswdFileProvider, CredentialsError> {
        let creds = read_passwd_file(path, bucket)?;
        Ok(PasswdFileProvider {
            path: path.to_path_buf(),
            bucket: bucket.to_string(),
            current: Mutex::new(creds),
        })
    }

    /// Like `credentials`, with the clock passed in (for tests).
    pub fn credentials_at(&self, now: SystemTime) -> Result<Credentials, CredentialsError> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let due = cur.expires.is_some_and(|exp| now + REFRESH_MARGIN >= exp);
        if due {
            match read_passwd_file(&self.path, &self.bucket) {
                Ok(fresh) => {
                    if fresh.expires != cur.expires {
                        log::info!("re-read credentials from {}", self.path.display());
                    }
                    *cur = fresh;
                }
                // Keep signing with the old keys: they may still be valid for a while, and COS
                // will say so clearly if not.
                Err(e) => log::warn!("cannot refresh credentials: {e}"),
            }
        }
        Ok(cur.clone())
    }
}

impl CredentialsProvider for PasswdFileProvider {
    fn credentials(&self) -> Result<Credentials, CredentialsError> {
        self.credentials_at(SystemTime::now())
    }
}

/// Reads and parses a passwd file for `bucket`.
pub fn read_passwd_file(path: &Path, bucket: &str) -> Result<Credentials, CredentialsError> {
    let text = passwd::read_checked(path)?;
    passwd::parse(&text, bucket, path)?.ok_or_else(|| CredentialsError::NoEntry {
        path: path.to_path_buf(),
        bucket: bucket.to_string(),
    })
}

/// Where credentials are looked for; built from the options and the process environment.
/// `Debug` lists variable names only (their values are secrets).
#[derive(Clone, Default)]
pub struct CredentialSources {
    /// `-o passwd_file=`.
    pub passwd_file: Option<PathBuf>,
    /// Environment variables that matter (name, value).
    pub env: Vec<(String, String)>,
    /// Default passwd files, in order (`~/.passwd-cosfs`, `/etc/passwd-cosfs`).
    pub default_files: Vec<PathBuf>,
}

/// Environment variables read for credentials.
pub const ENV_VARS: &[&str] = &[
    "COS_SECRET_ID",
    "COS_SECRET_KEY",
    "COS_SESSION_TOKEN",
    "COSACCESSKEYID",
    "COSSECRETACCESSKEY",
];

impl fmt::Debug for CredentialSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("CredentialSources")
            .field("passwd_file", &self.passwd_file)
            .field("env", &names)
            .field("default_files", &self.default_files)
            .finish()
    }
}

impl CredentialSources {
    /// The sources of this process: its environment and the default files.
    pub fn from_process(passwd_file: Option<PathBuf>) -> CredentialSources {
        let env = ENV_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let mut default_files = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            default_files.push(PathBuf::from(home).join(".passwd-cosfs"));
        }
        default_files.push(PathBuf::from("/etc/passwd-cosfs"));
        CredentialSources {
            passwd_file,
            env,
            default_files,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn env_pair(
        &self,
        id: &'static str,
        key: &'static str,
    ) -> Result<Option<(String, String)>, CredentialsError> {
        match (self.var(id), self.var(key)) {
            (Some(i), Some(k)) => Ok(Some((i.to_string(), k.to_string()))),
            (Some(_), None) => Err(CredentialsError::HalfEnv {
                set: id,
                missing: key,
            }),
            (None, Some(_)) => Err(CredentialsError::HalfEnv {
                set: key,
                missing: id,
            }),
            (None, None) => Ok(None),
        }
    }

    /// Resolves the provider for `bucket` following the documented precedence.
    pub fn resolve(&self, bucket: &str) -> Result<Box<dyn CredentialsProvider>, CredentialsError> {
        if let Some(path) = &self.passwd_file {
            return Ok(Box::new(PasswdFileProvider::new(path, bucket)?));
        }
        if let Some((id, key)) = self.env_pair("COS_SECRET_ID", "COS_SECRET_KEY")? {
            let token = self.var("COS_SESSION_TOKEN").map(str::to_string);
            return Ok(Box::new(StaticCredentials(Credentials::new(
                id, key, token,
            ))));
        }
        if let Some((id, key)) = self.env_pair("COSACCESSKEYID", "COSSECRETACCESSKEY")? {
            return Ok(Box::new(StaticCredentials(Credentials::new(id, key, None))));
        }
        for path in &self.default_files {
            if path.exists() {
                match PasswdFileProvider::new(path, bucket) {
                    Ok(p) => return Ok(Box::new(p)),
                    // A default file for other buckets only: keep looking.
                    Err(CredentialsError::NoEntry { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Err(CredentialsError::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const B: &str = "photos-1250000000";

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn id_of(s: &CredentialSources) -> String {
        s.resolve(B).unwrap().credentials().unwrap().secret_id
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::new("AKIDsecretid123", "TOPSECRETKEY", Some("TOKENVALUE".into()));
        let text = format!("{c:?} {:?} {}", c.secret_key, c.secret_key);
        assert!(!text.contains("TOPSECRETKEY"), "{text}");
        assert!(!text.contains("TOKENVALUE"), "{text}");
        assert!(!text.contains("secretid123"), "{text}");
        assert!(
            text.contains("<redacted>") && text.contains("AKID..."),
            "{text}"
        );
        let p = StaticCredentials(c);
        assert!(!format!("{p:?}").contains("TOPSECRETKEY"));
        let s = CredentialSources {
            env: env(&[("COS_SECRET_KEY", "TOPSECRETKEY")]),
            ..Default::default()
        };
        let text = format!("{s:?}");
        assert!(
            text.contains("COS_SECRET_KEY") && !text.contains("TOPSECRETKEY"),
            "{text}"
        );
    }

    #[test]
    fn precedence_file_then_cos_env_then_cosfs_env_then_default_files() {
        let explicit = file("AKIDfile:k\n", 0o600);
        let home = file("AKIDhome:k\n", 0o600);
        let etc = file("AKIDetc:k\n", 0o600);
        let mut s = CredentialSources {
            passwd_file: Some(explicit.path().to_path_buf()),
            env: env(&[
                ("COS_SECRET_ID", "AKIDenv"),
                ("COS_SECRET_KEY", "k"),
                ("COSACCESSKEYID", "AKIDcosfs"),
                ("COSSECRETACCESSKEY", "k"),
            ]),
            default_files: vec![home.path().into(), etc.path().into()],
        };
        assert_eq!(id_of(&s), "AKIDfile");
        s.passwd_file = None;
        assert_eq!(id_of(&s), "AKIDenv");
        s.env.drain(..2);
        assert_eq!(id_of(&s), "AKIDcosfs");
        s.env.clear();
        assert_eq!(id_of(&s), "AKIDhome");
        s.default_files.remove(0);
        assert_eq!(id_of(&s), "AKIDetc");
        s.default_files.clear();
        assert_eq!(s.resolve(B).unwrap_err(), CredentialsError::Missing);
    }

    #[test]
    fn session_token_from_env() {
        let s = CredentialSources {
            env: env(&[
                ("COS_SECRET_ID", "AKIDenv"),
                ("COS_SECRET_KEY", "k"),
                ("COS_SESSION_TOKEN", "tok"),
            ]),
            ..Default::default()
        };
        let c = s.resolve(B).unwrap().credentials().unwrap();
        assert_eq!(c.session_token.unwrap().expose(), "tok");
    }

    #[test]
    fn half_set_env_is_an_error() {
        let s = CredentialSources {
            env: env(&[("COS_SECRET_ID", "AKIDenv")]),
            ..Default::default()
        };
        let msg = s.resolve(B).unwrap_err().to_string();
        assert!(msg.contains("COS_SECRET_KEY"), "{msg}");
    }

    #[test]
    fn explicit_file_with_open_permissions_is_refused_even_with_env() {
        let f = file("AKIDfile:k\n", 0o644);
        let s = CredentialSources {
            passwd_file: Some(f.path().into()),
            env: env(&[("COS_SECRET_ID", "AKIDenv"), ("COS_SECRET_KEY", "k")]),
            default_files: vec![],
        };
        let msg = s.resolve(B).unwrap_err().to_string();
        assert!(msg.contains("chmod 600") && msg.contains(&f.path().display().to_string()));
    }

    #[test]
    fn default_file_without_our_bucket_is_skipped() {
        let home = file("other-1:AKIDother:k\n", 0o600);
        let etc = file("AKIDetc:k\n", 0o600);
        let s = CredentialSources {
            default_files: vec![home.path().into(), etc.path().into()],
            ..Default::default()
        };
        assert_eq!(id_of(&s), "AKIDetc");
    }

    #[test]
    fn sts_file_is_reread_before_expiry() {
        let exp1 = "2030-01-01T00:00:00";
        let f = file(
            &format!("COSAccessKeyId=AKIDone\nCOSSecretKey=k1\nCOSAccessToken=t1\nCOSAccessTokenExpire={exp1}\n"),
            0o600,
        );
        let p = PasswdFileProvider::new(f.path(), B).unwrap();
        let exp = passwd::parse_expire(exp1).unwrap();
        std::fs::write(
            f.path(),
            "COSAccessKeyId=AKIDtwo\nCOSSecretKey=k2\nCOSAccessToken=t2\nCOSAccessTokenExpire=2030-01-01T01:00:00\n",
        )
        .unwrap();
        // Long before expiry: the cached keys are used, the file is not re-read.
        let early = exp - Duration::from_secs(3600);
        assert_eq!(p.credentials_at(early).unwrap().secret_id, "AKIDone");
        // Within the margin: re-read.
        let late = exp - Duration::from_secs(60);
        let c = p.credentials_at(late).unwrap();
        assert_eq!(c.secret_id, "AKIDtwo");
        assert_eq!(c.session_token.unwrap().expose(), "t2");
    }

    #[test]
    fn failed_reread_keeps_the_old_keys() {
        let f = file(
            "COSAccessKeyId=AKIDone\nCOSSecretKey=k1\nCOSAccessTokenExpire=2030-01-01T00:00:00\n",
            0o600,
        );
        let p = PasswdFileProvider::new(f.path(), B).unwrap();
        std::fs::write(f.path(), "garbage line\n").unwrap();
        let exp = passwd::parse_expire("2030-01-01T00:00:00").unwrap();
        assert_eq!(p.credentials_at(exp).unwrap().secret_id, "AKIDone");
    }
}
