//! `s2s run CONFIG`: train a model and write a run folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use s2s_data::BatchPlan;
use s2s_model::{ModelDims, Seq2Seq, TrainRngs};
use s2s_trainer::Trainer;

use crate::artifacts::{write_loss_curve, write_translations};
use crate::checkpoint::{checkpoints_dir, RunCheckpointer};
use crate::config::ExperimentConfig;
use crate::device::DeviceSpec;
use crate::observer::RunObserver;
use crate::run_dir::{create_run_dir, utc_now, DataInfo, ParameterCounts, RunInfo};
use crate::task::TranslationTask;

/// Everything prepared before a run folder exists; failures here leave nothing behind.
pub struct Prepared {
    pub cfg: ExperimentConfig,
    pub corpus: s2s_data::Corpus,
    pub model: Seq2Seq,
}

/// Sets how many threads candle uses; it reads RAYON_NUM_THREADS before each kernel.
pub fn set_threads(threads: usize) {
    if threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

pub fn prepare(cfg: ExperimentConfig) -> Result<Prepared> {
    set_threads(cfg.run.threads);
    let device = DeviceSpec::parse(&cfg.run.device)?.open(&cfg.run.device)?;
    let corpus = s2s_data::load(&cfg.data, cfg.run.seed)?;
    let dims = ModelDims {
        src_vocab: corpus.src_vocab.len(),
        tgt_vocab: corpus.tgt_vocab.len(),
        max_length: cfg.data.max_length,
    };
    let model = Seq2Seq::new(&cfg.model, dims, cfg.run.seed, &device)?;
    Ok(Prepared { cfg, corpus, model })
}

pub fn execute(config: &Path, sets: &[String]) -> Result<PathBuf> {
    let cfg = ExperimentConfig::load(config, sets)?;
    let p = prepare(cfg)?;
    print_settings(&p);
    let run_dir = create_run_dir(&p.cfg.run.output_dir, &p.cfg.run.name)?;
    let mut info = new_run_info(&p, config, &run_dir);
    info.save(&run_dir)?;
    let result = train_and_report(&p, &run_dir, &mut info);
    if let Err(e) = &result {
        info.status = "failed".into();
        info.ended_at = Some(utc_now());
        info.error = Some(format!("{e:#}"));
        let _ = info.save(&run_dir);
    }
    result.map(|()| run_dir)
}

fn new_run_info(p: &Prepared, config: &Path, run_dir: &Path) -> RunInfo {
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
        data: DataInfo {
            fingerprint: c.fingerprint.sha256.clone(),
            files: c.fingerprint.files.iter().map(|f| (f.path.display().to_string(), f.sha256.clone())).collect(),
            train_pairs: c.train.len(),
            valid_pairs: c.valid.len(),
            test_pairs: c.test.len(),
            src_vocab: c.src_vocab.len(),
            tgt_vocab: c.tgt_vocab.len(),
            skipped_lines: c.skipped_lines,
            filtered_pairs: c.filtered_pairs,
        },
        final_metrics: serde_json::Map::new(),
        error: None,
    }
}

fn print_settings(p: &Prepared) {
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

fn train_and_report(p: &Prepared, run_dir: &Path, info: &mut RunInfo) -> Result<()> {
    let cfg = &p.cfg;
    std::fs::write(run_dir.join("config.toml"), cfg.to_toml()).context("cannot write config.toml")?;
    let ck = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&ck)?;
    p.corpus.src_vocab.save(&ck.join("src_vocab.json"))?;
    p.corpus.tgt_vocab.save(&ck.join("tgt_vocab.json"))?;

    let encode = |pairs: &[s2s_data::Pair]| s2s_data::batch::encode(pairs, &p.corpus.src_vocab, &p.corpus.tgt_vocab);
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
        rngs: TrainRngs::new(cfg.run.seed),
        teacher_forcing_ratio: cfg.train.teacher_forcing_ratio,
    };
    let mut observer = RunObserver::new(&run_dir.join("metrics.csv"), cfg.train.epochs)?;
    let mut checkpointer = RunCheckpointer { run_dir: run_dir.to_path_buf(), model: &p.model };
    let start = Instant::now();
    let summary = Trainer::new(cfg.train.clone())?.fit(&mut task, &mut observer, &mut checkpointer)?;
    let wall = start.elapsed().as_secs_f64();

    write_loss_curve(run_dir, &format!("{}: training loss", cfg.run.name))?;
    let translations = write_translations(run_dir, cfg, &p.corpus, &p.model)?;

    let fm = &mut info.final_metrics;
    fm.insert("epochs".into(), summary.epochs_done.into());
    fm.insert("steps".into(), summary.steps.into());
    fm.insert("train_loss".into(), summary.final_train_loss.into());
    fm.insert("wall_s".into(), wall.into());
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
    info.ended_at = Some(utc_now());
    info.save(run_dir)?;

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
    Ok(())
}
