//! What a sweep is: an experiment config, a grid (and optionally named *variants*, sets of
//! overrides crossed with the grid, e.g. the rows of an ablation), fixed overrides, and how
//! to launch it. It comes from a sweep file (`configs/sweeps/*.toml`) or from `s2s sweep
//! CONFIG --grid ...`, with the command line's flags on top of the file's keys.
//!
//! ```toml
//! [sweep]
//! config = "../base.toml"          # relative to the sweep file
//! grid = { "train.learning_rate" = [0.01, 0.02], "model.hidden_size" = [64, 128] }
//! set = { "train.epochs" = 40 }     # every point
//! launcher = "slurm"                # or "local" (the default)
//! jobs = 2                          # local: runs at a time
//! [sweep.variants]                  # optional
//! baseline = {}
//! smooth = { "train.label_smoothing" = 0.1 }
//! [sweep.slurm]                     # see SlurmConfig
//! partition = "debug"
//! time = "1:00:00"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::grid::{label, parse_axis, points, Axis};
use crate::slurm_config::SlurmConfig;
use s2s_run::error::{io, Result, RunError};

/// Where a sweep's points train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// Processes on this machine, `jobs` at a time.
    #[default]
    Local,
    /// One Slurm array job.
    Slurm,
}

impl Launcher {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(Self::Local),
            "slurm" => Ok(Self::Slurm),
            _ => Err(RunError::Refused(format!("--launcher {s:?}: expected \"local\" or \"slurm\""))),
        }
    }
}

/// A `key=value` override (as `--set` takes it).
pub type Override = (String, String);

/// A sweep, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Names the sweep folder (`sweep-<name>-<timestamp>`); the sweep file's stem by default.
    pub name: String,
    /// The experiment config (resolved against the sweep file's folder).
    pub config: PathBuf,
    pub grid: Vec<Axis>,
    /// Named override sets, in file order; empty means the grid alone.
    pub variants: Vec<(String, Vec<Override>)>,
    /// Overrides for every point (a point's own keys win).
    pub set: Vec<Override>,
    pub launcher: Launcher,
    /// Local runs at a time.
    pub jobs: usize,
    pub slurm: SlurmConfig,
}

/// What the command line adds to a sweep.
#[derive(Debug, Clone, Default)]
pub struct SweepArgs {
    pub grids: Vec<String>,
    pub sets: Vec<String>,
    pub launcher: Option<String>,
    pub jobs: Option<usize>,
    pub slurm: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    sweep: SweepText,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepText {
    name: Option<String>,
    config: PathBuf,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    variants: toml::Table,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    launcher: Launcher,
    #[serde(default)]
    jobs: Option<usize>,
    #[serde(default)]
    slurm: toml::Table,
}

/// A TOML value as `--set` reads it (strings bare, the rest in TOML syntax).
fn set_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Splits `key=value`.
pub fn parse_set(s: &str) -> Result<Override> {
    let (k, v) = s.split_once('=').ok_or_else(|| RunError::Refused(format!("--set {s:?}: expected KEY=VALUE")))?;
    Ok((k.trim().to_string(), v.to_string()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-=".contains(c)) && !name.starts_with('.')
}

impl Sweep {
    /// Whether `path` is a sweep file (a TOML file with a `[sweep]` table) rather than an
    /// experiment config; a file that mentions `[sweep` but does not parse counts as one,
    /// so that [`Self::from_file`] reports what is wrong with it.
    pub fn is_sweep_file(path: &Path) -> bool {
        let Ok(text) = s2s_data::files::read_text(path, s2s_data::files::MAX_SMALL_FILE_BYTES) else { return false };
        match text.parse::<toml::Table>() {
            Ok(t) => t.contains_key("sweep"),
            Err(_) => text.contains("[sweep"),
        }
    }

    /// Reads a sweep file, then the command line's flags (`--grid` is refused: the grid
    /// belongs in the file).
    pub fn from_file(path: &Path, args: &SweepArgs) -> Result<Self> {
        let text = s2s_data::files::read_text(path, s2s_data::files::MAX_SMALL_FILE_BYTES).map_err(io(path))?;
        let bad = |m: String| RunError::Refused(format!("{}: {m}", path.display()));
        if !args.grids.is_empty() {
            return Err(bad("this is a sweep file: put the grid in it, not in --grid".into()));
        }
        let f: FileText = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        let mut grid = Vec::new();
        for (key, values) in f.sweep.grid {
            let toml::Value::Array(values) = values else {
                return Err(bad(format!("sweep.grid.\"{key}\": expected a list of values")));
            };
            if values.is_empty() {
                return Err(bad(format!("sweep.grid.\"{key}\": the list is empty")));
            }
            grid.push((key, values.iter().map(set_value).collect()));
        }
        let mut variants = Vec::new();
        for (name, sets) in f.sweep.variants {
            if !valid_name(&name) {
                return Err(bad(format!(
                    "sweep.variants.{name:?}: a variant name becomes part of run folder names: use letters, digits, '.', '_' and '-'"
                )));
            }
            let toml::Value::Table(sets) = sets else {
                return Err(bad(format!("sweep.variants.{name}: expected a table of overrides")));
            };
            if let Some(k) = sets.keys().find(|k| grid.iter().any(|(g, _)| g == *k)) {
                return Err(bad(format!("sweep.variants.{name}: {k} is also a grid key; the grid would override it")));
            }
            variants.push((name, sets.iter().map(|(k, v)| (k.clone(), set_value(v))).collect()));
        }
        if grid.is_empty() && variants.is_empty() {
            return Err(bad("a sweep needs a grid or variants".into()));
        }
        let name = match f.sweep.name {
            Some(n) => n,
            None => path.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned()),
        };
        let config = path.parent().unwrap_or(Path::new(".")).join(&f.sweep.config);
        let mut set: Vec<Override> = f.sweep.set.iter().map(|(k, v)| (k.clone(), set_value(v))).collect();
        for s in &args.sets {
            set.push(parse_set(s)?);
        }
        let launcher = match &args.launcher {
            Some(l) => Launcher::parse(l)?,
            None => f.sweep.launcher,
        };
        let slurm = SlurmConfig::from_table(f.sweep.slurm, &args.slurm, &path.display().to_string())?;
        let sweep =
            Self { name, config, grid, variants, set, launcher, jobs: args.jobs.or(f.sweep.jobs).unwrap_or(1), slurm };
        sweep.check()?;
        Ok(sweep)
    }

    /// `s2s sweep CONFIG --grid ...`: the sweep is named (by [`super::launch::create`]) after
    /// the config's `run.name`.
    pub fn from_config(config: &Path, args: &SweepArgs) -> Result<Self> {
        let grid: Vec<Axis> = args.grids.iter().map(|g| parse_axis(g)).collect::<Result<_>>()?;
        if grid.is_empty() {
            return Err(RunError::Refused(
                "give at least one --grid key=v1,v2 (or a sweep file, see configs/sweeps/)".into(),
            ));
        }
        let set = args.sets.iter().map(|s| parse_set(s)).collect::<Result<_>>()?;
        let launcher = args.launcher.as_deref().map_or(Ok(Launcher::Local), Launcher::parse)?;
        let sweep = Self {
            name: String::new(),
            config: config.to_path_buf(),
            grid,
            variants: Vec::new(),
            set,
            launcher,
            jobs: args.jobs.unwrap_or(1),
            slurm: SlurmConfig::from_table(toml::Table::new(), &args.slurm, "--slurm")?,
        };
        sweep.check()?;
        Ok(sweep)
    }

    fn check(&self) -> Result<()> {
        if !self.name.is_empty() && !valid_name(&self.name) {
            return Err(RunError::Refused(format!(
                "sweep name {:?} becomes a folder name: use letters, digits, '.', '_' and '-'",
                self.name
            )));
        }
        if self.jobs == 0 {
            return Err(RunError::Refused("jobs = 0: expected at least 1".into()));
        }
        for (key, values) in &self.grid {
            if let Some(v) = values.iter().enumerate().find(|(i, v)| values[..*i].contains(v)).map(|(_, v)| v) {
                return Err(RunError::Refused(format!(
                    "grid {key} lists {v} twice: each value is one run, and two runs cannot share a folder"
                )));
            }
        }
        let labels: Vec<String> = self.points().into_iter().map(|(label, _)| label).collect();
        if let Some((i, l)) = labels.iter().enumerate().find(|(i, l)| labels[..*i].contains(l)) {
            let first = labels.iter().position(|x| x == l).unwrap_or(0);
            return Err(RunError::Refused(format!(
                "points {first} and {i} would share the run folder {l:?}: make their values differ in letters or digits"
            )));
        }
        Ok(())
    }

    /// Every variant crossed with every grid point: (run label, overrides).
    pub fn points(&self) -> Vec<(String, Vec<Override>)> {
        let grid = points(&self.grid);
        if self.variants.is_empty() {
            return grid.into_iter().map(|p| (label(&p), p)).collect();
        }
        let mut out = Vec::new();
        for (name, sets) in &self.variants {
            for p in &grid {
                let point_label = if p.is_empty() { name.clone() } else { format!("{name}-{}", label(p)) };
                out.push((point_label, [sets.clone(), p.clone()].concat()));
            }
        }
        out
    }

    /// The keys the sweep varies: the grid's, then the variants'.
    pub fn varied_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.grid.iter().map(|(k, _)| k.clone()).collect();
        for (_, sets) in &self.variants {
            for (k, _) in sets {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// The sweep as a sweep file (the config path absolute), for the sweep folder.
    pub fn to_toml(&self) -> Result<String> {
        let strings = |kv: &[Override]| -> toml::Table {
            kv.iter().map(|(k, v)| (k.clone(), toml::Value::String(v.clone()))).collect()
        };
        let mut sweep = toml::Table::new();
        sweep.insert("name".into(), self.name.clone().into());
        // `configs/sweeps/../base.toml` written as `configs/base.toml` where it exists.
        let config = std::fs::canonicalize(&self.config)
            .or_else(|_| std::path::absolute(&self.config))
            .map_err(io(&self.config))?;
        sweep.insert("config".into(), config.display().to_string().into());
        sweep.insert("launcher".into(), toml::Value::try_from(self.launcher).map_err(toml_error)?);
        sweep.insert("jobs".into(), toml::Value::Integer(self.jobs as i64));
        let grid: toml::Table = self
            .grid
            .iter()
            .map(|(k, vs)| (k.clone(), toml::Value::Array(vs.iter().cloned().map(toml::Value::String).collect())))
            .collect();
        sweep.insert("grid".into(), grid.into());
        sweep.insert("set".into(), strings(&self.set).into());
        if !self.variants.is_empty() {
            let v: toml::Table = self.variants.iter().map(|(n, kv)| (n.clone(), strings(kv).into())).collect();
            sweep.insert("variants".into(), v.into());
        }
        sweep.insert("slurm".into(), toml::Value::try_from(&self.slurm).map_err(toml_error)?);
        let mut root = toml::Table::new();
        root.insert("sweep".into(), sweep.into());
        toml::to_string(&root).map_err(toml_error)
    }
}

fn toml_error(e: impl std::fmt::Display) -> RunError {
    RunError::Refused(format!("the sweep cannot be written as TOML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `"run.seed" = [0, 0]` made two points share one run folder (with
    /// `--jobs 2` one failed, and status counted both as completed).
    #[test]
    fn duplicate_points_are_refused() {
        let args =
            |grids: &[&str]| SweepArgs { grids: grids.iter().map(|g| g.to_string()).collect(), ..Default::default() };
        let err = Sweep::from_config(Path::new("c.toml"), &args(&["run.seed=0,0"])).expect_err("dup").to_string();
        assert!(err.contains("grid run.seed lists 0 twice"), "{err}");
        let err =
            Sweep::from_config(Path::new("c.toml"), &args(&["run.name=a/b,a_b"])).expect_err("same label").to_string();
        assert!(err.contains("would share the run folder"), "{err}");
        assert!(Sweep::from_config(Path::new("c.toml"), &args(&["run.seed=0,1"])).is_ok());
    }

    #[test]
    fn sweep_files_cross_variants_with_the_grid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ablation.toml");
        std::fs::write(
            &path,
            r#"
[sweep]
config = "../base.toml"
grid = { "run.seed" = [0, 1] }
[sweep.variants]
baseline = {}
smooth = { "train.label_smoothing" = 0.1, "model.attention" = "luong-dot" }
"#,
        )
        .expect("write");
        assert!(Sweep::is_sweep_file(&path));
        let f = Sweep::from_file(&path, &SweepArgs::default()).expect("load");
        assert_eq!(f.config, dir.path().join("../base.toml"));
        assert_eq!(f.name, "ablation");
        assert_eq!(f.launcher, Launcher::Local);
        let p = f.points();
        let labels: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(labels, ["baseline-seed=0", "baseline-seed=1", "smooth-seed=0", "smooth-seed=1"]);
        assert_eq!(
            p[3].1,
            [
                ("train.label_smoothing".to_string(), "0.1".to_string()),
                ("model.attention".to_string(), "luong-dot".to_string()),
                ("run.seed".to_string(), "1".to_string())
            ]
        );
        assert_eq!(f.varied_keys(), ["run.seed", "train.label_smoothing", "model.attention"]);
        std::fs::write(&path, "[sweep]\nconfig = \"x.toml\"\ngrid = { \"run.seed\" = 3 }\n").expect("write");
        let err = Sweep::from_file(&path, &SweepArgs::default()).expect_err("not a list").to_string();
        assert!(err.contains("run.seed") && err.contains("list"), "{err}");
        std::fs::write(&path, "[run]\nseed = 1\n").expect("write");
        assert!(!Sweep::is_sweep_file(&path));
        // A broken sweep file is reported as one.
        std::fs::write(&path, "[sweep]\nconfig = \n").expect("write");
        assert!(Sweep::is_sweep_file(&path));
        assert!(Sweep::from_file(&path, &SweepArgs::default()).is_err());
        let with = |variants: &str| {
            std::fs::write(
                &path,
                format!(
                    "[sweep]\nconfig = \"x.toml\"\ngrid = {{ \"run.seed\" = [1] }}\n[sweep.variants]\n{variants}\n"
                ),
            )
            .expect("write");
            Sweep::from_file(&path, &SweepArgs::default()).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(with("\"a/b\" = {}").expect_err("slash").contains("variant name"));
        assert!(with("a = { \"run.seed\" = 2 }").expect_err("overlap").contains("grid key"));
        assert!(with("a = { \"run.name\" = \"x\" }").is_ok());
    }

    #[test]
    fn the_command_line_goes_on_top_of_the_file_and_the_resolved_file_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lr.toml");
        std::fs::write(
            &path,
            r#"
[sweep]
config = "base.toml"
grid = { "train.learning_rate" = [0.01, 0.02] }
set = { "train.epochs" = 3 }
launcher = "slurm"
[sweep.slurm]
partition = "debug"
time = "10:00"
"#,
        )
        .expect("write");
        let args = SweepArgs {
            sets: vec!["train.epochs=4".into()],
            jobs: Some(2),
            slurm: vec!["time=20:00".into()],
            ..SweepArgs::default()
        };
        let s = Sweep::from_file(&path, &args).expect("sweep");
        assert_eq!(s.launcher, Launcher::Slurm);
        assert_eq!(s.set, [("train.epochs".into(), "3".into()), ("train.epochs".into(), "4".into())]);
        assert_eq!((s.jobs, s.slurm.time.as_deref(), s.slurm.partition.as_deref()), (2, Some("20:00"), Some("debug")));
        let resolved = dir.path().join("resolved.toml");
        std::fs::write(&resolved, s.to_toml().expect("toml")).expect("write");
        let back = Sweep::from_file(&resolved, &SweepArgs::default()).expect("reads back");
        assert_eq!(back.points(), s.points());
        assert_eq!((back.slurm, back.launcher, back.jobs, back.name), (s.slurm, s.launcher, 2, "lr".to_string()));
        std::fs::write(&path, "[sweep]\nconfig = \"b.toml\"\ngrid = { \"a.b\" = [1] }\nlauncher = \"pbs\"\n")
            .expect("write");
        assert!(Sweep::from_file(&path, &SweepArgs::default()).is_err());
        std::fs::write(&path, "[sweep]\nconfig = \"b.toml\"\ngrid = { \"a.b\" = [1] }\n[sweep.slurm]\nnodes = 2\n")
            .expect("write");
        let err = Sweep::from_file(&path, &SweepArgs::default()).expect_err("unknown").to_string();
        assert!(err.contains("unknown Slurm key `nodes`"), "{err}");
        let err = Sweep::from_config(
            &path,
            &SweepArgs { grids: vec!["a.b=1".into()], launcher: Some("pbs".into()), ..SweepArgs::default() },
        )
        .expect_err("launcher");
        assert!(err.to_string().contains("--launcher"));
    }
}
