//! Bucket CORS (`PUT/GET/DELETE /?cors`) and OPTIONS Object preflight (docs/protocol.md §4.6):
//! the first matching rule answers; no configuration or no match is 403 AccessForbidden.

use hyper::body::Incoming;

use super::{check_md5, read_body, Ctx, EmuError, OpResult, Resp};
use crate::emulator::storage::CorsRule;
use crate::emulator::xml::{self, Writer};

fn forbidden() -> EmuError {
    EmuError::new(
        403,
        "AccessForbidden",
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec",
    )
}

/// PUT Bucket cors.
pub async fn put_cors(ctx: &Ctx, body: Incoming) -> OpResult {
    let body = read_body(body, 64 * 1024).await?;
    check_md5(ctx, &body)?;
    let root = xml::parse(&body).map_err(|_| EmuError::code("MalformedXML"))?;
    if root.name != "CORSConfiguration" {
        return Err(EmuError::code("MalformedXML"));
    }
    let texts = |el: &xml::Element, n: &str| -> Vec<String> {
        el.all(n)
            .map(|c| c.text.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut rules = Vec::new();
    for r in root.all("CORSRule") {
        let rule = CorsRule {
            id: r.child_text("ID").map(str::to_string),
            origins: texts(r, "AllowedOrigin"),
            methods: texts(r, "AllowedMethod")
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            headers: texts(r, "AllowedHeader"),
            expose: texts(r, "ExposeHeader"),
            max_age: r.child_text("MaxAgeSeconds").and_then(|m| m.parse().ok()),
        };
        let methods_ok = rule
            .methods
            .iter()
            .all(|m| matches!(m.as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD"));
        if rule.origins.is_empty() || rule.methods.is_empty() || !methods_ok {
            return Err(EmuError::code("MalformedXML"));
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > 100 {
        return Err(EmuError::code("MalformedXML"));
    }
    ctx.bucket
        .update_config(|c| c.cors = Some(rules))
        .map_err(EmuError::io)?;
    Ok(Resp::empty(200))
}

/// GET Bucket cors.
pub async fn get_cors(ctx: &Ctx) -> OpResult {
    let Some(rules) = ctx.bucket.lock().config.cors.clone() else {
        return Err(EmuError::new(
            404,
            "NoSuchCORSConfiguration",
            "The CORS configuration does not exist.",
        ));
    };
    let mut w = Writer::new();
    w.start("CORSConfiguration");
    for r in &rules {
        w.start("CORSRule").opt("ID", r.id.as_deref());
        for o in &r.origins {
            w.elem("AllowedOrigin", o);
        }
        for m in &r.methods {
            w.elem("AllowedMethod", m);
        }
        for h in &r.headers {
            w.elem("AllowedHeader", h);
        }
        for e in &r.expose {
            w.elem("ExposeHeader", e);
        }
        if let Some(m) = r.max_age {
            w.elem("MaxAgeSeconds", &m.to_string());
        }
        w.end();
    }
    w.end();
    Ok(Resp::xml(w.finish()))
}

/// DELETE Bucket cors.
pub async fn delete_cors(ctx: &Ctx) -> OpResult {
    ctx.bucket
        .update_config(|c| c.cors = None)
        .map_err(EmuError::io)?;
    Ok(Resp::empty(204))
}

/// Matches `pattern` (at most one `*`) against `s`, case-insensitively.
fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.to_ascii_lowercase(), s.to_ascii_lowercase());
    match p.split_once('*') {
        None => p == s,
        Some((a, b)) => s.len() >= a.len() + b.len() && s.starts_with(a) && s.ends_with(b),
    }
}

/// CORS headers for an actual (non-preflight) request carrying `Origin`, from the first rule
/// allowing that origin and method; empty when none does.
pub fn actual_request_headers(ctx: &Ctx) -> Vec<(String, String)> {
    let Some(origin) = ctx.header("origin") else {
        return Vec::new();
    };
    let rules = ctx.bucket.lock().config.cors.clone().unwrap_or_default();
    let Some(rule) = rules.iter().find(|r| {
        r.origins.iter().any(|o| wildcard(o, origin))
            && r.methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&ctx.method))
    }) else {
        return Vec::new();
    };
    let any = rule.origins.iter().any(|o| o == "*");
    let mut out = vec![(
        "Access-Control-Allow-Origin".to_string(),
        if any {
            "*".to_string()
        } else {
            origin.to_string()
        },
    )];
    if !rule.expose.is_empty() {
        out.push((
            "Access-Control-Expose-Headers".into(),
            rule.expose.join(","),
        ));
    }
    if !any {
        out.push(("Access-Control-Allow-Credentials".into(), "true".into()));
        out.push(("Vary".into(), "Origin".into()));
    }
    out
}

/// OPTIONS Object (CORS preflight).
pub async fn options(ctx: &Ctx) -> OpResult {
    let (Some(origin), Some(method)) = (
        ctx.header("origin"),
        ctx.header("access-control-request-method"),
    ) else {
        return Err(forbidden());
    };
    let requested: Vec<String> = ctx
        .header("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rules = ctx.bucket.lock().config.cors.clone().unwrap_or_default();
    let rule = rules.iter().find(|r| {
        r.origins.iter().any(|o| wildcard(o, origin))
            && r.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            && requested
                .iter()
                .all(|h| r.headers.iter().any(|a| wildcard(a, h)))
    });
    let Some(rule) = rule else {
        return Err(forbidden());
    };
    let allow_origin = if rule.origins.iter().any(|o| o == "*") {
        "*"
    } else {
        origin
    };
    let mut r = Resp::empty(200)
        .with("Access-Control-Allow-Origin", allow_origin)
        .with("Access-Control-Allow-Methods", rule.methods.join(","));
    if !requested.is_empty() {
        r = r.with("Access-Control-Allow-Headers", requested.join(","));
    }
    if !rule.expose.is_empty() {
        r = r.with("Access-Control-Expose-Headers", rule.expose.join(","));
    }
    if let Some(m) = rule.max_age {
        r = r.with("Access-Control-Max-Age", m.to_string());
    }
    if allow_origin != "*" {
        r = r.with("Access-Control-Allow-Credentials", "true");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "https://a.example"));
        assert!(wildcard("https://*.example.com", "https://www.example.com"));
        assert!(!wildcard("https://*.example.com", "https://evil.example"));
        assert!(wildcard("x-cos-meta-*", "x-cos-meta-a"));
        assert!(wildcard("Content-Type", "content-type"));
    }
}
