//! How `cosfuse tasks` shows the upload queue: a plain table, and live indicatif bars for
//! `--watch`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::TaskView;

/// `1.5 MiB`-style sizes.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// When a waiting task's next attempt starts: relative to `now`, and as a UTC clock time
/// (both Unix seconds).
pub fn next_attempt_line(at: u64, now: u64) -> String {
    let day = at % 86_400;
    let clock = format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    );
    match at.checked_sub(now) {
        Some(0) | None => "next attempt: now".to_string(),
        Some(s) if s < 120 => format!("next attempt: in {s} s ({clock})"),
        Some(s) => format!("next attempt: in {} min {} s ({clock})", s / 60, s % 60),
    }
}

/// The task table, one line per task plus indented lines for failed and waiting ones (the
/// error; when a waiting one is tried again; where the local copy is).
pub fn table(tasks: &[TaskView]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if tasks.is_empty() {
        return "no uploads pending\n".to_string();
    }
    let mut out = format!(
        "{:>5}  {:<8} {:>6}  {:>21}  {:>11}  {:>3}  {}\n",
        "ID", "STATE", "DONE", "LOADED/SIZE", "SPEED", "TRY", "KEY"
    );
    for t in tasks {
        let loaded = format!("{}/{}", human(t.loaded), human(t.size));
        out.push_str(&format!(
            "{:>5}  {:<8} {:>5.1}%  {:>21}  {:>9}/s  {:>3}  {}\n",
            t.id,
            t.state,
            t.percent,
            loaded,
            human(t.speed),
            t.attempts,
            t.key
        ));
        if let Some(at) = t.next_attempt {
            out.push_str(&format!("       {}\n", next_attempt_line(at, now)));
        }
        if let Some(e) = &t.error {
            let label = if t.state == "failed" || t.state == "waiting" {
                "error"
            } else {
                "last error"
            };
            out.push_str(&format!("       {label}: {e}\n"));
            out.push_str(&format!("       local copy: {}\n", t.local_path.display()));
        }
    }
    out
}

/// Live progress bars, refreshed from `fetch` every `interval`, until no task is queued or
/// running, `limit` passes, or `fetch` fails. Returns the last list seen.
pub fn watch(
    mut fetch: impl FnMut() -> Result<Vec<TaskView>, String>,
    interval: Duration,
    limit: Duration,
) -> Result<Vec<TaskView>, String> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>5} {msg:<8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: BTreeMap<u64, ProgressBar> = BTreeMap::new();
    let deadline = Instant::now() + limit;
    loop {
        let tasks = fetch()?;
        for t in &tasks {
            let bar = bars.entry(t.id).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(t.size));
                b.set_style(style.clone());
                b.set_prefix(t.id.to_string());
                b
            });
            bar.set_length(t.size.max(1));
            bar.set_position(t.loaded.min(t.size));
            let mut msg = format!("{:<8} {}", t.state, t.key);
            if let Some(e) = &t.error {
                msg.push_str(&format!(" ({e})"));
            }
            bar.set_message(msg);
            if t.state == "done" {
                bar.finish();
            }
        }
        let active = tasks.iter().any(TaskView::is_active);
        if !active || Instant::now() >= deadline {
            for b in bars.values() {
                b.abandon();
            }
            return Ok(tasks);
        }
        std::thread::sleep(interval);
    }
}

/// The mount's counters as a table (`cosfuse stats`).
pub fn stats_text(s: &crate::store::metrics::StatsView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>9} {:>8} {:>8} {:>8}  failures",
        "operation", "ok", "failed", "p50 ms", "p99 ms"
    );
    for (op, v) in &s.requests {
        let failed: u64 = v.failed.values().sum();
        let why: Vec<String> = v.failed.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "{op:<26} {:>9} {failed:>8} {:>8} {:>8}  {}",
            v.ok,
            v.p50_ms,
            v.p99_ms,
            why.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "bytes up {}, bytes down {}, uploads queued or running {}",
        s.bytes_up, s.bytes_down, s.queue_depth
    );
    for (k, v) in &s.counters {
        let _ = writeln!(out, "{k} {v}");
    }
    if !s.errors.is_empty() {
        let e: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "errors: {}", e.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u64, state: &str, loaded: u64) -> TaskView {
        TaskView {
            id,
            key: format!("dir/file{id}"),
            size: 2 << 20,
            loaded,
            speed: 1024,
            percent: loaded as f64 * 100.0 / (2 << 20) as f64,
            state: state.into(),
            error: (state == "failed").then(|| "SlowDown: please slow down".to_string()),
            local_path: format!("/cache/staging/{id}").into(),
            attempts: 2,
            next_attempt: None,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn table_shows_every_task_and_failures_with_their_local_copy() {
        let t = table(&[task(1, "running", 1 << 20), task(2, "failed", 0)]);
        assert!(t.starts_with("   ID  STATE"), "{t}");
        assert!(t.contains("dir/file1") && t.contains("50.0%") && t.contains("1.0 MiB/2.0 MiB"));
        assert!(
            t.contains("error: SlowDown") && t.contains("/cache/staging/2"),
            "{t}"
        );
        assert_eq!(table(&[]), "no uploads pending\n");
    }

    #[test]
    fn table_shows_when_a_waiting_task_retries_and_why() {
        let mut w = task(3, "waiting", 0);
        w.error = Some("network error: connection refused".into());
        w.next_attempt = Some(u64::MAX);
        let t = table(&[w]);
        assert!(
            t.contains("waiting") && t.contains("next attempt: in "),
            "{t}"
        );
        assert!(
            t.contains("error: network error: connection refused"),
            "{t}"
        );
        assert_eq!(
            next_attempt_line(100, 90),
            "next attempt: in 10 s (00:01:40 UTC)"
        );
        assert_eq!(next_attempt_line(100, 100), "next attempt: now");
        assert_eq!(next_attempt_line(90, 100), "next attempt: now");
        // 2026-11-30 16:05:03 UTC, 5 minutes ahead.
        assert_eq!(
            next_attempt_line(1_796_054_703, 1_796_054_403),
            "next attempt: in 5 min 0 s (16:05:03 UTC)"
        );
    }

    #[test]
    fn watch_stops_when_nothing_is_active() {
        let mut calls = 0;
        let last = watch(
            || {
                calls += 1;
                Ok(match calls {
                    1 => vec![task(1, "running", 0)],
                    2 => vec![task(1, "running", 1 << 20)],
                    _ => vec![task(1, "done", 2 << 20)],
                })
            },
            Duration::from_millis(1),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(calls, 3);
        assert_eq!(last[0].state, "done");
    }

    #[test]
    fn watch_is_bounded_in_time_and_stops_on_errors() {
        let mut calls = 0u32;
        let r = watch(
            || {
                calls += 1;
                Ok(vec![task(1, "running", 0)])
            },
            Duration::from_millis(1),
            Duration::from_millis(20),
        );
        assert!(r.is_ok() && calls >= 1);
        assert!(watch(
            || Err("gone".into()),
            Duration::from_millis(1),
            Duration::from_secs(1)
        )
        .is_err());
    }
}
