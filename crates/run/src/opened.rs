//! A trained run opened for use: its config, vocabularies and one checkpoint's weights,
//! ready to translate text.

use std::path::Path;

use s2s_data::Tokenizer;
use s2s_model::{ModelDims, TranslationModel, Weights};

use crate::checkpoint::{locate_for_use, LoadedCheckpoint, Which};
use crate::config::ExperimentConfig;
use crate::device::DeviceSpec;
use crate::error::Result;
use crate::run_dir::RunDir;
use crate::translator::{translate, translate_greedy, translate_n_best, Translation};

#[derive(Debug)]
pub struct OpenedRun {
    pub dir: RunDir,
    pub cfg: ExperimentConfig,
    pub source: Tokenizer,
    pub target: Tokenizer,
    pub model: Box<dyn TranslationModel>,
    pub checkpoint: LoadedCheckpoint,
}

/// Decoding settings to use instead of the run's `model.beam_size` / `model.length_penalty`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecodingChoice {
    pub beam_size: Option<usize>,
    pub length_penalty: Option<f64>,
}

impl OpenedRun {
    /// Opens `dir` with checkpoint `which`; `Best` falls back to the newest checkpoint
    /// when the run never validated.
    pub fn open(dir: &Path, which: &Which) -> Result<Self> {
        Self::open_decoding(dir, which, &DecodingChoice::default())
    }

    /// [`Self::open`] with the run's decoding settings replaced where `choice` gives one.
    pub fn open_decoding(dir: &Path, which: &Which, choice: &DecodingChoice) -> Result<Self> {
        let dir = RunDir::at(dir);
        let mut cfg = dir.read_config()?;
        if let Some(beam) = choice.beam_size {
            cfg.model.decoding.beam_size = beam;
        }
        if let Some(lp) = choice.length_penalty {
            cfg.model.decoding.length_penalty = lp;
        }
        cfg.model.validate()?;
        let (source, target) = dir.read_tokenizers(&cfg.data)?;
        let (src_vocab, tgt_vocab) = (source.vocab(), target.vocab());
        let checkpoint = locate_for_use(&dir, which)?;
        let threads = cfg.run.thread_count();
        let device = DeviceSpec::parse(&cfg.run.device)?.open(&cfg.run.device)?;
        let dims =
            ModelDims { src_vocab: src_vocab.len(), tgt_vocab: tgt_vocab.len(), max_length: cfg.data.max_length };
        if device.is_cpu() {
            crate::memory::check_fits(&cfg.model, &dims, false, threads)?;
        }
        let file = checkpoint.model_file();
        let mut model = s2s_model::build(&cfg.model, dims, Weights::File(&file), &device)?;
        model.set_threads(threads);
        // Opened to translate, never to train.
        model.freeze()?;
        Ok(Self { dir, cfg, source, target, model, checkpoint })
    }

    /// Translates raw sentences with the run's tokenizers and configured decoding.
    pub fn translate(&self, texts: &[String]) -> Result<Vec<Translation>> {
        translate(self.model.as_ref(), &self.source, &self.target, texts)
    }

    /// Greedy translations, whatever beam size the run was configured with.
    pub fn translate_greedy(&self, texts: &[String]) -> Result<Vec<Translation>> {
        translate_greedy(self.model.as_ref(), &self.source, &self.target, texts)
    }

    /// The `n_best` hypotheses of beam search with width `beam` for one sentence.
    pub fn translate_n_best(&self, text: &str, beam: usize, n_best: usize) -> Result<Vec<Translation>> {
        Ok(self.translate_n_best_all(std::slice::from_ref(&text.to_string()), beam, n_best)?.remove(0))
    }

    /// [`Self::translate_n_best`] for many sentences, decoded together (a batch).
    pub fn translate_n_best_all(&self, texts: &[String], beam: usize, n_best: usize) -> Result<Vec<Vec<Translation>>> {
        translate_n_best(self.model.as_ref(), &self.source, &self.target, texts, beam, n_best)
    }
}
