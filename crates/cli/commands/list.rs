//! `s2s list [DIR]`: one line per run folder.

use crate::output::outln;
use std::path::Path;

use anyhow::Result;
use s2s_run::clock::age;
use s2s_run::find_runs;

pub fn execute(dir: &Path) -> Result<()> {
    let runs = find_runs(dir);
    if runs.is_empty() {
        outln!("no runs in {}", dir.display())?;
        return Ok(());
    }
    for r in &runs {
        if let Some(problem) = &r.problem {
            eprintln!("warning: {} is damaged: {problem}", r.name);
        }
    }
    let width = runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    outln!("{:<width$}  {:<11}  {:>6}  {:<22}  {:>5}", "name", "status", "epochs", "best validation", "age")?;
    for r in &runs {
        let best = match (r.best_of("valid_bleu"), r.best_of("valid_loss")) {
            (Some(b), _) => format!("valid_bleu {b:.2}"),
            (None, Some(l)) => format!("valid_loss {l:.4}"),
            (None, None) => "-".into(),
        };
        let started = r.info.as_ref().map_or("", |i| i.started_at.as_str());
        outln!("{:<width$}  {:<11}  {:>6}  {:<22}  {:>5}", r.name, r.status, r.epochs, best, age(started))?;
    }
    Ok(())
}
