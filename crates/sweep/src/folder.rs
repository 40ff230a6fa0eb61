//! A sweep folder, `experiments/sweep-<name>-<UTC timestamp>/`. [`SweepDir`] alone knows
//! its layout:
//!
//! | path | what |
//! | --- | --- |
//! | `sweep.toml` | the resolved sweep file (it can be launched again) |
//! | `points.json` | index → overrides → run folder ([`Points`]) |
//! | `job.sbatch` | the generated array job (`launcher = "slurm"`) |
//! | `jobs.json` | each submission: its job id and points ([`Submission`]) |
//! | `logs/point-<i>.out` | a point's output, every attempt appended (Slurm's and local) |
//! | `points/<i>.json` | how the point's last attempt went ([`PointState`]) |
//! | `runs/<run name>/` | the points' run folders |

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use s2s_run::error::{damaged, io, Result, RunError};
use s2s_run::run_dir::{create_stamped, write_atomic};

/// Sweep folders sit beside run folders under `run.output_dir`.
pub const FOLDER_PREFIX: &str = "sweep-";

/// A sweep folder's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDir {
    root: PathBuf,
}

/// `points.json`: what each array task trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Points {
    /// The experiment config (absolute).
    pub config: PathBuf,
    pub points: Vec<Point>,
}

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    pub label: String,
    /// Every `--set KEY=VALUE` of the point's run, in order: the sweep's fixed ones, then
    /// the point's own, then its `run.name`.
    pub overrides: Vec<String>,
    /// The run folder, relative to the sweep folder.
    pub run: PathBuf,
    /// Trains on CUDA (gets `[sweep.slurm] gres`).
    pub gpu: bool,
}

/// One `sbatch` of (some of) the sweep's points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    pub points: Vec<usize>,
    pub submitted_at: String,
    /// The command that submitted it.
    pub command: Vec<String>,
    /// Set by `s2s sweep cancel`: its tasks do not requeue themselves when signalled.
    #[serde(default)]
    pub cancelled: bool,
}

/// How a point's last attempt went, written by the point's task (`s2s sweep point`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointState {
    /// running | completed | interrupted | requeued | failed
    pub state: String,
    pub error: Option<String>,
    /// `<array job>_<task>` under Slurm.
    pub job: Option<String>,
    /// `SLURM_RESTART_COUNT` of the attempt.
    pub restarts: u32,
    /// Attempts so far (every start, requeue and resubmission).
    pub attempts: u32,
    pub updated_at: String,
}

impl SweepDir {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates a new, empty sweep folder under `output_dir`.
    pub fn create(output_dir: &Path, name: &str) -> Result<Self> {
        fs::create_dir_all(output_dir).map_err(io(output_dir))?;
        let output_dir = std::path::absolute(output_dir).map_err(io(output_dir))?;
        let me = Self::at(create_stamped(&output_dir, &format!("{FOLDER_PREFIX}{name}"))?);
        for d in [me.logs(), me.states(), me.runs()] {
            fs::create_dir(&d).map_err(io(&d))?;
        }
        Ok(me)
    }

    /// Whether `path` is a sweep folder (it has a points.json).
    pub fn is_sweep(path: &Path) -> bool {
        path.join("points.json").is_file()
    }

    /// Opens an existing sweep folder, refusing anything else in one line.
    pub fn open(path: &Path) -> Result<Self> {
        if !Self::is_sweep(path) {
            return Err(RunError::Refused(format!("{} is not a sweep folder (no points.json)", path.display())));
        }
        Ok(Self::at(std::path::absolute(path).map_err(io(path))?))
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
    pub fn name(&self) -> String {
        self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    pub fn sweep_toml(&self) -> PathBuf {
        self.root.join("sweep.toml")
    }
    pub fn points_json(&self) -> PathBuf {
        self.root.join("points.json")
    }
    pub fn job_sbatch(&self) -> PathBuf {
        self.root.join("job.sbatch")
    }
    pub fn jobs_json(&self) -> PathBuf {
        self.root.join("jobs.json")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// A point's log, every attempt appended.
    pub fn log(&self, index: usize) -> PathBuf {
        self.logs().join(format!("point-{index}.out"))
    }
    /// The same for sbatch (`%a` is the array task).
    pub fn log_pattern(&self) -> PathBuf {
        self.logs().join("point-%a.out")
    }
    fn states(&self) -> PathBuf {
        self.root.join("points")
    }
    pub fn state_json(&self, index: usize) -> PathBuf {
        self.states().join(format!("{index}.json"))
    }
    pub fn runs(&self) -> PathBuf {
        self.root.join(s2s_run::summary::GROUPED_RUNS)
    }
    pub fn run_dir(&self, point: &Point) -> s2s_run::RunDir {
        s2s_run::RunDir::at(self.root.join(&point.run))
    }

    /// The points' run folders that exist, in point order (in name order when points.json
    /// cannot be read).
    pub fn run_paths(&self) -> Vec<PathBuf> {
        if let Ok(points) = self.read_points() {
            return points.points.iter().map(|p| self.root.join(&p.run)).filter(|p| p.is_dir()).collect();
        }
        let mut v: Vec<PathBuf> = fs::read_dir(self.runs())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    }

    pub fn read_points(&self) -> Result<Points> {
        read_json(&self.points_json())
    }
    pub fn write_points(&self, points: &Points) -> Result<()> {
        write_json(&self.points_json(), points)
    }

    /// The submissions so far (none for a local sweep).
    pub fn read_jobs(&self) -> Result<Vec<Submission>> {
        if !self.jobs_json().exists() {
            return Ok(Vec::new());
        }
        read_json(&self.jobs_json())
    }
    pub fn write_jobs(&self, jobs: &[Submission]) -> Result<()> {
        write_json(&self.jobs_json(), &jobs)
    }

    /// A point's state; `None` before its first attempt.
    pub fn read_state(&self, index: usize) -> Result<Option<PointState>> {
        let p = self.state_json(index);
        if !p.exists() {
            return Ok(None);
        }
        read_json(&p).map(Some)
    }
    pub fn write_state(&self, index: usize, state: &PointState) -> Result<()> {
        write_json(&self.state_json(index), state)
    }

    /// The last line of a point's log that reads `error: ...` (the CLI's one-line errors).
    pub fn last_error_line(&self, index: usize) -> Option<String> {
        let text = fs::read_to_string(self.log(index)).ok()?;
        text.lines().rev().find(|l| l.starts_with("error: ")).map(|l| l.trim_start_matches("error: ").to_string())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| damaged(path, e))
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| damaged(path, e))?;
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sweep_folder_has_its_parts_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SweepDir::create(dir.path(), "lr").expect("a");
        let b = SweepDir::create(dir.path(), "lr").expect("b");
        assert_ne!(a, b);
        assert!(a.name().starts_with("sweep-lr-") && a.logs().is_dir() && a.runs().is_dir());
        assert!(SweepDir::open(a.path()).is_err(), "no points.json yet");
        let points = Points {
            config: "/c.toml".into(),
            points: vec![Point {
                index: 0,
                label: "lr=1".into(),
                overrides: vec!["train.learning_rate=1".into()],
                run: "runs/x-lr=1".into(),
                gpu: false,
            }],
        };
        a.write_points(&points).expect("write");
        assert_eq!(SweepDir::open(a.path()).expect("open").read_points().expect("read"), points);
        assert!(a.read_jobs().expect("none").is_empty());
        assert_eq!(a.read_state(0).expect("none"), None);
        std::fs::write(a.log(0), "epoch 1\nerror: x.tsv: No such file\nwarning: y\n").expect("log");
        assert_eq!(a.last_error_line(0).as_deref(), Some("x.tsv: No such file"));
    }
}
