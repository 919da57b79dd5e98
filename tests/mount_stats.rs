//! `cosfuse stats MOUNTPOINT` on a live mount: its request counters match the emulator's own
//! `/-/stats` for the same work, and errors are counted by errno.

mod common;
use common::*;
use std::fs;

const BUCKET: &str = "stats-1250000000";

fn stats_json(m: &Mount) -> serde_json::Value {
    serde_json::from_str(&cosfuse_tool(&["stats", "--json"], m)).unwrap()
}

#[test]
fn counters_match_the_emulators_for_the_same_work() {
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "in/a", &pattern(100_000, 1));
    emu.put(BUCKET, "in/b", b"bee");
    let before = emu.stats();
    let m = Mount::new(&emu, BUCKET, "");
    sh(m.path(), "ls -l in >/dev/null && cat in/a in/b >/dev/null");
    for i in 0..3 {
        write_in_child(&m.p(&format!("out{i}")), &pattern(5000, i));
    }
    assert!(fs::metadata(m.p("missing")).is_err());
    let s = stats_json(&m);
    let after = emu.stats();
    // Every call, whatever its outcome (the emulator counts requests, a HEAD's 404 included).
    let ours = |op: &str| {
        let r = &s["requests"][op];
        let failed: u64 = r["failed"]
            .as_object()
            .map(|f| f.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        r["ok"].as_u64().unwrap_or(0) + failed
    };
    for op in ["PutObject", "GetObject", "HeadObject"] {
        assert_eq!(
            ours(op),
            delta(&before, &after, op),
            "{op}: ours {s} emulator {after:?}"
        );
    }
    // The emulator also saw the mount's one access check before the counters started.
    assert_eq!(ours("GetBucket"), delta(&before, &after, "GetBucket") - 1);
    assert!(s["bytes_up"].as_u64().unwrap() >= 15_000, "{s}");
    assert!(s["bytes_down"].as_u64().unwrap() >= 100_003, "{s}");
    assert!(s["errors"]["ENOENT"].as_u64().unwrap_or(0) >= 1, "{s}");
    assert!(
        s["counters"]["attr_cache_hit"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    assert!(s["requests"]["GetObject"]["p99_ms"].as_u64().is_some());
    // The table form names the operations too.
    let text = cosfuse_tool(&["stats"], &m);
    assert!(
        text.contains("PutObject") && text.contains("bytes up"),
        "{text}"
    );
    let log_path = m.unmount();
    let log = fs::read_to_string(log_path.with_extension("log")).unwrap_or_default();
    assert!(log.contains("counters: {"), "counters logged at unmount");
}
