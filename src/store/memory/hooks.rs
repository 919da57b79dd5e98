//! Operation counters and fault hooks of `MemoryStore`: "fail the next N calls of an op",
//! async gates that hold an op until a test releases it, and answer gates that hold an op's
//! answer, already read, before it returns (a reply in flight while the state changes).
//!
//! Kept apart from the storage semantics so the store file reads as COS behaviour only.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::store::StoreError;

/// Locks a std mutex, recovering from poisoning (a panicking test thread must not wedge others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A gate on one operation: while closed, calls of the op wait inside the store.
///
/// Returned by [`super::MemoryStore::gate`]; tests call [`Gate::waiting`] (or
/// [`Gate::wait_for_waiters`]) to know a call has arrived, then [`Gate::release`].
#[derive(Debug)]
pub struct Gate {
    /// `true` once released; waiters watch it.
    open: watch::Sender<bool>,
    /// Calls currently parked at the gate.
    waiting: AtomicUsize,
    /// Calls that have arrived at the gate since it was created (parked or passed).
    arrived: AtomicUsize,
    /// Only the first `hold` arrivals park; later ones pass.
    hold: usize,
}

impl Gate {
    fn new(hold: usize) -> Arc<Gate> {
        let (open, _) = watch::channel(false);
        Arc::new(Gate {
            open,
            waiting: AtomicUsize::new(0),
            arrived: AtomicUsize::new(0),
            hold,
        })
    }

    /// Opens the gate: every parked call and every later call passes.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Calls parked at the gate right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Calls that reached the gate so far (including ones that already passed).
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` calls have arrived at the gate, polling with a bounded deadline
    /// (10 s); returns false when the deadline passed first.
    pub async fn wait_for_arrivals(&self, n: usize) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.arrived() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        true
    }

    async fn pass(&self) {
        let nth = self.arrived.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.open.subscribe();
        if *rx.borrow() || nth >= self.hold {
            return;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // The sender lives as long as the gate (we hold &self), so wait_for cannot fail.
        let _ = rx.wait_for(|open| *open).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counters and fault hooks, keyed by COS operation name.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Calls per operation. Guarded alone; never held across `.await`.
    counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Errors to return from the next calls of an op, consumed front first.
    faults: Mutex<BTreeMap<&'static str, VecDeque<StoreError>>>,
    /// Gates per op (a released gate stays installed and passes everything).
    gates: Mutex<BTreeMap<&'static str, Arc<Gate>>>,
    /// Answer gates per op (see `answer`).
    answers: Mutex<BTreeMap<&'static str, Arc<Gate>>>,
}

impl Hooks {
    /// Runs the hooks at the start of `op`: count, wait at a gate, then maybe fail.
    pub(crate) async fn enter(&self, op: &'static str) -> Result<(), StoreError> {
        *lock(&self.counts).entry(op).or_insert(0) += 1;
        let gate = lock(&self.gates).get(op).cloned();
        if let Some(g) = gate {
            g.pass().await;
        }
        let fault = lock(&self.faults).get_mut(op).and_then(|q| q.pop_front());
        match fault {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs at the end of `op`, its answer read: waits at the op's answer gate, if any.
    pub(crate) async fn answer(&self, op: &'static str) {
        let gate = lock(&self.answers).get(op).cloned();
        if let Some(g) = gate {
            g.pass().await;
        }
    }

    pub(crate) fn answer_gate(&self, op: &'static str, hold: usize) -> Arc<Gate> {
        let g = Gate::new(hold);
        lock(&self.answers).insert(op, g.clone());
        g
    }

    pub(crate) fn counts(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.counts).clone()
    }

    pub(crate) fn reset_counts(&self) {
        lock(&self.counts).clear();
    }

    pub(crate) fn fail_next(&self, op: &'static str, n: usize, err: StoreError) {
        let mut f = lock(&self.faults);
        let q = f.entry(op).or_default();
        for _ in 0..n {
            q.push_back(err.clone());
        }
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn gate(&self, op: &'static str) -> Arc<Gate> {
        let g = Gate::new(usize::MAX);
        lock(&self.gates).insert(op, g.clone());
        g
    }

    pub(crate) fn remove_gate(&self, op: &'static str) {
        if let Some(g) = lock(&self.gates).remove(op) {
            g.release();
        }
    }
}
