//! Checkpoints in a run folder: `checkpoints/step-<N>/` (the newest few, by
//! `train.keep_checkpoints`), `checkpoints/best/` and, once `s2s average` made it,
//! `checkpoints/average/` (model weights only), each holding `model.safetensors`,
//! `optimizer.safetensors` and `state.json` (trainer position, the task's random streams
//! and the SHA-256 of each tensor file). A checkpoint is written under a temporary name,
//! synced and renamed into place, so a half-written one is never picked up; a damaged one
//! is detected by its checksums and skipped for the previous one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use s2s_model::{TrainRngs, TranslationModel};
use s2s_trainer::policy::checkpoints_to_keep;
use s2s_trainer::{CheckpointKind, Checkpointer, Optimizer, TrainError, TrainerState};
use serde::{Deserialize, Serialize};

use crate::error::{damaged, io, Result, RunError};
use crate::run_dir::{sync_dir, temporary, write_atomic, RunDir};

const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";
const BEST: &str = "best";
const AVERAGE: &str = "average";
const NUMBERED: &str = "step-";

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub trainer: TrainerState,
    pub optimizer_steps: u64,
    /// The translation task's random streams (dropout, teacher forcing).
    pub rngs: TrainRngs,
    /// File name → SHA-256 of its bytes.
    pub files: Vec<(String, String)>,
    /// For an averaged checkpoint: the checkpoints whose weights it averages (the trainer
    /// position and streams are the newest one's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub averaged: Vec<String>,
}

/// Which checkpoint to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The newest numbered checkpoint that verifies.
    Last,
    /// The best validation's (`best/`).
    Best,
    /// The weights `s2s average` wrote (`average/`).
    Average,
    /// A checkpoint folder.
    Folder(PathBuf),
}

impl Which {
    /// `best`, `last`, `average`, or a folder path (the `--checkpoint` option).
    pub fn parse(text: &str) -> Self {
        match text {
            "last" => Self::Last,
            "best" => Self::Best,
            "average" => Self::Average,
            path => Self::Folder(PathBuf::from(path)),
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Last => "last".into(),
            Self::Best => BEST.into(),
            Self::Average => AVERAGE.into(),
            Self::Folder(p) => p.display().to_string(),
        }
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(io(path))?;
    Ok(s2s_data::sha256_hex(&bytes))
}

/// Numbered checkpoints (`step-<N>`) in a run, oldest first.
pub fn numbered(run: &RunDir) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = fs::read_dir(run.checkpoints())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(NUMBERED).and_then(|n| n.parse().ok()).map(|n| (n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Writes checkpoints of `model` into a run folder and keeps the newest `keep`.
pub struct FileCheckpointer<'a> {
    pub run: RunDir,
    pub model: &'a dyn TranslationModel,
    pub keep: usize,
}

impl std::fmt::Debug for FileCheckpointer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCheckpointer").field("run", &self.run).field("keep", &self.keep).finish()
    }
}

impl FileCheckpointer<'_> {
    /// Writes checkpoint `name` (replacing one of that name) from the model's weights,
    /// the optimizer's moments and the states.
    pub fn write(&self, name: &str, state: &TrainerState, opt: &Optimizer, rngs: &TrainRngs) -> Result<()> {
        let root = self.run.checkpoints();
        fs::create_dir_all(&root).map_err(io(&root))?;
        let tmp = temporary(&root, name);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io(&tmp))?;
        let model_path = tmp.join(MODEL_FILE);
        self.model.params().save(&model_path)?;
        let opt_path = tmp.join(OPTIMIZER_FILE);
        candle_core::safetensors::save(&opt.state_tensors()?, &opt_path)?;
        let mut files = Vec::new();
        for (file, p) in [(MODEL_FILE, &model_path), (OPTIMIZER_FILE, &opt_path)] {
            fs::File::open(p).and_then(|f| f.sync_all()).map_err(io(p))?;
            files.push((file.to_string(), sha256_file(p)?));
        }
        let cs = CheckpointState {
            trainer: state.clone(),
            optimizer_steps: opt.steps,
            rngs: rngs.clone(),
            files,
            averaged: Vec::new(),
        };
        let state_path = tmp.join(STATE_FILE);
        let json = serde_json::to_string_pretty(&cs).map_err(|e| damaged(&state_path, e))?;
        write_atomic(&state_path, json.as_bytes())?;
        let dest = root.join(name);
        let old = root.join(format!(".{name}.old"));
        if dest.exists() {
            if old.exists() {
                fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            fs::rename(&dest, &old).map_err(io(&dest))?;
        }
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        sync_dir(&root);
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }
}

/// Removes the numbered checkpoints the retention policy does not keep.
pub fn prune(run: &RunDir, keep: usize) -> Result<()> {
    let all = numbered(run);
    let steps: Vec<usize> = all.iter().map(|(s, _)| *s).collect();
    let kept = checkpoints_to_keep(&steps, None, keep);
    for (s, dir) in all {
        if !kept.contains(&s) {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
    }
    Ok(())
}

impl Checkpointer<TrainRngs> for FileCheckpointer<'_> {
    fn save(
        &mut self,
        kind: CheckpointKind,
        state: &TrainerState,
        optimizer: &Optimizer,
        rngs: &TrainRngs,
    ) -> s2s_trainer::Result<()> {
        let result = match kind {
            CheckpointKind::Best => self.write(BEST, state, optimizer, rngs),
            CheckpointKind::Last => self
                .write(&format!("{NUMBERED}{:08}", state.steps), state, optimizer, rngs)
                .and_then(|()| prune(&self.run, self.keep)),
        };
        result.map_err(TrainError::task)
    }
}

/// A verified checkpoint folder.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    pub dir: PathBuf,
    pub state: CheckpointState,
    /// Newer checkpoints that were damaged and passed over, one line each, for the caller
    /// to warn about.
    pub skipped: Vec<String>,
}

/// Finds `which` and checks its files against their recorded SHA-256: `Last` is the
/// newest numbered checkpoint that verifies (damaged ones are named in a warning and
/// skipped), `Best` the best one (or the previous best, if a crash hit its replacement).
pub fn locate(run: &RunDir, which: &Which) -> Result<LoadedCheckpoint> {
    let root = run.checkpoints();
    let candidates: Vec<PathBuf> = match which {
        Which::Last => numbered(run).into_iter().rev().map(|(_, p)| p).collect(),
        Which::Best => vec![root.join(BEST), root.join(format!(".{BEST}.old"))],
        Which::Average => vec![root.join(AVERAGE)],
        Which::Folder(path) => {
            let mut folders = vec![path.clone()];
            // A numbered checkpoint by its name: `step-908` or `step-00000908`.
            let step = path.to_str().and_then(|p| p.strip_prefix(NUMBERED)).and_then(|n| n.parse::<usize>().ok());
            folders.extend(step.map(|n| root.join(format!("{NUMBERED}{n:08}"))));
            folders
        }
    };
    let mut problems = Vec::new();
    for dir in candidates {
        if !dir.is_dir() {
            continue;
        }
        match verify(&dir) {
            Ok(state) => {
                let skipped = problems.iter().map(|p| format!("a damaged checkpoint was skipped: {p}")).collect();
                return Ok(LoadedCheckpoint { dir, state, skipped });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        return Err(RunError::Refused(format!("no `{}` checkpoint in {}", which.label(), root.display())));
    }
    Err(RunError::Refused(format!("no usable `{}` checkpoint ({})", which.label(), problems.join("; "))))
}

/// `best`, falling back to the newest checkpoint when the run never validated (it has
/// no `best/` at all).
pub fn locate_for_use(run: &RunDir, which: &Which) -> Result<LoadedCheckpoint> {
    match (which, locate(run, which)) {
        (_, Ok(c)) => Ok(c),
        (Which::Best, Err(_)) if !run.checkpoints().join(BEST).exists() => locate(run, &Which::Last),
        (_, Err(e)) => Err(e),
    }
}

/// Writes `checkpoints/average/` (replacing an older one): the weights `tensors`, and a
/// `state.json` carrying the newest source checkpoint's position and the names of all
/// of `sources`. Returns the folder.
pub fn write_average(
    run: &RunDir,
    tensors: &HashMap<String, Tensor>,
    newest: &CheckpointState,
    sources: Vec<String>,
) -> Result<PathBuf> {
    let root = run.checkpoints();
    let tmp = temporary(&root, AVERAGE);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let model_path = tmp.join(MODEL_FILE);
    candle_core::safetensors::save(tensors, &model_path)?;
    fs::File::open(&model_path).and_then(|f| f.sync_all()).map_err(io(&model_path))?;
    let files = vec![(MODEL_FILE.to_string(), sha256_file(&model_path)?)];
    let cs = CheckpointState { files, averaged: sources, ..newest.clone() };
    let state_path = tmp.join(STATE_FILE);
    let json = serde_json::to_string_pretty(&cs).map_err(|e| damaged(&state_path, e))?;
    write_atomic(&state_path, json.as_bytes())?;
    let dest = root.join(AVERAGE);
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(io(&dest))?;
    }
    fs::rename(&tmp, &dest).map_err(io(&dest))?;
    sync_dir(&root);
    Ok(dest)
}

/// The model weights of a verified checkpoint.
pub fn model_tensors(checkpoint: &LoadedCheckpoint, device: &Device) -> Result<HashMap<String, Tensor>> {
    Ok(candle_core::safetensors::load(checkpoint.dir.join(MODEL_FILE), device)?)
}

/// Reads `state.json` and checks every file it lists against its checksum.
pub fn verify(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&path).map_err(|_| damaged(&path, "missing"))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| damaged(&path, e))?;
    for (name, sum) in &state.files {
        let file = dir.join(name);
        if &sha256_file(&file)? != sum {
            return Err(damaged(&file, "does not match its checksum"));
        }
    }
    Ok(state)
}

impl LoadedCheckpoint {
    /// The weights' safetensors file, to build the model from ([`s2s_model::Weights::File`]).
    pub fn model_file(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }

    pub fn optimizer_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        Ok(candle_core::safetensors::load(self.dir.join(OPTIMIZER_FILE), device)?)
    }

    /// The folder's name (`step-00000040`, `best`).
    pub fn name(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2s_model::ModelDims;
    use s2s_trainer::TrainConfig;

    fn model() -> Box<dyn TranslationModel> {
        let cfg = crate::ExperimentConfig::default().with_sets(&["model.hidden_size=4".to_string()]).expect("config");
        let dims = ModelDims { src_vocab: 6, tgt_vocab: 6, max_length: 5 };
        s2s_model::build(&cfg.model, dims, s2s_model::Weights::Seed(1), &Device::Cpu).expect("model")
    }

    fn write_steps(run: &RunDir, model: &dyn TranslationModel, steps: &[usize], keep: usize) {
        let mut ck = FileCheckpointer { run: run.clone(), model, keep };
        let opt = Optimizer::new(&TrainConfig::default(), model.params().vars());
        for &s in steps {
            let state = TrainerState { steps: s, epochs_done: s / 10, ..Default::default() };
            ck.save(CheckpointKind::Last, &state, &opt, &TrainRngs::new(s as u64)).expect("save");
        }
    }

    #[test]
    fn keeps_the_newest_and_locates_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let m = model();
        write_steps(&run, m.as_ref(), &[10, 20, 30, 40], 2);
        let left: Vec<usize> = numbered(&run).into_iter().map(|(s, _)| s).collect();
        assert_eq!(left, [30, 40]);
        let last = locate(&run, &Which::Last).expect("last");
        assert_eq!(last.state.trainer.steps, 40);
        assert_eq!(last.state.rngs, TrainRngs::new(40));
        assert_eq!(last.name(), "step-00000040");
    }

    #[test]
    fn a_damaged_checkpoint_is_skipped_for_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let m = model();
        write_steps(&run, m.as_ref(), &[10, 20], 5);
        let newest = numbered(&run).last().expect("one").1.clone();
        fs::write(newest.join(MODEL_FILE), b"garbage").expect("damage");
        let err = verify(&newest).expect_err("checksum").to_string();
        assert!(err.contains("model.safetensors") && err.contains("checksum"), "{err}");
        let previous = locate(&run, &Which::Last).expect("previous");
        assert_eq!(previous.state.trainer.steps, 10);
        assert!(previous.skipped.len() == 1 && previous.skipped[0].contains("checksum"), "{:?}", previous.skipped);
        // With every checkpoint damaged, the error names them.
        fs::remove_file(numbered(&run)[0].1.join(STATE_FILE)).expect("rm");
        let err = locate(&run, &Which::Last).expect_err("none left").to_string();
        assert!(err.contains("no usable `last` checkpoint") && err.contains("state.json"), "{err}");
    }

    #[test]
    fn unreadable_random_streams_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let m = model();
        write_steps(&run, m.as_ref(), &[10], 5);
        let ck = numbered(&run)[0].1.clone();
        let path = ck.join(STATE_FILE);
        let mut json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        json["rngs"] = serde_json::Value::Null;
        fs::write(&path, json.to_string()).expect("write");
        let err = verify(&ck).expect_err("no rngs").to_string();
        assert!(err.contains("state.json"), "{err}");
    }

    #[test]
    fn best_falls_back_to_last_only_when_the_run_never_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let m = model();
        write_steps(&run, m.as_ref(), &[10, 20], 5);
        assert!(locate(&run, &Which::Best).is_err());
        assert_eq!(locate_for_use(&run, &Which::Best).expect("fallback").state.trainer.steps, 20);
        // A best/ that exists but is damaged is an error, not a silent fallback.
        let ck = FileCheckpointer { run: run.clone(), model: m.as_ref(), keep: 5 };
        let opt = Optimizer::new(&TrainConfig::default(), m.params().vars());
        let state = TrainerState { steps: 15, ..Default::default() };
        ck.write(BEST, &state, &opt, &TrainRngs::new(0)).expect("best");
        assert_eq!(locate_for_use(&run, &Which::Best).expect("best").state.trainer.steps, 15);
        fs::write(run.checkpoints().join(BEST).join(OPTIMIZER_FILE), b"x").expect("damage");
        assert!(locate_for_use(&run, &Which::Best).is_err());
    }
}
