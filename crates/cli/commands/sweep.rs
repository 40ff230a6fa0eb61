//! `s2s sweep CONFIG --grid key=v1,v2 ...`: one run per grid point, then a comparison.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::commands::compare;
use crate::config::ExperimentConfig;

/// Parses `key=v1,v2` into (key, values).
fn parse_grid(g: &str) -> Result<(String, Vec<String>)> {
    let Some((k, vs)) = g.split_once('=') else { bail!("--grid {g:?}: expected key=v1,v2,...") };
    let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if k.trim().is_empty() || values.is_empty() {
        bail!("--grid {g:?}: expected key=v1,v2,...");
    }
    Ok((k.trim().to_string(), values))
}

/// Every combination of the grid's values.
pub fn points(grid: &[(String, Vec<String>)]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (k, vs) in grid {
        out = out
            .into_iter()
            .flat_map(|p| vs.iter().map(move |v| [p.clone(), vec![(k.clone(), v.clone())]].concat()))
            .collect();
    }
    out
}

pub fn execute(config: &Path, grids: &[String], sets: &[String], jobs: usize) -> Result<()> {
    let grid: Vec<(String, Vec<String>)> = grids.iter().map(|g| parse_grid(g)).collect::<Result<_>>()?;
    if grid.is_empty() {
        bail!("give at least one --grid key=v1,v2");
    }
    let base = ExperimentConfig::load(config, sets)?;
    let pts = points(&grid);
    // Check every point's config before starting anything.
    for p in &pts {
        let mut all = sets.to_vec();
        all.extend(p.iter().map(|(k, v)| format!("{k}={v}")));
        ExperimentConfig::load(config, &all).with_context(|| format!("grid point {}", label(p)))?;
    }
    let exe = std::env::current_exe().context("cannot find the s2s executable")?;
    let out_dir = base.run.output_dir.clone();
    let before: Vec<PathBuf> = crate::runs::find_runs(&out_dir).into_iter().map(|r| r.dir).collect();
    println!("sweep: {} runs, {} at a time", pts.len(), jobs.max(1));
    let mut failures = Vec::new();
    for chunk in pts.chunks(jobs.max(1)) {
        let mut children = Vec::new();
        for p in chunk {
            let name = format!("{}-{}", base.run.name, label(p));
            let mut cmd = Command::new(&exe);
            cmd.arg("run").arg(config);
            for s in sets {
                cmd.arg("--set").arg(s);
            }
            for (k, v) in p {
                cmd.arg("--set").arg(format!("{k}={v}"));
            }
            cmd.arg("--set").arg(format!("run.name={name}"));
            cmd.stdout(std::process::Stdio::null());
            println!("  starting {name}");
            children.push((name, cmd.spawn().context("cannot start a sweep run")?));
        }
        for (name, mut child) in children {
            let status = child.wait()?;
            if !status.success() {
                failures.push(name);
            }
        }
    }
    let new: Vec<PathBuf> =
        crate::runs::find_runs(&out_dir).into_iter().map(|r| r.dir).filter(|d| !before.contains(d)).collect();
    println!();
    compare::execute(&new, &compare::Options { dir: out_dir, ..Default::default() })?;
    if !failures.is_empty() {
        bail!("{} sweep run(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

/// `learning_rate=0.01-hidden_size=128`: the last key segment and the value, file-name safe.
fn label(p: &[(String, String)]) -> String {
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
            parse_grid("train.learning_rate=0.01,0.001").expect("g"),
            parse_grid("model.hidden_size=128,256").expect("g"),
        ];
        let p = points(&g);
        assert_eq!(p.len(), 4);
        assert_eq!(label(&p[1]), "learning_rate=0.01-hidden_size=256");
        assert!(parse_grid("nope").is_err());
        assert!(parse_grid("a=").is_err());
    }
}
