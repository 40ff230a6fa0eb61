//! The experiment config: one section per crate, composed here and layered
//! defaults < config file < `S2S_` environment variables < `--set` overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use s2s_data::DataConfig;
use s2s_model::ModelConfig;
use s2s_report::ReportConfig;
use s2s_trainer::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::device::DeviceSpec;

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
    /// CPU threads (0 = all cores): the rows of each training batch and of batched greedy
    /// decoding are split between them. One is the default; batch 1 has nothing to split.
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

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub run: RunConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub report: ReportConfig,
}

/// A config problem, already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ExperimentConfig {
    /// Reads `path` and applies the environment and `--set key=value` overrides.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(ConfigError(toml_syntax_message(path, &text, &e)));
        }
        let mut fig = Figment::from(Serialized::defaults(Self::default()))
            .merge(Toml::file_exact(path))
            .merge(Env::prefixed("S2S_").split("__"));
        fig = apply_sets(fig, sets)?;
        let mut cfg: Self = fig.extract().map_err(|e| ConfigError(describe(&e, path)))?;
        if cfg.run.name.is_empty() {
            cfg.run.name = path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every section's values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let msg = |e: &dyn std::fmt::Display| ConfigError(e.to_string());
        self.data.validate().map_err(|e| msg(&e))?;
        self.model.validate().map_err(|e| msg(&e))?;
        self.train.validate().map_err(|e| msg(&e))?;
        DeviceSpec::parse(&self.run.device).map_err(|e| msg(&e))?;
        if self.run.name.contains(['/', '\\']) || self.run.name.starts_with('.') {
            return Err(ConfigError(format!(
                "run.name: {:?} must not contain path separators or start with '.'",
                self.run.name
            )));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Adds `--set key=value` overrides; values are TOML (`0.01`, `true`, `"x"`, `[1, 2]`),
/// anything else is taken as a string.
pub fn apply_sets(mut fig: Figment, sets: &[String]) -> Result<Figment, ConfigError> {
    for set in sets {
        let Some((key, raw)) = set.split_once('=') else {
            return Err(ConfigError(format!(
                "--set {set:?}: expected key=value, e.g. --set train.learning_rate=0.001"
            )));
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError(format!("--set {set:?}: the key must look like section.name")));
        }
        let value = parse_value(raw.trim());
        fig = fig.merge(SetOverride(Serialized::default(key, value)));
    }
    Ok(fig)
}

/// A `--set` value, named as such in error messages.
struct SetOverride(Serialized<toml::Value>);

impl figment::Provider for SetOverride {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("--set")
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn toml_syntax_message(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let first = e.message().lines().next().unwrap_or("invalid TOML").to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}: TOML syntax error at line {line}, column {col}: {first}", path.display())
        }
        None => format!("{}: TOML syntax error: {first}", path.display()),
    }
}

/// Turns a figment error into one line naming the key, the source and the problem.
fn describe(e: &figment::Error, path: &Path) -> String {
    use figment::error::Kind;
    let e = e.clone().into_iter().next().unwrap_or_else(|| e.clone());
    let source = match e.metadata.as_ref() {
        Some(m) if m.name.contains("environment") => "an S2S_ environment variable".to_string(),
        Some(m) if m.name == "--set" => "--set".to_string(),
        _ => path.display().to_string(),
    };
    let at = e.path.join(".");
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let full = if e.path.last() == Some(field) || at.is_empty() {
                if at.is_empty() {
                    field.clone()
                } else {
                    at.clone()
                }
            } else {
                format!("{at}.{field}")
            };
            let hint = nearest(field, expected).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            format!("unknown key `{full}` in {source}{hint}")
        }
        Kind::UnknownVariant(v, expected) => {
            format!("{at} = {v:?} in {source} is not known; expected one of: {}", expected.join(", "))
        }
        Kind::InvalidType(actual, expected) => {
            format!("{at} in {source}: expected {expected}, found {actual}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{at} in {source}: expected {expected}, found {actual}")
        }
        other => format!("{at} in {source}: {other}"),
    }
}

/// Every leaf of a config as `section.key` → TOML text.
pub fn flatten(cfg: &ExperimentConfig) -> BTreeMap<String, String> {
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
    if let Ok(v) = toml::Value::try_from(cfg) {
        walk("", &v, &mut out);
    }
    out
}

/// The keys whose values differ: (key, old, new).
pub fn diff(old: &ExperimentConfig, new: &ExperimentConfig) -> Vec<(String, String, String)> {
    let (a, b) = (flatten(old), flatten(new));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).cloned().unwrap_or_default(), b.get(k).cloned().unwrap_or_default());
            (x != y).then(|| (k.clone(), x, y))
        })
        .collect()
}

/// The candidate closest to `word` by edit distance, if reasonably close.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("exp.toml");
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn layering_file_env_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "[train]\nlearning_rate = 0.5\nepochs = 3\n");
        let cfg = ExperimentConfig::load(&p, &[]).expect("load");
        assert_eq!(cfg.train.learning_rate, 0.5);
        assert_eq!(cfg.train.batch_size, TrainConfig::default().batch_size);
        assert_eq!(cfg.run.name, "exp");
        // figment's Jail error type is large; this is a test.
        #[allow(clippy::result_large_err)]
        figment::Jail::expect_with(|jail| {
            jail.set_env("S2S_TRAIN__LEARNING_RATE", "0.25");
            let cfg = ExperimentConfig::load(&p, &[]).expect("load");
            assert_eq!(cfg.train.learning_rate, 0.25);
            let cfg = ExperimentConfig::load(&p, &["train.learning_rate=0.125".into(), "data.dataset=copy".into()])
                .expect("load");
            assert_eq!(cfg.train.learning_rate, 0.125);
            assert_eq!(cfg.data.dataset, s2s_data::Dataset::Copy);
            assert_eq!(cfg.train.epochs, 3);
            Ok(())
        });
    }

    #[test]
    fn bad_inputs_give_one_line_that_names_the_culprit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: &[(&str, &[&str], &str)] = &[
            ("[train]\nlerning_rate = 0.1\n", &[], "unknown key `train.lerning_rate`"),
            ("[train]\nlerning_rate = 0.1\n", &[], "did you mean `learning_rate`"),
            ("[train]\nepochs = \"many\"\n", &[], "train.epochs"),
            ("[model]\nhidden_size = 0\n", &[], "model.hidden_size"),
            ("[train]\nlearning_rate = -1.0\n", &[], "train.learning_rate"),
            ("[train]\nlearning_rate = nan\n", &[], "train.learning_rate"),
            ("[train]\nepochs = 0\n", &[], "train.epochs"),
            ("[data]\ndataset = \"wmt\"\n", &[], "data.dataset = \"wmt\""),
            ("[run]\ndevice = \"tpu\"\n", &[], "tpu"),
            ("[train\nepochs = 1\n", &[], "line 1, column"),
            ("", &["train.epochs"], "expected key=value"),
            ("", &["train.epochs=abc"], "train.epochs in --set"),
        ];
        for (text, sets, needle) in cases {
            let p = write(dir.path(), text);
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let err = ExperimentConfig::load(&p, &sets).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err:?} lacks {needle:?}");
            assert!(!err.contains('\n'), "{err:?} is not one line");
        }
        let err = ExperimentConfig::load(Path::new("/no/such.toml"), &[]).expect_err("missing").to_string();
        assert!(err.contains("/no/such.toml"), "{err}");
    }

    #[test]
    fn resolved_config_round_trips() {
        let cfg = ExperimentConfig::default();
        let back: ExperimentConfig = toml::from_str(&cfg.to_toml()).expect("parse");
        assert_eq!(back, cfg);
    }
}
