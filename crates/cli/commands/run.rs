//! `s2s run CONFIG`: train a model and write a run folder. The training session itself
//! is shared with `s2s resume`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use anyhow::{Context, Result};
use s2s_data::BatchPlan;
use s2s_model::{ModelDims, Seq2Seq, TrainRngs};
use s2s_trainer::Trainer;

use crate::artifacts::{write_loss_curve, write_translations};
use crate::checkpoint::{checkpoints_dir, LoadedCheckpoint, RunCheckpointer};
use crate::config::ExperimentConfig;
use crate::device::DeviceSpec;
use crate::observer::RunObserver;
use crate::run_dir::{create_run_dir, utc_now, DataInfo, ParameterCounts, RunInfo, RunLock, Session};
use crate::task::TranslationTask;

/// How a training session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(PathBuf),
    /// Stopped by Ctrl-C / SIGTERM after writing a checkpoint.
    Interrupted(PathBuf),
}

/// Set by the first Ctrl-C or SIGTERM; see `install_signal_handler`. The trainer watches it.
pub static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// First Ctrl-C / SIGTERM: finish the step, checkpoint, exit 130. Second: exit at once.
pub fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step to write a checkpoint (Ctrl-C again to quit at once)");
    });
}

/// Everything prepared before a run folder exists; failures here leave nothing behind.
#[derive(Debug)]
pub struct Prepared {
    pub cfg: ExperimentConfig,
    pub corpus: s2s_data::Corpus,
    pub model: Seq2Seq,
}

/// The number of threads `run.threads` asks for (0 = all cores). s2s splits the rows of
/// training batches and of batched decoding between them itself; candle's own kernels stay
/// on one thread each (RAYON_NUM_THREADS, CANDLE_NUM_THREADS), where splitting these small
/// products cost more than it gained (see BENCHMARKS.md).
pub fn set_threads(threads: usize) -> usize {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }
}

pub fn prepare(cfg: ExperimentConfig) -> Result<Prepared> {
    let threads = set_threads(cfg.run.threads);
    let device = DeviceSpec::parse(&cfg.run.device)?.open(&cfg.run.device)?;
    let corpus = s2s_data::load(&cfg.data, cfg.run.seed)?;
    let dims = ModelDims {
        src_vocab: corpus.src_vocab.len(),
        tgt_vocab: corpus.tgt_vocab.len(),
        max_length: cfg.data.max_length,
    };
    let mut model = Seq2Seq::new(&cfg.model, dims, cfg.run.seed, &device)?;
    model.set_threads(threads);
    Ok(Prepared { cfg, corpus, model })
}

pub fn execute(config: &Path, sets: &[String]) -> Result<Outcome> {
    let cfg = ExperimentConfig::load(config, sets)?;
    let p = prepare(cfg)?;
    print_settings(&p);
    let run_dir = create_run_dir(&p.cfg.run.output_dir, &p.cfg.run.name)?;
    let _lock = RunLock::acquire(&run_dir)?;
    let mut info = new_run_info(&p, config, &run_dir);
    info.sessions.push(Session {
        command: "run".into(),
        started_at: utc_now(),
        status: "running".into(),
        pid: std::process::id(),
        ..Default::default()
    });
    info.save(&run_dir)?;
    let setup = || -> Result<()> {
        std::fs::write(run_dir.join("config.toml"), p.cfg.to_toml()).context("cannot write config.toml")?;
        let ck = checkpoints_dir(&run_dir);
        std::fs::create_dir_all(&ck)?;
        p.corpus.src_vocab.save(&ck.join("src_vocab.json"))?;
        p.corpus.tgt_vocab.save(&ck.join("tgt_vocab.json"))?;
        Ok(())
    };
    let result = setup().and_then(|()| train_session(&p, &run_dir, &mut info, None));
    finish(result, &run_dir, &mut info)
}

/// Records how a session ended in run.json.
pub fn finish(result: Result<bool>, run_dir: &Path, info: &mut RunInfo) -> Result<Outcome> {
    let status = match &result {
        Ok(true) => "interrupted",
        Ok(false) => "completed",
        Err(_) => "failed",
    };
    info.status = status.into();
    info.ended_at = Some(utc_now());
    info.error = result.as_ref().err().map(|e| format!("{e:#}"));
    if let Some(s) = info.sessions.last_mut() {
        s.status = status.into();
        s.ended_at = info.ended_at.clone();
        s.to_epoch = info.final_metrics.get("epochs").and_then(serde_json::Value::as_u64).map(|e| e as usize);
    }
    let saved = info.save(run_dir);
    match result {
        Ok(true) => {
            saved?;
            eprintln!("interrupted: checkpoint written; continue with `s2s resume {}`", run_dir.display());
            Ok(Outcome::Interrupted(run_dir.to_path_buf()))
        }
        Ok(false) => saved.map(|()| Outcome::Completed(run_dir.to_path_buf())),
        Err(e) => Err(e),
    }
}

pub fn new_run_info(p: &Prepared, config: &Path, run_dir: &Path) -> RunInfo {
    let c = &p.corpus;
    RunInfo {
        name: run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        status: "running".into(),
        started_at: utc_now(),
        ended_at: None,
        seed: p.cfg.run.seed,
        device: p.cfg.run.device.clone(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        config_file: config.display().to_string(),
        pid: std::process::id(),
        parameters: ParameterCounts { total: p.model.params().total(), by_module: p.model.params().counts_by_module() },
        data: data_info(c),
        final_metrics: serde_json::Map::new(),
        error: None,
        sessions: Vec::new(),
    }
}

pub fn data_info(c: &s2s_data::Corpus) -> DataInfo {
    DataInfo {
        fingerprint: c.fingerprint.sha256.clone(),
        files: c.fingerprint.files.iter().map(|f| (f.path.display().to_string(), f.sha256.clone())).collect(),
        train_pairs: c.train.len(),
        valid_pairs: c.valid.len(),
        test_pairs: c.test.len(),
        src_vocab: c.src_vocab.len(),
        tgt_vocab: c.tgt_vocab.len(),
        skipped_lines: c.skipped_lines,
        filtered_pairs: c.filtered_pairs,
    }
}

pub fn print_settings(p: &Prepared) {
    let (c, m, t, d) = (&p.cfg, &p.cfg.model, &p.cfg.train, &p.corpus);
    println!(
        "run {}: {:?} data, {} train / {} valid pairs, vocab {} → {}{}",
        c.run.name,
        c.data.dataset,
        d.train.len(),
        d.valid.len(),
        d.src_vocab.len(),
        d.tgt_vocab.len(),
        if d.skipped_lines > 0 { format!(", {} malformed lines skipped", d.skipped_lines) } else { String::new() }
    );
    println!(
        "model: {:?} attention, hidden {}, embedding {}, {} encoder layer(s){}, dropout {}",
        m.attention,
        m.hidden_size,
        m.embedding_dim(),
        m.encoder_layers,
        if m.bidirectional { " bidirectional" } else { "" },
        m.dropout
    );
    println!(
        "train: {:?} lr {}, batch {}, {} epochs, teacher forcing {}, seed {}, device {}",
        t.optimizer, t.learning_rate, t.batch_size, t.epochs, t.teacher_forcing_ratio, c.run.seed, c.run.device
    );
    println!("parameters: {} in all", p.model.params().total());
    for (module, n) in p.model.params().counts_by_module() {
        println!("  {module:<22} {n:>10}");
    }
}

/// Trains (from scratch or from `resume`), then writes the report files and final
/// metrics. Returns whether the session was interrupted.
pub fn train_session(
    p: &Prepared,
    run_dir: &Path,
    info: &mut RunInfo,
    resume: Option<LoadedCheckpoint>,
) -> Result<bool> {
    let cfg = &p.cfg;
    let encode = |pairs: &[s2s_data::Pair]| s2s_data::batch::encode(pairs, &p.corpus.src_vocab, &p.corpus.tgt_vocab);
    let mut trainer = Trainer::new(cfg.train.clone())?;
    let mut rngs = TrainRngs::new(cfg.run.seed);
    if let Some(ck) = &resume {
        ck.load_model(&p.model)?;
        let moments = ck.optimizer_tensors(p.model.device())?;
        trainer = trainer.resume_from(ck.state.trainer.clone(), moments, ck.state.optimizer_steps);
        if let Some(r) = &ck.state.rngs {
            rngs = r.clone();
        }
    }
    trainer = trainer.stop_when(STOP.clone()).threads(p.model.threads());
    let mut task = TranslationTask {
        model: &p.model,
        train: encode(&p.corpus.train),
        valid: encode(&p.corpus.valid),
        valid_refs: p.corpus.valid.iter().map(|x| x.tgt.join(" ")).collect(),
        tgt_vocab: &p.corpus.tgt_vocab,
        plan: BatchPlan {
            batch_size: cfg.train.batch_size,
            shuffle: cfg.data.shuffle,
            length_bucketing: cfg.data.length_bucketing,
            seed: cfg.run.seed,
        },
        rngs,
        teacher_forcing_ratio: cfg.train.teacher_forcing_ratio,
    };
    let mut observer = RunObserver::new(&run_dir.join("metrics.csv"), cfg.train.epochs)?;
    let refresh = |state: &s2s_trainer::TrainerState| -> Result<()> {
        write_loss_curve(run_dir, &format!("{}: loss", cfg.run.name))?;
        write_translations(run_dir, cfg, &p.corpus, &p.model)?;
        if cfg.report.track_attention {
            snapshot_attention(run_dir, state.epochs_done)?;
        }
        crate::report_html::write_report(run_dir)
    };
    let mut checkpointer = RunCheckpointer {
        run_dir: run_dir.to_path_buf(),
        model: &p.model,
        keep: cfg.train.keep_checkpoints,
        refresh: Some(Box::new(refresh)),
    };
    let start = Instant::now();
    let summary = trainer.fit(&mut task, &mut observer, &mut checkpointer)?;
    let wall = start.elapsed().as_secs_f64();
    if summary.interrupted {
        let fm = &mut info.final_metrics;
        fm.insert("epochs".into(), summary.epochs_done.into());
        fm.insert("steps".into(), summary.steps.into());
        return Ok(true);
    }

    write_loss_curve(run_dir, &format!("{}: loss", cfg.run.name))?;
    let translations = write_translations(run_dir, cfg, &p.corpus, &p.model)?;
    if cfg.report.track_attention {
        snapshot_attention(run_dir, summary.epochs_done)?;
    }

    let fm = &mut info.final_metrics;
    fm.insert("epochs".into(), summary.epochs_done.into());
    fm.insert("steps".into(), summary.steps.into());
    fm.insert("train_loss".into(), summary.final_train_loss.into());
    let previous_wall =
        fm.get("wall_s").and_then(serde_json::Value::as_f64).filter(|_| resume.is_some()).unwrap_or(0.0);
    fm.insert("wall_s".into(), (previous_wall + wall).into());
    if let Some(last) = observer.history.last() {
        fm.insert("tokens_per_s".into(), last.tokens_per_s.into());
    }
    if let Some(rec) = observer.history.iter().rev().find(|r| !r.metrics.is_empty()) {
        for (k, v) in &rec.metrics {
            fm.insert(k.clone(), (*v).into());
        }
    }
    if let Some((v, epoch)) = summary.best {
        fm.insert(format!("best_{}", cfg.train.early_stopping_metric), v.into());
        fm.insert("best_epoch".into(), epoch.into());
    }

    info.status = "completed".into();
    info.save(run_dir)?;
    crate::report_html::write_report(run_dir)?;
    println!();
    println!(
        "done: {} epochs{} in {:.1}s, final train_loss {:.4}",
        summary.epochs_done,
        if summary.stopped_early { " (stopped early)" } else { "" },
        wall,
        summary.final_train_loss
    );
    if let Some((v, e)) = summary.best {
        println!("best {} {v:.4} at epoch {e}", cfg.train.early_stopping_metric);
    }
    println!("run folder: {}", run_dir.display());
    for t in &translations {
        println!("  {}  →  {}", t.source, t.output.join(" "));
    }
    Ok(false)
}

/// Copies the current heatmaps to `attention/epoch-<N>/` (report.track_attention).
fn snapshot_attention(run_dir: &Path, epoch: usize) -> Result<()> {
    let att = run_dir.join("attention");
    let dest = att.join(format!("epoch-{epoch:04}"));
    std::fs::create_dir_all(&dest)?;
    for e in std::fs::read_dir(&att)?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "svg") {
            if let Some(name) = p.file_name() {
                std::fs::copy(&p, dest.join(name))?;
            }
        }
    }
    Ok(())
}
