//! The emulator's protective limits (issue 11 item 6), over real HTTP: XML nesting depth and
//! body sizes, temp files of abandoned requests, header-read timeout and connection limit, who
//! may reset the counters, key validity, and the free-space guard.

mod emulator_support;

use emulator_support::*;

#[tokio::test]
async fn delete_body_nesting_200000_elements_is_malformed_xml_not_a_crash() {
    let e = Emu::start().await;
    let n = 200_000;
    let body = format!("<Delete>{}{}</Delete>", "<a>".repeat(n), "</a>".repeat(n));
    let r = e.send("POST", "", &[("delete", "")], &[], body).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "MalformedXML");
    // The server survived: the next request is answered normally.
    e.put("after", b"still here").await;
}

#[tokio::test]
async fn oversized_xml_bodies_are_entity_too_large() {
    let e = Emu::start().await;
    e.put("k", b"x").await;
    let big = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(100_000)
    );
    assert!(big.len() > 2 * 1024 * 1024);
    let r = e.send("POST", "", &[("delete", "")], &[], big).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "EntityTooLarge".into()),
        "{}",
        r.text()
    );
    let acl = format!(
        "<AccessControlPolicy>{}</AccessControlPolicy>",
        " ".repeat(70_000)
    );
    let r = e.send("PUT", "k", &[("acl", "")], &[], acl).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "EntityTooLarge".into()),
        "{}",
        r.text()
    );
    // Nothing was deleted by the refused request.
    assert_eq!(e.send("HEAD", "k", &[], &[], Vec::new()).await.status, 200);
}
