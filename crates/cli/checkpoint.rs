//! Checkpoints in a run folder: `checkpoints/step-<N>/` (the newest few, by
//! `train.keep_checkpoints`) and `checkpoints/best/`, each holding `model.safetensors`,
//! `optimizer.safetensors` and `state.json` (trainer position, random streams and the
//! SHA-256 of each tensor file). A checkpoint is written under a temporary name, synced
//! and renamed into place, so a half-written one is never picked up; a damaged one is
//! detected by its checksums and skipped for the previous one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use s2s_model::{Seq2Seq, TrainRngs};
use s2s_trainer::policy::checkpoints_to_keep;
use s2s_trainer::{CheckpointKind, Checkpointer, Optimizer, TrainError, TrainerState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::run_dir::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub trainer: TrainerState,
    pub optimizer_steps: u64,
    pub rngs: Option<TrainRngs>,
    /// File name → SHA-256 of its bytes.
    pub files: Vec<(String, String)>,
}

pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Numbered checkpoints (`step-<N>`) in a run, oldest first.
pub fn numbered(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = fs::read_dir(checkpoints_dir(run_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("step-").and_then(|n| n.parse().ok()).map(|n| (n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Writes checkpoints of `model` into a run folder.
/// Called after each end-of-epoch checkpoint.
pub type RefreshHook<'a> = Box<dyn Fn(&TrainerState) -> Result<()> + 'a>;

pub struct RunCheckpointer<'a> {
    pub run_dir: PathBuf,
    pub model: &'a Seq2Seq,
    pub keep: usize,
    /// Refreshes the run's report files after each end-of-epoch checkpoint.
    pub refresh: Option<RefreshHook<'a>>,
}

impl std::fmt::Debug for RunCheckpointer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCheckpointer").field("run_dir", &self.run_dir).field("keep", &self.keep).finish()
    }
}

impl RunCheckpointer<'_> {
    fn write(&self, name: &str, state: &TrainerState, opt: &Optimizer, task: &serde_json::Value) -> Result<()> {
        let root = checkpoints_dir(&self.run_dir);
        fs::create_dir_all(&root)?;
        let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir(&tmp)?;
        let model_path = tmp.join("model.safetensors");
        self.model.params().save(&model_path)?;
        let opt_path = tmp.join("optimizer.safetensors");
        candle_core::safetensors::save(&opt.state_tensors()?, &opt_path)?;
        let mut files = Vec::new();
        for p in [&model_path, &opt_path] {
            fs::File::open(p)?.sync_all()?;
            let file = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.push((file, sha256_file(p)?));
        }
        let rngs = serde_json::from_value(task.clone()).ok();
        let cs = CheckpointState { trainer: state.clone(), optimizer_steps: opt.steps, rngs, files };
        write_atomic(&tmp.join("state.json"), serde_json::to_string_pretty(&cs)?.as_bytes())?;
        let dest = root.join(name);
        let old = root.join(format!(".{name}.old"));
        if dest.exists() {
            if old.exists() {
                fs::remove_dir_all(&old)?;
            }
            fs::rename(&dest, &old)?;
        }
        fs::rename(&tmp, &dest)?;
        if let Ok(d) = fs::File::open(&root) {
            let _ = d.sync_all();
        }
        if old.exists() {
            fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    /// Removes numbered checkpoints the retention policy does not keep.
    fn prune(&self) -> Result<()> {
        let all = numbered(&self.run_dir);
        let steps: Vec<usize> = all.iter().map(|(s, _)| *s).collect();
        let keep = checkpoints_to_keep(&steps, None, self.keep);
        for (s, dir) in all {
            if !keep.contains(&s) {
                fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            }
        }
        Ok(())
    }
}

impl Checkpointer for RunCheckpointer<'_> {
    fn save(
        &mut self,
        kind: CheckpointKind,
        state: &TrainerState,
        optimizer: &Optimizer,
        task: &serde_json::Value,
    ) -> s2s_trainer::Result<()> {
        let run = || -> Result<()> {
            match kind {
                CheckpointKind::Best => self.write("best", state, optimizer, task),
                CheckpointKind::Last => {
                    self.write(&format!("step-{:08}", state.steps), state, optimizer, task)?;
                    self.prune()?;
                    match &self.refresh {
                        Some(refresh) if state.batch_in_epoch == 0 && state.steps > 0 => refresh(state),
                        _ => Ok(()),
                    }
                }
            }
        };
        run().map_err(|e| TrainError::Task(e.into()))
    }
}

/// A verified checkpoint folder.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    pub dir: PathBuf,
    pub state: CheckpointState,
}

/// Finds `which` and checks its files against their recorded SHA-256: `last` is the
/// newest numbered checkpoint that verifies (damaged ones are named in a warning and
/// skipped), `best` the best one, anything else a checkpoint folder path.
pub fn locate(run_dir: &Path, which: &str) -> Result<LoadedCheckpoint> {
    let root = checkpoints_dir(run_dir);
    let candidates: Vec<PathBuf> = match which {
        "last" => numbered(run_dir).into_iter().rev().map(|(_, p)| p).collect(),
        "best" => vec![root.join("best"), root.join(".best.old")],
        path => vec![PathBuf::from(path)],
    };
    let mut problems = Vec::new();
    for dir in candidates {
        if !dir.is_dir() {
            continue;
        }
        match verify(&dir) {
            Ok(state) => return Ok(LoadedCheckpoint { dir, state }),
            Err(e) => {
                eprintln!("warning: checkpoint {} is damaged and was skipped: {e:#}", dir.display());
                problems.push(format!("{}: {e:#}", dir.display()));
            }
        }
    }
    if problems.is_empty() {
        bail!("no `{which}` checkpoint in {}", root.display())
    }
    bail!("no usable `{which}` checkpoint ({})", problems.join("; "))
}

fn verify(dir: &Path) -> Result<CheckpointState> {
    let text = fs::read_to_string(dir.join("state.json")).context("state.json is missing")?;
    let state: CheckpointState = serde_json::from_str(&text).context("state.json is damaged")?;
    for (name, sum) in &state.files {
        let got = sha256_file(&dir.join(name))?;
        if &got != sum {
            bail!("{name} does not match its checksum");
        }
    }
    Ok(state)
}

impl LoadedCheckpoint {
    pub fn load_model(&self, model: &Seq2Seq) -> Result<()> {
        model.params().load(&self.dir.join("model.safetensors"))?;
        Ok(())
    }

    pub fn optimizer_tensors(&self, device: &Device) -> Result<HashMap<String, candle_core::Tensor>> {
        Ok(candle_core::safetensors::load(self.dir.join("optimizer.safetensors"), device)?)
    }
}
