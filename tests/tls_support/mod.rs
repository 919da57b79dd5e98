//! Throw-away PKI for the HTTPS tests: a fresh CA and a server certificate signed by it,
//! generated at run time with rcgen into a temporary directory (no key material is committed).
#![allow(dead_code)]

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and one server certificate, as PEM files in a temporary directory.
pub struct Pki {
    /// Holds the files; removed on drop.
    pub dir: tempfile::TempDir,
    /// The CA certificate (what `cafile=` points at).
    pub ca: PathBuf,
    /// The server certificate chain (leaf only; the CA is the trust anchor).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// How the server certificate is made.
pub struct Leaf<'a> {
    /// Subject alternative names: host names and IP addresses (`127.0.0.1`).
    pub names: &'a [&'a str],
    /// True: validity ended in the past (an expired certificate).
    pub expired: bool,
}

impl Pki {
    /// A CA and a server certificate for `names`, valid now.
    pub fn new(names: &[&str]) -> Pki {
        Pki::with(Leaf {
            names,
            expired: false,
        })
    }

    /// A CA and a server certificate as described by `leaf`.
    pub fn with(leaf: Leaf<'_>) -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "cosfuse throw-away test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);

        let names: Vec<String> = leaf.names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            leaf.names.first().copied().unwrap_or("x"),
        );
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");

        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(p("cert.pem"), cert.pem()).unwrap();
        std::fs::write(p("key.pem"), key.serialize_pem()).unwrap();
        Pki {
            ca: p("ca.pem"),
            cert: p("cert.pem"),
            key: p("key.pem"),
            dir,
        }
    }
}
