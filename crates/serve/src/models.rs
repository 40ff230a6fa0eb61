//! Opened runs kept between requests, up to a memory budget: a run is opened (its
//! checkpoint verified against its checksums) on first use and then reused until the
//! checkpoint its name points at changes (a running run's new `best`) or it is the least
//! recently used one over the budget.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use s2s_run::checkpoint::numbered;
use s2s_run::{OpenedRun, RunDir, RunError, Which};

/// Which checkpoint files a name points at now: its `state.json`, modified when, how long.
type Stamp = Option<(PathBuf, SystemTime, u64)>;

#[derive(Debug)]
struct Entry {
    run: PathBuf,
    checkpoint: String,
    stamp: Stamp,
    bytes: u64,
    last_used: u64,
    opened: Arc<OpenedRun>,
}

/// The opened runs, least recently used first out.
#[derive(Debug)]
pub struct ModelCache {
    /// Bytes of weights kept open at most (one run is always kept, whatever its size).
    budget: u64,
    entries: Mutex<Vec<Entry>>,
    /// Held while a run is opened, so that concurrent first requests open it once.
    opening: Mutex<()>,
    clock: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the list itself consistent (entries are pushed
    // or removed whole), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The state.json `which` would open now, without verifying it (cheap: a few stats).
fn stamp(run: &RunDir, which: &Which) -> Stamp {
    let root = run.checkpoints();
    let newest = || numbered(run).pop().map(|(_, p)| p);
    let dir = match which {
        Which::Best if root.join("best").is_dir() => Some(root.join("best")),
        Which::Best | Which::Last => newest(),
        Which::Average => Some(root.join("average")),
        Which::Folder(p) => Some(p.clone()),
    }?;
    let state = dir.join("state.json");
    let meta = std::fs::metadata(&state).ok()?;
    Some((state, meta.modified().ok()?, meta.len()))
}

impl ModelCache {
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget: budget_bytes,
            entries: Mutex::new(Vec::new()),
            opening: Mutex::new(()),
            clock: AtomicU64::new(0),
        }
    }

    fn lookup(&self, run: &Path, checkpoint: &str, stamp: &Stamp) -> Option<Arc<OpenedRun>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = lock(&self.entries);
        let e = entries.iter_mut().find(|e| e.run == run && e.checkpoint == checkpoint && e.stamp == *stamp)?;
        e.last_used = now;
        Some(e.opened.clone())
    }

    /// The run at `run` opened at checkpoint `which` (named `checkpoint`), from the cache
    /// or opened now.
    pub fn get(&self, run: &Path, checkpoint: &str, which: &Which) -> Result<Arc<OpenedRun>, RunError> {
        let st = stamp(&RunDir::at(run), which);
        if let Some(hit) = self.lookup(run, checkpoint, &st) {
            return Ok(hit);
        }
        let _opening = lock(&self.opening);
        if let Some(hit) = self.lookup(run, checkpoint, &st) {
            return Ok(hit);
        }
        let opened = Arc::new(OpenedRun::open(run, which)?);
        let bytes = std::fs::metadata(opened.checkpoint.model_file()).map_or(0, |m| m.len());
        let mut entries = lock(&self.entries);
        entries.retain(|e| !(e.run == run && e.checkpoint == checkpoint));
        let last_used = self.clock.fetch_add(1, Ordering::Relaxed);
        entries.push(Entry {
            run: run.to_path_buf(),
            checkpoint: checkpoint.to_string(),
            stamp: st,
            bytes,
            last_used,
            opened: opened.clone(),
        });
        while entries.len() > 1 && entries.iter().map(|e| e.bytes).sum::<u64>() > self.budget {
            let oldest = entries.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i);
            if let Some(i) = oldest {
                entries.remove(i);
            }
        }
        Ok(opened)
    }

    /// How many runs are open, and their weights' bytes.
    pub fn held(&self) -> (usize, u64) {
        let entries = lock(&self.entries);
        (entries.len(), entries.iter().map(|e| e.bytes).sum())
    }
}
