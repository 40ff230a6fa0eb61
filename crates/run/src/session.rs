//! Training sessions of a run: [`start`] a new run, [`resume`] one in its own folder, and
//! record how each session ended in run.json. The caller passes the stop flag its signal
//! handler sets and an observer for progress; nothing here prints but the settings and
//! the closing lines, through `say`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use s2s_data::{BatchPlan, Corpus};
use s2s_model::{ModelDims, TrainRngs, TranslationModel, Weights};
use s2s_trainer::{Observer, Observers, Trainer};

use crate::checkpoint::{locate, FileCheckpointer, LoadedCheckpoint, Which};
use crate::clock::utc_now;
use crate::config::{resume_changes, ExperimentConfig};
use crate::device::DeviceSpec;
use crate::error::{io, Result, RunError};
use crate::metrics_csv::{truncate_after, MetricsCsv};
use crate::report::{Renderer, ReportObserver};
use crate::run_dir::RunDir;
use crate::run_info::{DataInfo, ParameterCounts, RunInfo, Session, SlurmTask};
use crate::steps_csv::{truncate_after_step, StepsCsv};
use crate::task::TranslationTask;
use crate::translator::Translation;
use crate::view::RunViews;

/// How a training session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(Finished),
    /// Stopped on request after writing a checkpoint; the run folder.
    Interrupted(PathBuf),
}

/// A session that trained to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub dir: PathBuf,
    /// The closing summary (epochs, time, final loss, best metric, run folder).
    pub lines: Vec<String>,
    /// The report sentences' translations by the final model.
    pub translations: Vec<Translation>,
}

/// What the caller gives a session: when to stop, and who watches.
pub struct SessionHooks<'a> {
    /// Set (by a signal handler, say) to stop after the current step with a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// Told of every training event (a progress bar).
    pub progress: &'a mut dyn Observer,
    /// Where the session's few lines of text go (settings, the resume point).
    pub say: &'a mut dyn FnMut(&str),
    /// Where warnings go (a damaged checkpoint passed over).
    pub warn: &'a mut dyn FnMut(&str),
    /// Views of the run kept beside its own files (TensorBoard's event files), or
    /// [`crate::view::NoViews`].
    pub views: &'a dyn RunViews,
}

impl std::fmt::Debug for SessionHooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHooks").finish_non_exhaustive()
    }
}

/// Everything prepared before a run folder exists; failures here leave nothing behind.
#[derive(Debug)]
pub struct Prepared {
    pub cfg: ExperimentConfig,
    pub corpus: Corpus,
    pub model: Box<dyn TranslationModel>,
}

/// Loads the data and builds a new model, after checking that it fits in memory.
pub fn prepare(cfg: ExperimentConfig) -> Result<Prepared> {
    let corpus = load_corpus(&cfg)?;
    let model = build_model(&cfg, &corpus, None)?;
    Ok(Prepared { cfg, corpus, model })
}

/// Loads, tokenizes and splits the configured data on `run.threads` threads.
fn load_corpus(cfg: &ExperimentConfig) -> Result<Corpus> {
    Ok(s2s_data::load(&cfg.data, cfg.run.seed, cfg.run.thread_count())?)
}

/// The model for `corpus`, after checking that it fits in memory: its weights drawn from
/// the run's seed, or read from `resume`'s checkpoint.
fn build_model(
    cfg: &ExperimentConfig,
    corpus: &Corpus,
    resume: Option<&LoadedCheckpoint>,
) -> Result<Box<dyn TranslationModel>> {
    let threads = cfg.run.thread_count();
    let spec = DeviceSpec::parse(&cfg.run.device)?;
    let dims = ModelDims {
        src_vocab: corpus.src_vocab().len(),
        tgt_vocab: corpus.tgt_vocab().len(),
        max_length: cfg.data.max_length,
    };
    let device = spec.open(&cfg.run.device)?;
    if device.is_cpu() {
        crate::memory::check_fits(&cfg.model, &dims, true, threads)?;
    }
    let file = resume.map(LoadedCheckpoint::model_file);
    let weights = match &file {
        Some(path) => Weights::File(path),
        None => Weights::Seed(cfg.run.seed),
    };
    let mut model = s2s_model::build(&cfg.model, dims, weights, &device)?;
    model.set_threads(threads);
    Ok(model)
}

/// The settings a session prints before it trains.
pub fn describe(p: &Prepared) -> Vec<String> {
    let (c, m, t, d) = (&p.cfg, &p.cfg.model, &p.cfg.train, &p.corpus);
    let mut lines = vec![
        format!(
            "run {}: {:?} data, {} train / {} valid pairs, vocab {} → {}{}{}",
            c.run.name,
            c.data.dataset,
            d.train.len(),
            d.valid.len(),
            d.src_vocab().len(),
            d.tgt_vocab().len(),
            match (c.data.tokenizer, c.data.joint_vocab) {
                (s2s_data::TokenizerKind::Bpe, true) => " BPE pieces (joint)",
                (s2s_data::TokenizerKind::Bpe, false) => " BPE pieces",
                (s2s_data::TokenizerKind::Word, _) => "",
            },
            if d.skipped_lines > 0 { format!(", {} malformed lines skipped", d.skipped_lines) } else { String::new() }
        ),
        format!("model: {}", m.family.as_family().describe()),
        format!(
            "train: {:?} lr {}, batch {}{}, {} epochs, teacher forcing {}{}, seed {}, device {}",
            t.optimizer,
            t.learning_rate,
            t.batch_size,
            if c.data.length_bucketing { " (its tokens, bucketed by length)" } else { "" },
            t.epochs,
            c.task.teacher_forcing_ratio,
            if c.task.label_smoothing > 0.0 {
                format!(", label smoothing {}", c.task.label_smoothing)
            } else {
                String::new()
            },
            c.run.seed,
            match (c.run.device.as_str(), p.model.device().is_cpu()) {
                ("auto", true) => "auto (cpu)",
                ("auto", false) => "auto (cuda:0)",
                (d, _) => d,
            }
        ),
        format!("parameters: {} in all", p.model.params().total()),
    ];
    for (module, n) in p.model.params().counts_by_module() {
        lines.push(format!("  {module:<22} {n:>10}"));
    }
    lines
}

fn new_run_info(p: &Prepared, config: &Path, run: &RunDir) -> RunInfo {
    RunInfo {
        name: run.name(),
        status: "running".into(),
        started_at: utc_now(),
        ended_at: None,
        seed: p.cfg.run.seed,
        device: p.cfg.run.device.clone(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        config_file: config.display().to_string(),
        pid: std::process::id(),
        parameters: ParameterCounts { total: p.model.params().total(), by_module: p.model.params().counts_by_module() },
        data: DataInfo::of(&p.corpus),
        final_metrics: serde_json::Map::new(),
        error: None,
        sessions: Vec::new(),
    }
}

/// Trains a new run from `cfg` (read from `config`) in a new folder under `run.output_dir`.
pub fn start(cfg: ExperimentConfig, config: &Path, hooks: SessionHooks) -> Result<Outcome> {
    start_in(cfg, config, None, hooks)
}

/// Trains a new run in the folder `run`, which must not exist yet (a sweep's point).
pub fn start_at(cfg: ExperimentConfig, config: &Path, run: &RunDir, hooks: SessionHooks) -> Result<Outcome> {
    start_in(cfg, config, Some(run), hooks)
}

fn start_in(cfg: ExperimentConfig, config: &Path, at: Option<&RunDir>, hooks: SessionHooks) -> Result<Outcome> {
    let p = prepare(cfg)?;
    for line in describe(&p) {
        (hooks.say)(&line);
    }
    let run = match at {
        Some(run) => run.create_exact()?,
        None => RunDir::create(&p.cfg.run.output_dir, &p.cfg.run.name)?,
    };
    let _lock = run.lock()?;
    let mut info = new_run_info(&p, config, &run);
    info.sessions.push(Session {
        command: "run".into(),
        started_at: utc_now(),
        status: "running".into(),
        pid: std::process::id(),
        slurm: SlurmTask::of_this_process(),
        ..Default::default()
    });
    info.save(&run)?;
    let setup = || -> Result<()> {
        run.write_config(&p.cfg)?;
        let ck = run.checkpoints();
        std::fs::create_dir_all(&ck).map_err(io(&ck))?;
        run.write_tokenizers(&p.corpus.source, &p.corpus.target)?;
        Ok(())
    };
    let result = setup().and_then(|()| train(&p, &run, &mut info, None, hooks));
    finish(result, &run, &mut info)
}

/// Continues `run` from its newest good checkpoint until `epochs` (if given) with the
/// `--set` changes `sets`, refusing changes that do not fit the trained model.
pub fn resume(run: &RunDir, epochs: Option<usize>, sets: &[String], hooks: SessionHooks) -> Result<Outcome> {
    let old = run.read_config()?;
    let mut new = old.with_sets(sets)?;
    if let Some(e) = epochs {
        new.train.epochs = e;
    }
    new.validate()?;
    let (changes, refused) = resume_changes(&old, &new)?;
    if !refused.is_empty() {
        let list: Vec<String> = refused.iter().map(ToString::to_string).collect();
        return Err(RunError::Refused(format!(
            "cannot resume with changes that do not fit the trained model: {}",
            list.join("; ")
        )));
    }
    let _lock = run.lock()?;
    for dir in [run.path().to_path_buf(), run.checkpoints()] {
        for left in crate::run_dir::remove_leftovers(&dir)? {
            (hooks.say)(&format!("removed {}, left by a process killed while writing it", left.display()));
        }
    }
    let mut info = RunInfo::load(run)?;
    let ck = locate(run, &Which::Last)?;
    for w in &ck.skipped {
        (hooks.warn)(w);
    }
    let t = ck.state.trainer.clone();
    let dir = run.path().display();
    if t.stopped_early {
        return Err(RunError::Refused(format!("{dir} stopped early at epoch {}; nothing to resume", t.epochs_done)));
    }
    if t.epochs_done >= new.train.epochs {
        return Err(RunError::Refused(format!(
            "{dir} has already trained {} of {} epochs; pass --epochs N with N > {} to train longer",
            t.epochs_done, new.train.epochs, t.epochs_done
        )));
    }
    let corpus = load_corpus(&new)?;
    let now = DataInfo::of(&corpus);
    if !info.data.tokenizer_sha256.is_empty() && now.tokenizer_sha256 != info.data.tokenizer_sha256 {
        let from = new
            .data
            .tokenizer_path
            .as_ref()
            .map_or("learned on the train split".to_string(), |t| t.display().to_string());
        return Err(RunError::Refused(format!(
            "the tokenizer of {dir} changed since it was trained (sha256 {} now, {} then; tokenizer {from}); \
             start a new run, or point data.tokenizer_path at the run's own {}",
            short(&now.tokenizer_sha256),
            short(&info.data.tokenizer_sha256),
            run.tokenizer_files(new.data.tokenizer)[0].parent().map_or(String::new(), |d| d.display().to_string())
        )));
    }
    if now.fingerprint != info.data.fingerprint {
        return Err(RunError::Refused(format!(
            "the data of {dir} changed since it was trained (fingerprint differs); start a new run"
        )));
    }
    let model = build_model(&new, &corpus, Some(&ck))?;
    let p = Prepared { cfg: new, corpus, model };
    for line in describe(&p) {
        (hooks.say)(&line);
    }
    (hooks.say)(&format!(
        "resuming {dir} from {} (epoch {}, step {})",
        ck.name(),
        t.epochs_done + usize::from(t.batch_in_epoch > 0),
        t.steps
    ));
    truncate_after(&run.metrics_csv(), t.epochs_done)?;
    truncate_after_step(&run.steps_csv(), t.steps)?;
    run.write_config(&p.cfg)?;
    info.status = "running".into();
    info.pid = std::process::id();
    info.ended_at = None;
    info.sessions.push(Session {
        command: "resume".into(),
        started_at: utc_now(),
        status: "running".into(),
        pid: std::process::id(),
        from_epoch: t.epochs_done,
        from_step: t.steps,
        changes: changes.iter().map(ToString::to_string).collect(),
        slurm: SlurmTask::of_this_process(),
        ..Default::default()
    });
    info.save(run)?;
    let result = train(&p, run, &mut info, Some(ck), hooks);
    finish(result, run, &mut info)
}

/// What a session that trained to its end leaves for [`finish`] to print.
struct Trained {
    interrupted: bool,
    lines: Vec<String>,
    translations: Vec<Translation>,
}

/// Trains (from scratch or from `resume`) and records the final metrics in `info`.
fn train(
    p: &Prepared,
    run: &RunDir,
    info: &mut RunInfo,
    resume: Option<LoadedCheckpoint>,
    hooks: SessionHooks,
) -> Result<Trained> {
    let cfg = &p.cfg;
    let model = p.model.as_ref();
    let encode = |pairs: &[s2s_data::Pair]| s2s_data::batch::encode(pairs, p.corpus.src_vocab(), p.corpus.tgt_vocab());
    let mut trainer = Trainer::new(cfg.train.clone())?;
    let mut rngs = TrainRngs::new(cfg.run.seed);
    let resumed = resume.is_some();
    let resumed_at = resume.as_ref().map(|ck| ck.state.trainer.steps);
    if let Some(ck) = resume {
        let moments = ck.optimizer_tensors(model.device())?;
        trainer = trainer.resume_from(ck.state.trainer.clone(), moments, ck.state.optimizer_steps);
        rngs = ck.state.rngs;
    }
    trainer = trainer.stop_when(hooks.stop.clone()).threads(model.threads());
    let mut task = TranslationTask {
        model,
        train: encode(&p.corpus.train),
        valid: encode(&p.corpus.valid),
        valid_refs: p.corpus.valid.iter().map(|x| x.reference.clone()).collect(),
        target: &p.corpus.target,
        plan: BatchPlan {
            batch_size: cfg.train.batch_size,
            shuffle: cfg.data.shuffle,
            length_bucketing: cfg.data.length_bucketing,
            batch_tokens: cfg.task.batch_tokens,
            seed: cfg.run.seed,
        },
        rngs,
        config: cfg.task.clone(),
    };
    let renderer = Renderer { run, cfg, corpus: &p.corpus, model };
    let mut csv = MetricsCsv::open(&run.metrics_csv())?;
    let mut steps = StepsCsv::open(&run.steps_csv(), cfg.report.loss_every)?;
    let mut report = ReportObserver { renderer };
    let mut views = hooks.views.start(renderer, resumed_at)?;
    let mut checkpointer = FileCheckpointer { run: run.clone(), model, keep: cfg.train.keep_checkpoints };
    let start = Instant::now();
    let summary = {
        let mut observers = Observers(vec![&mut csv, &mut steps, &mut report, hooks.progress]);
        for view in &mut views {
            observers.0.push(view.as_mut());
        }
        trainer.fit(&mut task, &mut observers, &mut checkpointer)?
    };
    // A view is not the run: a problem writing it is told, and the run's own files are
    // still finished.
    for view in &mut views {
        if let Some(e) = view.error() {
            (hooks.warn)(&format!("{} are incomplete: {e}", view.name()));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let fm = &mut info.final_metrics;
    fm.insert("epochs".into(), summary.epochs_done.into());
    fm.insert("steps".into(), summary.steps.into());
    if summary.interrupted {
        // The report stays as the last end-of-epoch checkpoint left it: the model is
        // partway through an epoch, and an uninterrupted run never renders there.
        return Ok(Trained { interrupted: true, lines: Vec::new(), translations: Vec::new() });
    }
    let translations = renderer.artifacts(summary.epochs_done)?;
    fm.insert("train_loss".into(), summary.final_train_loss.into());
    let previous_wall = fm.get("wall_s").and_then(serde_json::Value::as_f64).filter(|_| resumed).unwrap_or(0.0);
    fm.insert("wall_s".into(), (previous_wall + wall).into());
    if let Some(last) = csv.history.last() {
        fm.insert("tokens_per_s".into(), last.tokens_per_s.into());
    }
    if let Some(rec) = csv.history.iter().rev().find(|r| !r.metrics.is_empty()) {
        for (k, v) in &rec.metrics {
            fm.insert(k.clone(), (*v).into());
        }
    }
    if let Some((v, epoch)) = summary.best {
        fm.insert(format!("best_{}", cfg.train.early_stopping_metric), v.into());
        fm.insert("best_epoch".into(), epoch.into());
    }
    let mut lines = vec![
        String::new(),
        format!(
            "done: {} epochs{} in {wall:.1}s, final train_loss {}",
            summary.epochs_done,
            if summary.stopped_early { " (stopped early)" } else { "" },
            crate::report::number::fmt(summary.final_train_loss)
        ),
    ];
    if let Some((v, e)) = summary.best {
        lines.push(format!("best {} {} at epoch {e}", cfg.train.early_stopping_metric, crate::report::number::fmt(v)));
    }
    lines.push(format!("run folder: {}", run.path().display()));
    lines.push(format!("open the report: {}", run.report_html().display()));
    Ok(Trained { interrupted: false, lines, translations })
}

/// Records how a session ended in run.json; a completed one then renders report.html
/// from the final folder (a failed or interrupted one leaves the last checkpoint's).
fn finish(result: Result<Trained>, run: &RunDir, info: &mut RunInfo) -> Result<Outcome> {
    let status = match &result {
        Ok(t) if t.interrupted => "interrupted",
        Ok(_) => "completed",
        Err(_) => "failed",
    };
    info.status = status.into();
    info.ended_at = Some(utc_now());
    info.error = result.as_ref().err().map(ToString::to_string);
    if let Some(s) = info.sessions.last_mut() {
        s.status = status.into();
        s.ended_at = info.ended_at.clone();
        s.to_epoch = info.final_metrics.get("epochs").and_then(serde_json::Value::as_u64).map(|e| e as usize);
    }
    let saved = info.save(run);
    let trained = result?;
    saved?;
    if trained.interrupted {
        return Ok(Outcome::Interrupted(run.path().to_path_buf()));
    }
    if let Err(e) = crate::report::page::write_report(run) {
        info.status = "failed".into();
        info.error = Some(e.to_string());
        if let Some(s) = info.sessions.last_mut() {
            s.status = "failed".into();
        }
        info.save(run)?;
        return Err(e);
    }
    let Trained { lines, translations, .. } = trained;
    Ok(Outcome::Completed(Finished { dir: run.path().to_path_buf(), lines, translations }))
}

/// The first 12 hex digits of each hash, joined.
fn short(hashes: &[String]) -> String {
    hashes.iter().map(|h| h.get(..12).unwrap_or(h)).collect::<Vec<_>>().join("/")
}
