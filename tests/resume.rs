//! Resume you can trust: bit-identical continuation, crash safety, interruption,
//! damaged checkpoints, refused changes and the run lock.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Dropout, teacher forcing < 1, shuffling and mid-epoch checkpoints all on.
const EXTRA: &str = "teacher_forcing_ratio = 0.5\ncheckpoint_every_steps = 2\nkeep_checkpoints = 100\n";

fn model_bytes(run: &Path) -> Vec<u8> {
    let last = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("e").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")))
        .max()
        .expect("a step checkpoint");
    std::fs::read(last.join("model.safetensors")).expect("model")
}

/// metrics.csv without the timing columns.
fn rows(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).expect("metrics");
    let header: Vec<&str> = text.lines().next().expect("h").split(',').collect();
    let keep: Vec<usize> =
        (0..header.len()).filter(|&i| !["epoch_s", "elapsed_s", "tokens_per_s"].contains(&header[i])).collect();
    text.lines()
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| v.get(i).copied().unwrap_or("")).collect::<Vec<_>>().join(",")
        })
        .collect()
}

fn status(run: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json")).expect("json");
    v["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn half_then_resume_equals_straight_and_mid_epoch_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), EXTRA);
    let reference = straight(dir.path(), &cfg, "train.epochs=30");

    // Epoch boundary: 15 epochs, then resume to 30.
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=15"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let half = only_run(dir.path());
    let out = run(&["resume", half.to_str().expect("utf8"), "--epochs", "30"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(model_bytes(&reference), model_bytes(&half));
    assert_eq!(rows(&reference), rows(&half));
    assert_eq!(status(&half), "completed");

    // Mid-epoch: keep only checkpoints up to step 5; the newest, step 4, is batch 1 of epoch 2
    // (3 batches an epoch).
    let mid = dir.path().join("mid");
    Command::new("cp").arg("-r").arg(&reference).arg(&mid).status().expect("cp");
    cut_checkpoints_after(&mid, 5);
    let out = run(&["resume", mid.to_str().expect("utf8"), "--epochs", "30"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("(epoch 2, step 4)"), "{stdout}");
    assert_eq!(model_bytes(&reference), model_bytes(&mid));
    assert_eq!(rows(&reference), rows(&mid));
}

#[test]
fn sigkill_at_random_moments_then_resume_is_still_bit_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), EXTRA);
    let reference = straight(dir.path(), &cfg, "train.epochs=150");
    let started = Instant::now();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut kills = 0;
    // Kills that hit a session while it trained: after the kill the run is still marked
    // running and has a checkpoint past step 0 (so training had begun and not finished).
    let mut mid_training = 0;
    let mut first = true;
    loop {
        let mut cmd = s2s();
        cmd.current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null());
        if first {
            cmd.args(["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=150"]);
        } else {
            cmd.args(["resume", only_run(dir.path()).to_str().expect("utf8")]);
        }
        let mut child = cmd.spawn().expect("spawn");
        first = false;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(100 + seed % 300);
        let t0 = Instant::now();
        let mut done = None;
        while t0.elapsed() < wait {
            if let Some(s) = child.try_wait().expect("wait") {
                done = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match done {
            Some(s) => {
                assert!(s.success(), "a resume failed after {kills} kills");
                break;
            }
            None if kills < 5 && started.elapsed() < Duration::from_secs(60) => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
                let run_dir = dir.path().join("experiments");
                if !run_dir.exists() || std::fs::read_dir(&run_dir).expect("d").next().is_none() {
                    first = true; // killed before the run folder existed: start again
                } else {
                    let r = only_run(dir.path());
                    if status(&r) == "running" && newest_step(&r) > 0 {
                        mid_training += 1;
                    }
                }
            }
            None => {
                assert!(child.wait().expect("wait").success());
                break;
            }
        }
    }
    eprintln!("{kills} kills, {mid_training} mid-training");
    assert!(mid_training >= 1, "no kill landed mid-training ({kills} kills)");
    let crashed = only_run(dir.path());
    assert_eq!(status(&crashed), "completed", "after {kills} kills");
    assert_eq!(model_bytes(&reference), model_bytes(&crashed), "after {kills} kills");
    assert_eq!(rows(&reference), rows(&crashed), "after {kills} kills");
}

#[test]
fn sigint_checkpoints_and_exits_130_and_resume_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let child = s2s()
        .args(["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=3000"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !dir.path().join("experiments").exists()
        || std::fs::read_dir(dir.path().join("experiments")).expect("d").next().is_none()
    {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let r = only_run(dir.path());
    assert_eq!(status(&r), "interrupted");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("run.json")).expect("run.json")).expect("json");
    let done = v["final_metrics"]["epochs"].as_u64().expect("epochs done");
    let target = (done + 2).to_string();
    let out = run(&["resume", r.to_str().expect("utf8"), "--epochs", &target], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(status(&r), "completed");
}

#[test]
fn damaged_checkpoints_fall_back_refusals_and_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "keep_checkpoints = 5\n");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=20"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let r = only_run(dir.path());
    let r_s = r.to_str().expect("utf8");

    // Incompatible change: refused with the diff, exit 2.
    let out = run(&["resume", r_s, "--epochs", "30", "--set", "model.hidden_size=32"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("model.hidden_size: 16 -> 32"), "{stderr}");

    // Truncate the newest checkpoint: warned about, the previous one is used.
    let mut steps: Vec<PathBuf> = std::fs::read_dir(r.join("checkpoints"))
        .expect("ck")
        .map(|e| e.expect("e").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")))
        .collect();
    steps.sort();
    assert!(steps.len() >= 2, "{steps:?}");
    let newest = steps.last().expect("newest").join("model.safetensors");
    let bytes = std::fs::read(&newest).expect("read");
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = run(&["resume", r_s, "--epochs", "22"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("damaged") && stderr.contains("model.safetensors"), "{stderr}");
    assert!(stdout.contains("resuming"), "{stdout}");

    // Every checkpoint damaged: a clear error, exit 2.
    for e in std::fs::read_dir(r.join("checkpoints")).expect("ck") {
        let p = e.expect("e").path();
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")) {
            let m = p.join("model.safetensors");
            let mut b = std::fs::read(&m).expect("read");
            let last = b.len() - 1;
            b[last] ^= 0xff;
            std::fs::write(&m, b).expect("flip");
        }
    }
    let out = run(&["resume", r_s, "--epochs", "30"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no usable `last` checkpoint"), "{}", text(&out).1);
    // A failed attempt changes nothing the finished run says about itself.
    assert_eq!(status(&r), "completed");

    // The lock: a second process cannot train a run that is being trained.
    let mut child = s2s()
        .args(["run", cfg.to_str().expect("utf8"), "--set", "run.output_dir=locked", "--set", "train.epochs=3000"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let locked = dir.path().join("locked");
    let t0 = Instant::now();
    let busy = loop {
        assert!(t0.elapsed() < Duration::from_secs(30));
        if let Some(Ok(e)) = std::fs::read_dir(&locked).ok().and_then(|mut d| d.next()) {
            if e.path().join("checkpoints").join("tgt_vocab.json").exists() {
                break e.path();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = run(&["resume", busy.to_str().expect("utf8"), "--epochs", "4000"], dir.path());
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("being trained by another"), "{}", text(&out).1);
}

/// Every option of the NMT recipe on (bidirectional encoder with bridge, input feeding,
/// tied embeddings, hidden dropout, label smoothing, token-budget bucketing, beam
/// validation on two threads): a run stopped half way and resumed is bit-identical to one
/// trained straight through, and `s2s average` + `eval --checkpoint average` work on it.
#[test]
fn every_recipe_option_resumes_bit_identically_and_averages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("recipe.toml");
    std::fs::write(
        &cfg,
        r#"
[run]
name = "recipe"
seed = 4
threads = 2
[data]
dataset = "reverse"
synthetic_count = 120
synthetic_max_length = 5
length_bucketing = true
[model]
attention = "bahdanau"
hidden_size = 12
embedding_size = 12
bidirectional = true
bridge = true
input_feeding = true
tie_embeddings = true
hidden_dropout = 0.2
dropout = 0.1
beam_size = 3
length_penalty = 1.0
[train]
learning_rate = 0.01
epochs = 6
batch_size = 8
label_smoothing = 0.1
validate_beam = true
checkpoint_every = 1
keep_checkpoints = 10
"#,
    )
    .expect("write config");
    let reference = straight(dir.path(), &cfg, "train.epochs=6");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=3"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let half = only_run(dir.path());
    let out = run(&["resume", half.to_str().expect("utf8"), "--epochs", "6"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(model_bytes(&reference), model_bytes(&half));
    assert_eq!(rows(&reference), rows(&half));
    let run_dir = half.to_str().expect("utf8");
    let out = run(&["average", run_dir, "--last", "3"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("averaged 3 checkpoint(s)"), "{stdout}");
    let out = run(&["eval", run_dir, "--checkpoint", "average", "--json"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["checkpoint"], "average");
    assert_eq!(v["decoding"], "beam 3, length penalty 1");
    assert!(v["bleu"].as_f64().is_some_and(f64::is_finite), "{stdout}");
    // Averaging more checkpoints than the run keeps says how to keep more.
    let out = run(&["average", run_dir, "--last", "50"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(text(&out).1.contains("keep_checkpoints=50"), "{}", text(&out).1);
}

/// Regression: a kill -9 during a checkpoint write left `checkpoints/.step-N.tmp-PID/`
/// folders (megabytes each) that nothing removed; the next session removes those of
/// processes that are gone.
#[test]
fn leftovers_of_killed_writers_are_removed_on_resume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=4"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let r = only_run(dir.path());
    // Process ids above the kernel's limit: never alive.
    let folder = r.join("checkpoints").join(".step-00000099.tmp-4000000000");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join("model.safetensors"), b"half").expect("write");
    let file = r.join(".run.json.tmp-4000000001");
    std::fs::write(&file, b"{").expect("write");
    let out = run(&["resume", r.to_str().expect("utf8"), "--epochs", "5"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!folder.exists() && !file.exists(), "{stdout}");
    assert!(stdout.contains("removed") && stdout.contains(".step-00000099.tmp-4000000000"), "{stdout}");
}

/// Regression: a checkpoint whose weights have other shapes (its checksum intact) failed
/// the resume after the session had begun, and the completed run said `failed`. The
/// weights are now read before anything of the run changes.
#[test]
fn a_resume_that_cannot_load_its_weights_leaves_a_completed_run_completed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let cfg_s = cfg.to_str().expect("utf8");
    assert!(run(&["run", cfg_s, "--set", "train.epochs=4"], dir.path()).status.success());
    let r = only_run(dir.path());
    assert!(run(
        &["run", cfg_s, "--set", "train.epochs=1", "--set", "model.hidden_size=8", "--set", "run.output_dir=other"],
        dir.path()
    )
    .status
    .success());
    let other = std::fs::read_dir(dir.path().join("other")).expect("other").next().expect("run").expect("e").path();
    let newest = |run: &Path| -> PathBuf {
        let mut v: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
            .expect("ck")
            .map(|e| e.expect("e").path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")))
            .collect();
        v.sort();
        v.pop().expect("a checkpoint")
    };
    let (ours, theirs) = (newest(&r), newest(&other));
    let bytes = std::fs::read(theirs.join("model.safetensors")).expect("read");
    std::fs::write(ours.join("model.safetensors"), &bytes).expect("write");
    let state_path = ours.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("json");
    state["files"][0][1] = s2s_data::sha256_hex(&bytes).into();
    std::fs::write(&state_path, state.to_string()).expect("write");
    let info_before = std::fs::read(r.join("run.json")).expect("run.json");
    // With RUST_BACKTRACE set, the error is still one line (candle's backtrace left out).
    let out = s2s()
        .args(["resume", r.to_str().expect("utf8"), "--epochs", "6"])
        .env("RUST_BACKTRACE", "1")
        .current_dir(dir.path())
        .output()
        .expect("s2s runs");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has shape") && stderr.contains("model.safetensors"), "{stderr}");
    assert!(!stderr.contains("error.rs") && !stderr.contains("backtrace"), "{stderr}");
    assert_eq!(status(&r), "completed");
    assert_eq!(std::fs::read(r.join("run.json")).expect("run.json"), info_before, "run.json unchanged");
}
