//! Scoring a model on examples: loss and perplexity under teacher forcing, BLEU, chrF and
//! exact match of its greedy translations, and (for synthetic tasks) attention alignment.

use s2s_data::batch::sequential;
use s2s_data::{Dataset, Example, Tokenizer};
use s2s_metrics::{corpus_bleu, corpus_chrf};
use s2s_model::TranslationModel;

/// Sentences decoded per batch while scoring.
pub const EVAL_BATCH: usize = 64;

/// Figures of a model on some examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub loss: f64,
    pub ppl: f64,
    pub bleu: f64,
    pub chrf: f64,
    /// Share of translations equal to their reference.
    pub exact_match: f64,
    /// For tasks with a known alignment: share of output words whose attention argmax
    /// is the aligned source word.
    pub alignment: Option<f64>,
    /// The same per decoder layer and head (`[layer][head]`), for families with several.
    pub alignment_by_head: Option<Vec<Vec<f64>>>,
    pub hypotheses: Vec<String>,
}

/// The share of output positions `0..rows` whose attention argmax is the aligned source
/// position: `(aligned, counted)`.
fn aligned_rows(attention: &[Vec<f32>], rows: usize, words: usize, align: Alignment) -> (usize, usize) {
    let mut aligned = 0;
    for (i, row) in attention.iter().enumerate().take(rows) {
        let arg = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |x| x.0);
        aligned += usize::from(arg == align(i, words));
    }
    (aligned, rows.min(attention.len()))
}

/// The source position output word `i` should attend to, for tasks that know it.
pub type Alignment = fn(i: usize, src_words: usize) -> usize;

/// How the translations being scored are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Greedy, whatever the config says (validation's default: fast).
    Greedy,
    /// As `model.beam_size` and `model.length_penalty` configure (greedy at beam 1).
    Configured,
}

/// The known alignment of a synthetic dataset.
pub fn alignment_of(dataset: Dataset) -> Option<Alignment> {
    match dataset {
        Dataset::Copy => Some(|i, _| i),
        Dataset::Reverse => Some(|i, n| n - 1 - i),
        Dataset::Seed | Dataset::Tsv => None,
    }
}

/// Ends a model's inference span when dropped.
struct InferenceSpan<'a>(&'a dyn TranslationModel);

impl Drop for InferenceSpan<'_> {
    fn drop(&mut self) {
        self.0.end_inference();
    }
}

/// Loss (teacher forcing, no dropout), perplexity, and BLEU / chrF / exact match of
/// translations decoded as `decoding` says against `refs` (one per example). Translations
/// are detokenized by `target` (words joined, or BPE pieces decoded) and scored as
/// sacreBLEU scores a detokenized system output against its reference file.
pub fn score(
    model: &dyn TranslationModel,
    examples: &[Example],
    refs: &[String],
    target: &Tokenizer,
    alignment: Option<Alignment>,
    decoding: Decoding,
) -> Result<Scores, s2s_model::ModelError> {
    // The weights do not change while a split is scored: the model may keep them laid out
    // for inference until the end (`_span` ends it, on return or on error).
    model.begin_inference()?;
    let _span = InferenceSpan(model);
    let (mut sum, mut tokens) = (0f64, 0usize);
    let mut hyps = Vec::with_capacity(examples.len());
    let (mut aligned, mut counted) = (0usize, 0usize);
    // [layer][head] → (aligned, counted)
    let mut by_head: Option<Vec<Vec<(usize, usize)>>> = None;
    for b in sequential(examples, EVAL_BATCH) {
        let l = model.eval_loss(&b)?;
        sum += l * b.target_tokens() as f64;
        tokens += b.target_tokens();
        let sources: Vec<Vec<u32>> = b.indices.iter().map(|&i| examples[i].src.clone()).collect();
        let decoded = match decoding {
            Decoding::Greedy => model.greedy(&sources)?,
            Decoding::Configured => model.translate(&sources)?,
        };
        for (h, src) in decoded.into_iter().zip(&sources) {
            if let Some(align) = alignment {
                let words = src.len() - 1;
                let rows = h.ids.len().min(words);
                let (a, c) = aligned_rows(&h.attention, rows, words, align);
                (aligned, counted) = (aligned + a, counted + c);
                if let Some(layers) = model.attention_heads(src, &h.ids)? {
                    let tally = by_head.get_or_insert_with(|| layers.iter().map(|l| vec![(0, 0); l.len()]).collect());
                    for (t_layer, layer) in tally.iter_mut().zip(&layers) {
                        for (t, head) in t_layer.iter_mut().zip(layer) {
                            let (a, c) = aligned_rows(head, rows, words, align);
                            *t = (t.0 + a, t.1 + c);
                        }
                    }
                }
            }
            hyps.push(target.detokenize(&h.ids));
        }
    }
    let loss = sum / tokens.max(1) as f64;
    let exact = hyps.iter().zip(refs).filter(|(h, r)| h == r).count() as f64 / hyps.len().max(1) as f64;
    Ok(Scores {
        loss,
        ppl: loss.exp(),
        bleu: corpus_bleu(&hyps, refs),
        chrf: corpus_chrf(&hyps, refs),
        exact_match: exact,
        alignment: alignment.map(|_| aligned as f64 / counted.max(1) as f64),
        alignment_by_head: by_head
            .map(|t| t.iter().map(|l| l.iter().map(|&(a, c)| a as f64 / c.max(1) as f64).collect()).collect()),
        hypotheses: hyps,
    })
}

#[cfg(test)]
mod tests {
    use s2s_data::normalize::Normalization;
    use s2s_data::{Tokenizer, TokenizerKind};
    use s2s_metrics::{corpus_bleu, corpus_chrf};

    #[test]
    fn subword_translations_are_scored_detokenized_as_sacrebleu_does() {
        // A BPE tokenizer made by Python's tokenizers (scripts/tokenizer_fixture.py).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/python_bpe.json");
        let norm = Normalization { ascii: false, lowercase: false, separate_punctuation: false, letters_only: false };
        let tok = Tokenizer::load(TokenizerKind::Bpe, norm, &path).expect("fixture loads");
        let hyps = [
            "Deux chiens courent dans la neige",
            "Un homme avec un chapeau regardant quelque chose.",
            "Les élèves arrivent à l'école.",
        ];
        let refs: Vec<String> = [
            "Deux chiens courent dans la neige.",
            "Un homme avec un chapeau orange regardant quelque chose.",
            "Les élèves arrivent à l'école.",
        ]
        .map(String::from)
        .to_vec();
        // What the model would emit: the hypotheses' pieces as ids, ending with EOS.
        let detok: Vec<String> = hyps.iter().map(|h| tok.detokenize(&tok.tokenize(h).expect("encodes").ids)).collect();
        assert_eq!(detok, hyps);
        // sacrebleu 2.6.0: corpus_bleu(hyps, [refs]).score, corpus_chrf(hyps, [refs]).score
        assert!((corpus_bleu(&detok, &refs) - 80.47501457257717).abs() < 1e-9, "{}", corpus_bleu(&detok, &refs));
        assert!((corpus_chrf(&detok, &refs) - 91.26741311252776).abs() < 1e-9, "{}", corpus_chrf(&detok, &refs));
        // Scoring the pieces themselves would not be sacreBLEU's figure.
        let pieces: Vec<String> = hyps.iter().map(|h| tok.tokenize(h).expect("encodes").tokens.join(" ")).collect();
        assert!((corpus_bleu(&pieces, &refs) - 80.47501457257717).abs() > 1.0);
    }
}
