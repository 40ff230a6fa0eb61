//! The experiment config: one section per crate, composed here. `[run]` is this crate's
//! ([`RunConfig`]); `[train]` holds the trainer's keys ([`s2s_trainer::TrainConfig`]) and
//! the translation task's ([`TaskConfig`]), each struct with its own defaults and
//! `deny_unknown_fields`. Loading and layering is `load`'s.

mod load;
mod resume;

use std::collections::BTreeMap;
use std::path::PathBuf;

use s2s_data::DataConfig;
use s2s_model::ModelConfig;
use s2s_report::ReportConfig;
use s2s_trainer::TrainConfig;
use serde::{Deserialize, Serialize};

pub use load::{apply_sets, nearest, ConfigSource};
pub use resume::{resume_changes, Change};

use crate::device::DeviceSpec;
pub use crate::error::ConfigError;
use crate::task::{TaskConfig, TranslationTask};

/// The `[run]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run folder prefix; empty = the config file's name.
    pub name: String,
    /// Seeds weight initialisation, splits, shuffling, dropout and teacher forcing.
    pub seed: u64,
    /// "cpu", "cuda", "cuda:N" or "auto".
    pub device: String,
    /// Where run folders are created.
    pub output_dir: PathBuf,
    /// CPU threads (0 = all cores). Each training batch's rows are split between them
    /// (gradients summed) and so are the optimizer's update and batched greedy decoding;
    /// with fewer than 16 sentences, greedy decoding shares each step with one helper
    /// thread instead. One is the default.
    pub threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            seed: 0,
            device: "cpu".into(),
            output_dir: PathBuf::from("experiments"),
            threads: 1,
        }
    }
}

impl RunConfig {
    /// The threads `threads` asks for: all cores for 0. Training splits each batch's rows
    /// between them, and so do the optimizer's update, batched decoding and data loading;
    /// candle's own kernels stay on one thread (the binary sets `RAYON_NUM_THREADS` and
    /// `CANDLE_NUM_THREADS` to 1 before it starts any thread), where splitting these small
    /// products cost more than it gained (see BENCHMARKS.md).
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentConfig {
    pub run: RunConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// The trainer's part of `[train]`.
    pub train: TrainConfig,
    /// The translation task's part of `[train]`.
    pub task: TaskConfig,
    pub report: ReportConfig,
}

/// The section names, in the order a config file lists them.
const SECTIONS: [&str; 5] = ["run", "data", "model", "train", "report"];

impl ExperimentConfig {
    /// Checks every section's values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let msg = |e: &dyn std::fmt::Display| ConfigError(e.to_string());
        self.data.validate().map_err(|e| msg(&e))?;
        self.model.validate().map_err(|e| msg(&e))?;
        self.train.validate().map_err(|e| msg(&e))?;
        self.train.monitored(&TranslationTask::METRICS).map_err(|e| msg(&e))?;
        self.task.validate()?;
        if self.task.batch_tokens > 0 && self.task.batch_tokens < self.data.max_length {
            return Err(ConfigError(format!(
                "train.batch_tokens: {} cannot hold one sentence of data.max_length {}",
                self.task.batch_tokens, self.data.max_length
            )));
        }
        let family = self.model.family.as_family();
        if !family.can_run_free() && self.task.teacher_forcing_ratio < 1.0 {
            return Err(ConfigError(format!(
                "train.teacher_forcing_ratio: {} means nothing for model.architecture = \"{}\" (it reads the whole reference at once); leave it at 1",
                self.task.teacher_forcing_ratio,
                self.model.architecture().name()
            )));
        }
        if let (Some(setting), false) = (family.shared_embedding_setting(), self.data.joint_vocab) {
            return Err(ConfigError(format!(
                "model.{setting} needs one vocabulary for both sides: set data.joint_vocab = true"
            )));
        }
        DeviceSpec::parse(&self.run.device).map_err(|e| msg(&e))?;
        let keys = self.flatten()?;
        if let Some(k) = self.report.hparams.iter().find(|k| !keys.contains_key(k.as_str())) {
            let hint = nearest(k, &keys.keys().map(String::as_str).collect::<Vec<_>>())
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(ConfigError(format!("report.hparams: {k:?} is not a config key with a value{hint}")));
        }
        if self.run.name.contains(['/', '\\']) || self.run.name.starts_with('.') {
            return Err(ConfigError(format!(
                "run.name: {:?} must not contain path separators or start with '.'",
                self.run.name
            )));
        }
        Ok(())
    }

    /// The config as one TOML table, sections in file order (`[train]` is the trainer's
    /// keys followed by the task's; `[model]` only the keys of its family and the decoding keys). Fails for values TOML cannot hold (integers beyond
    /// i64), naming the section; [`Self::validate`] checks this, so a loaded config renders.
    pub fn to_table(&self) -> Result<toml::Table, ConfigError> {
        fn table(name: &str, v: &impl Serialize) -> Result<toml::Table, ConfigError> {
            toml::Table::try_from(v).map_err(|e| ConfigError(format!("[{name}] cannot be written as TOML: {e}")))
        }
        let mut train = table("train", &self.train)?;
        train.extend(table("train", &self.task)?);
        let model =
            self.model.to_table().map_err(|e| ConfigError(format!("[model] cannot be written as TOML: {e}")))?;
        let mut data = table("data", &self.data)?;
        data.retain(|k, _| self.data.reads(k));
        let sections = [table("run", &self.run)?, data, model, train, table("report", &self.report)?];
        let mut doc = toml::Table::new();
        for (name, t) in SECTIONS.iter().zip(sections) {
            doc.insert((*name).to_string(), toml::Value::Table(t));
        }
        Ok(doc)
    }

    /// The resolved config as a TOML document (what `config.toml` holds).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(&self.to_table()?)
            .map_err(|e| ConfigError(format!("the config cannot be written as TOML: {e}")))
    }

    /// Every leaf as `section.key` → TOML text.
    pub fn flatten(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                        walk(&key, v, out);
                    }
                }
                other => {
                    out.insert(prefix.to_string(), other.to_string());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk("", &toml::Value::Table(self.to_table()?), &mut out);
        Ok(out)
    }
}

/// The keys whose values differ between two configs.
pub fn diff(old: &ExperimentConfig, new: &ExperimentConfig) -> Result<Vec<Change>, ConfigError> {
    let (a, b) = (old.flatten()?, new.flatten()?);
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    Ok(keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).cloned().unwrap_or_default(), b.get(k).cloned().unwrap_or_default());
            (x != y).then(|| Change { key: k.clone(), old: x, new: y })
        })
        .collect())
}
