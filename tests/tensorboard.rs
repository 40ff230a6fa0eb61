//! TensorBoard's own reader (the `tensorboard` Python package, which `.ci/run` installs)
//! reads our event files: scalars once per step after a kill and a resume, heatmap images,
//! text, and a sweep's hparams. Without the package the test is skipped, except under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Whether TensorBoard's reader is here; under CI its absence is a failure.
fn reader_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import tensorboard.backend.event_processing.event_accumulator"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the tensorboard Python package is missing (.ci/run installs it)"
        );
        eprintln!("skipped: `pip install tensorboard` to run this test");
    }
    ok
}

fn read(runs: &[&Path]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tensorboard_read.py");
    let out = Command::new("python3").arg(script).args(runs).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// One event file's tags and steps, read without purging.
fn file_steps(file: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tensorboard_read.py");
    let out = Command::new("python3").arg(script).arg("--file-steps").arg(file).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn steps_of(v: &serde_json::Value) -> Vec<u64> {
    v.as_array().expect("array").iter().map(|s| s.as_u64().expect("step")).collect()
}

fn steps(v: &serde_json::Value) -> Vec<u64> {
    v.as_array().expect("array").iter().map(|p| p[0].as_u64().expect("step")).collect()
}

#[test]
fn tensorboard_reads_scalars_once_per_step_after_kill_and_resume_and_images_and_text() {
    if !reader_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let epochs = 150;
    // Kill until a kill leaves steps logged after the last checkpoint (orphans the resumed
    // session must purge); checkpoints every 7 steps make that the common case.
    let (mut run_dir, mut killed_at, mut orphans) = (PathBuf::new(), 0, Vec::new());
    for attempt in 0..5 {
        let home = dir.path().join(format!("try-{attempt}"));
        std::fs::create_dir_all(&home).expect("mkdir");
        let cfg = tiny_config(&home, "checkpoint_every_steps = 7\n");
        let mut child = s2s()
            .args(["run", cfg.to_str().expect("utf8"), "--set", &format!("train.epochs={epochs}")])
            .current_dir(&home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let t0 = Instant::now();
        run_dir = loop {
            assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint appeared");
            let found: Option<PathBuf> = std::fs::read_dir(home.join("experiments"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| newest_step(p) >= 40);
            if let Some(p) = found {
                break p;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        killed_at = newest_step(&run_dir);
        // In the run folder itself, so that `--logdir experiments` names the run after it.
        let files: Vec<PathBuf> = std::fs::read_dir(&run_dir)
            .expect("run folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents.")))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let logged = file_steps(&files[0]);
        orphans = steps_of(&logged["train/loss"]).into_iter().filter(|&s| s > killed_at as u64).collect();
        if !orphans.is_empty() {
            break;
        }
    }
    assert!(!orphans.is_empty(), "no kill left steps past its last checkpoint in 5 tries");
    let home = run_dir.parent().and_then(Path::parent).expect("run home").to_path_buf();
    let dir = &home;
    let out = run(&["resume", run_dir.to_str().expect("utf8")], dir);
    assert!(out.status.success(), "{}", text(&out).1);
    let total = (epochs * 3) as u64; // 5 pairs at batch 2: 3 batches an epoch
    assert!((killed_at as u64) < total, "the kill came after training ended");

    let tb = read(&[&run_dir]);
    let r = &tb[run_dir.to_str().expect("utf8")];
    let s = &r["scalars"];
    // Each step exactly once, every step, although the killed session logged steps past
    // its last checkpoint that the resumed one logged again.
    for tag in ["train/loss", "train/learning_rate", "train/grad_norm"] {
        assert_eq!(steps(&s[tag]), (1..=total).collect::<Vec<_>>(), "{tag}");
    }
    let epoch_steps: Vec<u64> = (1..=epochs as u64).map(|e| e * 3).collect();
    assert_eq!(steps(&s["train/loss_epoch"]), epoch_steps);
    assert_eq!(steps(&s["train/tokens_per_s"]), epoch_steps);
    // No single-point cards: the HPARAMS tab takes the final figures from these scalars.
    let tags: Vec<&String> = s.as_object().expect("scalars").keys().collect();
    assert!(tags.iter().all(|t| !t.starts_with("final/") && !t.starts_with("best/")), "{tags:?}");
    // Training and validation loss on one custom-scalars chart.
    assert_eq!(r["layout"]["train and validation"]["loss"], serde_json::json!(["^train/loss$", "^valid/loss$"]));
    // The per-step loss is the one metrics.csv averages: the last epoch's mean matches.
    let last_epoch: f64 = s["train/loss_epoch"].as_array().expect("a").last().expect("last")[1].as_f64().expect("f");
    let csv_last: f64 = column(&run_dir.join("metrics.csv"), "train_loss").last().expect("row").parse().expect("f");
    assert!((last_epoch - csv_last).abs() < 1e-6 * csv_last.abs().max(1.0), "{last_epoch} vs {csv_last}");

    // This run never validates: translations and heatmaps at each end-of-epoch
    // checkpoint (every 10 epochs), each once.
    let every_10: Vec<u64> = (1..=epochs as u64 / 10).map(|k| k * 30).collect();
    let images = r["images"].as_object().expect("images");
    assert_eq!(images.len(), 5, "one heatmap per report sentence: {:?}", images.keys());
    for (tag, points) in images {
        assert!(tag.starts_with("attention/"), "{tag}");
        assert_eq!(steps(points), every_10, "{tag}");
        let p = &points[0];
        assert!(p[1].as_u64() >= Some(480) && p[2].as_u64() >= Some(300) && p[3].as_u64() > Some(1000), "{p}");
    }
    let texts = &r["text"];
    assert_eq!(steps(&texts["translations"]), every_10);
    let table = texts["translations"][0][1].as_str().expect("text");
    assert!(table.contains("| i am a student | je suis etudiant |"), "{table}");
    assert_eq!(steps(&texts["config"]), [0]);
    assert!(texts["config"][0][1].as_str().expect("text").contains("learning_rate = 0.02"));
}

#[test]
fn a_sweep_gives_tensorboard_one_hparams_row_per_run() {
    if !reader_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(
        &[
            "sweep",
            cfg.to_str().expect("utf8"),
            "--grid",
            "train.learning_rate=0.01,0.03",
            "--set",
            "train.epochs=2",
            "--set",
            "train.validate_every=1",
            "--set",
            "data.dataset=copy",
            "--set",
            "data.synthetic_count=40",
            "--set",
            "data.valid_fraction=0.25",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let runs = sweep_runs(dir.path());
    assert_eq!(runs.len(), 2);
    let tb = read(&runs.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let mut rates = Vec::new();
    for r in &runs {
        let h = &tb[r.to_str().expect("utf8")]["hparams"];
        let start = &h["_hparams_/session_start_info"]["sessionStartInfo"]["hparams"];
        assert_eq!(start.as_object().expect("hparams").len(), 1, "only the grid's key: {start}");
        rates.push(start["train.learning_rate"].as_f64().expect("number"));
        assert_eq!(h["_hparams_/session_end_info"]["sessionEndInfo"]["status"], "STATUS_SUCCESS");
        let s = &tb[r.to_str().expect("utf8")]["scalars"];
        for tag in ["valid/loss", "valid/bleu", "valid/chrf", "valid/ppl"] {
            assert!(s.get(tag).is_some(), "{tag} missing in {r:?}");
        }
    }
    rates.sort_by(f64::total_cmp);
    assert_eq!(rates, [0.01, 0.03]);
}

#[test]
fn a_transformer_logs_each_sentence_s_layer_and_head_grid_and_integers_stay_integers() {
    if !reader_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/reverse-transformer.toml");
    let out = run(
        &[
            "run",
            cfg.to_str().expect("utf8"),
            "--set",
            "train.epochs=1",
            "--set",
            "data.synthetic_count=200",
            "--set",
            "report.hparams=[\"model.heads\", \"train.learning_rate\"]",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = only_run(dir.path());
    let tb = read(&[&run_dir]);
    let r = &tb[run_dir.to_str().expect("utf8")];
    let images = r["images"].as_object().expect("images");
    let heads: Vec<&String> = images.keys().filter(|t| t.starts_with("attention_heads/")).collect();
    let maps: Vec<&String> = images.keys().filter(|t| t.starts_with("attention/")).collect();
    assert_eq!(heads.len(), 3, "one grid per report sentence: {:?}", images.keys());
    assert_eq!(maps.len(), 3, "{:?}", images.keys());
    let start = &r["hparams"]["_hparams_/session_start_info"]["sessionStartInfo"]["hparams"];
    assert_eq!(start["model.heads"], "4", "an integer hparam is shown as one: {start}");
    assert!(start["train.learning_rate"].is_number(), "{start}");
}
