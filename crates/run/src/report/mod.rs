//! The run's files for people: charts, heatmaps, translations and report.html, rendered
//! by [`Renderer`] (at checkpoints through [`crate::report::ReportObserver`], and once
//! when a session ends).

pub mod artifacts;
pub mod number;
mod observer;
pub mod page;
mod story;

use s2s_data::Corpus;
use s2s_model::TranslationModel;

use crate::config::ExperimentConfig;
use crate::error::Result;
use crate::run_dir::RunDir;
use crate::translator::Translation;
pub use observer::ReportObserver;

/// Everything needed to render a run's report files from its current model.
#[derive(Debug, Clone, Copy)]
pub struct Renderer<'a> {
    pub run: &'a RunDir,
    pub cfg: &'a ExperimentConfig,
    pub corpus: &'a Corpus,
    pub model: &'a dyn TranslationModel,
}

impl Renderer<'_> {
    /// Redraws loss.svg, the heatmaps and translations.txt, keeping the heatmaps of
    /// `epoch` with `report.track_attention`. Returns the translations.
    pub fn artifacts(&self, epoch: usize) -> Result<Vec<Translation>> {
        artifacts::write_loss_curve(self.run, &format!("{}: loss", self.cfg.run.name))?;
        let translations = artifacts::write_translations(self.run, self.cfg, self.corpus, self.model)?;
        if self.cfg.report.track_attention {
            artifacts::snapshot_attention(self.run, epoch)?;
        }
        Ok(translations)
    }

    /// [`Self::artifacts`], then report.html from the folder.
    pub fn render(&self, epoch: usize) -> Result<Vec<Translation>> {
        let translations = self.artifacts(epoch)?;
        page::write_report(self.run)?;
        Ok(translations)
    }
}
