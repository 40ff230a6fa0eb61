//! The `[report]` section of an experiment config.

use serde::{Deserialize, Serialize};

use crate::colormap::Colormap;

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
    /// Keep each checkpoint's heatmaps under attention/epoch-<N>/ to watch attention form.
    pub track_attention: bool,
    /// Print the weights in the heatmap cells (for sentences of up to 12 tokens).
    pub annotate: bool,
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
            tensorboard: true,
            hparams: Vec::new(),
        }
    }
}
