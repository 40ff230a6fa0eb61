//! The JSON API: `GET /api/runs`, `GET /api/runs/{name}`, `POST /api/translate`. Reading
//! run folders and decoding run on tokio's blocking threads, never on the async ones.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use s2s_run::roots::{checkpoint_by_name, kept_checkpoints};
use s2s_run::{RunDir, RunSummary, Translation};

use crate::error::ApiError;
use crate::wire::{
    Grid, Hypothesis, LayerMaps, Maps, ReportRow, RunDetail, RunItem, Sentence, TranslateRequest, TranslateResponse,
};
use crate::AppState;

/// Runs `f` on a blocking thread; a task that panicked is a 500 naming it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(e.to_string()))?
}

fn item(name: String, s: &RunSummary) -> RunItem {
    let cfg = s.config();
    RunItem {
        running: s.status == "running",
        status: s.status.clone(),
        model: cfg.as_ref().map(|c| c.model.family.as_family().describe()),
        family: cfg.as_ref().map(|c| c.model.architecture().name().to_string()),
        epochs: s.epochs,
        best_valid_bleu: s.best_of("valid_bleu"),
        best_valid_loss: s.best_of("valid_loss"),
        started_at: s.info.as_ref().map(|i| i.started_at.clone()),
        age: s.info.as_ref().map_or_else(String::new, |i| s2s_run::clock::age(&i.started_at)),
        problem: s.problem.clone(),
        checkpoints: kept_checkpoints(&s.dir),
        name,
    }
}

/// `GET /api/runs`: every run served.
pub async fn runs(State(state): State<Arc<AppState>>) -> Result<Json<Vec<RunItem>>, ApiError> {
    blocking(move || Ok(state.roots.runs().into_iter().map(|(n, s)| item(n, &s)).collect())).await.map(Json)
}

/// `GET /api/runs/{name}`: one run's summary, metrics, config and report translations.
pub async fn run(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Json<RunDetail>, ApiError> {
    blocking(move || {
        let path = state.roots.resolve(&name)?;
        let s = RunSummary::load(&path).ok_or_else(|| ApiError::NotFound(format!("{name} is not a run folder")))?;
        let results = s.results().into_iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
        let metrics = s
            .metrics
            .iter()
            .map(|(k, points)| {
                let pts: Vec<[f64; 2]> = points.iter().filter(|p| p.1.is_finite()).map(|p| [p.0, p.1]).collect();
                (k.clone(), serde_json::json!(pts))
            })
            .collect();
        let config = read_inside(&path, &s.dir.config_toml());
        let translations = read_inside(&path, &s.dir.translations_txt())
            .map(|t| {
                s2s_run::report::page::translation_rows(&t)
                    .into_iter()
                    .map(|mut r| {
                        let mut take = |i: usize| r.get_mut(i).and_then(Option::take);
                        ReportRow { source: take(0), reference: take(1), translation: take(2) }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let info = read_inside(&path, &s.dir.run_json()).and_then(|t| serde_json::from_str(&t).ok());
        Ok(RunDetail { item: item(name, &s), results, metrics, config, translations, info })
    })
    .await
    .map(Json)
}

/// A run's text file, unless it is missing or a symlink that leads out of the run folder
/// (`run` is canonical): its text is sent as it is, so it must be the run's own.
fn read_inside(run: &std::path::Path, file: &std::path::Path) -> Option<String> {
    let real = file.canonicalize().ok()?;
    real.starts_with(run).then(|| std::fs::read_to_string(&real).ok()).flatten()
}

/// Any other path under `/api`, or any other page.
pub async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such page or API route (the API has GET /api/runs, GET /api/runs/{name}, POST /api/translate)".into(),
    )
}

/// `POST /api/translate`.
pub async fn translate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TranslateResponse>, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the request body is over {} bytes", state.limits.body_bytes))
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })?;
    let req: TranslateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a translate request: {e}")))?;
    state.limits.check(&req.sentences, req.beam, req.n_best)?;
    blocking(move || decode(&state, req)).await.map(Json)
}

fn decode(state: &AppState, req: TranslateRequest) -> Result<TranslateResponse, ApiError> {
    let path = state.roots.resolve(&req.run)?;
    let which = checkpoint_by_name(&RunDir::at(&path), &req.checkpoint)?;
    let opened = state.models.get(&path, &req.checkpoint, &which)?;
    let model = opened.model.as_ref();
    let start = Instant::now();
    let groups: Vec<Vec<Translation>> = if req.beam <= 1 {
        opened.translate_greedy(&req.sentences)?.into_iter().map(|t| vec![t]).collect()
    } else {
        opened.translate_n_best_all(&req.sentences, req.beam, req.n_best)?
    };
    let penalty = if req.beam <= 1 { 0.0 } else { model.decoding().length_penalty as f32 };
    let mut translations = Vec::with_capacity(groups.len());
    for group in groups {
        let Some(first) = group.first() else { continue };
        let (source, tokens, unknown) = (first.source.clone(), first.tokens.clone(), first.unknown.clone());
        let mut hypotheses = Vec::with_capacity(group.len());
        for t in group {
            let t = if req.heads { t.with_heads(model)? } else { t };
            hypotheses.push(hypothesis(&t, penalty)?);
        }
        translations.push(Sentence { source, tokens, unknown, hypotheses });
    }
    let decode_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(TranslateResponse {
        run: req.run,
        checkpoint: opened.checkpoint.name(),
        step: opened.checkpoint.state.trainer.steps,
        family: opened.cfg.model.architecture().name().to_string(),
        beam: req.beam,
        translations,
        decode_ms,
    })
}

fn maps(label: String, t: &Translation) -> Maps {
    Maps { label, tokens: Grid::from(t.grid()), words: Grid::from(t.word_grid()) }
}

fn hypothesis(t: &Translation, penalty: f32) -> Result<Hypothesis, ApiError> {
    let steps = t.attention.len().max(1) as f32;
    let layers = match &t.heads {
        None => None,
        Some(heads) => {
            let mut layers = Vec::with_capacity(heads.len());
            for (l, layer) in heads.iter().enumerate() {
                let pick = |h: Option<usize>| t.select_head(Some(l), h).map_err(ApiError::BadRequest);
                let mean = maps(format!("layer {l}, mean over heads"), &pick(None)?);
                let heads = (0..layer.len())
                    .map(|h| Ok(maps(format!("layer {l}, head {h}"), &pick(Some(h))?)))
                    .collect::<Result<_, ApiError>>()?;
                layers.push(LayerMaps { mean, heads });
            }
            Some(layers)
        }
    };
    // Without `heads`, a Transformer's map is also its last layer's mean over heads.
    let label = if t.heads.is_some() { "last layer, mean over heads" } else { "attention" }.to_string();
    Ok(Hypothesis {
        text: t.text.clone(),
        output: t.output.clone(),
        log_prob: t.log_prob,
        score: t.log_prob / steps.powf(penalty),
        attention: maps(label, t),
        layers,
    })
}
