//! Sweep grids: `key=v1,v2` options, every combination of them, and a run name per point;
//! and sweep files (`configs/sweeps/*.toml`), which name the experiment config, a grid, and
//! optionally named *variants* (sets of overrides, e.g. the rows of an ablation), each
//! crossed with the grid.
//!
//! ```toml
//! [sweep]
//! config = "../tatoeba.toml"          # relative to the sweep file
//! grid = { "run.seed" = [0, 1] }
//! [sweep.variants]
//! baseline = {}
//! label-smoothing = { "train.label_smoothing" = 0.1 }
//! ```

use std::path::{Path, PathBuf};

use crate::error::{io, Result, RunError};

/// A sweep file: an experiment config and the points to train it at.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFile {
    /// The experiment config, resolved against the sweep file's folder.
    pub config: PathBuf,
    pub grid: Vec<Axis>,
    /// Named override sets, in file order; empty means the grid alone.
    pub variants: Vec<(String, Vec<(String, String)>)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    sweep: SweepText,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepText {
    config: PathBuf,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    variants: toml::Table,
}

/// A TOML value as `--set` reads it (strings bare, the rest in TOML syntax).
fn set_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SweepFile {
    /// Whether `path` is a sweep file (a TOML file with a `[sweep]` table) rather than an
    /// experiment config; a file that mentions `[sweep` but does not parse counts as one,
    /// so that [`Self::load`] reports what is wrong with it.
    pub fn is_sweep_file(path: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(path) else { return false };
        match text.parse::<toml::Table>() {
            Ok(t) => t.contains_key("sweep"),
            Err(_) => text.contains("[sweep"),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let bad = |m: String| RunError::Refused(format!("{}: {m}", path.display()));
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
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
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
        let config = path.parent().unwrap_or(Path::new(".")).join(&f.sweep.config);
        Ok(Self { config, grid, variants })
    }

    /// Every variant crossed with every grid point: (run label, overrides).
    pub fn points(&self) -> Vec<(String, Vec<(String, String)>)> {
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
}

/// One grid axis: a config key and its values.
pub type Axis = (String, Vec<String>);

/// Parses `key=v1,v2` into an axis.
pub fn parse_axis(g: &str) -> Result<Axis> {
    let bad = || RunError::Refused(format!("--grid {g:?}: expected key=v1,v2,..."));
    let (k, vs) = g.split_once('=').ok_or_else(bad)?;
    let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if k.trim().is_empty() || values.is_empty() {
        return Err(bad());
    }
    Ok((k.trim().to_string(), values))
}

/// Every combination of the grid's values, as (key, value) overrides.
pub fn points(grid: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (k, vs) in grid {
        out = out
            .into_iter()
            .flat_map(|p| vs.iter().map(move |v| [p.clone(), vec![(k.clone(), v.clone())]].concat()))
            .collect();
    }
    out
}

/// `learning_rate=0.01-hidden_size=128`: the last key segment and the value, file-name safe.
pub fn label(p: &[(String, String)]) -> String {
    p.iter()
        .map(|(k, v)| {
            let key = k.rsplit('.').next().unwrap_or(k);
            let val: String =
                v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_and_labels() {
        let g = vec![
            parse_axis("train.learning_rate=0.01,0.001").expect("g"),
            parse_axis("model.hidden_size=128,256").expect("g"),
        ];
        let p = points(&g);
        assert_eq!(p.len(), 4);
        assert_eq!(label(&p[1]), "learning_rate=0.01-hidden_size=256");
        assert!(parse_axis("nope").is_err());
        assert!(parse_axis("a=").is_err());
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
        assert!(SweepFile::is_sweep_file(&path));
        let f = SweepFile::load(&path).expect("load");
        assert_eq!(f.config, dir.path().join("../base.toml"));
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
        std::fs::write(&path, "[sweep]\nconfig = \"x.toml\"\ngrid = { \"run.seed\" = 3 }\n").expect("write");
        let err = SweepFile::load(&path).expect_err("not a list").to_string();
        assert!(err.contains("run.seed") && err.contains("list"), "{err}");
        std::fs::write(&path, "[run]\nseed = 1\n").expect("write");
        assert!(!SweepFile::is_sweep_file(&path));
        // A broken sweep file is reported as one.
        std::fs::write(&path, "[sweep]\nconfig = \n").expect("write");
        assert!(SweepFile::is_sweep_file(&path));
        assert!(SweepFile::load(&path).is_err());
        let with = |variants: &str| {
            std::fs::write(
                &path,
                format!(
                    "[sweep]\nconfig = \"x.toml\"\ngrid = {{ \"run.seed\" = [1] }}\n[sweep.variants]\n{variants}\n"
                ),
            )
            .expect("write");
            SweepFile::load(&path).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(with("\"a/b\" = {}").expect_err("slash").contains("variant name"));
        assert!(with("a = { \"run.seed\" = 2 }").expect_err("overlap").contains("grid key"));
        assert!(with("a = { \"run.name\" = \"x\" }").is_ok());
    }
}
