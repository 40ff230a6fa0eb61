//! What a run leaves for people besides its numbers: loss.svg, one attention heatmap per
//! report sentence, translations.txt, and the heatmaps kept per epoch.

use std::collections::HashSet;
use std::fmt::Write as _;

use s2s_data::Corpus;
use s2s_model::TranslationModel;
use s2s_report::{attention_heatmap, line_chart, slug, Heatmap, Series};

use crate::config::ExperimentConfig;
use crate::error::{io, Result};
use crate::observe::metrics_csv::read_metrics;
use crate::run_dir::{replace_with, write_atomic, RunDir};
use crate::translator::{references, translate, Translation};

/// The sentences the report translates: the configured list, else the first training ones.
pub fn report_sentences(cfg: &ExperimentConfig, corpus: &Corpus) -> Vec<String> {
    if !cfg.report.sentences.is_empty() {
        return cfg.report.sentences.clone();
    }
    corpus.train.iter().take(cfg.report.max_sentences).map(|p| p.src.join(" ")).collect()
}

/// Draws loss.svg from metrics.csv.
pub fn write_loss_curve(run: &RunDir, title: &str) -> Result<()> {
    let cols = read_metrics(&run.metrics_csv())?;
    let series: Vec<Series> = cols
        .into_iter()
        .filter(|(name, pts)| (name == "train_loss" || name == "valid_loss") && !pts.is_empty())
        .map(|(name, points)| Series { name, points })
        .collect();
    replace_with(&run.loss_svg(), |tmp| line_chart(tmp, title, "epoch", "loss (NLL per target token)", &series))
}

/// Translates the report sentences, writes their heatmaps and translations.txt.
pub fn write_translations(
    run: &RunDir,
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    model: &dyn TranslationModel,
) -> Result<Vec<Translation>> {
    let sentences = report_sentences(cfg, corpus);
    let refs = references(corpus);
    let mut out = Vec::new();
    let mut text = String::new();
    let att_dir = run.attention();
    std::fs::create_dir_all(&att_dir).map_err(io(&att_dir))?;
    let mut used = HashSet::new();
    for s in &sentences {
        let t = match translate(model, &cfg.data, &corpus.src_vocab, &corpus.tgt_vocab, std::slice::from_ref(s)) {
            Ok(mut t) => t.remove(0),
            Err(e) => {
                // A sentence the model cannot take (too long for location attention) is
                // reported in the file instead of failing the run.
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
        replace_with(&att_dir.join(format!("{name}.svg")), |tmp| attention_heatmap(tmp, &map, cfg.report.colormap))?;
        out.push(t);
    }
    write_atomic(&run.translations_txt(), text.as_bytes())?;
    Ok(out)
}

/// Copies the current heatmaps to `attention/epoch-<N>/` (report.track_attention).
pub fn snapshot_attention(run: &RunDir, epoch: usize) -> Result<()> {
    let att = run.attention();
    let dest = run.attention_at_epoch(epoch);
    std::fs::create_dir_all(&dest).map_err(io(&dest))?;
    for e in std::fs::read_dir(&att).map_err(io(&att))?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "svg") {
            if let Some(name) = p.file_name() {
                write_atomic(&dest.join(name), &std::fs::read(&p).map_err(io(&p))?)?;
            }
        }
    }
    Ok(())
}

/// The SVG files directly in `dir`, sorted by name.
pub fn svgs_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut svgs: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    svgs.retain(|p| p.extension().is_some_and(|e| e == "svg"));
    svgs.sort();
    svgs
}
