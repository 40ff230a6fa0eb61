//! The `[report]` section of an experiment config.

use serde::{Deserialize, Serialize};

use crate::colormap::Colormap;

/// Which attention heatmaps a subword run draws (`report.attention_view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionView {
    /// Over subword pieces, as the model attends.
    Subword,
    /// Merged into words: a source word's pieces summed, a target word's pieces averaged.
    Word,
    /// Both: `<sentence>.svg` over pieces and `<sentence>.words.svg` over words.
    #[default]
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Source sentences to translate and draw attention for; empty = the first
    /// `max_sentences` training sentences.
    pub sentences: Vec<String>,
    /// How many training sentences to report when `sentences` is empty.
    pub max_sentences: usize,
    /// Heatmap colors: "bone" (matplotlib's, the notebook's) or "ylorrd" (seaborn's YlOrRd).
    pub colormap: Colormap,
    /// Keep each checkpoint's heatmaps under `attention/epoch-<N>/` to watch attention form.
    pub track_attention: bool,
    /// Print the weights in the heatmap cells (for sentences of up to 12 tokens).
    pub annotate: bool,
    /// With subwords: "subword", "word" (pieces merged into words) or "both". Word-level
    /// runs draw their one view.
    pub attention_view: AttentionView,
    /// Log the mean training loss every this many optimizer steps to steps.csv (0 = off);
    /// the loss chart is drawn by step when that gives more points than the epochs.
    pub loss_every: usize,
    /// Also write TensorBoard event files under tensorboard/ (`tensorboard --logdir experiments`).
    pub tensorboard: bool,
    /// Config keys shown as hyperparameters in TensorBoard's HPARAMS tab (`s2s sweep` sets
    /// the keys it varies); empty = a few common ones.
    pub hparams: Vec<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            sentences: Vec::new(),
            max_sentences: 5,
            colormap: Colormap::Bone,
            track_attention: false,
            annotate: true,
            attention_view: AttentionView::Both,
            loss_every: 10,
            tensorboard: true,
            hparams: Vec::new(),
        }
    }
}
