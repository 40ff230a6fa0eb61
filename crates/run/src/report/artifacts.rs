//! What a run leaves for people besides its numbers: loss.svg, one attention heatmap per
//! report sentence, translations.txt, and the heatmaps kept per epoch.

use std::collections::HashSet;
use std::fmt::Write as _;

use s2s_data::Corpus;
use s2s_model::TranslationModel;
use s2s_report::{line_chart, slug, Series};

use crate::config::ExperimentConfig;
use crate::error::{io, Result};
use crate::metrics_csv::read_metrics;
use crate::run_dir::{replace_with, write_atomic, RunDir};
use crate::steps_csv::read_step_losses;
use crate::translator::{references, translate, Translation};

/// The sentences the report translates: the configured list, else the first training ones.
pub fn report_sentences(cfg: &ExperimentConfig, corpus: &Corpus) -> Vec<String> {
    if !cfg.report.sentences.is_empty() {
        return cfg.report.sentences.clone();
    }
    let text = |p: &s2s_data::Pair| corpus.source.detokenize(&corpus.src_vocab().encode(&p.src));
    corpus.train.iter().take(cfg.report.max_sentences).map(text).collect()
}

/// Draws loss.svg (train solid, validation dashed) from metrics.csv, by step from
/// steps.csv when that has more points than there are epochs, and scores.svg
/// (validation BLEU and chrF) once the run validated twice.
pub fn write_loss_curve(run: &RunDir, title: &str) -> Result<()> {
    let cols = read_metrics(&run.metrics_csv())?;
    let column = |name: &str| cols.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone()).unwrap_or_default();
    let by_epoch = column("train_loss");
    let by_step = read_step_losses(&run.steps_csv())?;
    let (x_label, train, valid) = if by_step.len() > by_epoch.len() {
        // Validation at the step its epoch ended on.
        let step_of: Vec<(f64, f64)> = column("step");
        let at_step = |(epoch, v): (f64, f64)| step_of.iter().find(|p| p.0 == epoch).map(|p| (p.1, v));
        ("step", by_step, column("valid_loss").into_iter().filter_map(at_step).collect())
    } else {
        ("epoch", by_epoch, column("valid_loss"))
    };
    let mut series = vec![Series::new("train_loss", train, 0)];
    if !valid.is_empty() {
        series.push(Series::new("valid_loss", valid, 0).dashed());
    }
    replace_with(&run.loss_svg(), |tmp| line_chart(tmp, title, x_label, "loss (NLL per target token)", &series))?;
    // Scores over time need two validations at least: one is a dot on an empty grid (the
    // headline results give it).
    let (bleu, chrf) = (column("valid_bleu"), column("valid_chrf"));
    if bleu.len() >= 2 {
        let scores = [Series::new("valid_bleu", bleu, 0), Series::new("valid_chrf", chrf, 1)];
        let title = title.replace(": loss", ": validation scores");
        replace_with(&run.scores_svg(), |tmp| line_chart(tmp, &title, "epoch", "BLEU / chrF (0-100)", &scores))?;
    }
    Ok(())
}

/// One report sentence, translated by the current model.
#[derive(Debug, Clone)]
pub struct ReportSentence {
    /// The sentence as configured.
    pub text: String,
    /// A file-name-safe name, unique among the report sentences.
    pub name: String,
    /// The reference translation when the data has one ("-" otherwise).
    pub reference: String,
    /// The translation, or why the model could not take the sentence (too long for the
    /// location attention, say): reported instead of failing the run.
    pub translation: std::result::Result<Translation, String>,
}

impl ReportSentence {
    /// The attention heatmaps of a translated sentence (see [`Translation::heatmap_svgs`]).
    pub fn heatmap_svgs(&self, report: &s2s_report::ReportConfig) -> Result<Vec<(&'static str, String)>> {
        match &self.translation {
            Ok(t) => Ok(t.heatmap_svgs(report)?),
            Err(_) => Ok(Vec::new()),
        }
    }
}

/// Translates the report sentences.
pub fn translate_report_sentences(
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    model: &dyn TranslationModel,
) -> Vec<ReportSentence> {
    let refs = references(corpus);
    let sentences = report_sentences(cfg, corpus);
    let names = sentence_names(&sentences);
    sentences
        .into_iter()
        .zip(names)
        .map(|(s, name)| {
            let translation = translate(model, &corpus.source, &corpus.target, std::slice::from_ref(&s))
                .and_then(|mut t| t.remove(0).with_heads(model))
                .map_err(|e| e.to_string());
            let key = translation.as_ref().map_or(String::new(), |t| t.tokens.join(" "));
            let reference = refs.get(&key).cloned().unwrap_or_else(|| "-".into());
            ReportSentence { text: s, name, reference, translation }
        })
        .collect()
}

/// File-name-safe names of `sentences`, unique among them: their slugs, with `-2`, `-3`,
/// ... after a slug seen before.
pub fn sentence_names(sentences: &[String]) -> Vec<String> {
    let mut used = HashSet::new();
    sentences
        .iter()
        .map(|s| {
            let mut name = slug(s);
            let mut k = 2;
            while !used.insert(name.clone()) {
                name = format!("{}-{k}", slug(s));
                k += 1;
            }
            name
        })
        .collect()
}

/// Translates the report sentences, writes their heatmaps and translations.txt.
pub fn write_translations(
    run: &RunDir,
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    model: &dyn TranslationModel,
) -> Result<Vec<Translation>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let att_dir = run.attention();
    std::fs::create_dir_all(&att_dir).map_err(io(&att_dir))?;
    for s in translate_report_sentences(cfg, corpus, model) {
        match &s.translation {
            Err(e) => {
                let _ = writeln!(text, "> {}\n! {e}\n", s.text);
            }
            Ok(t) => {
                let _ = writeln!(text, "> {}\n= {}\n< {}\n", s.text, s.reference, t.text);
                for (suffix, svg) in s.heatmap_svgs(&cfg.report)? {
                    write_atomic(&att_dir.join(format!("{}{suffix}.svg", s.name)), svg.as_bytes())?;
                }
                out.push(t.clone());
            }
        }
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
