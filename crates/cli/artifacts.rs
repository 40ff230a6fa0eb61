//! What a finished run leaves for people: loss.svg, attention heatmaps, translations.txt.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use s2s_data::Corpus;
use s2s_model::Seq2Seq;
use s2s_report::{attention_heatmap, line_chart, slug, Heatmap, Series};

use crate::config::ExperimentConfig;
use crate::translator::{references, translate, Translation};

/// The sentences the report translates: the configured list, else the first training ones.
pub fn report_sentences(cfg: &ExperimentConfig, corpus: &Corpus) -> Vec<String> {
    if !cfg.report.sentences.is_empty() {
        return cfg.report.sentences.clone();
    }
    corpus.train.iter().take(cfg.report.max_sentences).map(|p| p.src.join(" ")).collect()
}

/// One metrics column: its name and (epoch, value) points.
pub type MetricColumn = (String, Vec<(f64, f64)>);

/// Reads `metrics.csv` into (column name → points by epoch).
pub fn read_metrics(path: &Path) -> Result<Vec<MetricColumn>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut cols: Vec<(String, Vec<(f64, f64)>)> = header.iter().map(|h| (h.to_string(), Vec::new())).collect();
    for line in lines {
        let vals: Vec<&str> = line.split(',').collect();
        let Some(epoch) = vals.first().and_then(|v| v.parse::<f64>().ok()) else { continue };
        for (i, v) in vals.iter().enumerate().skip(1) {
            if let (Some(col), Ok(x)) = (cols.get_mut(i), v.parse::<f64>()) {
                col.1.push((epoch, x));
            }
        }
    }
    Ok(cols)
}

/// Draws loss.svg from metrics.csv.
pub fn write_loss_curve(run_dir: &Path, title: &str) -> Result<()> {
    let cols = read_metrics(&run_dir.join("metrics.csv"))?;
    let series: Vec<Series> = cols
        .into_iter()
        .filter(|(name, pts)| (name == "train_loss" || name == "valid_loss") && !pts.is_empty())
        .map(|(name, points)| Series { name, points })
        .collect();
    line_chart(&run_dir.join("loss.svg"), title, "epoch", "loss (NLL per target token)", &series)?;
    Ok(())
}

/// Translates the report sentences, writes their heatmaps and translations.txt.
pub fn write_translations(
    run_dir: &Path,
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    model: &Seq2Seq,
) -> Result<Vec<Translation>> {
    let sentences = report_sentences(cfg, corpus);
    let refs = references(corpus);
    let mut out = Vec::new();
    let mut text = String::new();
    let att_dir = run_dir.join("attention");
    std::fs::create_dir_all(&att_dir)?;
    let mut used = HashSet::new();
    for s in &sentences {
        let t = match translate(model, &cfg.data, &corpus.src_vocab, &corpus.tgt_vocab, std::slice::from_ref(s)) {
            Ok(mut t) => t.remove(0),
            Err(e) => {
                let _ = writeln!(text, "> {s}\n! {e}\n");
                continue;
            }
        };
        let reference = refs.get(&t.tokens.join(" ")).cloned().unwrap_or_else(|| "-".into());
        let _ = writeln!(text, "> {s}\n= {reference}\n< {}\n", t.output.join(" "));
        let mut name = slug(s);
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{}-{k}", slug(s));
            k += 1;
        }
        let (x, y) = t.labels();
        let title = format!("{} → {}", t.tokens.join(" "), t.output.join(" "));
        let map = Heatmap { title: &title, source: &x, output: &y, weights: &t.attention };
        attention_heatmap(&att_dir.join(format!("{name}.svg")), &map, cfg.report.colormap)?;
        out.push(t);
    }
    std::fs::write(run_dir.join("translations.txt"), text)?;
    Ok(out)
}
