//! Run folders under chosen roots, named safely: what a server over run folders may open.
//! A run is named by its path relative to its root (`base-20261207-011507`, or
//! `grid-20261207/runs/lr-0.01` for a sweep's run); a name with `..`, an absolute path, or
//! a symlink that leads out of the roots is refused. Checkpoints are named the same way:
//! `best`, `last`, `average` or `step-<N>`, never a path.

use std::path::{Component, Path, PathBuf};

use crate::checkpoint::{numbered, Which};
use crate::error::{io, Result, RunError};
use crate::run_dir::RunDir;
use crate::summary::{find_runs, RunSummary, GROUPED_RUNS};

/// Why a run or checkpoint name was refused.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// The name is not one a run can have (`..`, absolute, empty, ...).
    #[error("run name {name:?} refused: {why}")]
    Refused { name: String, why: &'static str },
    /// The name is well formed but no served folder has such a run.
    #[error("no run named {0:?} in the served folders")]
    Unknown(String),
    #[error("checkpoint {name:?} refused: {why}")]
    Checkpoint { name: String, why: String },
}

/// One place runs are served from.
#[derive(Debug, Clone)]
enum Root {
    /// A folder of runs (as `s2s list` reads it).
    Folder(PathBuf),
    /// One run folder, named by its folder name.
    Run(PathBuf),
}

/// The run folders under a set of roots (canonical paths).
#[derive(Debug, Clone)]
pub struct RunRoots {
    roots: Vec<Root>,
}

impl RunRoots {
    /// Each path is a folder of runs or a run folder itself; each must exist.
    pub fn new(paths: &[PathBuf]) -> Result<Self> {
        let mut roots = Vec::new();
        for p in paths {
            let canon = p.canonicalize().map_err(io(p))?;
            if !canon.is_dir() {
                return Err(RunError::Refused(format!("{}: not a folder", p.display())));
            }
            roots.push(if RunDir::at(&canon).is_run() { Root::Run(canon) } else { Root::Folder(canon) });
        }
        Ok(Self { roots })
    }

    /// The folders served, as given to [`Self::new`] but canonical.
    pub fn paths(&self) -> Vec<&Path> {
        self.roots
            .iter()
            .map(|r| match r {
                Root::Folder(p) | Root::Run(p) => p.as_path(),
            })
            .collect()
    }

    /// Every run served, with its name, in root order and then by name. A run whose folder
    /// is a symlink out of its root is left out; a name already listed is not repeated.
    pub fn runs(&self) -> Vec<(String, RunSummary)> {
        let mut out: Vec<(String, RunSummary)> = Vec::new();
        for root in &self.roots {
            let found: Vec<(String, RunSummary)> = match root {
                Root::Run(p) => RunSummary::load(p).map(|s| (s.name.clone(), s)).into_iter().collect(),
                Root::Folder(p) => find_runs(p)
                    .into_iter()
                    .filter_map(|s| {
                        let real = s.dir.path().canonicalize().ok()?;
                        let rel = s.dir.path().strip_prefix(p).ok()?.to_string_lossy().into_owned();
                        real.starts_with(p).then_some((rel, s))
                    })
                    .collect(),
            };
            for (name, s) in found {
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, s));
                }
            }
        }
        out
    }

    /// The run folder `name` names (canonical), checked: relative, no `.` or `..`, a run
    /// folder directly in a root or in a sweep's `runs/`, and still inside the root once
    /// symlinks are followed.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, NameError> {
        let refused = |why| NameError::Refused { name: name.to_string(), why };
        if name.is_empty() || name.len() > 400 {
            return Err(refused("empty or longer than 400 bytes"));
        }
        if name.contains('\\') || name.contains('\0') {
            return Err(refused("backslashes and NUL are not allowed"));
        }
        let rel = Path::new(name);
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::ParentDir => return Err(refused("`..` is not allowed")),
                Component::RootDir | Component::Prefix(_) => return Err(refused("absolute paths are not allowed")),
                Component::CurDir => return Err(refused("`.` is not allowed")),
            }
        }
        let shape_ok = parts.len() == 1 || (parts.len() == 3 && parts[1] == GROUPED_RUNS);
        if !shape_ok {
            return Err(refused("a run is a folder in a served folder, or in a sweep's runs/"));
        }
        for root in &self.roots {
            let candidate = match root {
                Root::Run(p) if parts.len() == 1 && p.file_name() == Some(parts[0]) => p.clone(),
                Root::Run(_) => continue,
                Root::Folder(p) => p.join(rel),
            };
            let Ok(real) = candidate.canonicalize() else { continue };
            let inside = match root {
                Root::Run(p) => real == *p,
                Root::Folder(p) => real.starts_with(p) && real != *p,
            };
            if inside && RunDir::at(&real).is_run() {
                return Ok(real);
            }
        }
        Err(NameError::Unknown(name.to_string()))
    }
}

/// The checkpoints a run keeps, by name: `best`, `average`, then `step-<N>` oldest first.
pub fn kept_checkpoints(run: &RunDir) -> Vec<String> {
    let root = run.checkpoints();
    let mut out: Vec<String> =
        ["best", "average"].into_iter().filter(|n| root.join(n).is_dir()).map(String::from).collect();
    out.extend(numbered(run).into_iter().map(|(n, _)| format!("step-{n}")));
    out
}

/// The checkpoint a name stands for: `best`, `last`, `average`, or `step-<N>` (a kept
/// numbered checkpoint, with or without the folder's leading zeros). Never a path.
pub fn checkpoint_by_name(run: &RunDir, name: &str) -> Result<Which, NameError> {
    match name {
        "best" => return Ok(Which::Best),
        "last" => return Ok(Which::Last),
        "average" => return Ok(Which::Average),
        _ => {}
    }
    let refused = |why: String| NameError::Checkpoint { name: name.to_string(), why };
    let Some(step) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok()) else {
        return Err(refused("a checkpoint is best, last, average or step-<N>".into()));
    };
    numbered(run).into_iter().find(|(n, _)| *n == step).map(|(_, p)| Which::Folder(p)).ok_or_else(|| {
        let kept = kept_checkpoints(run).join(", ");
        refused(format!("the run keeps {}", if kept.is_empty() { "no checkpoint".into() } else { kept }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_run(dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("config.toml"), "").expect("config");
    }

    #[test]
    fn names_resolve_inside_the_roots_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("experiments");
        make_run(&root.join("a-1"));
        make_run(&root.join("grid/runs/p0"));
        make_run(&tmp.path().join("outside"));
        let roots = RunRoots::new(std::slice::from_ref(&root)).expect("roots");
        assert!(roots.resolve("a-1").expect("a-1").ends_with("experiments/a-1"));
        assert!(roots.resolve("grid/runs/p0").is_ok());
        for bad in ["../outside", "/etc", "a-1/..", "./a-1", "", "grid/p0", "a-1\\x", "a-1/checkpoints"] {
            assert!(matches!(roots.resolve(bad), Err(NameError::Refused { .. })), "{bad:?}");
        }
        assert!(matches!(roots.resolve("nope"), Err(NameError::Unknown(_))));
        let names: Vec<String> = roots.runs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a-1", "grid/runs/p0"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_root_is_refused_and_not_listed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("experiments");
        make_run(&root.join("a-1"));
        make_run(&tmp.path().join("outside"));
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("escape")).expect("symlink");
        let roots = RunRoots::new(std::slice::from_ref(&root)).expect("roots");
        assert!(matches!(roots.resolve("escape"), Err(NameError::Unknown(_))));
        let names: Vec<String> = roots.runs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a-1"]);
        // A run folder given itself is served by its folder name.
        let one = RunRoots::new(&[tmp.path().join("outside")]).expect("run root");
        assert!(one.resolve("outside").is_ok());
        assert!(matches!(one.resolve("a-1"), Err(NameError::Unknown(_))));
    }

    #[test]
    fn checkpoints_are_named_never_pathed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = RunDir::at(tmp.path());
        std::fs::create_dir_all(run.checkpoints().join("step-00000040")).expect("mkdir");
        std::fs::create_dir_all(run.checkpoints().join("best")).expect("mkdir");
        assert_eq!(kept_checkpoints(&run), ["best", "step-40"]);
        assert_eq!(checkpoint_by_name(&run, "best").expect("best"), Which::Best);
        assert!(matches!(checkpoint_by_name(&run, "step-40"), Ok(Which::Folder(_))));
        assert!(matches!(checkpoint_by_name(&run, "step-00000040"), Ok(Which::Folder(_))));
        for bad in ["step-41", "../x", "/tmp", "checkpoints/best"] {
            assert!(checkpoint_by_name(&run, bad).is_err(), "{bad}");
        }
    }
}
