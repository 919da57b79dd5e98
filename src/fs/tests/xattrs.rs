//! The user.cos.* xattr namespace, copies in place and mtimes across uploads, copies and renames.

use super::*;

#[tokio::test]
async fn xattrs_acl_class_restore_and_metadata() {
    let e = env();
    let ino = write_file(&e.fs, ROOT_INO, "f", b"payload").await;
    // The pending upload is waited for: ACL calls see the object.
    assert_eq!(getx(&e.fs, ino, "user.cos.acl").await.unwrap(), "default");
    e.fs.setxattr(ino, os("user.cos.acl"), b"public-read", 0)
        .await
        .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.acl").await.unwrap(),
        "public-read"
    );
    let grant = "id=\"qcs::cam::uin/1:uin/11\"";
    e.fs.setxattr(ino, os("user.cos.grant-read"), grant.as_bytes(), 0)
        .await
        .unwrap();
    assert!(getx(&e.fs, ino, "user.cos.grant-read")
        .await
        .unwrap()
        .contains("uin/11"));
    let policy = getx(&e.fs, ino, "user.cos.acl-policy").await.unwrap();
    assert!(
        policy.contains("uin/11") && policy.contains("READ"),
        "{policy}"
    );
    e.fs.setxattr(ino, os("user.cos.acl-policy"), policy.as_bytes(), 0)
        .await
        .unwrap();
    assert!(getx(&e.fs, ino, "user.cos.acl-policy")
        .await
        .unwrap()
        .contains("uin/11"));

    e.fs.setxattr(ino, os("user.cos.meta.project"), b"apollo", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.cos.content-type"), b"text/html", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.anything"), "free ü".as_bytes(), 0)
        .await
        .unwrap();
    let m = e.store.meta("f").unwrap();
    assert_eq!(m.headers.user_meta["project"], "apollo");
    assert_eq!(m.headers.content_type.as_deref(), Some("text/html"));
    assert!(
        m.headers.user_meta.contains_key("mode"),
        "mode kept by the copy"
    );
    let e2 = env_with(e.store.clone(), |_| {});
    let ino2 = resolve(&e2.fs, "f").await.unwrap();
    assert_eq!(getx(&e2.fs, ino2, "user.anything").await.unwrap(), "free ü");
    assert_eq!(
        getx(&e2.fs, ino2, "user.cos.meta.project").await.unwrap(),
        "apollo"
    );
    let list = String::from_utf8(e2.fs.listxattr(ino2).await.unwrap()).unwrap();
    for n in [
        "user.cos.acl\0",
        "user.cos.etag\0",
        "user.cos.meta.project\0",
        "user.anything\0",
        "user.cos.content-type\0",
    ] {
        assert!(list.contains(n), "{n} in {list:?}");
    }
    assert!(!list.contains("user.cos.meta.mode"));
    e2.fs.removexattr(ino2, os("user.anything")).await.unwrap();
    assert_eq!(
        getx(&e2.fs, ino2, "user.anything").await.unwrap_err(),
        FsError::NoAttr
    );
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.etag"), b"x", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EPERM
    );
    let big = vec![b'v'; 4096];
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.meta.big"), &big, 0)
            .await
            .unwrap_err()
            .errno(),
        libc::E2BIG
    );
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.meta.a_b"), b"1", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    assert_eq!(
        getx(&e.fs, ino, "security.selinux")
            .await
            .unwrap_err()
            .errno(),
        libc::ENOTSUP
    );
    assert_eq!(
        e.fs.setxattr(ino, os("trusted.x"), b"1", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::ENOTSUP
    );
    assert!(getx(&e.fs, ino, "user.cos.url")
        .await
        .unwrap()
        .contains("f"));

    // Archive, refused read, restore, read.
    e.fs.setxattr(ino, os("user.cos.storage-class"), b"ARCHIVE", 0)
        .await
        .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.storage-class").await.unwrap(),
        "ARCHIVE"
    );
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EACCES
    );
    assert_eq!(getx(&e.fs, ino, "user.cos.restore").await.unwrap(), "none");
    e.fs.setxattr(ino, os("user.cos.restore"), b"days=1,tier=Expedited", 0)
        .await
        .unwrap();
    e.fs.setxattr(ino, os("user.cos.restore"), b"days=1,tier=Expedited", 0)
        .await
        .unwrap();
    assert_eq!(
        getx(&e.fs, ino, "user.cos.restore").await.unwrap(),
        "in-progress"
    );
    assert_eq!(
        read_all(&e.fs, ino).await.unwrap_err().errno(),
        libc::EAGAIN
    );
    assert!(e.store.complete_restore("f"));
    assert!(getx(&e.fs, ino, "user.cos.restore")
        .await
        .unwrap()
        .starts_with("restored until"));
    assert_eq!(read_all(&e.fs, ino).await.unwrap(), b"payload");
    assert_eq!(
        e.fs.setxattr(ino, os("user.cos.restore"), b"weeks=2", 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
}
