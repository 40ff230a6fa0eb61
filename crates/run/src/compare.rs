//! Comparing runs: the config keys that differ, the headline results (sortable by any,
//! each in its own direction), and a comparison folder (`compare-<timestamp>/`) with the
//! loss curves overlaid and each sentence's heatmaps side by side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use s2s_report::{line_chart, Page, Series};

use crate::error::{damaged, io, Result, RunError};
pub use crate::summary::FOLDER_PREFIX;
use crate::summary::{result_columns, RunSummary};
use crate::translator::HEADS_SUFFIX;

/// Keys that differ between runs by construction; shown with `all_keys` only.
const IGNORED: [&str; 2] = ["run.name", "run.output_dir"];

/// The comparison: config columns (differing or all) and results, per run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub keys: Vec<String>,
    pub runs: Vec<RunRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub run: String,
    /// What sets the run apart: the differing keys' values (`hidden_size=64,
    /// learning_rate=0.01`), or its name when nothing differs.
    pub label: String,
    pub path: String,
    pub status: String,
    pub config: BTreeMap<String, Option<String>>,
    pub results: BTreeMap<String, Option<f64>>,
}

/// The result column names, in display order.
pub fn result_keys() -> Vec<String> {
    result_columns().iter().map(|c| c.name.to_string()).collect()
}

pub fn build(runs: &[RunSummary], all_keys: bool) -> Comparison {
    let configs: Vec<BTreeMap<String, String>> =
        runs.iter().map(|r| r.config().and_then(|c| c.flatten().ok()).unwrap_or_default()).collect();
    let every: BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    let keys: Vec<String> = every
        .into_iter()
        .filter(|k| {
            all_keys
                || (!IGNORED.contains(&k.as_str())
                    && configs.iter().map(|c| c.get(*k)).collect::<BTreeSet<_>>().len() > 1)
        })
        .cloned()
        .collect();
    let rows = runs
        .iter()
        .zip(&configs)
        .map(|(r, c)| RunRow {
            run: r.name.clone(),
            label: label(&keys, c).unwrap_or_else(|| r.name.clone()),
            path: r.dir.path().display().to_string(),
            status: r.status.clone(),
            config: keys.iter().map(|k| (k.clone(), c.get(k).cloned())).collect(),
            results: r.results().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
        .collect();
    Comparison { keys, runs: rows }
}

/// `key=value` for each differing key a run has, by the key's last part
/// (`model.hidden_size` → `hidden_size`) unless two keys share it; `None` when there are none.
fn label(keys: &[String], config: &BTreeMap<String, String>) -> Option<String> {
    let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let parts: Vec<String> = keys
        .iter()
        .filter(|k| !IGNORED.contains(&k.as_str()))
        .filter_map(|k| {
            let shared = keys.iter().filter(|o| short(o) == short(k)).count() > 1;
            let name = if shared { k.clone() } else { short(k) };
            config.get(k).map(|v| format!("{name}={v}"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

impl Comparison {
    /// The result columns that hold a figure for at least one run.
    pub fn result_keys_with_values(&self) -> Vec<String> {
        result_keys()
            .into_iter()
            .filter(|k| self.runs.iter().any(|r| r.results.get(k).is_some_and(Option::is_some)))
            .collect()
    }

    /// Sorts the runs best first by a result column, in that column's direction; runs
    /// without the figure go last.
    pub fn sort_by(&mut self, metric: &str) -> Result<()> {
        let Some(column) = result_columns().into_iter().find(|c| c.name == metric) else {
            return Err(RunError::Refused(format!("--sort {metric:?}: choose one of {}", result_keys().join(", "))));
        };
        self.runs.sort_by(|a, b| match (a.results[metric], b.results[metric]) {
            (Some(x), Some(y)) => match column.direction {
                Some(d) => d.best_first(x, y),
                None => x.total_cmp(&y),
            },
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        Ok(())
    }
}

/// A result as the tables show it: 4 significant digits, small numbers in scientific
/// notation (`3.834e-5`, not `0.0000`).
pub fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), crate::report::number::fmt)
}

/// The most runs drawn in the loss chart and the heatmap rows; a sweep's 1,000 runs are
/// listed in the tables, but 1,000 curves or columns show nothing.
pub const MAX_DRAWN: usize = 12;

/// The runs to draw: all of them up to [`MAX_DRAWN`], else the best by the first result
/// column they have of best validation BLEU, best validation loss, final train loss; and
/// the column used.
pub fn drawn(runs: &[RunSummary]) -> (Vec<&RunSummary>, Option<&'static str>) {
    if runs.len() <= MAX_DRAWN {
        return (runs.iter().collect(), None);
    }
    let columns = result_columns();
    for name in ["best_valid_bleu", "best_valid_loss", "train_loss"] {
        let Some(direction) = columns.iter().find(|c| c.name == name).and_then(|c| c.direction) else { continue };
        let mut scored: Vec<(f64, &RunSummary)> = runs
            .iter()
            .filter_map(|r| r.results().into_iter().find(|(k, _)| *k == name).and_then(|(_, v)| v).map(|v| (v, r)))
            .filter(|(v, _)| !v.is_nan())
            .collect();
        if scored.is_empty() {
            continue;
        }
        scored.sort_by(|a, b| direction.best_first(a.0, b.0));
        return (scored.into_iter().take(MAX_DRAWN).map(|(_, r)| r).collect(), Some(name));
    }
    (runs.iter().take(MAX_DRAWN).collect(), None)
}

/// Writes the comparison folder (loss.svg, attention/, index.html, comparison.json) and
/// returns the path of its index.html.
pub fn write_folder(out: &Path, all_runs: &[RunSummary], cmp: &Comparison) -> Result<std::path::PathBuf> {
    let result_keys = cmp.result_keys_with_values();
    let label_of = |r: &RunSummary| {
        cmp.runs
            .iter()
            .find(|row| row.run == r.name && row.path == r.dir.path().display().to_string())
            .map_or_else(|| r.name.clone(), |row| row.label.clone())
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let (runs, ranked_by) = drawn(all_runs);
    // One colour per run; train solid, validation dashed.
    let mut series = Vec::new();
    for (group, r) in runs.iter().enumerate() {
        for col in ["train_loss", "valid_loss"] {
            let pts = r.column(col).to_vec();
            if !pts.is_empty() {
                let s = Series::new(format!("{} {col}", label_of(r)), pts, group);
                series.push(if col == "valid_loss" { s.dashed() } else { s });
            }
        }
    }
    let loss = out.join("loss.svg");
    line_chart(&loss, "Loss by run", "epoch", "loss (NLL per target token)", &series)?;
    let mut page = Page::new("s2s comparison");
    page.heading(1, &format!("Comparison of {} runs", all_runs.len()));
    let mut headers = vec!["run".to_string()];
    headers.extend(cmp.keys.iter().cloned());
    let rows: Vec<Vec<Option<String>>> = cmp
        .runs
        .iter()
        .map(|r| std::iter::once(Some(r.run.clone())).chain(cmp.keys.iter().map(|k| r.config[k].clone())).collect())
        .collect();
    page.heading(2, "Config keys that differ").table(&headers, &rows);
    let mut headers = vec!["run".to_string(), "folder".into(), "status".into()];
    headers.extend(result_keys.iter().cloned());
    let rows: Vec<Vec<Option<String>>> = cmp
        .runs
        .iter()
        .map(|r| {
            [Some(r.label.clone()), Some(r.run.clone()), Some(r.status.clone())]
                .into_iter()
                .chain(result_keys.iter().map(|k| r.results[k].map(|v| cell(Some(v)))))
                .collect()
        })
        .collect();
    page.heading(2, "Results").table(&headers, &rows);
    let svg = std::fs::read(&loss).map_err(io(&loss))?;
    page.heading(2, "Loss curves");
    if runs.len() < all_runs.len() {
        page.paragraph(&format!(
            "The charts and heatmaps show the {} best of the {} runs{}; the tables above list them all.",
            runs.len(),
            all_runs.len(),
            ranked_by.map(|c| format!(" by {c}")).unwrap_or_default()
        ));
    }
    page.svg(&svg, "train and validation loss of the runs drawn");
    let sentences: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| crate::report::artifacts::svgs_in(&r.dir.attention()))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        // A Transformer's layer × head grid goes under its sentence's row.
        .filter(|s| !s.ends_with(HEADS_SUFFIX))
        .collect();
    let att = out.join("attention");
    if !sentences.is_empty() {
        page.heading(2, "Attention, side by side");
        std::fs::create_dir_all(&att).map_err(io(&att))?;
    }
    // The sentence each heatmap file is of, from the runs' translation tables.
    let mut sentence_of = BTreeMap::new();
    for r in &runs {
        let sources = crate::report::page::report_sources(&r.dir);
        for (name, source) in crate::report::artifacts::sentence_names(&sources).into_iter().zip(sources) {
            sentence_of.entry(name).or_insert(source);
        }
    }
    for s in &sentences {
        // One column per run, scaled to fit: the same sentence really side by side.
        page.heading(3, sentence_of.get(s).unwrap_or(s)).columns_start(runs.len());
        for r in &runs {
            let p = r.dir.attention().join(format!("{s}.svg"));
            match std::fs::read(&p) {
                Ok(svg) => {
                    let copy = att.join(format!("{s}--{}.svg", r.name));
                    std::fs::write(&copy, &svg).map_err(io(&copy))?;
                    page.svg(&svg, &label_of(r));
                }
                Err(_) => {
                    page.paragraph(&format!("{}: no heatmap for this sentence", r.name));
                }
            }
        }
        page.grid_end();
        for r in &runs {
            let p = r.dir.attention().join(format!("{s}{HEADS_SUFFIX}.svg"));
            if let Ok(svg) = std::fs::read(&p) {
                let copy = att.join(format!("{s}{HEADS_SUFFIX}--{}.svg", r.name));
                std::fs::write(&copy, &svg).map_err(io(&copy))?;
                page.svg(&svg, &format!("{}: every decoder layer and head", label_of(r)));
            }
        }
    }
    let index = out.join("index.html");
    std::fs::write(&index, page.render()).map_err(io(&index))?;
    let json_path = out.join("comparison.json");
    let json = serde_json::to_string_pretty(cmp).map_err(|e| damaged(&json_path, e))?;
    std::fs::write(&json_path, json).map_err(io(&json_path))?;
    Ok(index)
}
