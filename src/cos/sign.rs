//! The COS `q-sign-algorithm=sha1` request signature: header form, presigned-URL form and the
//! POST Object policy signature (docs/protocol.md §1). Pure functions; the time is passed in.
//!
//! Both the client (signing) and the emulator (verifying) use these functions; both sides are
//! pinned by the official SDK vectors in `cos-vectors/signature.json`.

use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};

type HmacSha1 = Hmac<Sha1>;

/// E() of docs/protocol.md §1.2: percent-encode every UTF-8 byte except `A-Z a-z 0-9 - _ . ~`,
/// with upper-case hex (space is `%20`, `/` is `%2F`).
pub fn cos_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// The canonical HttpString of a request and the two name lists that go into the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpString {
    /// `method\npath\nparams\nheaders\n`.
    pub text: String,
    /// `q-url-param-list`: encoded lower-case parameter names joined with `;`.
    pub param_list: String,
    /// `q-header-list`: encoded lower-case header names joined with `;`.
    pub header_list: String,
}

/// Encodes and sorts name/value pairs (§1.3 steps 3–4): returns (name list, `n=v&...`).
fn canonical_pairs(pairs: &[(&str, &str)]) -> (String, String) {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (cos_encode(n).to_lowercase(), cos_encode(v)))
        .collect();
    // Sort by the encoded lower-case name (the documented rule, and Python's); stable so
    // duplicate names keep their order.
    enc.sort_by(|a, b| a.0.cmp(&b.0));
    let list = enc
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let joined = enc
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    (list, joined)
}

/// Builds the HttpString (§1.3 step 5) from the decoded path, the parameters to sign (decoded
/// values; a parameter without `=` has value `""`) and the headers to sign (values as sent).
pub fn http_string(
    method: &str,
    uri_pathname: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> HttpString {
    let (param_list, params_joined) = canonical_pairs(params);
    let (header_list, headers_joined) = canonical_pairs(headers);
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        method.to_lowercase(),
        uri_pathname,
        params_joined,
        headers_joined
    );
    HttpString {
        text,
        param_list,
        header_list,
    }
}

fn hmac_sha1_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha1::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// SignKey = lower-hex(HMAC-SHA1(SecretKey, KeyTime)) (§1.3 step 2).
pub fn sign_key(secret_key: &str, key_time: &str) -> String {
    hmac_sha1_hex(secret_key.as_bytes(), key_time.as_bytes())
}

/// StringToSign = `sha1\n<SignTime>\n<sha1-hex(HttpString)>\n` (§1.3 step 6).
pub fn string_to_sign(sign_time: &str, http_string_text: &str) -> String {
    let digest = hex::encode(Sha1::digest(http_string_text.as_bytes()));
    format!("sha1\n{sign_time}\n{digest}\n")
}

/// Signature = lower-hex(HMAC-SHA1(SignKey as its hex text, StringToSign)) (§1.3 step 7).
pub fn signature(
    secret_key: &str,
    key_time: &str,
    sign_time: &str,
    http_string_text: &str,
) -> String {
    let key = sign_key(secret_key, key_time);
    hmac_sha1_hex(
        key.as_bytes(),
        string_to_sign(sign_time, http_string_text).as_bytes(),
    )
}

/// The seven signature fields, computed once for both the header and the presigned form.
struct Fields {
    key_time: String,
    http: HttpString,
    signature: String,
}

fn fields(
    secret_key: &str,
    method: &str,
    uri_pathname: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
    start: i64,
    end: i64,
) -> Fields {
    let key_time = format!("{start};{end}");
    let http = http_string(method, uri_pathname, params, headers);
    let signature = signature(secret_key, &key_time, &key_time, &http.text);
    Fields {
        key_time,
        http,
        signature,
    }
}

/// The full `Authorization` header value (§1.1), values not URL-encoded.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    secret_id: &str,
    secret_key: &str,
    method: &str,
    uri_pathname: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
    start: i64,
    end: i64,
) -> String {
    let f = fields(
        secret_key,
        method,
        uri_pathname,
        params,
        headers,
        start,
        end,
    );
    format!(
        "q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={kt}&q-key-time={kt}&q-header-list={hl}&q-url-param-list={pl}&q-signature={sig}",
        kt = f.key_time,
        hl = f.http.header_list,
        pl = f.http.param_list,
        sig = f.signature
    )
}

/// The `q-*` query string of a presigned URL (§1.1), each value URL-encoded (the Python SDK's
/// form: `;` as `%3B`). The caller appends the signed request parameters after it.
#[allow(clippy::too_many_arguments)]
pub fn presign_query(
    secret_id: &str,
    secret_key: &str,
    method: &str,
    uri_pathname: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
    start: i64,
    end: i64,
) -> String {
    let f = fields(
        secret_key,
        method,
        uri_pathname,
        params,
        headers,
        start,
        end,
    );
    format!(
        "q-sign-algorithm=sha1&q-ak={}&q-sign-time={kt}&q-key-time={kt}&q-header-list={}&q-url-param-list={}&q-signature={}",
        cos_encode(secret_id),
        cos_encode(&f.http.header_list),
        cos_encode(&f.http.param_list),
        f.signature,
        kt = cos_encode(&f.key_time),
    )
}

/// POST Object policy signature (§1.7): HMAC-SHA1(SignKey-hex, sha1-hex(policy JSON text)).
pub fn post_policy_signature(secret_key: &str, key_time: &str, policy_json: &str) -> String {
    let key = sign_key(secret_key, key_time);
    let sts = hex::encode(Sha1::digest(policy_json.as_bytes()));
    hmac_sha1_hex(key.as_bytes(), sts.as_bytes())
}

/// Constant-time byte comparison, so a verifier does not leak how much of a signature matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/signature.json");
        let text = std::fs::read_to_string(path).expect("tests/vectors/signature.json");
        serde_json::from_str(&text).expect("valid json")
    }

    fn pairs(v: &Value) -> Vec<(String, String)> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    #[test]
    fn encode_matches_documented_table() {
        assert_eq!(
            cos_encode("a b/c+d:e;f=g@h`i~j*k!'()"),
            "a%20b%2Fc%2Bd%3Ae%3Bf%3Dg%40h%60i~j%2Ak%21%27%28%29"
        );
        assert_eq!(cos_encode("腾"), "%E8%85%BE");
    }

    #[test]
    fn every_sdk_case_reproduced_exactly() {
        let v = vectors();
        let cases = v["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 32);
        for case in cases {
            let id = case["id"].as_str().unwrap_or("?");
            let inp = &case["inputs"];
            let exp = &case["expected"];
            let params = pairs(&inp["query_params"]);
            let headers = pairs(&case["headers_actually_signed"]);
            let kt = inp["key_time"].as_str().unwrap();
            let (s, e) = kt.split_once(';').unwrap();
            let method = inp["method"].as_str().unwrap();
            let path = inp["uri_pathname"].as_str().unwrap();
            let hs = http_string(method, path, &refs(&params), &refs(&headers));
            assert_eq!(
                hs.text,
                exp["http_string"].as_str().unwrap(),
                "{id}: http_string"
            );
            assert_eq!(
                sign_key(inp["secret_key"].as_str().unwrap(), kt),
                exp["sign_key"].as_str().unwrap(),
                "{id}"
            );
            assert_eq!(
                string_to_sign(kt, &hs.text),
                exp["string_to_sign"].as_str().unwrap(),
                "{id}"
            );
            let auth = authorization(
                inp["secret_id"].as_str().unwrap(),
                inp["secret_key"].as_str().unwrap(),
                method,
                path,
                &refs(&params),
                &refs(&headers),
                s.parse().unwrap(),
                e.parse().unwrap(),
            );
            assert_eq!(
                auth,
                exp["authorization"].as_str().unwrap(),
                "{id}: authorization"
            );
        }
    }

    #[test]
    fn doc_examples_reproduced() {
        let v = vectors();
        for ex in v["doc_examples"].as_array().unwrap() {
            let inp = &ex["inputs"];
            let exp = &ex["expected"];
            let params = pairs(&inp["query_params"]);
            let headers = pairs(&inp["headers_signed"]);
            let kt = inp["key_time"].as_str().unwrap();
            let hs = http_string(
                inp["method"].as_str().unwrap(),
                inp["uri_pathname"].as_str().unwrap(),
                &refs(&params),
                &refs(&headers),
            );
            assert_eq!(hs.text, exp["http_string"].as_str().unwrap());
            let sig = signature(inp["secret_key"].as_str().unwrap(), kt, kt, &hs.text);
            assert_eq!(sig, exp["signature"].as_str().unwrap());
        }
    }

    #[test]
    fn post_policy_reproduced() {
        let v = vectors();
        let p = &v["post_object_policy"][0];
        let sig = post_policy_signature(
            p["inputs"]["secret_key"].as_str().unwrap(),
            p["inputs"]["key_time"].as_str().unwrap(),
            p["inputs"]["policy_json_text"].as_str().unwrap(),
        );
        assert_eq!(sig, p["expected"]["signature"].as_str().unwrap());
    }

    #[test]
    fn python_presigned_urls_reproduced() {
        let v = vectors();
        let groups = v["presigned_urls"].as_object().unwrap();
        let (_, py) = groups
            .iter()
            .find(|(k, _)| k.starts_with("cos-python"))
            .unwrap();
        for u in py.as_array().unwrap() {
            let url = u["url"].as_str().unwrap();
            let clock = u["clock"].as_i64().unwrap();
            let inputs = &u["inputs"];
            let key = inputs["Key"].as_str().unwrap();
            let expired = inputs["Expired"].as_i64().unwrap();
            let params = pairs(&inputs["Params"]);
            let mut headers = pairs(&inputs["Headers"]);
            headers.push((
                "host".into(),
                "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com".into(),
            ));
            let q = presign_query(
                "AKIDcosVECTORexample00000000000000000",
                "cosVECTORsecretKEYexample0000000",
                inputs["Method"].as_str().unwrap(),
                &format!("/{key}"),
                &refs(&params),
                &refs(&headers),
                clock - 60,
                clock + expired,
            );
            let query = url.split_once('?').unwrap().1;
            assert!(query.starts_with(&q), "{url}\nvs {q}");
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
