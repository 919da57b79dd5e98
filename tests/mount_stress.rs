//! Concurrency stress on a real mount, in rounds (`COSFUSE_STRESS_ROUNDS`, default 3): N
//! appenders with O_APPEND on one file, N readers beside N writers of one file, parallel
//! renames in one directory, and first reads of one object from several handles at once.
//! Every byte is accounted for, and every call returns within a bounded time (a thread that
//! does not report within the deadline fails the test instead of hanging it).

mod common;
use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

const BUCKET: &str = "stress-1250000000";
const N: usize = 6;
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `n` closures on threads and waits for all, each within `DEADLINE`.
fn all_return(n: usize, f: impl Fn(usize) + Send + Sync + Clone + 'static) {
    let (tx, rx) = mpsc::channel();
    for k in 0..n {
        let (f, tx) = (f.clone(), tx.clone());
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(k)));
            let _ = tx.send((k, r.is_ok()));
        });
    }
    for _ in 0..n {
        let (k, ok) = rx
            .recv_timeout(DEADLINE)
            .expect("a call did not return within the deadline");
        assert!(ok, "worker {k} failed");
    }
}

#[test]
fn appenders_readers_writers_renames_and_first_reads_in_rounds() {
    let rounds: usize = std::env::var("COSFUSE_STRESS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let emu = Emulator::start(&[BUCKET], &[]);
    let big = pattern(12 << 20, 99);
    emu.put(BUCKET, "big", &big);
    let m = Mount::new(&emu, BUCKET, "");
    let root = m.path().to_path_buf();
    for round in 0..rounds {
        let dir = root.join(format!("r{round}"));
        fs::create_dir(&dir).unwrap();

        // N appenders, 50 records of 30 bytes each, through their own O_APPEND descriptors.
        let log = dir.join("log");
        all_return(N, {
            let log = log.clone();
            move |k| {
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                for i in 0..50 {
                    f.write_all(format!("{k:02}-{i:04}-{:>21}\n", "x").as_bytes())
                        .unwrap();
                }
            }
        });
        let text = fs::read_to_string(&log).unwrap();
        let missing: Vec<String> = (0..N)
            .flat_map(|k| (0..50).map(move |i| format!("{k:02}-{i:04}-")))
            .filter(|r| !text.contains(r.as_str()))
            .collect();
        assert_eq!(
            text.len(),
            N * 50 * 30,
            "round {round}: appended bytes; missing records {missing:?}"
        );
        for k in 0..N {
            for i in 0..50 {
                assert!(text.contains(&format!("{k:02}-{i:04}-")), "record {k}-{i}");
            }
        }

        // N writers of their own 64 KiB block beside N readers of the same file.
        let shared = dir.join("shared");
        fs::write(&shared, vec![0u8; N * 65536]).unwrap();
        all_return(2 * N, {
            let shared = shared.clone();
            move |k| {
                if k < N {
                    let f = fs::OpenOptions::new().write(true).open(&shared).unwrap();
                    f.write_all_at(&pattern(65536, k as u64 + 1), (k * 65536) as u64)
                        .unwrap();
                } else {
                    let f = fs::File::open(&shared).unwrap();
                    let mut buf = vec![0u8; 65536];
                    for _ in 0..10 {
                        // Each block is all zeros or all the writer's bytes, never torn past
                        // the file's end: the read itself must return.
                        f.read_at(&mut buf, ((k - N) * 65536) as u64).unwrap();
                    }
                }
            }
        });
        let want: Vec<u8> = (0..N).flat_map(|k| pattern(65536, k as u64 + 1)).collect();
        assert_eq!(difference(&fs::read(&shared).unwrap(), &want), None);

        // Parallel renames in one directory: every name moves exactly once.
        for k in 0..4 * N {
            fs::write(dir.join(format!("n{k}")), format!("{k}")).unwrap();
        }
        all_return(N, {
            let dir = dir.clone();
            move |t| {
                for k in (t..4 * N).step_by(N) {
                    fs::rename(dir.join(format!("n{k}")), dir.join(format!("m{k}"))).unwrap();
                }
            }
        });
        for k in 0..4 * N {
            assert!(!dir.join(format!("n{k}")).exists(), "n{k} still there");
            assert_eq!(
                fs::read_to_string(dir.join(format!("m{k}"))).unwrap(),
                k.to_string()
            );
        }

        // First reads of one COS object from several handles at once (drop the kernel's
        // cache of it first by reading through fresh handles on a fresh inode each round).
        all_return(N, {
            let (p, big) = (root.join("big"), big.clone());
            move |k| {
                let f = fs::File::open(&p).unwrap();
                let off = (k * (2 << 20)) % (12 << 20);
                let mut buf = vec![0u8; 1 << 20];
                f.read_exact_at(&mut buf, off as u64).unwrap();
                assert_eq!(difference(&buf, &big[off..off + (1 << 20)]), None);
            }
        });
    }
    m.unmount();
    for round in 0..rounds {
        let text = emu.get(BUCKET, &format!("r{round}/log"));
        assert_eq!(text.len(), N * 50 * 30, "round {round}: in COS");
    }
    println!("{rounds} stress rounds passed");
}
