//! Text in, translation and attention out, with the run's normalization and vocabularies.

use std::collections::HashMap;

use s2s_data::normalize::normalize;
use s2s_data::{DataConfig, Vocab};
use s2s_model::{Hypothesis, TranslationModel};

/// One translated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub source: String,
    /// Normalized source tokens (what the model saw, before EOS).
    pub tokens: Vec<String>,
    pub output: Vec<String>,
    /// One row per generated token (EOS included when emitted), one column per source
    /// token plus EOS.
    pub attention: Vec<Vec<f32>>,
    pub log_prob: f32,
    /// Source words the vocabulary does not know (they were fed as UNK).
    pub unknown: Vec<String>,
}

impl Translation {
    /// Heatmap labels: source tokens + EOS on x, output + EOS (when emitted) on y.
    /// The attention heatmap as SVG, drawn as the report draws it.
    pub fn heatmap_svg(&self, report: &s2s_report::ReportConfig) -> Result<String, s2s_report::ReportError> {
        let (x, y) = self.labels();
        let title = format!("{} → {}", self.tokens.join(" "), self.output.join(" "));
        let map = s2s_report::Heatmap {
            title: &title,
            source: &x,
            output: &y,
            weights: &self.attention,
            annotate: report.annotate && s2s_report::Heatmap::fits_annotations(x.len(), y.len()),
        };
        s2s_report::attention_heatmap_svg(&map, report.colormap)
    }

    pub fn labels(&self) -> (Vec<String>, Vec<String>) {
        let x: Vec<String> = self.tokens.iter().cloned().chain(std::iter::once("EOS".to_string())).collect();
        let mut y = self.output.clone();
        if self.attention.len() > y.len() {
            y.push("EOS".into());
        }
        (x, y)
    }
}

/// Normalizes and encodes a sentence; returns ids (ending with EOS) and the unknown words.
pub fn encode(text: &str, data: &DataConfig, vocab: &Vocab) -> (Vec<String>, Vec<u32>, Vec<String>) {
    let tokens = normalize(text, data);
    let unknown = tokens.iter().filter(|t| vocab.id(t).is_none()).cloned().collect();
    let ids = vocab.encode(&tokens);
    (tokens, ids, unknown)
}

fn to_translation(source: &str, tokens: Vec<String>, unknown: Vec<String>, h: Hypothesis, tgt: &Vocab) -> Translation {
    Translation {
        source: source.to_string(),
        tokens,
        output: tgt.decode(&h.ids),
        attention: h.attention,
        log_prob: h.log_prob,
        unknown,
    }
}

/// Translates sentences with the model's configured decoding (greedy or beam).
pub fn translate(
    model: &dyn TranslationModel,
    data: &DataConfig,
    src: &Vocab,
    tgt: &Vocab,
    texts: &[String],
) -> Result<Vec<Translation>, s2s_model::ModelError> {
    let encoded: Vec<_> = texts.iter().map(|t| encode(t, data, src)).collect();
    let sources: Vec<Vec<u32>> = encoded.iter().map(|e| e.1.clone()).collect();
    let hyps = model.translate(&sources)?;
    Ok(texts
        .iter()
        .zip(encoded)
        .zip(hyps)
        .map(|((text, (tokens, _, unknown)), h)| to_translation(text, tokens, unknown, h, tgt))
        .collect())
}

/// The `n_best` beam hypotheses of one sentence.
pub fn translate_n_best(
    model: &dyn TranslationModel,
    data: &DataConfig,
    src: &Vocab,
    tgt: &Vocab,
    text: &str,
    beam: usize,
    n_best: usize,
) -> Result<Vec<Translation>, s2s_model::ModelError> {
    let (tokens, ids, unknown) = encode(text, data, src);
    Ok(model
        .beam(&ids, beam, n_best)?
        .into_iter()
        .map(|h| to_translation(text, tokens.clone(), unknown.clone(), h, tgt))
        .collect())
}

/// Reference translations known from the data, by normalized source sentence.
pub fn references(corpus: &s2s_data::Corpus) -> HashMap<String, String> {
    let mut refs = HashMap::new();
    for p in corpus.train.iter().chain(&corpus.valid).chain(&corpus.test) {
        refs.entry(p.src.join(" ")).or_insert_with(|| p.tgt.join(" "));
    }
    refs
}
