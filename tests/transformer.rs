//! The Transformer family end to end: a run, its heatmaps (head average and layer × head
//! grid), translate --layer/--head, eval, compare beside a GRU run, a sweep, and resume
//! bit for bit (mid-epoch, and after SIGKILL).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// A tiny Transformer on the notebook's pairs: dropout everywhere, label smoothing, the
/// inverse-sqrt schedule, two threads, a checkpoint every 2 steps.
fn tiny_transformer(dir: &Path, extra: &str) -> PathBuf {
    let cfg = format!(
        r#"
[run]
name = "tt"
seed = 4
threads = 2
[data]
dataset = "seed"
shuffle = true
[model]
architecture = "transformer"
encoder_layers = 2
decoder_layers = 1
heads = 2
hidden_size = 8
ff_size = 16
dropout = 0.1
attention_dropout = 0.1
activation_dropout = 0.1
norm = "pre"
positions = "learned"
tie_embeddings = "decoder"
[train]
learning_rate = 0.01
lr_schedule = "inverse_sqrt"
warmup_steps = 4
label_smoothing = 0.1
epochs = 30
batch_size = 2
validate_every = 0
checkpoint_every = 10
checkpoint_every_steps = 2
keep_checkpoints = 100
{extra}
"#
    );
    config_file(dir, "tt.toml", &cfg)
}

fn model_bytes(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("checkpoints").join(format!("step-{:08}", newest_step(run))).join("model.safetensors"))
        .expect("model")
}

#[test]
fn transformer_resumes_bit_identically_mid_epoch_and_after_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_transformer(dir.path(), "");
    let reference = straight(dir.path(), &cfg, "train.epochs=30");

    // Mid-epoch: a copy of the finished run cut back to step 5 (3 batches an epoch).
    let mid = dir.path().join("mid");
    std::process::Command::new("cp").arg("-r").arg(&reference).arg(&mid).status().expect("cp");
    cut_checkpoints_after(&mid, 5);
    let out = run(&["resume", mid.to_str().expect("utf8"), "--epochs", "30"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("(epoch 2, step 4)"), "{stdout}");
    assert_eq!(model_bytes(&reference), model_bytes(&mid));

    // SIGKILL once training has written a checkpoint past step 0, then resume.
    let mut child = s2s()
        .current_dir(dir.path())
        .args(["run", cfg.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    loop {
        let exp = dir.path().join("experiments");
        let started = exp.is_dir() && std::fs::read_dir(&exp).expect("d").next().is_some();
        if started && newest_step(&only_run(dir.path())) >= 6 {
            break;
        }
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be killed");
        assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint within a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let killed = only_run(dir.path());
    let out = run(&["resume", killed.to_str().expect("utf8")], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(model_bytes(&reference), model_bytes(&killed));
}

/// The reverse task, small: the Transformer learns it, draws both heatmaps, and every
/// command that reads a run works on it.
#[test]
fn transformer_run_draws_heads_and_works_with_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("configs/reverse-transformer.toml");
    let cfg = cfg.to_str().expect("utf8");
    let fast = [
        "--set",
        "data.synthetic_count=1000",
        "--set",
        "train.epochs=15",
        "--set",
        "train.warmup_steps=30",
        "--set",
        "run.output_dir=experiments",
    ];
    let mut args = vec!["run", cfg];
    args.extend(fast);
    let out = run(&args, dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("model: Transformer, 2+2 layers, 4 heads"), "{stdout}");
    let r = only_run(dir.path());
    let r_s = r.to_str().expect("utf8");
    for name in ["a-b-c-d-e-f-g-h.svg", "a-b-c-d-e-f-g-h.heads.svg"] {
        let p = r.join("attention").join(name);
        assert!(p.is_file(), "{name} missing");
        assert_xml(&p);
    }
    let grid = std::fs::read_to_string(r.join("attention/a-b-c-d-e-f-g-h.heads.svg")).expect("grid");
    assert!(grid.contains("layer 1, head 3") && !grid.contains("layer 2,"), "2 layers × 4 heads");
    let config = std::fs::read_to_string(r.join("config.toml")).expect("config");
    assert!(config.contains("heads = 4") && !config.contains("bidirectional"), "{config}");

    let out = run(&["eval", r_s, "--split", "test", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert!(v["exact_match"].as_f64().expect("exact") > 0.5, "{v}");
    let by_head = v["alignment_by_head"].as_array().expect("per head");
    assert_eq!(by_head.len(), 2);
    assert_eq!(by_head[0].as_array().expect("layer").len(), 4);

    let heat = dir.path().join("h.svg");
    let h_s = heat.to_str().expect("utf8");
    let out = run(&["translate", r_s, "a b c d", "--heatmap", h_s, "--layer", "0", "--head", "2"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(heat.is_file() && dir.path().join("h.heads.svg").is_file());
    let out = run(&["translate", r_s, "a b c d", "--heatmap", h_s, "--layer", "7"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--layer 7: the decoder has layers 0..1"), "{}", text(&out).1);
    let out = run(&["translate", r_s, "a b c d", "--heatmap", h_s, "--head", "4"], dir.path());
    assert_eq!(out.status.code(), Some(2));

    // A GRU run beside it: compare shows both heatmaps of a sentence and the grid.
    let gru = root.join("configs/reverse.toml");
    let mut args = vec!["run", gru.to_str().expect("utf8")];
    args.extend(fast);
    let out = run(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let out = run(&["compare", "--out", "cmp"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let page = std::fs::read_to_string(dir.path().join("cmp/index.html")).expect("index");
    assert!(page.contains(": every decoder layer and head</figcaption>"), "no grid on the page");
    let copies: Vec<String> = std::fs::read_dir(dir.path().join("cmp/attention"))
        .expect("attention")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(copies.iter().any(|c| c.starts_with("a-b-c-d-e-f-g-h--reverse-2")), "{copies:?}");
    assert!(copies.iter().any(|c| c.starts_with("a-b-c-d-e-f-g-h--reverse-transformer")), "{copies:?}");
    // GRU flags on the Transformer's resume are refused.
    let out = run(&["resume", r_s, "--set", "model.bidirectional=true"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("means nothing for model.architecture = \"transformer\""), "{}", text(&out).1);
}

#[test]
fn transformer_sweep_over_heads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_transformer(dir.path(), "");
    let out = run(
        &["sweep", cfg.to_str().expect("utf8"), "--grid", "model.heads=1,2", "--set", "train.epochs=2", "--jobs", "2"],
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(sweep_runs(dir.path()).len(), 2);
    assert!(stdout.contains("model.heads"), "{stdout}");
    // A point the family refuses is reported before anything runs.
    let out = run(&["sweep", cfg.to_str().expect("utf8"), "--grid", "model.heads=3"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("not divisible by heads 3"), "{}", text(&out).1);
}
