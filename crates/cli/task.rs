//! Translation as a [`TrainStep`]: the bridge between the model and the trainer.

use candle_core::{Tensor, Var};
use s2s_data::batch::sequential;
use s2s_data::{Batch, BatchPlan, Example};
use s2s_model::{Mode, Seq2Seq, TrainRngs};
use s2s_trainer::{TrainError, TrainStep};

use s2s_report::metric::{corpus_bleu, corpus_chrf};

/// Sentences decoded per batch during validation.
pub const EVAL_BATCH: usize = 64;

#[derive(Debug)]
pub struct TranslationTask<'a> {
    pub model: &'a Seq2Seq,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    /// Reference translations of `valid`, as words, for BLEU and chrF.
    pub valid_refs: Vec<String>,
    pub tgt_vocab: &'a s2s_data::Vocab,
    pub plan: BatchPlan,
    pub rngs: TrainRngs,
    pub teacher_forcing_ratio: f64,
}

/// Validation figures of a model on some examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub loss: f64,
    pub ppl: f64,
    pub bleu: f64,
    pub chrf: f64,
    /// Share of greedy translations equal to their reference.
    pub exact_match: f64,
    /// For tasks with a known alignment: share of output words whose attention argmax
    /// is the aligned source word.
    pub alignment: Option<f64>,
    pub hypotheses: Vec<String>,
}

/// The source position output word `i` should attend to, for tasks that know it.
pub type Alignment = fn(i: usize, src_words: usize) -> usize;

/// Loss (teacher forcing, no dropout), perplexity, and BLEU / chrF / exact match of
/// greedy translations.
pub fn score(
    model: &Seq2Seq,
    examples: &[Example],
    refs: &[String],
    tgt_vocab: &s2s_data::Vocab,
    alignment: Option<Alignment>,
) -> Result<Scores, s2s_model::ModelError> {
    let (mut sum, mut tokens) = (0f64, 0usize);
    let mut hyps = Vec::with_capacity(examples.len());
    let (mut aligned, mut counted) = (0usize, 0usize);
    for b in sequential(examples, EVAL_BATCH) {
        let l = f64::from(model.loss(&b, Mode::Eval)?.to_scalar::<f32>()?);
        sum += l * b.target_tokens() as f64;
        tokens += b.target_tokens();
        let sources: Vec<Vec<u32>> = b.indices.iter().map(|&i| examples[i].src.clone()).collect();
        for (h, src) in model.greedy(&sources)?.into_iter().zip(&sources) {
            if let Some(align) = alignment {
                let words = src.len() - 1;
                for (i, row) in h.attention.iter().enumerate().take(h.ids.len().min(words)) {
                    let arg = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |x| x.0);
                    aligned += usize::from(arg == align(i, words));
                    counted += 1;
                }
            }
            hyps.push(tgt_vocab.decode(&h.ids).join(" "));
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
        hypotheses: hyps,
    })
}

impl TrainStep for TranslationTask<'_> {
    type Batch = Batch;

    fn parameters(&self) -> Vec<(String, Var)> {
        self.model.params().vars()
    }

    fn epoch_batches(&mut self, epoch: usize) -> s2s_trainer::Result<Vec<Batch>> {
        Ok(self.plan.epoch(&self.train, epoch))
    }

    fn batch_weight(&self, batch: &Batch) -> usize {
        batch.target_tokens()
    }

    fn loss(&mut self, batch: &Batch) -> s2s_trainer::Result<Tensor> {
        let mode = Mode::Train { rngs: &mut self.rngs, teacher_forcing_ratio: self.teacher_forcing_ratio };
        self.model.loss(batch, mode).map_err(TrainError::task)
    }

    fn loss_and_grads(&mut self, batch: &Batch) -> s2s_trainer::Result<(f64, candle_core::backprop::GradStore)> {
        let mode = Mode::Train { rngs: &mut self.rngs, teacher_forcing_ratio: self.teacher_forcing_ratio };
        self.model.loss_and_grads(batch, mode).map_err(TrainError::task)
    }

    fn validate(&mut self) -> s2s_trainer::Result<Vec<(String, f64)>> {
        if self.valid.is_empty() {
            return Ok(Vec::new());
        }
        let s = score(self.model, &self.valid, &self.valid_refs, self.tgt_vocab, None).map_err(TrainError::task)?;
        Ok(vec![
            ("valid_loss".into(), s.loss),
            ("valid_ppl".into(), s.ppl),
            ("valid_bleu".into(), s.bleu),
            ("valid_chrf".into(), s.chrf),
        ])
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&self.rngs).unwrap_or(serde_json::Value::Null)
    }
}
