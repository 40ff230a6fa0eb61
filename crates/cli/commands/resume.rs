//! `s2s resume RUN_DIR [--epochs N] [--set ...]`: continue a run in its own folder from
//! its newest good checkpoint, bit for bit as if it had never stopped.

use std::path::Path;

use anyhow::{bail, Context, Result};
use figment::providers::Serialized;
use figment::Figment;

use crate::checkpoint::locate;
use crate::commands::run::{data_info, finish, prepare, print_settings, train_session, Outcome};
use crate::config::{apply_sets, diff, ConfigError, ExperimentConfig};
use crate::loaded_run::read_config;
use crate::run_dir::{utc_now, RunInfo, RunLock, Session};

/// Keys that may change on resume: they do not change what the trained weights mean.
const SAFE_PREFIXES: [&str; 9] = [
    "train.epochs",
    "train.early_stopping_patience",
    "train.checkpoint_every",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.validate_every",
    "report.",
    "run.threads",
    "run.device",
];

pub fn execute(run_dir: &Path, epochs: Option<usize>, sets: &[String]) -> Result<Outcome> {
    let old = read_config(run_dir)?;
    let fig = apply_sets(Figment::from(Serialized::defaults(old.clone())), sets)?;
    let mut new: ExperimentConfig = fig.extract().map_err(|e| ConfigError(format!("--set: {e}")))?;
    if let Some(e) = epochs {
        new.train.epochs = e;
    }
    new.validate()?;
    let changes = diff(&old, &new);
    let refused: Vec<String> = changes
        .iter()
        .filter(|(k, _, _)| !SAFE_PREFIXES.iter().any(|p| k == p || (p.ends_with('.') && k.starts_with(p))))
        .map(|(k, a, b)| format!("{k}: {a} -> {b}"))
        .collect();
    if !refused.is_empty() {
        bail!("cannot resume with changes that do not fit the trained model: {}", refused.join("; "));
    }
    let _lock = RunLock::acquire(run_dir)?;
    let mut info = RunInfo::load(run_dir)?;
    let ck = locate(run_dir, "last")?;
    let t = &ck.state.trainer;
    if t.stopped_early {
        bail!("{} stopped early at epoch {}; nothing to resume", run_dir.display(), t.epochs_done);
    }
    if t.epochs_done >= new.train.epochs {
        bail!(
            "{} has already trained {} of {} epochs; pass --epochs N with N > {} to train longer",
            run_dir.display(),
            t.epochs_done,
            new.train.epochs,
            t.epochs_done
        );
    }
    let p = prepare(new)?;
    if data_info(&p.corpus).fingerprint != info.data.fingerprint {
        bail!("the data of {} changed since it was trained (fingerprint differs); start a new run", run_dir.display());
    }
    print_settings(&p);
    println!(
        "resuming {} from {} (epoch {}, step {})",
        run_dir.display(),
        ck.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        t.epochs_done + usize::from(t.batch_in_epoch > 0),
        t.steps
    );
    truncate_metrics(&run_dir.join("metrics.csv"), t.epochs_done)?;
    std::fs::write(run_dir.join("config.toml"), p.cfg.to_toml()).context("cannot write config.toml")?;
    info.status = "running".into();
    info.pid = std::process::id();
    info.ended_at = None;
    info.sessions.push(Session {
        command: "resume".into(),
        started_at: utc_now(),
        status: "running".into(),
        pid: std::process::id(),
        from_epoch: t.epochs_done,
        from_step: t.steps,
        changes: changes.iter().map(|(k, a, b)| format!("{k}: {a} -> {b}")).collect(),
        ..Default::default()
    });
    info.save(run_dir)?;
    let result = train_session(&p, run_dir, &mut info, Some(ck));
    finish(result, run_dir, &mut info)
}

/// Drops metrics rows for epochs after the checkpoint: that work was lost and is redone
/// (identically) by this session.
fn truncate_metrics(path: &Path, epochs_done: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let mut kept = String::new();
    let columns = text.lines().next().map_or(0, |h| h.split(',').count());
    for (i, line) in text.lines().enumerate() {
        let epoch = line.split(',').next().and_then(|e| e.parse::<usize>().ok());
        let whole = line.split(',').count() == columns && text.contains(&format!("{line}\n"));
        if i == 0 || (whole && epoch.is_some_and(|e| e <= epochs_done)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept != text {
        crate::run_dir::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}
