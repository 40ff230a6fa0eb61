//! A third model family that lives wholly in `crates/model` (`bag_of_words/`, behind the
//! `example-family` feature the tests turn on) goes through everything a family does:
//! its keys read and written, other families' keys refused, training, report, resume,
//! translation and evaluation. Nothing outside `crates/model` names it.

mod common;

use common::*;

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    config_file(
        dir,
        "bow",
        &format!(
            "[run]\nname = \"bow\"\nseed = 1\n[data]\ndataset = \"seed\"\n[model]\narchitecture = \"bag-of-words\"\nhidden_size = 12\n{extra}[train]\nlearning_rate = 0.05\nepochs = 20\nbatch_size = 2\nvalidate_every = 0\n[report]\nsentences = [\"i am a student\"]\n"
        ),
    )
}

#[test]
fn a_family_that_lives_in_the_model_crate_trains_resumes_and_translates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "");
    let cfg_s = cfg.to_str().expect("utf8");

    // Its keys are its struct's: written to the resolved config, others refused.
    let out = run(&["config", cfg_s], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("architecture = \"bag-of-words\"") && stdout.contains("hidden_size = 12"), "{stdout}");
    assert!(!stdout.contains("\nattention =") && !stdout.contains("\nheads ="), "{stdout}");
    let out = run(&["config", cfg_s, "--set", "model.heads=2"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("model.heads in --set means nothing for model.architecture = \"bag-of-words\""),
        "{stderr}"
    );
    let out = run(&["config", cfg_s, "--set", "model.hiden_size=2"], dir.path());
    assert!(text(&out).1.contains("did you mean `hidden_size`"), "{}", text(&out).1);

    // Trained for 10 of 20 epochs, resumed to the end, as the other families are.
    let out = run(&["run", cfg_s, "--set", "train.epochs=10"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("model: bag of words (the example family), hidden 12"), "{stdout}");
    let run_dir = only_run(dir.path());
    let run_s = run_dir.to_str().expect("utf8");
    let out = run(&["resume", run_s, "--epochs", "20"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let losses: Vec<f64> =
        column(&run_dir.join("metrics.csv"), "train_loss").iter().map(|v| v.parse().expect("loss")).collect();
    assert_eq!(losses.len(), 20);
    assert!(losses[19] < losses[0] * 0.5, "it learns: {losses:?}");
    assert!(run_dir.join("report.html").is_file() && run_dir.join("attention").is_dir());

    // Opened from its checkpoint to translate, greedy and beam, and to evaluate.
    for extra in [vec![], vec!["--beam", "3", "--n-best", "2"]] {
        let mut args = vec!["translate", run_s, "i am a student"];
        args.extend(extra);
        let out = run(&args, dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success() && !stdout.trim().is_empty(), "{stdout}{stderr}");
    }
    let out = run(&["eval", run_s, "--split", "train", "--json"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(eval["exact_match"], 1.0, "it learned the five pairs: {stdout}");
    // The notebook's three-word sentences have no 4-grams: BLEU 0 comes with the reason.
    assert_eq!(eval["bleu"], 0.0, "{stdout}");
    assert!(eval["note"].as_str().is_some_and(|n| n.contains("no 4-grams")), "{stdout}");
}
