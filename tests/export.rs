//! `s2s export --to ctranslate2`: CTranslate2 (the `ctranslate2` Python package, which
//! `.ci/run` installs) translates exported reverse-task Transformers as `s2s translate`
//! does, greedy and beam 5: the same output pieces for at least 99 % of sentences and the
//! same scores within 1e-4. Four runs cover pre- and post-norm, sinusoidal and learned
//! positions, tied and untied output layers, one and two vocabularies, words and BPE
//! pieces (raw text through the exported tokenizer files, read by the `tokenizers` package).
//! Without the packages the identity test is skipped, except under CI. A GRU run is refused.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use s2s_run::{OpenedRun, Which};

/// The Python with ctranslate2 and tokenizers: `CTRANSLATE2_PYTHON`, else `python3`; `None`
/// (skip) when it lacks either package, a failure under CI.
fn python() -> Option<String> {
    let python = std::env::var("CTRANSLATE2_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import ctranslate2, tokenizers"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the ctranslate2 or tokenizers Python package is missing (.ci/run installs both)"
        );
        eprintln!("skipped: `pip install ctranslate2 tokenizers` (or CTRANSLATE2_PYTHON=a Python that has them) to run this test");
        return None;
    }
    Some(python)
}

/// Trains configs/reverse-transformer.toml for 3 epochs with `sets` into `dir/name`.
fn train(dir: &Path, name: &str, sets: &[&str]) -> PathBuf {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/reverse-transformer.toml");
    let out_dir = format!("run.output_dir={name}");
    let mut args = vec!["run", cfg.to_str().expect("utf8"), "--set", &out_dir, "--set", "train.epochs=3"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = run(&args, dir);
    assert!(out.status.success(), "{}", text(&out).1);
    std::fs::read_dir(dir.join(name)).expect("runs").next().expect("run").expect("entry").path()
}

/// The reverse task as text files, with a joint BPE vocabulary of 40 pieces (the
/// synthetic dataset is word-level only): pre-norm, sinusoidal, tied.
fn train_bpe(dir: &Path) -> PathBuf {
    let pairs = |from: usize, n: usize| -> String {
        sentences_from(from as u64 + 7, n)
            .iter()
            .map(|s| format!("{s}\t{}\n", s.split(' ').rev().collect::<Vec<_>>().join(" ")))
            .collect()
    };
    std::fs::write(dir.join("train.tsv"), pairs(1, 2000)).expect("train.tsv");
    std::fs::write(dir.join("valid.tsv"), pairs(2, 100)).expect("valid.tsv");
    let cfg = config_file(
        dir,
        "bpe.toml",
        r#"
[run]
name = "bpe"
seed = 1
output_dir = "bpe-joint"
[data]
dataset = "tsv"
train_path = "train.tsv"
valid_path = "valid.tsv"
tokenizer = "bpe"
joint_vocab = true
max_vocab_size = 40
max_length = 12
[model]
architecture = "transformer"
encoder_layers = 2
heads = 4
hidden_size = 32
ff_size = 64
dropout = 0.0
tie_embeddings = "decoder"
[train]
learning_rate = 0.003
lr_schedule = "inverse_sqrt"
warmup_steps = 100
epochs = 3
batch_size = 32
validate_every = 3
"#,
    );
    let out = run(&["run", cfg.to_str().expect("utf8")], dir);
    assert!(out.status.success(), "{}", text(&out).1);
    std::fs::read_dir(dir.join("bpe-joint")).expect("runs").next().expect("run").expect("entry").path()
}

/// 200 reverse-task sources (symbols a..l, 3 to 9 of them), the same every time.
fn sentences() -> Vec<String> {
    sentences_from(0, 200)
}

/// `n` sequences of 3 to 9 symbols a..l from the stream numbered `stream`.
fn sentences_from(stream: u64, n: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..n)
        .map(|_| {
            let len = 3 + next(7);
            (0..len).map(|_| char::from(b'a' + next(12) as u8).to_string()).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// Output pieces and scores of CTranslate2 (fp32, one thread) for source pieces.
fn ctranslate2(python: &str, export: &Path, sources: &[Vec<String>], beam: usize) -> Vec<(Vec<String>, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ct2_translate.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(export)
        .args(["--pieces", "--json", "--threads", "1", "--beam", &beam.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let input: String = sources.iter().map(|s| s.join(" ") + "\n").collect();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("ct2_translate.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let pieces =
                v["pieces"].as_array().expect("pieces").iter().map(|p| p.as_str().expect("str").into()).collect();
            (pieces, v["score"].as_f64().expect("score"))
        })
        .collect()
}

/// Exports `run` and compares CTranslate2 with `s2s translate` (its library call, for the
/// scores; and the binary's text for greedy). Returns `(identical, total, largest score
/// difference)` per beam.
fn identity(python: &str, dir: &Path, run_dir: &Path, label: &str) -> Vec<(usize, usize, usize, f64)> {
    let export = dir.join(format!("{label}-ct2"));
    let out = run(
        &[
            "export",
            run_dir.to_str().expect("utf8"),
            "--to",
            "ctranslate2",
            export.to_str().expect("utf8"),
            "--python",
            python,
        ],
        dir,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("model.bin") && stdout.contains("config.json"), "{stdout}");
    let opened = OpenedRun::open(run_dir, &Which::Best).expect("open run");
    let lp = opened.cfg.model.decoding.length_penalty;
    let texts = sentences();
    let mut figures = Vec::new();
    for beam in [1, 5] {
        let ours: Vec<_> =
            texts.iter().map(|t| opened.translate_n_best(t, beam, 1).expect("translate").remove(0)).collect();
        let sources: Vec<Vec<String>> = ours.iter().map(|t| t.tokens.clone()).collect();
        let theirs = ctranslate2(python, &export, &sources, beam);
        assert_eq!(theirs.len(), ours.len());
        let (mut same, mut worst, mut unfinished) = (0, 0f64, 0);
        for (o, (pieces, score)) in ours.iter().zip(&theirs) {
            if &o.output != pieces {
                continue;
            }
            same += 1;
            // A hypothesis s2s's beam left without EOS (one attention row per piece) has
            // no EOS in its log-probability; CTranslate2's ends with EOS.
            if o.attention.len() == o.output.len() {
                unfinished += 1;
                continue;
            }
            // CTranslate2's score: the log-probability (EOS included) over length^penalty.
            let ours = f64::from(o.log_prob) / ((o.output.len() + 1) as f64).powf(lp);
            worst = worst.max((ours - score).abs());
        }
        eprintln!(
            "{label}, beam {beam}: {same} of {} identical, largest score difference {worst:.2e} \
             ({unfinished} left without EOS by s2s not compared)",
            ours.len()
        );
        figures.push((beam, same, ours.len(), worst));
        if beam == 1 {
            // The binary's greedy text is CTranslate2's from raw text: through the exported
            // tokenizer files (BPE), or the words joined (a word run).
            let input: String = texts.iter().map(|t| format!("{t}\n")).collect();
            let ours = pipe(s2s().args(["translate", run_dir.to_str().expect("utf8"), "--beam", "1"]), &input);
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ct2_translate.py");
            let mut cmd = Command::new(python);
            cmd.arg(script).arg(&export).args(["--threads", "1", "--beam", "1"]);
            if !export.join("source_tokenizer.json").exists() {
                cmd.arg("--pieces");
            }
            let theirs = pipe(&mut cmd, &input);
            let agree = ours.lines().zip(theirs.lines()).filter(|(a, b)| a == b).count();
            let n = texts.len();
            assert!(agree * 100 >= n * 99, "{label}: s2s translate's text agrees with CTranslate2's on {agree} of {n}");
        }
    }
    figures
}

/// Standard output of `cmd` fed `input`.
fn pipe(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn ctranslate2_translates_exported_transformers_as_s2s_does() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = [
        ("pre-sinusoidal-tied", vec![]),
        (
            "post-learned-shared",
            vec!["model.norm=post", "model.positions=learned", "data.joint_vocab=true", "model.tie_embeddings=all"],
        ),
        ("post-sinusoidal-untied", vec!["model.norm=post", "model.tie_embeddings=none", "model.encoder_layers=1"]),
    ];
    let mut trained: Vec<(&str, PathBuf)> = runs.iter().map(|(l, s)| (*l, train(dir.path(), l, s))).collect();
    trained.push(("bpe-joint", train_bpe(dir.path())));
    // Without the package's Python the export fails in one line and leaves no folder.
    let missing = dir.path().join("no-python-ct2");
    let first = trained[0].1.to_str().expect("utf8").to_string();
    let out = run(
        &["export", &first, "--to", "ctranslate2", missing.to_str().expect("utf8"), "--python", "/nonexistent/python"],
        dir.path(),
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.trim().lines().count() == 1 && stderr.contains("pip install ctranslate2"), "{stderr}");
    assert!(!missing.exists(), "a failed export left {}", missing.display());
    // A numbered checkpoint by its step, unpadded.
    let step = newest_step(&trained[0].1);
    let numbered = dir.path().join("numbered-ct2");
    let arg = format!("step-{step}");
    let out = run(
        &[
            "export",
            &first,
            "--to",
            "ctranslate2",
            numbered.to_str().expect("utf8"),
            "--checkpoint",
            &arg,
            "--python",
            &python,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let manifest = std::fs::read_to_string(numbered.join("s2s-export.json")).expect("manifest");
    assert!(manifest.contains(&format!("\"step-{step:08}\"")), "{manifest}");
    for (label, run_dir) in trained {
        for (beam, same, total, worst) in identity(&python, dir.path(), &run_dir, label) {
            assert!(same * 100 >= total * 99, "{label}, beam {beam}: only {same} of {total} identical");
            assert!(worst <= 1e-4, "{label}, beam {beam}: scores differ by {worst}");
        }
    }
}

#[test]
fn export_refuses_a_gru_run_and_a_folder_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=2"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let gru = only_run(dir.path());
    let target = dir.path().join("gru-ct2");
    let out = run(
        &["export", gru.to_str().expect("utf8"), "--to", "ctranslate2", target.to_str().expect("utf8")],
        dir.path(),
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no RNN decoder") && stderr.contains("PyTorch"), "{stderr}");
    assert!(!target.exists(), "nothing written for a refused export");

    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(target.join("keep.txt"), "mine").expect("write");
    let out = run(
        &["export", gru.to_str().expect("utf8"), "--to", "ctranslate2", target.to_str().expect("utf8")],
        dir.path(),
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(std::fs::read_to_string(target.join("keep.txt")).expect("kept"), "mine");
}
