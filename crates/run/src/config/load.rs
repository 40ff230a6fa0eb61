//! Reading an experiment config: defaults < config file < `S2S_` environment variables <
//! `--set` overrides, each section read by its own struct, and every problem turned into
//! one line naming the key and where its value came from.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::de::DeserializeOwned;

use s2s_model::config::ARCHITECTURE_KEY;
use s2s_model::{Architecture, DecodingConfig, ModelConfig};

use super::{ExperimentConfig, SECTIONS};
use crate::error::ConfigError;
use crate::task::TaskConfig;

impl ExperimentConfig {
    /// Reads `path` and applies the environment and `--set key=value` overrides.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, ConfigError> {
        ConfigSource::read(path)?.load(sets)
    }

    /// Reads a resolved config (a run's `config.toml`); keys it lacks take their defaults.
    pub fn parse_resolved(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(ConfigError(toml_syntax_message(origin, text, &e)));
        }
        let fig = Figment::from(defaults(Self::default().to_table()?)).merge(Toml::string(text));
        // A run's own file: keys an earlier version wrote are read as they were.
        Self::from_figment(&fig, &origin.display().to_string(), false)
    }

    /// This config with `--set` overrides applied and checked.
    pub fn with_sets(&self, sets: &[String]) -> Result<Self, ConfigError> {
        let fig = apply_sets(Figment::from(defaults(self.to_table()?)), sets)?;
        let cfg = Self::from_figment(&fig, "the run's config.toml", true)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Extracts each section with its own struct; `[train]`'s keys go to the task's
    /// struct or the trainer's by name. `origin` names the file in messages. With `strict`,
    /// a `[data]` key the dataset does not read is refused when someone gave it.
    fn from_figment(fig: &Figment, origin: &str, strict: bool) -> Result<Self, ConfigError> {
        let root: Dict = fig.extract().map_err(|e| ConfigError(describe(&e, fig, origin, &[])))?;
        if let Some(key) = root.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            let source = source_of(fig, key, origin);
            let hint = nearest(key, &SECTIONS).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            return Err(ConfigError(format!("unknown key `{key}` in {source}{hint}")));
        }
        let section = |name: &str| -> Result<Dict, ConfigError> {
            match root.get(name) {
                Some(Value::Dict(_, d)) => Ok(d.clone()),
                None => Ok(Dict::new()),
                Some(other) => Err(ConfigError(format!(
                    "`{name}` in {} must be a section of keys ([{name}]), not {}",
                    source_of(fig, name, origin),
                    other.to_actual()
                ))),
            }
        };
        let (task_keys, trainer_keys): (Dict, Dict) =
            section("train")?.into_iter().partition(|(k, _)| TaskConfig::KEYS.contains(&k.as_str()));
        let model = read_model(fig, origin, section("model")?)?;
        let data_keys = section("data")?;
        let mut data: s2s_data::DataConfig = read(fig, origin, "data", data_keys.clone(), &[])?;
        if let Some(key) = data_keys.keys().find(|k| strict && !data.reads(k) && !is_default(fig, &format!("data.{k}")))
        {
            return Err(ConfigError(format!(
                "data.{key} in {} means nothing for data.dataset = \"{}\" (it does not read it); remove it or pick the dataset it belongs to",
                source_of(fig, &format!("data.{key}"), origin),
                data.dataset.name()
            )));
        }
        // The normalization the tokenizer implies, written out so config.toml says it.
        data.fill_defaults();
        Ok(Self {
            run: read(fig, origin, "run", section("run")?, &[])?,
            data,
            model,
            // An unknown `[train]` key is suggested from both structs' keys.
            train: read(fig, origin, "train", trainer_keys, &TaskConfig::KEYS)?,
            task: read(fig, origin, "train", task_keys, &[])?,
            report: read(fig, origin, "report", section("report")?, &[])?,
        })
    }
}

/// A config file and the environment, read once, to load with many `--set` lists (a
/// sweep's points): [`ExperimentConfig::load`] without reading the file again each time.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    path: std::path::PathBuf,
    fig: Figment,
}

impl ConfigSource {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        // A regular file of bounded size (a FIFO would hang), a byte-order mark dropped.
        let text = s2s_data::files::read_text(path, s2s_data::files::MAX_SMALL_FILE_BYTES)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(ConfigError(toml_syntax_message(path, &text, &e)));
        }
        let fig = Figment::from(defaults(ExperimentConfig::default().to_table()?))
            .merge(Toml::string(&text))
            .merge(Env::prefixed("S2S_").split("__"));
        Ok(Self { path: path.to_path_buf(), fig })
    }

    /// The config with `sets` applied, checked.
    pub fn load(&self, sets: &[String]) -> Result<ExperimentConfig, ConfigError> {
        let path = &self.path;
        let mut cfg =
            ExperimentConfig::from_figment(&apply_sets(self.fig.clone(), sets)?, &path.display().to_string(), true)?;
        if cfg.run.name.is_empty() {
            cfg.run.name = path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads `[model]`: `architecture` names the family, whose own struct reads its keys,
/// and the decoding keys are read apart. The built-in defaults hold the default family's
/// keys; those, when nobody set them, are dropped for another family, and a key the user
/// gave must mean something for the chosen family.
fn read_model(fig: &Figment, origin: &str, mut keys: Dict) -> Result<ModelConfig, ConfigError> {
    let mut choice = Dict::new();
    if let Some(v) = keys.remove(ARCHITECTURE_KEY) {
        choice.insert(ARCHITECTURE_KEY.to_string(), v);
    }
    let ArchitectureKey { architecture } = read(fig, origin, "model", choice, &[])?;
    let own = ModelConfig::keys_of(architecture);
    keys.retain(|k, _| own.contains(&k.as_str()) || !is_default(fig, &format!("model.{k}")));
    let foreign = keys.keys().filter(|k| !own.contains(&k.as_str()));
    if let Some((key, other)) =
        foreign.into_iter().find_map(|k| ModelConfig::other_family_of(architecture, k).map(|o| (k, o)))
    {
        return Err(ConfigError(format!(
            "model.{key} in {} means nothing for model.architecture = \"{}\" (it is a key of \"{}\"); remove it or pick the family it belongs to",
            source_of(fig, &format!("model.{key}"), origin),
            architecture.name(),
            other.name()
        )));
    }
    let decoding_keys = DecodingConfig::keys();
    let (decoding, family): (Dict, Dict) = keys.into_iter().partition(|(k, _)| decoding_keys.contains(&k.as_str()));
    let mut siblings: Vec<&str> = decoding_keys.to_vec();
    siblings.push(ARCHITECTURE_KEY);
    let family = read_seeded(fig, origin, "model", family, architecture, &siblings)?;
    let decoding = read(fig, origin, "model", decoding, architecture.keys())?;
    Ok(ModelConfig { family, decoding })
}

/// `[model]`'s `architecture` key alone.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchitectureKey {
    #[serde(default)]
    architecture: Architecture,
}

/// [`read`] with a seed that picks the struct (the family's).
fn read_seeded<'de, S: serde::de::DeserializeSeed<'de>>(
    fig: &Figment,
    origin: &str,
    name: &str,
    dict: Dict,
    seed: S,
    siblings: &[&str],
) -> Result<S::Value, ConfigError> {
    seed.deserialize(&Value::from(dict)).map_err(|mut e| {
        e.path.insert(0, name.to_string());
        ConfigError(describe(&e, fig, origin, siblings))
    })
}

/// Deserializes one section (or part of one) from values that keep their sources;
/// `siblings` are keys of the same section read by another struct.
fn read<T: DeserializeOwned>(
    fig: &Figment,
    origin: &str,
    name: &str,
    dict: Dict,
    siblings: &[&str],
) -> Result<T, ConfigError> {
    read_seeded(fig, origin, name, dict, std::marker::PhantomData::<T>, siblings)
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

/// The name of the bottom layer (built-in defaults, or a run's own config on resume).
const DEFAULTS: &str = "defaults";

/// The bottom layer: `table`'s values, known by name so that a key nobody set can be told
/// from one a file, the environment or `--set` gave.
struct Defaults(Serialized<toml::Table>);

impl figment::Provider for Defaults {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(DEFAULTS)
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

fn defaults(table: toml::Table) -> Defaults {
    Defaults(Serialized::defaults(table))
}

/// Whether the value at `key` comes from the bottom layer.
fn is_default(fig: &Figment, key: &str) -> bool {
    fig.find_metadata(key).is_some_and(|m| m.name == DEFAULTS)
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

/// Which provider gave the value at `key`: the file, an environment variable or `--set`.
fn source_of(fig: &Figment, key: &str, origin: &str) -> String {
    match fig.find_metadata(key) {
        Some(m) if m.name.contains("environment") => {
            format!("the environment variable S2S_{}", key.to_uppercase().replace('.', "__"))
        }
        Some(m) if m.name == "--set" => "--set".to_string(),
        _ => origin.to_string(),
    }
}

/// Turns a figment error into one line naming the key, the source and the problem.
fn describe(e: &figment::Error, fig: &Figment, origin: &str, siblings: &[&str]) -> String {
    use figment::error::Kind;
    let e = e.clone().into_iter().next().unwrap_or_else(|| e.clone());
    let at = e.path.join(".");
    let full = match &e.kind {
        Kind::UnknownField(field, _) if e.path.last() != Some(field) => {
            if at.is_empty() {
                field.clone()
            } else {
                format!("{at}.{field}")
            }
        }
        _ => at.clone(),
    };
    let source = source_of(fig, &full, origin);
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let known: Vec<&str> = expected.iter().chain(siblings).copied().collect();
            let hint = nearest(field, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            format!("unknown key `{full}` in {source}{hint}")
        }
        Kind::UnknownVariant(v, expected) => {
            format!("{at} = {v:?} in {source} is not known; expected one of: {}", expected.join(", "))
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("{at} in {source}: expected {expected}, found {actual}")
        }
        other => format!("{at} in {source}: {other}"),
    }
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
    use std::path::PathBuf;

    use super::*;
    use s2s_trainer::TrainConfig;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("exp.toml");
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn layering_file_env_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "[train]\nlearning_rate = 0.5\nepochs = 3\nteacher_forcing_ratio = 0.25\n");
        let cfg = ExperimentConfig::load(&p, &[]).expect("load");
        assert_eq!(cfg.train.learning_rate, 0.5);
        assert_eq!(cfg.task.teacher_forcing_ratio, 0.25);
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
            ("[train]\nteacher_forcing_ratio = \"x\"\n", &[], "train.teacher_forcing_ratio"),
            ("[train]\nteacher_forcing_ratio = 2.0\n", &[], "train.teacher_forcing_ratio"),
            ("[train]\nteacher_forcing_rato = 1.0\n", &[], "did you mean `teacher_forcing_ratio`"),
            ("[report]\nhparams = [\"train.lerning_rate\"]\n", &[], "did you mean `train.learning_rate`"),
            ("[model]\nhidden_size = 8\n", &["model=3"], "`model` in --set must be a section"),
            ("", &["run.seed=18446744073709551615"], "run.seed in --set"),
            ("[trian]\nepochs = 1\n", &[], "did you mean `train`"),
            ("[model]\nhidden_size = 0\n", &[], "model.hidden_size"),
            ("[model]\narchitecture = \"lstm\"\n", &[], "model.architecture = \"lstm\""),
            ("[train]\nlearning_rate = -1.0\n", &[], "train.learning_rate"),
            ("[train]\nlearning_rate = nan\n", &[], "train.learning_rate"),
            ("[train]\nepochs = 0\n", &[], "train.epochs"),
            ("[train]\nearly_stopping_metric = \"valid_acc\"\n", &[], "valid_bleu"),
            ("[data]\ndataset = \"wmt\"\n", &[], "data.dataset = \"wmt\""),
            ("[run]\ndevice = \"tpu\"\n", &[], "tpu"),
            ("[train\nepochs = 1\n", &[], "line 1, column"),
            ("", &["train.epochs"], "expected key=value"),
            ("", &["train.epochs=abc"], "train.epochs in --set"),
            ("", &["train.epochz=3"], "unknown key `train.epochz` in --set"),
            ("[model]\nheads = 4\n", &[], "model.heads in"),
            ("[model]\nheads = 4\n", &[], "means nothing for model.architecture = \"gru\""),
            ("[model]\narchitecture = \"transformer\"\nattention = \"bahdanau\"\n", &[], "model.attention in"),
            (
                "[model]\narchitecture = \"transformer\"\n",
                &["model.bidirectional=true"],
                "model.bidirectional in --set means nothing",
            ),
            ("[model]\narchitecture = \"transformer\"\nhidden_size = 10\nheads = 4\n", &[], "not divisible by heads 4"),
            ("[model]\narchitecture = \"transformer\"\nheads = 0\n", &[], "model.heads"),
            ("[model]\narchitecture = \"transformer\"\nnorm = \"middle\"\n", &[], "model.norm = \"middle\""),
            ("[model]\narchitecture = \"transformer\"\npositions = \"rotary\"\n", &[], "model.positions"),
            ("[model]\narchitecture = \"transformer\"\ntie_embeddings = \"all\"\n", &[], "data.joint_vocab"),
            ("[model]\ntie_embeddings = \"all\"\n", &[], "the gru family ties"),
            ("[model]\ntie_embeddings = \"both\"\n", &[], "model.tie_embeddings"),
            ("[model]\narchitecture = \"transformer\"\nattention_dropout = 1.0\n", &[], "model.attention_dropout"),
            (
                "[model]\narchitecture = \"transformer\"\n[train]\nteacher_forcing_ratio = 0.5\n",
                &[],
                "means nothing for model.architecture = \"transformer\"",
            ),
            ("[train]\nlr_schedule = \"inverse_sqrt\"\n", &[], "train.warmup_steps"),
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

    /// A value TOML cannot hold (an integer beyond i64, say from an environment variable)
    /// is refused at validation, not written as an empty section.
    #[test]
    fn unwritable_values_are_refused() {
        let mut cfg = ExperimentConfig::default();
        cfg.run.seed = u64::MAX;
        let err = cfg.validate().expect_err("u64::MAX").to_string();
        assert!(err.contains("[run] cannot be written as TOML"), "{err}");
    }

    /// A Transformer config writes only its family's `[model]` keys and reads back; the
    /// GRU's `tie_embeddings = true` still reads (as "decoder").
    #[test]
    fn transformer_config_round_trips_with_its_own_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "[model]\narchitecture = \"transformer\"\nheads = 2\nhidden_size = 8\ndecoder_layers = 3\ntie_embeddings = true\n[train]\nlr_schedule = \"inverse_sqrt\"\nwarmup_steps = 10\n",
        );
        let cfg = ExperimentConfig::load(&p, &[]).expect("load");
        let text = cfg.to_toml().expect("toml");
        assert!(text.contains("heads = 2") && text.contains("tie_embeddings = \"decoder\""), "{text}");
        let back = ExperimentConfig::parse_resolved(&text, Path::new("config.toml")).expect("parse");
        assert_eq!(back, cfg);
        // Each family writes exactly its own keys and the decoding keys.
        for &architecture in s2s_model::registry::FAMILIES {
            let set = format!("model.architecture=\"{}\"", architecture.name());
            let cfg = ExperimentConfig::default().with_sets(&[set]).expect("config");
            let table = cfg.to_table().expect("table");
            let written: Vec<&str> = table["model"].as_table().expect("model").keys().map(String::as_str).collect();
            let mut expected = ModelConfig::keys_of(architecture);
            let mut sorted = written.clone();
            sorted.sort_unstable();
            expected.sort_unstable();
            assert_eq!(sorted, expected, "{}", architecture.name());
        }
    }

    #[test]
    fn resolved_config_round_trips() {
        let mut cfg = ExperimentConfig {
            task: TaskConfig { teacher_forcing_ratio: 0.5, ..Default::default() },
            ..Default::default()
        };
        cfg.data.fill_defaults();
        let text = cfg.to_toml().expect("toml");
        assert!(text.contains("ascii = true"), "the resolved normalization is written out: {text}");
        assert!(text.contains("teacher_forcing_ratio = 0.5"), "{text}");
        let back = ExperimentConfig::parse_resolved(&text, Path::new("config.toml")).expect("parse");
        assert_eq!(back, cfg);
        // A config.toml written before a key existed still reads, with the default.
        let old = text.replace("architecture = \"gru\"\n", "");
        assert_eq!(ExperimentConfig::parse_resolved(&old, Path::new("config.toml")).expect("old"), cfg);
    }
}
