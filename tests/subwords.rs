//! BPE subwords end to end: learning a tokenizer in separate processes, training on raw
//! text, detokenized translations, heatmaps over pieces and words, and the bad inputs.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A small raw corpus with case, accents and punctuation: 120 English–French pairs.
fn corpus(dir: &Path) -> (PathBuf, PathBuf) {
    let subjects = [
        ("The dog", "Le chien"),
        ("A girl", "Une fille"),
        ("The old man", "Le vieil homme"),
        ("Two students", "Deux élèves"),
    ];
    let verbs = [("runs", "court"), ("eats", "mange"), ("sleeps", "dort"), ("waits", "attend"), ("reads", "lit")];
    let places =
        [("in the park.", "dans le parc."), ("near the café.", "près du café."), ("at home!", "à la maison !")];
    let mut train = String::new();
    let mut valid = String::new();
    for (i, ((s, v), p)) in subjects
        .iter()
        .flat_map(|s| verbs.iter().map(move |v| (s, v)))
        .flat_map(|sv| places.iter().map(move |p| (sv, p)))
        .enumerate()
    {
        let line = format!("{} {} {}\t{} {} {}\n", s.0, v.0, p.0, s.1, v.1, p.1);
        if i % 10 == 3 {
            valid.push_str(&line);
        } else {
            train.push_str(&line);
        }
    }
    let (t, v) = (dir.join("train.tsv"), dir.join("valid.tsv"));
    std::fs::write(&t, train).expect("write");
    std::fs::write(&v, valid).expect("write");
    (t, v)
}

fn bpe_config(dir: &Path, extra: &str) -> PathBuf {
    let (t, v) = corpus(dir);
    let cfg = format!(
        r#"
[run]
name = "bpe"
seed = 1
[data]
dataset = "tsv"
train_path = "{}"
valid_path = "{}"
tokenizer = "bpe"
joint_vocab = true
max_vocab_size = 150
max_length = 40
[model]
attention = "bahdanau"
hidden_size = 32
bidirectional = true
max_decode_length = 30
[train]
learning_rate = 0.01
epochs = 2
batch_size = 16
validate_every = 1
checkpoint_every = 1
[report]
tensorboard = false
sentences = ["Two students wait near the café."]
{extra}
"#,
        t.display(),
        v.display()
    );
    let p = dir.join("bpe.toml");
    std::fs::write(&p, cfg).expect("write config");
    p
}

#[test]
fn learning_a_tokenizer_twice_in_two_processes_gives_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let cfg = cfg.to_str().expect("utf8");
    for name in ["a.json", "b.json"] {
        let out = run(&["tokenizer", "train", cfg, "--out", name], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stdout.contains("150 pieces (joint)") && stdout.contains("data.tokenizer_path="), "{stdout}");
    }
    let a = std::fs::read(dir.path().join("a.json")).expect("a");
    assert_eq!(a, std::fs::read(dir.path().join("b.json")).expect("b"), "the same config learned different files");
    // Nothing is overwritten.
    let out = run(&["tokenizer", "train", cfg, "--out", "a.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("already exists"));
    // Separate vocabularies: a folder of two files.
    let out = run(&["tokenizer", "train", cfg, "--set", "data.joint_vocab=false", "--out", "sep"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(dir.path().join("sep/source.json").exists() && dir.path().join("sep/target.json").exists());
}

#[test]
fn a_bpe_run_translates_raw_text_and_draws_pieces_and_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8")], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let run_dir = only_run(dir.path());
    // The tokenizer travels with the run, and its hash is recorded.
    let tok = run_dir.join("tokenizer/source.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tok).expect("tokenizer")).expect("json");
    assert_eq!(json["model"]["type"], "BPE");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).expect("run.json")).expect("json");
    assert_eq!(info["data"]["tokenizer"], "bpe");
    assert_eq!(info["data"]["tokenizer_sha256"].as_array().map(Vec::len), Some(2));
    // The resolved config says what normalization was done: case and accents kept.
    let resolved = std::fs::read_to_string(run_dir.join("config.toml")).expect("config");
    assert!(resolved.contains("ascii = false") && resolved.contains("lowercase = false"), "{resolved}");
    // Heatmaps over pieces and over words.
    let att = run_dir.join("attention");
    let names: Vec<String> = std::fs::read_dir(&att)
        .expect("attention")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".words.svg")), "{names:?}");
    for n in names.iter().filter(|n| n.ends_with(".svg")) {
        assert_xml(&att.join(n));
    }
    // translate takes raw text and prints detokenized text: no word-start marks, no
    // spaces before the final full stop.
    let out = run(&["translate", run_dir.to_str().expect("utf8"), "Two students wait near the café."], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = stdout.trim();
    assert!(!line.is_empty() && !line.contains('\u{2581}') && !line.contains(" ."), "{line:?}");
    // Characters the tokenizer never saw are UNK, said so, and counted by eval.
    let out = run(&["translate", run_dir.to_str().expect("utf8"), "The dog 🐕 runs."], dir.path());
    assert!(out.status.success());
    assert!(text(&out).1.contains("🐕"), "{}", text(&out).1);
    // A text with no tokens translates to an empty line, greedy and with a beam (the beam
    // search failed on it with "cannot reshape tensor of 0 elements").
    for beam in ["1", "3"] {
        let out = run(&["translate", run_dir.to_str().expect("utf8"), "", "--beam", beam], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "beam {beam}: {stderr}");
        assert_eq!(stdout, "\n", "beam {beam}");
    }
    let odd = dir.path().join("odd.tsv");
    std::fs::write(&odd, "The dog 🐕 runs 雪.\tLe chien court.\n").expect("write");
    let out =
        run(&["eval", run_dir.to_str().expect("utf8"), "--data", odd.to_str().expect("utf8"), "--json"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).expect("eval json");
    assert_eq!(eval["unknown_tokens"], 2, "{stdout}");
}

#[test]
fn resume_refuses_a_changed_tokenizer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let cfg_s = cfg.to_str().expect("utf8");
    assert!(run(&["tokenizer", "train", cfg_s, "--out", "tok.json"], dir.path()).status.success());
    let out = run(&["run", cfg_s, "--set", "data.tokenizer_path=tok.json"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = only_run(dir.path());
    // The same tokenizer file learned with a smaller vocabulary.
    std::fs::remove_file(dir.path().join("tok.json")).expect("rm");
    let out = run(&["tokenizer", "train", cfg_s, "--set", "data.max_vocab_size=120", "--out", "tok.json"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let out = run(&["resume", run_dir.to_str().expect("utf8"), "--epochs", "3"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tokenizer") && stderr.contains("changed"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn bad_tokenizer_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let cfg_s = cfg.to_str().expect("utf8");
    std::fs::write(dir.path().join("corrupt.json"), "{ not json").expect("write");
    let specials = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/data/tests/fixtures/python_bpe.json"),
    )
    .expect("fixture")
    .replace("\"<unk>\"", "\"[UNK]\"");
    std::fs::write(dir.path().join("specials.json"), specials).expect("write");
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "data.tokenizer_path=missing.json"], "missing.json"),
        (&["--set", "data.tokenizer_path=corrupt.json"], "corrupt.json"),
        (&["--set", "data.tokenizer_path=specials.json"], "special tokens do not match"),
        (&["--set", "data.max_vocab_size=0"], "data.max_vocab_size"),
        (&["--set", "data.max_vocab_size=10"], "alphabet"),
        (&["--set", "data.max_length=2000"], "data.max_length"),
        (&["--set", "train.batch_tokens=8"], "train.batch_tokens"),
    ];
    for (sets, needle) in cases {
        let mut args = vec!["run", cfg_s];
        args.extend_from_slice(sets);
        let out = run(&args, dir.path());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {stderr}");
        assert!(stderr.contains(needle), "{sets:?}: {stderr:?} lacks {needle:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{sets:?}: {stderr:?}");
        assert!(!dir.path().join("experiments").exists(), "{sets:?} left a run folder");
    }
}

#[test]
fn token_batches_train() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.batch_tokens=200"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let loss = column(&only_run(dir.path()).join("metrics.csv"), "train_loss");
    assert_eq!(loss.len(), 2);
    let (a, b): (f64, f64) = (loss[0].parse().expect("number"), loss[1].parse().expect("number"));
    assert!(b < a, "loss went from {a} to {b}");
}

#[test]
fn location_attention_refuses_sentences_beyond_its_max_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bpe_config(dir.path(), "");
    let sets =
        ["--set", "model.attention=\"location\"", "--set", "model.bidirectional=false", "--set", "train.epochs=1"];
    let mut args = vec!["run", cfg.to_str().expect("utf8")];
    args.extend_from_slice(&sets);
    let out = run(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = only_run(dir.path());
    let long = "The old man reads in the park. ".repeat(6);
    let out = run(&["translate", run_dir.to_str().expect("utf8"), long.trim()], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("max_length 40") && stderr.trim_end().lines().count() == 1, "{stderr}");
}
