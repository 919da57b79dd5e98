//! `CosClient` over HTTPS against the in-process emulator serving TLS on 127.0.0.1 (issue 15):
//! a private CA given as a CA file makes every operation work; an untrusted issuer, a
//! certificate for another host name and an expired certificate each fail at once (no
//! retries) with a message naming the host and the problem; virtual-host addressing sends the
//! bucket in the host name, which SNI and the certificate check then use.

mod tls_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cosfuse::config::AddressStyle;
use cosfuse::cos::error::CODE_TLS;
use cosfuse::cos::types::Conditional;
use cosfuse::cos::types::{GetOptions, ListOptions};
use cosfuse::cos::{CosClient, CosConfig, CosCredentials, CosError, RetryPolicy};
use cosfuse::emulator::{Emulator, EmulatorConfig};
use cosfuse::store::PutOptions;
use tls_support::{Leaf, Pki};

const BUCKET: &str = "tlstest-1250000000";
const OTHER: &str = "tlsother-1250000000";
const ID: &str = "AKIDtlsTEST00000000000000000000000";
const KEY: &str = "tlsTESTsecretKEY0000000000000000";

/// Starts an emulator serving HTTPS with `pki`'s server certificate.
async fn tls_emulator(pki: &Pki, data: &tempfile::TempDir) -> Emulator {
    let mut cfg = EmulatorConfig::new(data.path())
        .bucket(BUCKET)
        // A second bucket: the emulator's "single bucket" fallback cannot hide addressing bugs.
        .bucket(OTHER)
        .credential(ID, KEY);
    cfg.tls = Some(cosfuse::emulator::tls::server_config(&pki.cert, &pki.key).unwrap());
    Emulator::start(cfg).await.unwrap()
}

/// A client config for `endpoint` whose retry policy would take seconds if it retried.
fn config(endpoint: &str) -> CosConfig {
    let mut cfg = CosConfig::new(BUCKET, "ap-guangzhou", CosCredentials::new(ID, KEY))
        .with_endpoint(endpoint);
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(2),
        full_jitter: false,
        max_elapsed: Duration::from_secs(60),
    };
    cfg
}

/// One GET Bucket; returns the error and how long it took.
async fn list_error(cfg: CosConfig) -> (CosError, Duration) {
    let client = CosClient::new(cfg).unwrap();
    let t = Instant::now();
    let e = client
        .list_page(&ListOptions::default())
        .await
        .expect_err("the certificate must be refused");
    (e, t.elapsed())
}

/// Put, get, list, copy and delete through `client`.
async fn round_trip(client: &CosClient) {
    let body = Bytes::from_static(b"over tls");
    client
        .put("dir/a.txt", body.clone(), &PutOptions::default())
        .await
        .unwrap();
    let Conditional::Found(got) = client
        .get("dir/a.txt", &GetOptions::default())
        .await
        .unwrap()
    else {
        panic!("GET answered 304 without a condition");
    };
    assert_eq!(got.data, body);
    client
        .copy(
            "dir/a.txt",
            "dir/b.txt",
            &Default::default(),
            &Default::default(),
            None,
        )
        .await
        .unwrap();
    let page = client
        .list_page(&ListOptions {
            prefix: "dir/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["dir/a.txt", "dir/b.txt"]);
    client.delete("dir/a.txt", None).await.unwrap();
}

#[tokio::test]
async fn a_private_ca_in_a_cafile_is_trusted() {
    let pki = Pki::new(&["127.0.0.1"]);
    let data = tempfile::tempdir().unwrap();
    let emu = tls_emulator(&pki, &data).await;
    assert!(emu.endpoint().starts_with("https://127.0.0.1:"));
    let mut cfg = config(&emu.endpoint());
    cfg.ca_files = vec![pki.ca.clone()];
    let client = CosClient::new(cfg).unwrap();
    round_trip(&client).await;
    assert_eq!(emu.stats().get("PutObject"), 1);
}

#[tokio::test]
async fn an_unknown_issuer_fails_at_once_naming_the_host() {
    let pki = Pki::new(&["127.0.0.1"]);
    let data = tempfile::tempdir().unwrap();
    let emu = tls_emulator(&pki, &data).await;
    let (e, took) = list_error(config(&emu.endpoint())).await;
    assert_eq!(e.code, CODE_TLS, "{e:?}");
    assert!(
        e.message.contains("127.0.0.1") && e.message.contains("unknown issuer"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("cafile="),
        "the fix is named: {}",
        e.message
    );
    // One retry would have waited 2 s.
    assert!(took < Duration::from_millis(1500), "retried: {took:?}");
    assert_eq!(emu.stats().get("GetBucket"), 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_naming_both() {
    let pki = Pki::new(&["cos.elsewhere.test"]);
    let data = tempfile::tempdir().unwrap();
    let emu = tls_emulator(&pki, &data).await;
    let mut cfg = config(&emu.endpoint());
    cfg.ca_files = vec![pki.ca.clone()];
    let (e, took) = list_error(cfg).await;
    assert_eq!(e.code, CODE_TLS, "{e:?}");
    assert!(
        e.message.contains("not valid for the host name 127.0.0.1")
            && e.message.contains("cos.elsewhere.test"),
        "{}",
        e.message
    );
    assert!(took < Duration::from_millis(1500), "retried: {took:?}");
}

#[tokio::test]
async fn an_expired_certificate_is_reported_as_expired() {
    let pki = Pki::with(Leaf {
        names: &["127.0.0.1"],
        expired: true,
    });
    let data = tempfile::tempdir().unwrap();
    let emu = tls_emulator(&pki, &data).await;
    let mut cfg = config(&emu.endpoint());
    cfg.ca_files = vec![pki.ca.clone()];
    let (e, _) = list_error(cfg).await;
    assert_eq!(e.code, CODE_TLS, "{e:?}");
    assert!(
        e.message.contains("127.0.0.1") && e.message.contains("expired"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn virtual_hosted_requests_put_the_bucket_in_the_host_name() {
    // The certificate names only the bucket's own host: the handshake succeeds only if SNI
    // and the name check use BUCKET.localhost.
    let vhost = format!("{BUCKET}.localhost");
    let pki = Pki::new(&[vhost.as_str()]);
    let data = tempfile::tempdir().unwrap();
    let emu = tls_emulator(&pki, &data).await;
    let port = emu.addr().port();
    let mut cfg = config(&format!("https://{vhost}:{port}"));
    cfg.endpoint_style = AddressStyle::VirtualHosted;
    cfg.ca_files = vec![pki.ca.clone()];
    // Resolvers here do not map *.localhost; the override stands in for DNS.
    cfg.resolve = vec![(vhost.clone(), [127, 0, 0, 1].into())];
    let client = CosClient::new(cfg).unwrap();
    assert_eq!(client.base_url(), format!("https://{vhost}:{port}"));
    // With two buckets and no bucket segment in the paths, the emulator finds the bucket only
    // through the Host header: every request succeeding proves the virtual-host addressing.
    round_trip(&client).await;
}
