//! `report.html`: a run folder on one self-contained page, in the order people read it:
//! the model line and headline results, the curves, the translations and their
//! attention, then the metrics table (the latest rows; the rest folded, with a link to
//! metrics.csv), the run's details and its resolved config.

use s2s_report::Page;

use crate::error::{Result, RunError};
use crate::report::artifacts::{sentence_names, svgs_in};
use crate::report::number::fmt;
use crate::report::story;
use crate::run_dir::{write_atomic, RunDir};
use crate::summary::RunSummary;

/// Rows of the metrics table shown unfolded.
const LATEST_ROWS: usize = 20;

/// A JSON value from run.json as a table cell.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map_or(n.to_string(), fmt),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// translations.txt's `>`, `=`, `<` lines as (source, reference, translation) rows.
pub fn translation_rows(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for block in text.split("\n\n") {
        let (mut src, mut reference, mut out) = (None, None, None);
        for line in block.lines() {
            match line.split_at_checked(2) {
                Some(("> ", v)) => src = Some(v.to_string()),
                Some(("= ", v)) => reference = Some(v.to_string()),
                Some(("< ", v)) => out = Some(v.to_string()),
                Some(("! ", v)) => out = Some(format!("(not translated: {v})")),
                _ => {}
            }
        }
        if src.is_some() {
            rows.push(vec![src, reference, out]);
        }
    }
    rows
}

/// The heatmap files of one report sentence named `name`, in reading order, each with a
/// caption saying which view it is.
fn sentence_heatmaps(dir: &std::path::Path, name: &str) -> Vec<(std::path::PathBuf, &'static str)> {
    [("", ""), (".words", "merged into words"), (crate::translator::HEADS_SUFFIX, "every decoder layer and head")]
        .into_iter()
        .map(|(suffix, caption)| (dir.join(format!("{name}{suffix}.svg")), caption))
        .filter(|(p, _)| p.is_file())
        .collect()
}

/// Draws the heatmaps of `dir` in the translation table's order, each captioned with its
/// sentence and view; files of no listed sentence come last.
fn heatmaps(page: &mut Page, dir: &std::path::Path, sources: &[String]) {
    let mut shown = std::collections::HashSet::new();
    page.grid_start();
    for (source, name) in sources.iter().zip(sentence_names(sources)) {
        for (path, view) in sentence_heatmaps(dir, &name) {
            if let Ok(svg) = std::fs::read(&path) {
                let caption = if view.is_empty() { source.clone() } else { format!("{source} ({view})") };
                page.svg(&svg, &caption);
            }
            shown.insert(path);
        }
    }
    for p in svgs_in(dir).into_iter().filter(|p| !shown.contains(p)) {
        if let Ok(svg) = std::fs::read(&p) {
            page.svg(&svg, &p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        }
    }
    page.grid_end();
}

/// The metrics table: every column with a value in some row, the latest rows first.
fn metrics_table(page: &mut Page, run: &RunSummary) {
    let columns: Vec<&(String, Vec<(f64, f64)>)> =
        run.metrics.iter().filter(|(k, pts)| k == "epoch" || pts.iter().any(|p| !p.1.is_nan())).collect();
    let headers: Vec<String> = columns.iter().map(|(k, _)| k.clone()).collect();
    let epochs: Vec<f64> = run.column("train_loss").iter().map(|p| p.0).collect();
    let row = |epoch: f64| -> Vec<Option<String>> {
        columns
            .iter()
            .map(|(k, pts)| {
                if k == "epoch" {
                    return Some(format!("{epoch}"));
                }
                pts.iter().find(|p| p.0 == epoch).filter(|p| !p.1.is_nan()).map(|p| fmt(p.1))
            })
            .collect()
    };
    let split = epochs.len().saturating_sub(LATEST_ROWS);
    let latest: Vec<_> = epochs[split..].iter().rev().map(|&e| row(e)).collect();
    page.heading(2, "Metrics").link("metrics.csv", "metrics.csv (every epoch)");
    page.table(&headers, &latest);
    if split > 0 {
        let earlier: Vec<_> = epochs[..split].iter().rev().map(|&e| row(e)).collect();
        page.details_start(&format!("{split} earlier epochs")).table(&headers, &earlier).details_end();
    }
}

/// The report sentences of a run, as its translations.txt lists them.
pub fn report_sources(dir: &RunDir) -> Vec<String> {
    let rows = std::fs::read_to_string(dir.translations_txt()).map(|t| translation_rows(&t)).unwrap_or_default();
    rows.into_iter().filter_map(|mut r| r.swap_remove(0)).collect()
}

/// Writes `report.html` from what the folder holds, in the order people read it: what
/// was trained and how it went, the curves, the translations and their attention, then
/// the details.
pub fn write_report(dir: &RunDir) -> Result<()> {
    let Some(run) = RunSummary::load(dir.path()) else {
        return Err(RunError::Refused(format!("{} is not a run folder", dir.path().display())));
    };
    let mut page = Page::new(&format!("s2s run {}", run.name));
    page.heading(1, &format!("Run {}", run.name));
    if let Some(cfg) = run.config() {
        page.paragraph(&story::model_line(&cfg, run.info.as_ref().map(|i| i.parameters.total as u64)));
    }
    page.key_values(&story::headline(&run));

    if let Ok(svg) = std::fs::read(dir.loss_svg()) {
        let caption = if run.column("valid_loss").is_empty() {
            "training loss"
        } else {
            "training loss (solid) and validation loss (dashed)"
        };
        page.heading(2, "Loss").svg(&svg, caption);
    }
    if let Ok(svg) = std::fs::read(dir.scores_svg()) {
        page.heading(2, "Validation scores").svg(&svg, "validation BLEU and chrF");
    }

    let rows = std::fs::read_to_string(dir.translations_txt()).map(|t| translation_rows(&t)).unwrap_or_default();
    if !rows.is_empty() {
        let headers = ["source".to_string(), "reference".into(), "translation".into()];
        page.heading(2, "Translations").table(&headers, &rows);
    }
    let sources: Vec<String> = rows.iter().filter_map(|r| r[0].clone()).collect();
    let att = dir.attention();
    if !svgs_in(&att).is_empty() {
        page.heading(2, "Attention");
        heatmaps(&mut page, &att, &sources);
    }
    let mut epochs_dirs: Vec<_> =
        std::fs::read_dir(&att).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    epochs_dirs.sort();
    if !epochs_dirs.is_empty() {
        page.heading(2, "Attention over training");
        for d in &epochs_dirs {
            page.heading(3, &d.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            heatmaps(&mut page, d, &sources);
        }
    }

    metrics_table(&mut page, &run);
    if let Some(i) = &run.info {
        let details: Vec<(String, String)> = [
            ("started", i.started_at.clone()),
            ("ended", i.ended_at.clone().unwrap_or_else(|| "-".into())),
            ("sessions", i.sessions.len().to_string()),
            ("seed", i.seed.to_string()),
            ("device", i.device.clone()),
            ("version", i.program_version.clone()),
            ("parameters", story::thousands(i.parameters.total as u64)),
            (
                "train / valid / test pairs",
                format!("{} / {} / {}", i.data.train_pairs, i.data.valid_pairs, i.data.test_pairs),
            ),
            ("data fingerprint", i.data.fingerprint.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(i.final_metrics.iter().map(|(k, v)| (k.clone(), cell(v))))
        .collect();
        page.heading(2, "Run details").key_values(&details);
    }
    if let Ok(c) = std::fs::read_to_string(dir.config_toml()) {
        page.heading(2, "Resolved config").preformatted(&c);
    }
    write_atomic(&dir.report_html(), page.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translations_become_rows() {
        let rows = translation_rows("> a b\n= x y\n< x z\n\n> c\n! too long\n\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], [Some("a b".into()), Some("x y".into()), Some("x z".into())]);
        assert_eq!(rows[1][2].as_deref(), Some("(not translated: too long)"));
    }
}
