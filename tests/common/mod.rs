//! Helpers shared by the end-to-end tests: run the built `s2s` binary in temp dirs.

#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn s2s() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2s"));
    c.env_remove("S2S_TRAIN__LEARNING_RATE");
    c
}

pub fn run(args: &[&str], cwd: &Path) -> Output {
    s2s().args(args).current_dir(cwd).output().expect("s2s runs")
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A tiny notebook-like config writing runs into `dir/experiments`.
pub fn tiny_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = format!(
        r#"
[run]
name = "tiny"
seed = 3
[data]
dataset = "seed"
shuffle = true
[model]
attention = "location"
hidden_size = 16
dropout = 0.1
[train]
learning_rate = 0.02
epochs = 30
batch_size = 2
validate_every = 0
checkpoint_every = 10
{extra}
"#
    );
    config_file(dir, "tiny.toml", &cfg)
}

/// Writes a config file `name` into `dir`.
pub fn config_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

/// Removes a run's numbered checkpoints after `step` (as if it had stopped there).
pub fn cut_checkpoints_after(run: &Path, step: usize) {
    for e in std::fs::read_dir(run.join("checkpoints")).expect("checkpoints") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name.strip_prefix("step-").and_then(|s| s.parse::<usize>().ok()).is_some_and(|s| s > step) {
            std::fs::remove_dir_all(&p).expect("rm");
        }
    }
}

/// Trains `cfg` with `--set <epochs>` into `dir/straight` and returns the run folder.
pub fn straight(dir: &Path, cfg: &Path, epochs: &str) -> PathBuf {
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "run.output_dir=straight", "--set", epochs], dir);
    assert!(out.status.success(), "{}", text(&out).1);
    std::fs::read_dir(dir.join("straight")).expect("d").next().expect("run").expect("e").path()
}

/// The single run folder under `dir/experiments`.
pub fn only_run(dir: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir.join("experiments"))
        .expect("experiments exists")
        .map(|e| e.expect("entry").path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

pub fn column(csv: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(csv).expect("metrics.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let i = header.iter().position(|h| *h == name).expect("column");
    lines.map(|l| l.split(',').nth(i).unwrap_or("").to_string()).collect()
}

pub fn assert_xml(path: &Path) {
    let t = std::fs::read_to_string(path).expect("read");
    if let Err(e) = roxmltree::Document::parse(&t) {
        panic!("{} is not well-formed: {e}", path.display());
    }
}

/// The step of the newest numbered checkpoint (0 when there is none).
pub fn newest_step(run: &Path) -> usize {
    std::fs::read_dir(run.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_prefix("step-").and_then(|s| s.parse().ok()))
        .max()
        .unwrap_or(0)
}

/// The single sweep folder under `dir/experiments`.
pub fn only_sweep(dir: &Path) -> PathBuf {
    let sweeps: Vec<PathBuf> = std::fs::read_dir(dir.join("experiments"))
        .expect("experiments exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("points.json").exists())
        .collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    sweeps[0].clone()
}

/// The run folders of the single sweep under `dir/experiments`, sorted.
pub fn sweep_runs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(only_sweep(dir).join("runs"))
        .expect("runs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("run.json").exists())
        .collect();
    v.sort();
    v
}
