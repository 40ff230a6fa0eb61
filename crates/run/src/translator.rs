//! Text in, translation and attention out, with the run's tokenizers.

use std::collections::HashMap;

use s2s_data::Tokenizer;
use s2s_model::{Hypothesis, LayerHeads, TranslationModel};
use s2s_report::AttentionView;

use crate::error::Result;

/// One translated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub source: String,
    /// Source tokens, words or subword pieces (what the model saw, before EOS).
    pub tokens: Vec<String>,
    /// Output tokens, words or subword pieces (before EOS).
    pub output: Vec<String>,
    /// The output as text: words joined, or pieces detokenized.
    pub text: String,
    /// One row per generated token (EOS included when emitted), one column per source
    /// token plus EOS.
    pub attention: Vec<Vec<f32>>,
    pub log_prob: f32,
    /// What was fed as UNK: words the vocabulary does not know, or characters a subword
    /// tokenizer never saw.
    pub unknown: Vec<String>,
    /// Characters the normalization removed altogether (`s2s_data::Tokenized::dropped`).
    pub dropped: Vec<String>,
    /// The word each source token belongs to (`Tokenizer::word_index`).
    pub source_words: Vec<usize>,
    /// The word each output token belongs to.
    pub output_words: Vec<usize>,
    /// The ids the model read and wrote (source with EOS; output without).
    pub source_ids: Vec<u32>,
    pub output_ids: Vec<u32>,
    /// Every layer's and head's cross-attention, `[layer][head][row][column]` with the
    /// rows and columns of [`Self::attention`], for families that have several (see
    /// [`Self::with_heads`]); `None` otherwise.
    pub heads: Option<LayerHeads>,
    /// What [`Self::attention`] shows when the model has several attentions ("layer 2
    /// (the last), mean of 4 heads"); `None` for a family with one attention per step.
    pub shows: Option<String>,
}

/// The file-name suffix of a Transformer's layer × head heatmap (`<sentence>.heads.svg`).
pub const HEADS_SUFFIX: &str = ".heads";

/// Labels and weights of one heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionGrid {
    pub source: Vec<String>,
    pub output: Vec<String>,
    pub weights: Vec<Vec<f32>>,
}

impl Translation {
    /// The heatmaps `view` asks for, each with its file-name suffix ("" for the main one,
    /// ".words" for the merged-word view beside a subword one). A word-tokenized run has
    /// one view only: its tokens are its words.
    pub fn heatmap_svgs(
        &self,
        report: &s2s_report::ReportConfig,
    ) -> Result<Vec<(&'static str, String)>, s2s_report::ReportError> {
        let subwords = self.source_words.len() != self.source_words.iter().max().map_or(0, |m| m + 1)
            || self.output_words.len() != self.output_words.iter().max().map_or(0, |m| m + 1);
        let views: Vec<(&'static str, bool)> = match (report.attention_view, subwords) {
            (_, false) | (AttentionView::Subword, true) => vec![("", false)],
            (AttentionView::Word, true) => vec![("", true)],
            (AttentionView::Both, true) => vec![("", false), (".words", true)],
        };
        let mut svgs: Vec<(&'static str, String)> = views
            .into_iter()
            .map(|(suffix, words)| Ok((suffix, self.heatmap_svg(report, words)?)))
            .collect::<Result<_, _>>()?;
        if let Some(svg) = self.heads_svg(report)? {
            svgs.push((HEADS_SUFFIX, svg));
        }
        Ok(svgs)
    }

    /// The layer × head grid of [`Self::heads`] as SVG (over tokens), if there are heads.
    pub fn heads_svg(&self, report: &s2s_report::ReportConfig) -> Result<Option<String>, s2s_report::ReportError> {
        let Some(heads) = &self.heads else { return Ok(None) };
        let (source, output) = self.labels();
        let title = format!(
            "{} → {}\ncross-attention of each decoder layer (rows) and head (columns)",
            self.source.trim(),
            self.text
        );
        let grid = s2s_report::HeadGrid { title: &title, source: &source, output: &output, weights: heads };
        Ok(Some(s2s_report::attention_heads_svg(&grid, report.colormap)?))
    }

    /// Fills [`Self::heads`] from the model's forced pass over this translation (nothing
    /// for a family with one attention).
    pub fn with_heads(mut self, model: &dyn TranslationModel) -> Result<Self> {
        self.heads = model.attention_heads(&self.source_ids, &self.output_ids)?.map(|mut layers| {
            // One row per row of `attention`: the EOS step only when EOS was emitted.
            let rows = self.attention.len();
            for head in layers.iter_mut().flatten() {
                head.truncate(rows);
            }
            layers
        });
        if let Some(layers) = &self.heads {
            let last = layers.len().saturating_sub(1);
            let heads = layers.last().map_or(0, Vec::len);
            self.shows = Some(format!("cross-attention: layer {last} (last), mean of {heads} heads"));
        }
        Ok(self)
    }

    /// This translation with [`Self::attention`] replaced by one layer's head (`head`
    /// `None`: the layer's head average), for `translate --layer/--head`.
    pub fn select_head(&self, layer: Option<usize>, head: Option<usize>) -> std::result::Result<Self, String> {
        if layer.is_none() && head.is_none() {
            return Ok(self.clone());
        }
        let Some(heads) = &self.heads else {
            return Err("--layer/--head: this model family has one attention per step (no layers or heads)".into());
        };
        let layers = heads.len();
        let l = layer.unwrap_or(layers - 1);
        let Some(layer_heads) = heads.get(l) else {
            return Err(format!("--layer {l}: the decoder has layers 0..{}", layers - 1));
        };
        let attention = match head {
            Some(h) => match layer_heads.get(h) {
                Some(m) => m.clone(),
                None => return Err(format!("--head {h}: each layer has heads 0..{}", layer_heads.len() - 1)),
            },
            None => {
                let n = layer_heads.len() as f32;
                let mut mean = vec![vec![0f32; self.tokens.len() + 1]; self.attention.len()];
                for m in layer_heads {
                    for (acc, row) in mean.iter_mut().zip(m) {
                        for (a, &w) in acc.iter_mut().zip(row) {
                            *a += w / n;
                        }
                    }
                }
                mean
            }
        };
        let shows = match head {
            Some(h) => format!("cross-attention: layer {l}, head {h}"),
            None => format!("cross-attention: layer {l}, mean of {} heads", layer_heads.len()),
        };
        Ok(Self { attention, heads: None, shows: Some(shows), ..self.clone() })
    }

    /// The attention heatmap as SVG, over tokens or (`words`) merged into words.
    pub fn heatmap_svg(
        &self,
        report: &s2s_report::ReportConfig,
        words: bool,
    ) -> Result<String, s2s_report::ReportError> {
        let g = if words { self.word_grid() } else { self.grid() };
        let mut title = format!("{} → {}", self.source.trim(), self.text);
        if let Some(shows) = &self.shows {
            title = format!("{title}\n{shows}");
        }
        let map = s2s_report::Heatmap {
            title: &title,
            source: &g.source,
            output: &g.output,
            weights: &g.weights,
            annotate: report.annotate && s2s_report::Heatmap::fits_annotations(g.source.len(), g.output.len()),
        };
        s2s_report::attention_heatmap_svg(&map, report.colormap)
    }

    /// Source tokens + EOS on x, output + EOS (when emitted) on y.
    pub fn labels(&self) -> (Vec<String>, Vec<String>) {
        let x: Vec<String> = self.tokens.iter().cloned().chain(std::iter::once("EOS".to_string())).collect();
        let mut y = self.output.clone();
        if self.attention.len() > y.len() {
            y.push("EOS".into());
        }
        (x, y)
    }

    /// The attention over tokens.
    pub fn grid(&self) -> AttentionGrid {
        let (source, output) = self.labels();
        AttentionGrid { source, output, weights: self.attention.clone() }
    }

    /// The attention over words: a source word's weight is the sum over its pieces, and
    /// an output word's row the mean of its pieces' rows, so rows still sum to 1. EOS
    /// stays a word of its own on both axes.
    pub fn word_grid(&self) -> AttentionGrid {
        let src_group = groups(&self.source_words, self.tokens.len() + 1);
        let out_group = groups(&self.output_words, self.attention.len());
        let src_words = src_group.iter().max().map_or(0, |m| m + 1);
        let out_words = out_group.iter().max().map_or(0, |m| m + 1);
        let (tok_x, tok_y) = self.labels();
        let mut weights = vec![vec![0f32; src_words]; out_words];
        let mut rows = vec![0usize; out_words];
        for (r, row) in self.attention.iter().enumerate() {
            rows[out_group[r]] += 1;
            for (c, &w) in row.iter().enumerate() {
                weights[out_group[r]][src_group[c]] += w;
            }
        }
        for (row, n) in weights.iter_mut().zip(&rows) {
            row.iter_mut().for_each(|w| *w /= (*n).max(1) as f32);
        }
        AttentionGrid { source: join_words(&tok_x, &src_group), output: join_words(&tok_y, &out_group), weights }
    }
}

/// The word of each of `n` positions: `words` for the tokens, then one new word per
/// position beyond them (EOS).
fn groups(words: &[usize], n: usize) -> Vec<usize> {
    let mut next = words.iter().max().map_or(0, |m| m + 1);
    (0..n)
        .map(|i| {
            words.get(i).copied().unwrap_or_else(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// The labels of each group's tokens run together, without BPE's word-start mark.
fn join_words(tokens: &[String], group: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (t, &g) in tokens.iter().zip(group) {
        if out.len() <= g {
            out.resize(g + 1, String::new());
        }
        out[g].push_str(t.trim_start_matches(s2s_data::tokenizer::bpe::WORD_START));
    }
    out
}

fn to_translation(
    source: &str,
    tokenized: &s2s_data::Tokenized,
    h: Hypothesis,
    src: &Tokenizer,
    tgt: &Tokenizer,
) -> Translation {
    let output = tgt.tokens(&h.ids);
    let output_words = tgt.word_index(&output);
    Translation {
        source: source.to_string(),
        source_words: src.word_index(&tokenized.tokens),
        output_words,
        tokens: tokenized.tokens.clone(),
        text: tgt.detokenize(&h.ids),
        output,
        attention: h.attention,
        log_prob: h.log_prob,
        unknown: tokenized.unknown.clone(),
        dropped: tokenized.dropped.clone(),
        source_ids: tokenized.ids.clone(),
        output_ids: h.ids,
        heads: None,
        shows: None,
    }
}

fn tokenize_all(src: &Tokenizer, texts: &[String]) -> Result<Vec<s2s_data::Tokenized>> {
    Ok(texts.iter().map(|t| src.tokenize(t)).collect::<Result<_, _>>()?)
}

/// Translates raw sentences with the model's configured decoding (greedy or beam).
pub fn translate(
    model: &dyn TranslationModel,
    src: &Tokenizer,
    tgt: &Tokenizer,
    texts: &[String],
) -> Result<Vec<Translation>> {
    decode_all(src, tgt, texts, |sources| model.translate(sources))
}

/// Tokenizes `texts`, decodes them with `decode` and reads the hypotheses back as text.
fn decode_all(
    src: &Tokenizer,
    tgt: &Tokenizer,
    texts: &[String],
    decode: impl FnOnce(&[Vec<u32>]) -> Result<Vec<Hypothesis>, s2s_model::ModelError>,
) -> Result<Vec<Translation>> {
    let encoded = tokenize_all(src, texts)?;
    let sources: Vec<Vec<u32>> = encoded.iter().map(|e| e.ids.clone()).collect();
    let hyps = decode(&sources)?;
    Ok(texts.iter().zip(&encoded).zip(hyps).map(|((text, e), h)| to_translation(text, e, h, src, tgt)).collect())
}

/// Translates raw sentences greedily, whatever the model's configured beam size.
pub fn translate_greedy(
    model: &dyn TranslationModel,
    src: &Tokenizer,
    tgt: &Tokenizer,
    texts: &[String],
) -> Result<Vec<Translation>> {
    decode_all(src, tgt, texts, |sources| model.greedy(sources))
}

/// The `n_best` beam hypotheses of each of `texts`, the sentences decoded together
/// (greedy when `beam` and `n_best` are 1).
pub fn translate_n_best(
    model: &dyn TranslationModel,
    src: &Tokenizer,
    tgt: &Tokenizer,
    texts: &[String],
    beam: usize,
    n_best: usize,
) -> Result<Vec<Vec<Translation>>> {
    let encoded = tokenize_all(src, texts)?;
    // A text with no tokens (an empty line) translates to nothing; the rest are decoded.
    let sources: Vec<Vec<u32>> = encoded.iter().filter(|e| !e.ids.is_empty()).map(|e| e.ids.clone()).collect();
    let decoded: Vec<Vec<Hypothesis>> = if sources.is_empty() {
        Vec::new()
    } else if beam <= 1 && n_best <= 1 {
        model.greedy(&sources)?.into_iter().map(|h| vec![h]).collect()
    } else {
        model.beam_batch(&sources, beam, n_best)?
    };
    let mut decoded = decoded.into_iter();
    let empty = || vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }];
    let hyps: Vec<Vec<Hypothesis>> = encoded
        .iter()
        .map(|e| if e.ids.is_empty() { Some(empty()) } else { decoded.next() })
        .collect::<Option<_>>()
        .ok_or(s2s_model::ModelError::Worker)?;
    Ok(texts
        .iter()
        .zip(&encoded)
        .zip(hyps)
        .map(|((text, e), hs)| hs.into_iter().map(|h| to_translation(text, e, h, src, tgt)).collect())
        .collect())
}

/// Reference translations known from the data, by source tokens joined with spaces.
pub fn references(corpus: &s2s_data::Corpus) -> HashMap<String, String> {
    let mut refs = HashMap::new();
    for p in corpus.train.iter().chain(&corpus.valid).chain(&corpus.test) {
        refs.entry(p.src.pieces(corpus.src_vocab()).join(" ")).or_insert_with(|| p.reference.clone());
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_grid_sums_source_pieces_and_averages_output_pieces() {
        // Source "▁Un e ▁élève" + EOS: words [Une] [élève] [EOS]; output "▁A ▁stud ent" + EOS.
        let t = Translation {
            source: "Une élève".into(),
            tokens: vec!["▁Un".into(), "e".into(), "▁élève".into()],
            output: vec!["▁A".into(), "▁stud".into(), "ent".into()],
            text: "A student".into(),
            attention: vec![
                vec![0.5, 0.3, 0.1, 0.1],
                vec![0.1, 0.1, 0.6, 0.2],
                vec![0.0, 0.2, 0.4, 0.4],
                vec![0.0, 0.0, 0.0, 1.0],
            ],
            log_prob: 0.0,
            unknown: Vec::new(),
            dropped: Vec::new(),
            source_words: vec![0, 0, 1],
            output_words: vec![0, 1, 1],
            source_ids: vec![4, 5, 6, 1],
            output_ids: vec![7, 8, 9],
            heads: None,
            shows: None,
        };
        let g = t.word_grid();
        assert_eq!(g.source, ["Une", "élève", "EOS"]);
        assert_eq!(g.output, ["A", "student", "EOS"]);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&g.weights[0], &[0.8, 0.1, 0.1]), "{:?}", g.weights[0]);
        assert!(close(&g.weights[1], &[0.2, 0.5, 0.3]), "{:?}", g.weights[1]);
        assert!(close(&g.weights[2], &[0.0, 0.0, 1.0]), "{:?}", g.weights[2]);
        for row in &g.weights {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // The token grid is the attention as it is.
        assert_eq!(t.grid().weights, t.attention);
        assert_eq!(t.grid().source.len(), 4);
    }
}
