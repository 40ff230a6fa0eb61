//! Developer measurements, not part of a run: `s2s bench` (what `scripts/bench.py`
//! compares with PyTorch's `torch_ref.py batched`: training target tokens/s and greedy
//! decoding sentences/s, on the same data, model and batches; and beam search's
//! sentences/s, which PyTorch's reference does not have) and `s2s bench-data` (a
//! config's data loaded into one epoch's batches, timed).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use s2s_data::{BatchPlan, DataConfig, Dataset};
use s2s_model::{ModelDims, TrainRngs, Weights};
use s2s_run::config::ExperimentConfig;
use s2s_run::task::{TaskConfig, TranslationTask};
use s2s_trainer::{NoCheckpoints, Observer, TrainConfig, Trainer};

/// `s2s bench`'s options (its command-line flags).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Training pairs (TSV), e.g. ../shared/data/eng-fra-18k.train.tsv.
    #[arg(long)]
    pub train: PathBuf,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Use s2s's length bucketing instead of torch_ref.py's batches.
    #[arg(long)]
    pub bucketing: bool,
    #[arg(long, default_value_t = 1000)]
    pub infer_sentences: usize,
    /// Batch sizes to time greedy decoding (and beam search) at.
    #[arg(long, value_delimiter = ',', default_value = "64,1")]
    pub decode_batches: Vec<usize>,
    /// Beam size to time beam search at, over the same sentences and batch sizes (0: none).
    #[arg(long, default_value_t = 5)]
    pub beam: usize,
    /// Threads for training and decoding (0 = all cores), as `run.threads`.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Peak resident memory of this process in KiB (Linux), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sets the stop flag after `steps` steps.
struct StopAfter(Arc<AtomicBool>, usize, usize);

impl Observer for StopAfter {
    fn on_step(&mut self, _: &s2s_trainer::StepRecord) {
        self.2 += 1;
        if self.2 >= self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Trains the first `steps` batches of epoch 0 (as torch_ref.py --max-steps does), then
/// times greedy decoding (10 steps for every sentence, as torch_ref.py decodes) and beam
/// search (up to 10 steps, the best hypothesis kept); returns the figures as one JSON
/// object.
pub fn measure(o: &BenchOptions) -> Result<serde_json::Value> {
    // The default model: the GRU with Bahdanau attention and dropout 0.1, as torch_ref.py.
    let mut cfg = ExperimentConfig::default().with_sets(&[format!("model.hidden_size={}", o.hidden)])?;
    cfg.run.threads = o.threads;
    let threads = cfg.run.thread_count();
    let data = DataConfig {
        dataset: Dataset::Tsv,
        train_path: Some(o.train.clone()),
        length_bucketing: o.bucketing,
        shuffle: true,
        ..Default::default()
    };
    let corpus = s2s_data::load(&data, o.seed, threads)?;
    let dims = ModelDims { src_vocab: corpus.src_vocab().len(), tgt_vocab: corpus.tgt_vocab().len(), max_length: 10 };
    let device = candle_core::Device::Cpu;
    let mut model = s2s_model::build(&cfg.model, dims, Weights::Seed(o.seed), &device)?;
    model.set_threads(threads);
    let examples = s2s_data::batch::encode(&corpus.train, corpus.src_vocab(), corpus.tgt_vocab());
    let plan =
        BatchPlan { batch_size: o.batch, shuffle: true, length_bucketing: o.bucketing, batch_tokens: 0, seed: o.seed };
    let batches = plan.epoch(&examples, 0);
    if o.steps == 0 || o.steps > batches.len() {
        bail!("--steps must be between 1 and {} (one epoch)", batches.len());
    }
    let mut task = TranslationTask {
        model: model.as_ref(),
        train: examples.clone(),
        valid: Vec::new(),
        valid_refs: Vec::new(),
        target: &corpus.target,
        plan,
        rngs: TrainRngs::new(o.seed),
        config: TaskConfig::default(),
    };
    let tokens: usize = batches.iter().take(o.steps).map(s2s_data::Batch::target_tokens).sum();
    let cfg =
        TrainConfig { epochs: 1, batch_size: o.batch, learning_rate: 1e-3, validate_every: 0, ..Default::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let mut trainer = Trainer::new(cfg)?.threads(threads).stop_when(stop.clone());
    let t0 = Instant::now();
    trainer.fit(&mut task, &mut StopAfter(stop, o.steps, 0), &mut NoCheckpoints)?;
    let train_s = t0.elapsed().as_secs_f64();

    let n = o.infer_sentences.min(examples.len());
    let sources: Vec<Vec<u32>> = examples[..n].iter().map(|e| e.src.clone()).collect();
    let mut result = serde_json::json!({
        "mode": "s2s",
        "pairs": examples.len(),
        "hidden": o.hidden,
        "batch": o.batch,
        "bucketing": o.bucketing,
        "steps": o.steps,
        "threads": threads,
        "train_tok_per_s": (tokens as f64 / train_s * 10.0).round() / 10.0,
    });
    // The weights stand still from here on, as in a translate or a validation pass: a
    // family may lay them out for decoding once; that time is counted in every batch
    // size's rate.
    let t0 = Instant::now();
    model.begin_inference()?;
    let pack_s = t0.elapsed().as_secs_f64();
    result["inference_layout_s"] = ((pack_s * 1e4).round() / 1e4).into();
    // Sentences per second over `sources` in batches of each size, packing included.
    let rates = |decode: &dyn Fn(&[Vec<u32>]) -> Result<()>| -> Result<Vec<(usize, f64)>> {
        let mut rates = Vec::new();
        for &bs in &o.decode_batches {
            let t0 = Instant::now();
            for chunk in sources.chunks(bs.max(1)) {
                decode(chunk)?;
            }
            let rate = n as f64 / (pack_s + t0.elapsed().as_secs_f64());
            rates.push((bs, (rate * 10.0).round() / 10.0));
        }
        Ok(rates)
    };
    let mut decode = || -> Result<()> {
        for (bs, rate) in rates(&|chunk| Ok(model.greedy_steps(chunk, 10, false).map(drop)?))? {
            result[format!("infer_sent_per_s_b{bs}")] = rate.into();
        }
        if o.beam > 0 {
            result["beam"] = o.beam.into();
            for (bs, rate) in rates(&|chunk| Ok(model.beam_batch(chunk, o.beam, 1).map(drop)?))? {
                result[format!("infer_beam_sent_per_s_b{bs}")] = rate.into();
            }
        }
        Ok(())
    };
    let decoded = decode();
    // The span ends whether decoding succeeded or not.
    model.end_inference();
    decoded?;
    result["peak_rss_kib"] = peak_rss_kib().into();
    Ok(result)
}

/// Loads `cfg`'s data into one epoch's batches, as a run does before training (read,
/// normalize, split, tokenize, encode, batch), and reports the time of each part and the
/// peak memory: `s2s bench-data CONFIG`. With `checksum`, also the SHA-256 of everything
/// loaded ([`data_checksum`], after the figures are taken), to check that a change loads
/// the same data.
pub fn measure_data(cfg: &ExperimentConfig, checksum: bool) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    let corpus = s2s_data::load(&cfg.data, cfg.run.seed, cfg.run.thread_count())?;
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let examples = s2s_data::batch::encode(&corpus.train, corpus.src_vocab(), corpus.tgt_vocab());
    let encode_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let plan = BatchPlan {
        batch_size: cfg.train.batch_size,
        shuffle: cfg.data.shuffle,
        length_bucketing: cfg.data.length_bucketing,
        batch_tokens: cfg.task.batch_tokens,
        seed: cfg.run.seed,
    };
    let batches = plan.epoch(&examples, 0);
    let batch_s = t2.elapsed().as_secs_f64();
    let tokens: usize = batches.iter().map(s2s_data::Batch::target_tokens).sum();
    let round = |s: f64| (s * 1000.0).round() / 1000.0;
    let total_s = round(t0.elapsed().as_secs_f64());
    let mut result = serde_json::json!({
        "train_pairs": corpus.train.len(),
        "valid_pairs": corpus.valid.len(),
        "filtered_pairs": corpus.filtered_pairs,
        "batches": batches.len(),
        "target_tokens": tokens,
        "load_s": round(load_s),
        "encode_s": round(encode_s),
        "batch_s": round(batch_s),
        "total_s": total_s,
        "peak_rss_kib": peak_rss_kib(),
    });
    if checksum {
        result["sha256"] = data_checksum(&corpus, &examples, &batches).into();
    }
    Ok(result)
}

/// SHA-256 over what loading produced: every split's ids (EOS included) and reference
/// text, and the epoch's batches (rows and padded grids), so that two builds can be
/// checked to load the same data.
fn data_checksum(corpus: &s2s_data::Corpus, train: &[s2s_data::Example], batches: &[s2s_data::Batch]) -> String {
    let mut h = s2s_data::Sha256Hex::new();
    let mut ids = |v: &[u32]| {
        h.update((v.len() as u64).to_le_bytes());
        for id in v {
            h.update(id.to_le_bytes());
        }
    };
    for e in train {
        ids(&e.src);
        ids(&e.tgt);
    }
    for split in [&corpus.valid, &corpus.test] {
        for e in s2s_data::batch::encode(split, corpus.src_vocab(), corpus.tgt_vocab()) {
            ids(&e.src);
            ids(&e.tgt);
        }
    }
    for b in batches {
        let rows: Vec<u32> = b.indices.iter().map(|&i| i as u32).collect();
        ids(&rows);
        ids(&b.src);
        ids(&b.tgt);
    }
    for p in corpus.train.iter().chain(&corpus.valid).chain(&corpus.test) {
        h.update((p.reference.len() as u64).to_le_bytes());
        h.update(p.reference.as_bytes());
    }
    h.finish()
}
