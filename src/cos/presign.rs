//! Presigned URLs (query-string signatures, docs/protocol.md §1.1) for GET and PUT, in either
//! scheme, and POST Object (browser form upload, §1.7 / §4.3) with its policy signature.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use reqwest::Method;

use super::client::CosClient;
use super::config::{CosCredentials, SigningScheme};
use super::error::CosError;
use super::headers;
use super::request::query_string;
use super::types::PostOutput;
use super::{sign, sigv4};
use crate::store::{PutOptions, StorageClass};

impl CosClient {
    /// A presigned URL for `method` on `key`, valid from now − 60 s for `expires`; `params`
    /// are extra request parameters (signed). Only `host` is signed among headers, so the
    /// URL works from any HTTP client. Secrets never appear in it (only the SecretId and, for
    /// temporary credentials, the session token, as COS requires).
    pub fn presign(
        &self,
        method: Method,
        key: &str,
        expires: Duration,
        params: &[(&str, &str)],
    ) -> String {
        let cfg = self.config();
        let target = self.target();
        let now = self.now();
        let base = target.url(Some(key), &[]);
        let extra: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // A provider failure leaves the keys known at start; the URL then fails like any
        // request with stale keys would.
        let creds = &cfg
            .current_credentials()
            .unwrap_or_else(|_| cfg.credentials.clone());
        let mut query = match cfg.signing {
            SigningScheme::CosV5 => {
                let mut q = sign::presign_query(
                    &creds.secret_id,
                    &creds.secret_key,
                    method.as_str(),
                    &target.signed_path(Some(key)),
                    params,
                    &[("host", target.host.as_str())],
                    now - 60,
                    now + expires.as_secs() as i64,
                );
                if !extra.is_empty() {
                    q.push('&');
                    q.push_str(&query_string(&extra));
                }
                if let Some(t) = &creds.session_token {
                    q.push_str("&x-cos-security-token=");
                    q.push_str(&sign::cos_encode(t));
                }
                q
            }
            SigningScheme::SigV4 => self.presign_v4(creds, &method, key, expires, &extra, now),
        };
        query.insert(0, '?');
        format!("{base}{query}")
    }

    /// SigV4 query form (`X-Amz-*` parameters, `UNSIGNED-PAYLOAD`).
    fn presign_v4(
        &self,
        creds: &CosCredentials,
        method: &Method,
        key: &str,
        expires: Duration,
        extra: &[(String, String)],
        now: i64,
    ) -> String {
        let cfg = self.config();
        let target = self.target();
        let t = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let amz_date = t.format("%Y%m%dT%H%M%SZ").to_string();
        let date = t.format("%Y%m%d").to_string();
        let scope = format!("{date}/{}/s3/aws4_request", cfg.region);
        let mut q: Vec<(String, String)> = vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            (
                "X-Amz-Credential".into(),
                format!("{}/{scope}", creds.secret_id),
            ),
            ("X-Amz-Date".into(), amz_date.clone()),
            ("X-Amz-Expires".into(), expires.as_secs().to_string()),
            ("X-Amz-SignedHeaders".into(), "host".into()),
        ];
        if let Some(tok) = &creds.session_token {
            q.push(("X-Amz-Security-Token".into(), tok.clone()));
        }
        q.extend(extra.iter().cloned());
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let canonical_query = sigv4::canonical_query(&pairs);
        let creq = sigv4::canonical_request(
            method.as_str(),
            &sigv4::uri_encode(&target.signed_path(Some(key)), false),
            &canonical_query,
            &[("host", target.host.as_str())],
            "host",
            "UNSIGNED-PAYLOAD",
        );
        let sts = sigv4::string_to_sign(&amz_date, &scope, &creq);
        let skey = sigv4::signing_key(&creds.secret_key, &date, &cfg.region, "s3");
        format!(
            "{canonical_query}&X-Amz-Signature={}",
            sigv4::signature(&skey, &sts)
        )
    }

    /// Presigned GET URL.
    pub fn presign_get_url(&self, key: &str, expires: Duration) -> String {
        self.presign(Method::GET, key, expires, &[])
    }

    /// Presigned PUT URL.
    pub fn presign_put_url(&self, key: &str, expires: Duration) -> String {
        self.presign(Method::PUT, key, expires, &[])
    }

    /// POST Object: uploads `data` to `key` as a browser form would, signed with a policy
    /// valid for `expires` (§1.7). `success_action_status` is 200, 201 or 204 (None = 204).
    pub async fn post_object(
        &self,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
        success_action_status: Option<u16>,
        expires: Duration,
    ) -> Result<PostOutput, CosError> {
        let cfg = self.config();
        let creds = &cfg
            .current_credentials()
            .map_err(|m| CosError::client(0, super::error::CODE_CREDENTIALS, m))?;
        let now = self.now();
        let key_time = format!("{};{}", now - 60, now + expires.as_secs() as i64);
        let expiration = chrono::DateTime::from_timestamp(now + expires.as_secs() as i64, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string();
        let policy = serde_json::json!({
            "expiration": expiration,
            "conditions": [
                {"bucket": cfg.bucket},
                {"key": key},
                {"q-sign-algorithm": "sha1"},
                {"q-ak": creds.secret_id},
                {"q-sign-time": key_time},
            ]
        })
        .to_string();
        let signature = sign::post_policy_signature(&creds.secret_key, &key_time, &policy);
        let mut fields: Vec<(String, String)> = vec![("key".into(), key.into())];
        let h = &opts.headers;
        for (name, v) in [
            ("Content-Type", &h.content_type),
            ("Cache-Control", &h.cache_control),
            ("Content-Disposition", &h.content_disposition),
            ("Content-Encoding", &h.content_encoding),
            ("Expires", &h.expires),
            ("acl", &opts.acl),
        ] {
            if let Some(v) = v {
                fields.push((name.into(), v.clone()));
            }
        }
        for (k, v) in &h.user_meta {
            fields.push((format!("x-cos-meta-{k}"), v.clone()));
        }
        if let Some(sc) = &opts.storage_class {
            fields.push((
                "x-cos-storage-class".into(),
                StorageClass::as_str(sc).into(),
            ));
        }
        if let Some(s) = success_action_status {
            fields.push(("success_action_status".into(), s.to_string()));
        }
        fields.push((
            "policy".into(),
            base64::engine::general_purpose::STANDARD.encode(policy.as_bytes()),
        ));
        fields.push(("q-sign-algorithm".into(), "sha1".into()));
        fields.push(("q-ak".into(), creds.secret_id.clone()));
        fields.push(("q-key-time".into(), key_time.clone()));
        // The documented form has no `q-sign-time` field although the policy limits it; a
        // server that checks every limited field against the form needs it, and since the
        // policy names it, it is never an "extra" field.
        fields.push(("q-sign-time".into(), key_time.clone()));
        fields.push(("q-signature".into(), signature));
        if let Some(t) = &creds.session_token {
            fields.push(("x-cos-security-token".into(), t.clone()));
        }
        let boundary = format!("----cosfuse{:016x}", rand::random::<u64>());
        let filename = key.rsplit('/').next().unwrap_or(key);
        let body = form_body(&boundary, &fields, filename, &data);
        let url = format!("{}/", self.base_url());
        let hdrs = vec![
            (
                "content-type".to_string(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
            ("host".to_string(), self.target().host.clone()),
        ];
        let resp = self.send_unsigned(Method::POST, &url, &hdrs, body).await?;
        Ok(PostOutput {
            status: resp.status,
            etag: headers::etag(&resp),
            location: resp.header("location").map(str::to_string),
            crc64: headers::crc64(&resp),
        })
    }
}

/// A `multipart/form-data` body: the fields in order, then the `file` part last.
pub fn form_body(
    boundary: &str,
    fields: &[(String, String)],
    filename: &str,
    data: &[u8],
) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 512 * (fields.len() + 1));
    for (name, value) in fields {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let safe_name = filename.replace(['"', '\r', '\n'], "_");
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::{CosConfig, CosCredentials};

    fn client(scheme: SigningScheme) -> CosClient {
        let mut cfg = CosConfig::new(
            "b-1250000000",
            "ap-guangzhou",
            CosCredentials::new("AKIDx", "supersecret"),
        )
        .with_endpoint("http://127.0.0.1:9");
        cfg.signing = scheme;
        CosClient::new(cfg).unwrap()
    }

    #[test]
    fn cos_presigned_url_has_q_fields_and_no_secret() {
        let c = client(SigningScheme::CosV5);
        let url = c.presign_get_url("dir/a b.txt", Duration::from_secs(300));
        assert!(url.starts_with("http://127.0.0.1:9/b-1250000000/dir/a%20b.txt?q-sign-algorithm=sha1&q-ak=AKIDx&q-sign-time="));
        assert!(url.contains("&q-header-list=host&q-url-param-list=&q-signature="));
        assert!(!url.contains("supersecret"));
        let now = c.now();
        let kt = format!("{}%3B{}", now - 60, now + 300);
        // The window is computed from the same clock (allow a one-second tick).
        let kt2 = format!("{}%3B{}", now - 61, now + 299);
        assert!(url.contains(&kt) || url.contains(&kt2), "{url}");
    }

    #[test]
    fn sigv4_presigned_url_has_amz_fields() {
        let c = client(SigningScheme::SigV4);
        let url = c.presign_put_url("k", Duration::from_secs(60));
        assert!(url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"));
        assert!(url.contains("X-Amz-Expires=60"));
        assert!(url.contains("&X-Amz-Signature="));
        assert!(!url.contains("supersecret"));
    }

    #[test]
    fn form_body_puts_file_last() {
        let b = form_body("XX", &[("key".into(), "k".into())], "k", b"data");
        let s = String::from_utf8(b.to_vec()).unwrap();
        assert!(s.starts_with("--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n"));
        assert!(s.ends_with(
            "filename=\"k\"\r\nContent-Type: application/octet-stream\r\n\r\ndata\r\n--XX--\r\n"
        ));
    }
}
