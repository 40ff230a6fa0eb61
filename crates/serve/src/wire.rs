//! The JSON the API reads and writes (the page reads the same).

use serde::{Deserialize, Serialize};

/// `POST /api/translate`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateRequest {
    /// The run's name, as `GET /api/runs` lists it.
    pub run: String,
    /// `best` (the default), `last`, `average` or `step-<N>`.
    #[serde(default = "best")]
    pub checkpoint: String,
    pub sentences: Vec<String>,
    /// 1 (the default) decodes greedily; more is beam search of that width.
    #[serde(default = "one")]
    pub beam: usize,
    /// Hypotheses per sentence (beam search only; at most `beam`).
    #[serde(default = "one")]
    pub n_best: usize,
    /// Also every layer's and head's map, for families that have several.
    #[serde(default)]
    pub heads: bool,
}

fn best() -> String {
    "best".into()
}
fn one() -> usize {
    1
}

/// One heatmap: source labels (x), output labels (y), one row of weights per output.
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub source: Vec<String>,
    pub output: Vec<String>,
    pub weights: Vec<Vec<f32>>,
}

impl From<s2s_run::translator::AttentionGrid> for Grid {
    fn from(g: s2s_run::translator::AttentionGrid) -> Self {
        Self { source: g.source, output: g.output, weights: g.weights }
    }
}

/// One attention map over subword tokens and merged into words.
#[derive(Debug, Clone, Serialize)]
pub struct Maps {
    /// What it shows: "attention", "layer 2, mean over heads", "layer 0, head 3".
    pub label: String,
    pub tokens: Grid,
    pub words: Grid,
}

/// A Transformer's cross-attention, layer by layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerMaps {
    pub mean: Maps,
    pub heads: Vec<Maps>,
}

/// One hypothesis of one sentence.
#[derive(Debug, Clone, Serialize)]
pub struct Hypothesis {
    pub text: String,
    /// Output tokens (subword pieces or words), without EOS.
    pub output: Vec<String>,
    pub log_prob: f32,
    /// `log_prob / steps^length_penalty`, what beam search ranks by.
    pub score: f32,
    /// The map the model decodes with (a Transformer's: its last layer's mean over heads).
    pub attention: Maps,
    /// Every layer's maps (`heads: true`, families with several heads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerMaps>>,
}

/// One sentence's translation(s), best first.
#[derive(Debug, Clone, Serialize)]
pub struct Sentence {
    pub source: String,
    pub tokens: Vec<String>,
    /// Tokens fed as unknown.
    pub unknown: Vec<String>,
    pub hypotheses: Vec<Hypothesis>,
}

/// `POST /api/translate`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct TranslateResponse {
    pub run: String,
    /// The checkpoint folder opened (`best`, `step-00000120`) and its training step.
    pub checkpoint: String,
    pub step: usize,
    pub family: String,
    pub beam: usize,
    pub translations: Vec<Sentence>,
    pub decode_ms: f64,
}

/// One row of `GET /api/runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunItem {
    pub name: String,
    /// completed | running | interrupted | failed | stale | damaged | unknown
    pub status: String,
    pub running: bool,
    pub model: Option<String>,
    pub family: Option<String>,
    pub epochs: usize,
    pub best_valid_bleu: Option<f64>,
    pub best_valid_loss: Option<f64>,
    pub started_at: Option<String>,
    pub age: String,
    pub problem: Option<String>,
    pub checkpoints: Vec<String>,
}

/// One row of the report's translations.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub source: Option<String>,
    pub reference: Option<String>,
    pub translation: Option<String>,
}

/// `GET /api/runs/{name}`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub item: RunItem,
    /// Headline results (`s2s compare`'s columns).
    pub results: serde_json::Map<String, serde_json::Value>,
    /// metrics.csv by column: `[[epoch, value], ...]`.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// The resolved config.toml.
    pub config: Option<String>,
    pub translations: Vec<ReportRow>,
    /// run.json as written.
    pub info: Option<serde_json::Value>,
}
