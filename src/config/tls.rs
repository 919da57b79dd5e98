//! How a mount reaches an HTTPS endpoint: the extra CAs it trusts (`cafile=`), host names it
//! resolves without DNS (`resolve=HOST:ADDR`), and the `vhost` / `use_path_request_style`
//! addressing switch for `url=` endpoints.
//!
//! There is no option that disables certificate checks: a private deployment names its CA
//! instead, so a mount can never silently talk to whoever answers.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{AddressStyle, BucketName, Endpoint};

/// TLS trust and name resolution of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA bundles trusted on top of the system roots, absolute (`cafile=`, repeatable).
    pub ca_files: Vec<PathBuf>,
    /// `resolve=HOST:ADDR`: connect to ADDR for HOST (the certificate is still checked
    /// against HOST), for endpoints whose names DNS does not know, like curl's `--resolve`.
    pub resolve: Vec<(String, IpAddr)>,
}

/// Parses the value of `resolve=HOST:ADDR` (ADDR IPv4, or IPv6 with or without brackets).
pub fn parse_resolve(v: &str) -> Result<(String, IpAddr), String> {
    let (host, addr) = v
        .split_once(':')
        .ok_or("expected HOST:ADDR, e.g. mybucket-1250000000.cos.internal:10.0.0.5")?;
    if host.is_empty() || host.contains(['/', '[', ']', '@']) {
        return Err(format!("'{host}' is not a host name"));
    }
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip = addr
        .parse::<IpAddr>()
        .map_err(|_| format!("'{addr}' is not an IP address"))?;
    Ok((host.to_ascii_lowercase(), ip))
}

impl Endpoint {
    /// Applies `vhost` (Some(true): the bucket goes in front of the host name, so requests go
    /// to `scheme://BUCKET.HOST[:PORT]/key` and SNI names that host) or
    /// `use_path_request_style` (Some(false): `scheme://HOST[:PORT]/BUCKET/key`) to an
    /// endpoint from `url=`. None keeps what [`Endpoint::resolve`] chose.
    pub fn restyle(
        self,
        bucket: &BucketName,
        custom_url: bool,
        vhost: Option<bool>,
    ) -> Result<Endpoint, String> {
        let Some(want_vhost) = vhost else {
            return Ok(self);
        };
        if !custom_url {
            // The region endpoint is COS itself, always virtual-hosted.
            return if want_vhost {
                Ok(self)
            } else {
                Err("use_path_request_style needs a url= endpoint".to_string())
            };
        }
        let (scheme, host_port) = self
            .base_url
            .split_once("://")
            .ok_or_else(|| format!("invalid endpoint {}", self.base_url))?;
        let bucket_dot = format!("{}.", bucket.as_str());
        let base_url = match (want_vhost, self.style) {
            (true, AddressStyle::VirtualHosted) | (false, AddressStyle::PathStyle) => {
                return Ok(self)
            }
            (true, AddressStyle::PathStyle) => {
                let host = host_port.split(':').next().unwrap_or_default();
                if host_port.starts_with('[') || host.parse::<IpAddr>().is_ok() {
                    return Err(format!(
                        "vhost needs a host name in url=, not the address {host}: the bucket \
                         becomes part of the name (resolve=HOST:ADDR maps a name to an address)"
                    ));
                }
                format!("{scheme}://{bucket_dot}{host_port}")
            }
            (false, AddressStyle::VirtualHosted) => {
                let bare = host_port.strip_prefix(&bucket_dot).unwrap_or(host_port);
                format!("{scheme}://{bare}")
            }
        };
        Ok(Endpoint {
            base_url,
            style: if want_vhost {
                AddressStyle::VirtualHosted
            } else {
                AddressStyle::PathStyle
            },
            region: self.region,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: Option<&str>, vhost: Option<bool>) -> Result<Endpoint, String> {
        let b = BucketName::parse("b-1250000000").unwrap();
        Endpoint::resolve(&b, url, Some("ap-guangzhou"))?.restyle(&b, url.is_some(), vhost)
    }

    #[test]
    fn vhost_puts_the_bucket_into_the_host_name() {
        let e = ep(Some("https://cos.internal:8443"), Some(true)).unwrap();
        assert_eq!(e.base_url, "https://b-1250000000.cos.internal:8443");
        assert_eq!(e.style, AddressStyle::VirtualHosted);
        // Without the switch a custom host stays path-style.
        let e = ep(Some("https://cos.internal:8443"), None).unwrap();
        assert_eq!(
            (e.base_url.as_str(), e.style),
            ("https://cos.internal:8443", AddressStyle::PathStyle)
        );
        // A url= that already names the bucket is left alone.
        let e = ep(Some("https://b-1250000000.cos.internal"), Some(true)).unwrap();
        assert_eq!(e.base_url, "https://b-1250000000.cos.internal");
        let e = ep(None, Some(true)).unwrap();
        assert_eq!(
            e.base_url,
            "https://b-1250000000.cos.ap-guangzhou.myqcloud.com"
        );
    }

    #[test]
    fn path_style_takes_the_bucket_out_of_the_host_name() {
        let e = ep(Some("https://cos.ap-beijing.myqcloud.com"), Some(false)).unwrap();
        assert_eq!(
            (e.base_url.as_str(), e.style),
            (
                "https://cos.ap-beijing.myqcloud.com",
                AddressStyle::PathStyle
            )
        );
        assert!(ep(None, Some(false)).unwrap_err().contains("url="));
    }

    #[test]
    fn vhost_refuses_addresses() {
        let e = ep(Some("https://127.0.0.1:9000"), Some(true)).unwrap_err();
        assert!(e.contains("127.0.0.1") && e.contains("resolve="), "{e}");
        assert!(ep(Some("https://[::1]:9000"), Some(true)).is_err());
    }

    #[test]
    fn resolve_values() {
        assert_eq!(
            parse_resolve("B-1.Local:127.0.0.1").unwrap(),
            ("b-1.local".to_string(), IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            parse_resolve("h:[::1]").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_resolve("h").unwrap_err().contains("HOST:ADDR"));
        assert!(parse_resolve("h:nope").unwrap_err().contains("nope"));
        assert!(parse_resolve(":1.2.3.4").is_err());
    }
}
