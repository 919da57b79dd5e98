//! PUT / GET Object acl (docs/protocol.md §4.11): canned ACL and grant headers, or an
//! AccessControlPolicy body whose grantee type arrives as an `xsi:type` attribute, a `<Type>`
//! element or not at all (inferred from `ID` vs `URI`).

use hyper::body::Incoming;

use super::{
    acl_from_headers, check_md5, has_acl_headers, need_object, read_body, Ctx, EmuError, OpResult,
    Resp, OBJECT_PERMISSIONS,
};
use crate::emulator::storage::{Acl, Grant, ALL_USERS};
use crate::emulator::xml::{self, Writer};

const PERMISSIONS: &[&str] = &["READ", "WRITE", "FULL_CONTROL", "READ_ACP", "WRITE_ACP"];

/// Parses an AccessControlPolicy body into grants.
pub fn parse_policy(body: &[u8]) -> Result<Acl, EmuError> {
    let root = xml::parse(body).map_err(|_| EmuError::code("MalformedXML"))?;
    if root.name != "AccessControlPolicy" {
        return Err(EmuError::code("MalformedXML"));
    }
    let list = root
        .child("AccessControlList")
        .ok_or_else(|| EmuError::code("MalformedXML"))?;
    let mut grants = Vec::new();
    for g in list.all("Grant") {
        let grantee = g
            .child("Grantee")
            .ok_or_else(|| EmuError::code("MalformedXML"))?;
        let permission = g.child_text("Permission").unwrap_or("").to_string();
        if !PERMISSIONS.contains(&permission.as_str()) {
            return Err(EmuError::code("MalformedXML"));
        }
        let kind = grantee
            .attr("type")
            .map(str::to_string)
            .or_else(|| grantee.child_text("Type").map(str::to_string));
        let (group, who) = match (grantee.child_text("URI"), grantee.child_text("ID")) {
            (Some(u), _) => (true, u.to_string()),
            (None, Some(id)) => (false, id.to_string()),
            _ => return Err(EmuError::code("MalformedXML")),
        };
        if kind.as_deref().is_some_and(|k| (k == "Group") != group) {
            return Err(EmuError::code("MalformedXML"));
        }
        grants.push(Grant {
            group,
            grantee: who,
            permission,
        });
    }
    if grants.len() > 100 {
        return Err(EmuError::code("MalformedXML"));
    }
    Ok(Acl {
        canned: None,
        grants,
    })
}

/// True when an anonymous caller may read an object with this ACL: its own grants, or the
/// bucket's when the object keeps the `default` ACL.
pub fn anonymous_may_read(ctx: &Ctx, acl: &Acl) -> bool {
    acl.public_read() || (acl.is_default() && ctx.bucket.lock().config.acl.public_read())
}

/// The new ACL of a PUT ?acl request: the XML body when there is one, else the headers — one
/// method only; an object ACL grants only READ or FULL_CONTROL.
fn requested_acl(ctx: &Ctx, body: &[u8]) -> Result<Acl, EmuError> {
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        if has_acl_headers(ctx) {
            return Err(EmuError::new(
                400,
                "InvalidRequest",
                "Specify the ACL either by headers or by an AccessControlPolicy body, not both.",
            ));
        }
        let acl = parse_policy(body)?;
        if !ctx.key.is_empty()
            && acl
                .grants
                .iter()
                .any(|g| !OBJECT_PERMISSIONS.contains(&g.permission.as_str()))
        {
            return Err(EmuError::invalid_argument(
                "an object ACL grants only READ or FULL_CONTROL",
            ));
        }
        Ok(acl)
    } else {
        Ok(acl_from_headers(ctx)?.unwrap_or_default())
    }
}

/// PUT Bucket acl (`PUT /?acl`).
pub async fn put_bucket_acl(ctx: &Ctx, body: Incoming) -> OpResult {
    let body = read_body(body, 64 * 1024).await?;
    check_md5(ctx, &body)?;
    let acl = requested_acl(ctx, &body)?;
    ctx.bucket
        .update_config(|c| c.acl = acl)
        .map_err(EmuError::io)?;
    Ok(Resp::empty(200))
}

/// GET Bucket acl (`GET /?acl`); a bucket without one is `private`.
pub async fn get_bucket_acl(ctx: &Ctx) -> OpResult {
    let mut acl = ctx.bucket.lock().config.acl.clone();
    if acl.is_default() {
        acl.canned = Some("private".into());
    }
    Ok(policy_document(ctx, &acl))
}

/// PUT Object acl.
pub async fn put_acl(ctx: &Ctx, body: Incoming) -> OpResult {
    let body = read_body(body, 64 * 1024).await?;
    check_md5(ctx, &body)?;
    let mut meta = need_object(ctx)?;
    meta.acl = requested_acl(ctx, &body)?;
    ctx.bucket.update_meta(&meta).map_err(EmuError::io)?;
    Ok(Resp::empty(200))
}

fn grant(w: &mut Writer, group: bool, who: &str, permission: &str) {
    let xsi = "http://www.w3.org/2001/XMLSchema-instance";
    w.start("Grant");
    if group {
        w.start_attrs("Grantee", &[("xmlns:xsi", xsi), ("xsi:type", "Group")])
            .elem("URI", who);
    } else {
        w.start_attrs(
            "Grantee",
            &[("xmlns:xsi", xsi), ("xsi:type", "CanonicalUser")],
        )
        .elem("ID", who)
        .elem("DisplayName", who);
    }
    w.end().elem("Permission", permission).end();
}

/// GET Object acl.
pub async fn get_acl(ctx: &Ctx) -> OpResult {
    let meta = need_object(ctx)?;
    Ok(policy_document(ctx, &meta.acl))
}

/// The AccessControlPolicy document and `x-cos-acl` header for an ACL.
fn policy_document(ctx: &Ctx, acl: &Acl) -> Resp {
    let owner = ctx.owner_id();
    let canned = match &acl.canned {
        Some(c) => c.clone(),
        None if acl.public_read() => "public-read".into(),
        None => "default".into(),
    };
    let mut w = Writer::new();
    w.start("AccessControlPolicy")
        .start("Owner")
        .elem("ID", &owner)
        .elem("DisplayName", &owner)
        .end()
        .start("AccessControlList");
    if acl.grants.is_empty() || acl.canned.is_some() {
        grant(&mut w, false, &owner, "FULL_CONTROL");
    }
    match acl.canned.as_deref() {
        Some("public-read") => grant(&mut w, true, ALL_USERS, "READ"),
        Some("public-read-write") => {
            grant(&mut w, true, ALL_USERS, "READ");
            grant(&mut w, true, ALL_USERS, "WRITE");
        }
        _ => {}
    }
    for g in &acl.grants {
        grant(&mut w, g.group, &g.grantee, &g.permission);
    }
    w.end().end();
    Resp::xml(w.finish()).with("x-cos-acl", canned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_sdk_forms_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/xml-samples/");
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).unwrap();
        let node = parse_policy(&read("request-acl-policy.nodejs-no-type.xml")).unwrap();
        assert_eq!(node.grants.len(), 1);
        assert!(!node.grants[0].group);
        let py = parse_policy(&read("request-acl-policy.python-type-element.xml")).unwrap();
        assert!(py.public_read());
        let xsi = parse_policy(&read("request-acl-policy.python-xsi-attribute.xml")).unwrap();
        assert_eq!(xsi.grants[0].permission, "FULL_CONTROL");
        assert!(xsi.grants[1].group && xsi.public_read());
    }
}
