//! A run folder: `experiments/<name>-<UTC timestamp>/` and its `run.json`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// `run.json`: what a run is and how it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub name: String,
    /// running | completed | interrupted | failed
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub seed: u64,
    pub device: String,
    pub program_version: String,
    pub config_file: String,
    pub pid: u32,
    pub parameters: ParameterCounts,
    pub data: DataInfo,
    pub final_metrics: serde_json::Map<String, serde_json::Value>,
    pub error: Option<String>,
    /// One entry per `run` / `resume` session, oldest first.
    #[serde(default)]
    pub sessions: Vec<Session>,
}

/// One training session of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    /// "run" or "resume"
    pub command: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    pub pid: u32,
    /// Epochs done when the session started (and the step within an epoch, if mid-epoch).
    pub from_epoch: usize,
    pub from_step: usize,
    pub to_epoch: Option<usize>,
    /// Config keys changed for this session: "key: old -> new".
    pub changes: Vec<String>,
}

/// Holds `run_dir/.lock` while a process trains the run; dropped (or the process dying)
/// releases it.
#[derive(Debug)]
pub struct RunLock(#[allow(dead_code)] fs::File);

impl RunLock {
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => Ok(Self(f)),
            Err(_) => anyhow::bail!(
                "{} is being trained by another s2s process; wait for it or stop it first",
                run_dir.display()
            ),
        }
    }

    /// Whether some process holds the run's lock (is training it now).
    pub fn is_held(run_dir: &Path) -> bool {
        let Ok(f) = fs::OpenOptions::new().write(true).open(run_dir.join(".lock")) else { return false };
        f.try_lock().is_err()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ParameterCounts {
    pub total: usize,
    pub by_module: Vec<(String, usize)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataInfo {
    pub fingerprint: String,
    pub files: Vec<(String, String)>,
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub test_pairs: usize,
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub skipped_lines: usize,
    pub filtered_pairs: usize,
}

/// UTC now as `2026-11-26T21:46:08Z`.
pub fn utc_now() -> String {
    let (y, mo, d, h, mi, s) = utc_parts(SystemTime::now());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

pub fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// Creates a new, empty run folder that no other run uses, even within the same second.
pub fn create_run_dir(output_dir: &Path, name: &str) -> Result<PathBuf> {
    fs::create_dir_all(output_dir).with_context(|| format!("cannot create {}", output_dir.display()))?;
    let (y, mo, d, h, mi, s) = utc_parts(SystemTime::now());
    let base = format!("{name}-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}");
    for k in 1..10_000 {
        let dir = if k == 1 { output_dir.join(&base) } else { output_dir.join(format!("{base}-{k}")) };
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create run folder {}", dir.display())),
        }
    }
    anyhow::bail!("too many runs named {base} in {}", output_dir.display())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl RunInfo {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join("run.json")
    }

    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        write_atomic(&Self::path(run_dir), json.as_bytes())
    }

    pub fn load(run_dir: &Path) -> Result<Self> {
        let p = Self::path(run_dir);
        let text = fs::read_to_string(&p)
            .with_context(|| format!("{} is not a run folder (no run.json)", run_dir.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid run.json", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_729_568); // 2026-11-26T21:46:08Z
        assert_eq!(utc_parts(t), (2026, 11, 26, 21, 46, 8));
        assert_eq!(utc_parts(UNIX_EPOCH), (1970, 1, 1, 0, 0, 0));
    }

    #[test]
    fn same_second_runs_get_distinct_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = create_run_dir(dir.path(), "x").expect("a");
        let b = create_run_dir(dir.path(), "x").expect("b");
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
    }
}
