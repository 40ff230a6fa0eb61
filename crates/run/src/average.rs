//! Checkpoint averaging (`s2s average RUN --last K`): the element-wise mean of the model
//! weights of a run's K newest numbered checkpoints, written as `checkpoints/average/`
//! for `eval` and `translate` (`--checkpoint average`). Averaging the last few
//! checkpoints of a run usually scores a little better than any one of them (JoeyNMT's
//! `scripts/average_checkpoints.py`, fairseq's `average_checkpoints.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::checkpoint::{model_tensors, numbered, verify, write_average, LoadedCheckpoint};
use crate::error::{Result, RunError};
use crate::run_dir::RunDir;

/// What [`average_last`] wrote.
#[derive(Debug, Clone)]
pub struct Averaged {
    /// `checkpoints/average/`.
    pub dir: PathBuf,
    /// The averaged checkpoints' folder names, oldest first.
    pub sources: Vec<String>,
    /// Damaged checkpoints passed over, one line each.
    pub skipped: Vec<String>,
}

/// Averages the model weights of the `last` newest numbered checkpoints of the run at
/// `dir` that verify; damaged ones are passed over (and named in [`Averaged::skipped`]),
/// and so is the untrained `step-00000000`. Mid-epoch checkpoints (`Ctrl-C`,
/// `train.checkpoint_every_steps`) count like the others.
pub fn average_last(dir: &Path, last: usize) -> Result<Averaged> {
    if last == 0 {
        return Err(RunError::Refused("--last 0: average at least 1 checkpoint".into()));
    }
    let run = RunDir::at(dir);
    let cfg = run.read_config()?;
    let mut chosen: Vec<LoadedCheckpoint> = Vec::new();
    let mut skipped = Vec::new();
    for (_, path) in numbered(&run).into_iter().rev() {
        if chosen.len() == last {
            break;
        }
        match verify(&path) {
            // The checkpoint written before the first step holds the untrained weights.
            Ok(state) if state.trainer.steps == 0 => {}
            Ok(state) => chosen.push(LoadedCheckpoint { dir: path, state, skipped: Vec::new() }),
            Err(e) => skipped.push(format!("a damaged checkpoint was skipped: {e}")),
        }
    }
    if chosen.len() < last {
        let hint = if cfg.train.keep_checkpoints < last {
            format!(
                "it keeps the newest {} (train.keep_checkpoints), so train with --set train.keep_checkpoints={last} to average {last}",
                cfg.train.keep_checkpoints
            )
        } else if cfg.train.checkpoint_every == 0 {
            "it checkpoints only when a session ends (train.checkpoint_every = 0): set train.checkpoint_every = 1"
                .into()
        } else {
            format!("it checkpoints every {} epoch(s) (train.checkpoint_every)", cfg.train.checkpoint_every)
        };
        return Err(RunError::Refused(format!(
            "--last {last}: {} has {} usable numbered checkpoint(s) after the first step; {hint}",
            dir.display(),
            chosen.len(),
        )));
    }
    chosen.reverse();
    let mut sum: Option<HashMap<String, Tensor>> = None;
    for ck in &chosen {
        let tensors = model_tensors(ck, &Device::Cpu)?;
        sum = Some(match sum {
            None => tensors,
            Some(acc) => add(acc, tensors, ck)?,
        });
    }
    let scale = 1.0 / chosen.len() as f64;
    let mean: HashMap<String, Tensor> =
        sum.unwrap_or_default().into_iter().map(|(name, t)| Ok((name, (t * scale)?))).collect::<Result<_>>()?;
    let sources: Vec<String> = chosen.iter().map(LoadedCheckpoint::name).collect();
    let newest = &chosen[chosen.len() - 1].state;
    let dir = write_average(&run, &mean, newest, sources.clone())?;
    Ok(Averaged { dir, sources, skipped })
}

/// `acc + next`, tensor by tensor; both must hold the same names and shapes.
fn add(
    acc: HashMap<String, Tensor>,
    mut next: HashMap<String, Tensor>,
    ck: &LoadedCheckpoint,
) -> Result<HashMap<String, Tensor>> {
    let differs = |what: String| RunError::Refused(format!("{}: {what}; cannot average it", ck.dir.display()));
    if next.len() != acc.len() {
        return Err(differs(format!("{} tensors, the others {}", next.len(), acc.len())));
    }
    let mut out = HashMap::with_capacity(acc.len());
    for (name, a) in acc {
        let b = next.remove(&name).ok_or_else(|| differs(format!("tensor `{name}` is missing")))?;
        if a.dims() != b.dims() {
            return Err(differs(format!("tensor `{name}` has shape {:?}, the others {:?}", b.dims(), a.dims())));
        }
        out.insert(name, (a + b)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use s2s_model::{ModelDims, TrainRngs, Weights};
    use s2s_trainer::{CheckpointKind, Checkpointer, Optimizer, TrainConfig, TrainerState};

    use super::*;
    use crate::checkpoint::{locate, FileCheckpointer};
    use crate::Which;

    #[test]
    fn averages_the_newest_checkpoints_weights() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let cfg = crate::ExperimentConfig::default();
        std::fs::write(run.config_toml(), cfg.to_toml().expect("toml")).expect("config");
        let small = cfg.with_sets(&["model.hidden_size=4".to_string()]).expect("config").model;
        let dims = ModelDims { src_vocab: 6, tgt_vocab: 6, max_length: 5 };
        let m = s2s_model::build(&small, dims, Weights::Seed(1), &Device::Cpu).expect("model");
        let opt = Optimizer::new(&TrainConfig::default(), m.params().vars());
        let mut ck = FileCheckpointer { run: run.clone(), model: m.as_ref(), keep: 5 };
        // Checkpoint k holds every weight filled with k; step 0 (untrained) is never averaged.
        for k in 0..=4usize {
            for (_, v) in m.params().vars() {
                v.set(&(v.as_tensor().ones_like().expect("ones") * k as f64).expect("fill")).expect("set");
            }
            let state = TrainerState { steps: 10 * k, ..Default::default() };
            ck.save(CheckpointKind::Last, &state, &opt, &TrainRngs::new(k as u64)).expect("save");
        }
        let err = average_last(dir.path(), 5).expect_err("step 0 is not a candidate").to_string();
        assert!(err.contains("4 usable") && err.contains("keep_checkpoints=5"), "{err}");
        let avg = average_last(dir.path(), 2).expect("average");
        assert_eq!(avg.sources, ["step-00000030", "step-00000040"]);
        let loaded = locate(&run, &Which::Average).expect("locate average");
        assert_eq!(loaded.state.averaged, avg.sources);
        assert_eq!(loaded.state.trainer.steps, 40);
        let m = s2s_model::build(&small, dims, Weights::File(&loaded.model_file()), &Device::Cpu).expect("load");
        for (name, v) in m.params().vars() {
            let values: Vec<f32> = v.as_tensor().flatten_all().expect("flat").to_vec1().expect("v");
            assert!(values.iter().all(|&x| x == 3.5), "{name}: {values:?}");
        }
        // A damaged checkpoint is passed over for the one before it.
        std::fs::write(run.checkpoints().join("step-00000040").join("model.safetensors"), b"x").expect("damage");
        let avg = average_last(dir.path(), 2).expect("average");
        assert_eq!(avg.sources, ["step-00000020", "step-00000030"]);
        assert_eq!(avg.skipped.len(), 1, "{:?}", avg.skipped);
    }
}
