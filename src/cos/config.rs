//! `CosConfig`: everything `CosClient` needs to reach and sign for one bucket — bucket, region,
//! endpoint (virtual-hosted by default, a custom path-style URL for the emulator and private
//! deployments), credentials with a redacting `Debug`, timeouts, retry policy, signing scheme.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::retry::RetryPolicy;
use crate::config::{AddressStyle, CredentialsProvider};

/// Access keys. `Debug` prints `***` for the secret key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct CosCredentials {
    /// SecretId (`AKID...`); not secret, shown in `Debug` and sent as `q-ak`.
    pub secret_id: String,
    /// SecretKey: never logged.
    pub secret_key: String,
    /// STS session token (`x-cos-security-token`), for temporary credentials; never logged.
    pub session_token: Option<String>,
}

impl fmt::Debug for CosCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosCredentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl CosCredentials {
    /// Permanent credentials (no session token).
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<String>) -> CosCredentials {
        CosCredentials {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            session_token: None,
        }
    }
}

impl From<&crate::config::Credentials> for CosCredentials {
    fn from(c: &crate::config::Credentials) -> CosCredentials {
        CosCredentials {
            secret_id: c.secret_id.clone(),
            secret_key: c.secret_key.expose().to_string(),
            session_token: c.session_token.as_ref().map(|t| t.expose().to_string()),
        }
    }
}

/// Which request signature to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningScheme {
    /// COS native `q-sign-algorithm=sha1` with `x-cos-*` headers (docs/protocol.md §1.3).
    #[default]
    CosV5,
    /// AWS Signature V4 with `x-amz-*` header names, for S3-compatible endpoints (§1.8).
    SigV4,
}

/// Configuration of one `CosClient`.
#[derive(Clone, Debug)]
pub struct CosConfig {
    /// Bucket name with APPID, `examplebucket-1250000000`.
    pub bucket: String,
    /// Region, `ap-guangzhou` (used for the default endpoint, copy sources and SigV4 scope).
    pub region: String,
    /// Custom endpoint (`http://127.0.0.1:9000`): path-style requests
    /// `<endpoint>/<bucket>/<key>`, signing the path with the bucket (§1.3 step 5) and the
    /// `Host` with its port. None = virtual-hosted `https://<bucket>.cos.<region>.myqcloud.com`.
    pub endpoint: Option<String>,
    /// How `endpoint` addresses the bucket: `PathStyle` (default: `<endpoint>/<bucket>/<key>`)
    /// or `VirtualHosted` (the endpoint's host already names the bucket: `<endpoint>/<key>`).
    /// Ignored without a custom endpoint.
    pub endpoint_style: AddressStyle,
    /// Access keys (used when `credentials_provider` is None).
    pub credentials: CosCredentials,
    /// Where to fetch credentials for every attempt (temporary keys that are refreshed);
    /// None = the fixed `credentials`.
    pub credentials_provider: Option<Arc<dyn CredentialsProvider>>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout between reads of a response (a stalled body fails instead of hanging).
    pub read_timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Signature scheme.
    pub signing: SigningScheme,
    /// `User-Agent` header.
    pub user_agent: String,
    /// How long a request signature stays valid after "now" (the window starts at now − 60 s).
    pub sign_validity: Duration,
    /// PEM CA bundles trusted on top of the system roots (`cafile=`; private deployments).
    pub ca_files: Vec<PathBuf>,
    /// Host names resolved to fixed addresses instead of DNS (`resolve=HOST:ADDR`).
    pub resolve: Vec<(String, IpAddr)>,
}

impl CosConfig {
    /// A configuration with defaults: virtual-hosted endpoint, 10 s connect / 60 s read
    /// timeouts, the default retry policy, CosV5 signing, 10-minute signatures.
    pub fn new(
        bucket: impl Into<String>,
        region: impl Into<String>,
        credentials: CosCredentials,
    ) -> CosConfig {
        CosConfig {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: None,
            endpoint_style: AddressStyle::PathStyle,
            credentials,
            credentials_provider: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            signing: SigningScheme::CosV5,
            user_agent: format!("cosfuse/{}", env!("CARGO_PKG_VERSION")),
            sign_validity: Duration::from_secs(600),
            ca_files: Vec::new(),
            resolve: Vec::new(),
        }
    }

    /// Same configuration with a custom (path-style) endpoint.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> CosConfig {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The client configuration of a mount: bucket, endpoint (URL and style) and region from
    /// `cfg`, credentials from `provider` (consulted before every attempt). Without a known
    /// region (custom endpoints), `ap-guangzhou` stands in: it only names the copy-source host
    /// and the SigV4 scope there.
    pub fn from_mount_config(
        cfg: &crate::config::Config,
        provider: Arc<dyn CredentialsProvider>,
    ) -> Result<CosConfig, String> {
        let creds = provider.credentials().map_err(|e| e.to_string())?;
        let region = cfg
            .endpoint
            .region
            .clone()
            .unwrap_or_else(|| "ap-guangzhou".to_string());
        let mut out = CosConfig::new(cfg.bucket.as_str(), region, CosCredentials::from(&creds));
        let default = format!("https://{}", out.default_host());
        if cfg.endpoint.base_url != default {
            out.endpoint = Some(cfg.endpoint.base_url.clone());
            out.endpoint_style = cfg.endpoint.style;
        }
        out.credentials_provider = Some(provider);
        out.ca_files = cfg.tls.ca_files.clone();
        out.resolve = cfg.tls.resolve.clone();
        Ok(out)
    }

    /// The credentials to sign the next attempt with: the provider's current ones, else the
    /// fixed ones.
    pub fn current_credentials(&self) -> Result<CosCredentials, String> {
        match &self.credentials_provider {
            Some(p) => p
                .credentials()
                .map(|c| CosCredentials::from(&c))
                .map_err(|e| e.to_string()),
            None => Ok(self.credentials.clone()),
        }
    }

    /// The default virtual-hosted domain, `<bucket>.cos.<region>.myqcloud.com`.
    pub fn default_host(&self) -> String {
        format!("{}.cos.{}.myqcloud.com", self.bucket, self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let mut c = CosCredentials::new("AKIDexample", "topsecretkey");
        c.session_token = Some("tokentoken".into());
        let cfg = CosConfig::new("b-1250000000", "ap-guangzhou", c);
        let dbg = format!("{cfg:?}");
        assert!(dbg.contains("AKIDexample"));
        assert!(!dbg.contains("topsecretkey"));
        assert!(!dbg.contains("tokentoken"));
        assert!(dbg.contains("***"));
        assert_eq!(
            cfg.default_host(),
            "b-1250000000.cos.ap-guangzhou.myqcloud.com"
        );
    }

    #[test]
    fn provider_credentials_win_over_fixed_ones() {
        let mut cfg = CosConfig::new("b-1", "r", CosCredentials::new("AKIDfixed", "k1"));
        assert_eq!(cfg.current_credentials().unwrap().secret_id, "AKIDfixed");
        let provided = crate::config::Credentials::new("AKIDprov", "k2", Some("tok".into()));
        cfg.credentials_provider = Some(Arc::new(crate::config::StaticCredentials(provided)));
        let c = cfg.current_credentials().unwrap();
        assert_eq!(
            (
                c.secret_id.as_str(),
                c.secret_key.as_str(),
                c.session_token.as_deref()
            ),
            ("AKIDprov", "k2", Some("tok"))
        );
        assert!(!format!("{cfg:?}").contains("k2"));
    }

    fn mount_config(items: &[&str]) -> crate::config::Config {
        let dir = tempfile::tempdir().unwrap();
        let host = crate::config::HostDefaults {
            uid: 1000,
            gid: 100,
            cache_base: std::path::PathBuf::from("/tmp/cosfuse-cache"),
            cwd: dir.path().to_path_buf(),
        };
        let o = crate::config::options::parse_items(items).unwrap();
        crate::config::Config::build("b-1250000000", dir.path(), o, false, false, &host).unwrap()
    }

    #[test]
    fn mount_config_maps_endpoints() {
        let creds = crate::config::Credentials::new("AKIDm", "km", None);
        let p: Arc<dyn CredentialsProvider> = Arc::new(crate::config::StaticCredentials(creds));
        let c =
            CosConfig::from_mount_config(&mount_config(&["region=ap-beijing"]), p.clone()).unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.region.as_str()),
            ("b-1250000000", "ap-beijing")
        );
        assert_eq!(c.endpoint, None);
        assert_eq!(c.credentials.secret_id, "AKIDm");
        let c =
            CosConfig::from_mount_config(&mount_config(&["url=http://127.0.0.1:9000"]), p.clone())
                .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.endpoint_style, AddressStyle::PathStyle);
        let c = CosConfig::from_mount_config(
            &mount_config(&["url=https://cos.ap-shanghai.myqcloud.com"]),
            p,
        )
        .unwrap();
        // The region endpoint becomes the bucket's own virtual host, i.e. the default.
        assert_eq!(c.region, "ap-shanghai");
        assert_eq!(c.endpoint, None);
    }
}
