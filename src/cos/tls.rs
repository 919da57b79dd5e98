//! TLS for `CosClient`: which certificates are trusted, where names resolve, and how a refused
//! certificate is told apart from other network failures.
//!
//! Trust: the system's roots (rustls-native-certs, which also honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`, the convention of OpenSSL and most TLS clients), the Mozilla roots compiled
//! into the binary (so a container without a CA store still reaches COS), plus the PEM bundles
//! of `cafile=` for private deployments. There is deliberately no switch that turns checks off.
//!
//! A certificate error cannot be fixed by sending again, so it gets its own code
//! ([`CODE_TLS`]) that the retry policy does not retry, and a one-line message naming the host
//! and what is wrong (unknown issuer, expired, wrong host name) with the fix where there is one.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use super::error::{CosError, CODE_PROTOCOL, CODE_TLS};

/// Adds the TLS setup (trusted roots, ring as the crypto provider) and the name overrides to
/// a reqwest builder.
///
/// Why a rustls config of our own: reqwest 0.13 dropped its Mozilla- and native-roots
/// features for rustls-platform-verifier, which on Linux trusts only the system store (a
/// container without one could no longer reach COS) and whose only bundled crypto provider is
/// aws-lc. Building the config here keeps the trust described above and keeps ring, the provider
/// the emulator's TLS and the rest of the tree use, so one rustls with one provider is linked.
pub(crate) fn configure(
    builder: reqwest::ClientBuilder,
    ca_files: &[PathBuf],
    resolve: &[(String, IpAddr)],
) -> Result<reqwest::ClientBuilder, CosError> {
    let bad = |m: String| CosError::client(0, CODE_PROTOCOL, m);
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // As reqwest 0.12 did with its native-roots feature: unreadable or unparsable system
    // certificates are skipped; only a store with nothing but bad ones is an error.
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 && ignored > 0 {
        return Err(bad(
            "zero valid certificates found in the system's root store".to_string(),
        ));
    }
    for file in ca_files {
        let pem =
            std::fs::read(file).map_err(|e| bad(format!("cafile {}: {e}", file.display())))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("cafile {}: {e}", file.display())))?;
        if certs.is_empty() {
            return Err(bad(format!(
                "cafile {}: no PEM CERTIFICATE block",
                file.display()
            )));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(format!("cafile {}: {e}", file.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What reqwest sets on a config it builds itself for an HTTP/1-only client.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut builder = builder.tls_backend_preconfigured(tls);
    for (host, ip) in resolve {
        // Port 0: the URL's port is used (reqwest ignores this one).
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    Ok(builder)
}

/// Makes ring the process's default rustls crypto provider, unless one is already set.
///
/// reqwest 0.13 is built here without a provider of its own (its only bundled one is aws-lc),
/// so a `reqwest::Client` it configures itself, i.e. any not built by `CosClient` (tests, tools
/// talking to the emulator), panics at `build()` unless a process default exists.
pub fn install_default_crypto_provider() {
    // Err only means another provider is already the default, which serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls error somewhere in `e`'s source chain, if the failure was a TLS one.
///
/// Why the `io::Error` steps: rustls errors travel inside an `io::Error` (tokio-rustls), itself
/// wrapped in another by reqwest's connector, and `io::Error::source()` skips the wrapped error
/// itself, so a plain walk over `source()` would never see it.
pub(crate) fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    None
}

/// The `CosError` for a request that failed because the server's certificate was refused;
/// None for every other failure (including TLS failures that may be transient, such as a
/// connection reset during the handshake, which keep their network code and retries).
pub(crate) fn certificate_error(e: &reqwest::Error) -> Option<CosError> {
    let r = rustls_error(e)?;
    if !matches!(r, rustls::Error::InvalidCertificate(_)) {
        return None;
    }
    // Only the host: the URL of a presigned request carries a signature.
    let host = e.url().and_then(|u| u.host_str()).unwrap_or("the endpoint");
    Some(tls_error(host, r))
}

/// A TLS failure as a `CosError` with code [`CODE_TLS`]: "TLS with HOST failed: REASON".
pub(crate) fn tls_error(host: &str, err: &rustls::Error) -> CosError {
    CosError::client(
        0,
        CODE_TLS,
        format!("TLS with {host} failed: {}", describe(host, err)),
    )
}

/// What went wrong, in words a user can act on.
fn describe(host: &str, err: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = err else {
        return err.to_string();
    };
    match cert {
        CertificateError::UnknownIssuer => "certificate has an unknown issuer (not signed by \
             a trusted CA; for a private CA give -o cafile=FILE)"
            .to_string(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet (check the clock)".to_string()
        }
        CertificateError::NotValidForName => {
            format!("certificate is not valid for the host name {host}")
        }
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "certificate is not valid for the host name {host} (it names {})",
            if presented.is_empty() {
                "no host".to_string()
            } else {
                presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::Revoked => "certificate has been revoked".to_string(),
        other => format!("invalid certificate: {other:?}"),
    }
}

/// webpki lists presented names in `Debug` form (`DnsName("a.example")`, `IpAddress(1.2.3.4)`);
/// the user wants just the name.
fn plain_name(n: &str) -> &str {
    n.strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            n.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_host_and_the_problem() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let e = tls_error("b-1.example.com", &unknown);
        assert_eq!(e.code, CODE_TLS);
        assert!(e.message.contains("b-1.example.com"), "{}", e.message);
        assert!(e.message.contains("unknown issuer"), "{}", e.message);
        assert!(e.message.contains("cafile="), "{}", e.message);
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("h.test").unwrap(),
            presented: vec!["DnsName(\"other.test\")".into()],
        });
        let m = describe("h.test", &name);
        assert!(m.contains("host name h.test (it names other.test)"), "{m}");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(describe("h", &expired).contains("expired"));
    }

    #[test]
    fn tls_errors_are_not_retried() {
        let e = tls_error(
            "h",
            &rustls::Error::InvalidCertificate(CertificateError::Expired),
        );
        assert!(!crate::cos::retry::is_retryable(&e, true));
    }

    #[test]
    fn a_cafile_without_certificates_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "nothing here\n").unwrap();
        let e = configure(reqwest::Client::builder(), &[f.path().to_path_buf()], &[])
            .err()
            .unwrap();
        assert!(e.message.contains("no PEM CERTIFICATE"), "{}", e.message);
        let missing = f.path().with_extension("absent");
        let e = configure(reqwest::Client::builder(), &[missing], &[])
            .err()
            .unwrap();
        assert!(e.message.contains("cafile"), "{}", e.message);
    }
}
