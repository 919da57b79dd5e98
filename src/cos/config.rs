//! `CosConfig`: everything `CosClient` needs to reach and sign for one bucket — bucket, region,
//! endpoint (virtual-hosted by default, a custom path-style URL for the emulator and private
//! deployments), credentials with a redacting `Debug`, timeouts, retry policy, signing scheme.

use std::fmt;
use std::time::Duration;

use super::retry::RetryPolicy;

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

/// Which request signature to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningScheme {
    /// COS native `q-sign-algorithm=sha1` with `x-cos-*` headers (cos-protocol.md §1.3).
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
    /// Access keys.
    pub credentials: CosCredentials,
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
            credentials,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            signing: SigningScheme::CosV5,
            user_agent: format!("cosfuse/{}", env!("CARGO_PKG_VERSION")),
            sign_validity: Duration::from_secs(600),
        }
    }

    /// Same configuration with a custom (path-style) endpoint.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> CosConfig {
        self.endpoint = Some(endpoint.into());
        self
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
}
