//! The synthetic reverse task learns exact answers and anti-diagonal attention, and
//! `s2s eval` reproduces what validation logged for the same checkpoint.

mod common;

use common::*;

#[test]
fn reverse_task_is_learned_with_anti_diagonal_attention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/reverse.toml");
    let sets = [
        "run.output_dir=experiments",
        "model.hidden_size=64",
        "model.embedding_size=16",
        "data.synthetic_alphabet=6",
        "data.synthetic_max_length=5",
        "data.synthetic_count=2000",
        "train.epochs=25",
        "train.learning_rate=0.01",
    ];
    let mut args = vec!["run".to_string(), cfg.display().to_string()];
    for s in sets {
        args.push("--set".into());
        args.push(s.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let r = only_run(dir.path());
    let r_s = r.to_str().expect("utf8");

    let out = run(&["eval", r_s, "--split", "test", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    let exact = v["exact_match"].as_f64().expect("exact");
    let align = v["alignment"].as_f64().expect("alignment");
    assert!(exact >= 0.99, "exact match {exact}");
    assert!(align >= 0.95, "attention argmax on the anti-diagonal {align}");
    assert!(r.join("eval-test.json").is_file());

    // eval on the validation split with the best checkpoint = what validation logged then.
    let out = run(&["eval", r_s, "--split", "valid", "--checkpoint", "best", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    let bleu = column(&r.join("metrics.csv"), "valid_bleu");
    let loss = column(&r.join("metrics.csv"), "valid_loss");
    let best = bleu
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.parse::<f64>().ok().map(|b| (i, b)))
        .fold((0, f64::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
    assert_eq!(v["bleu"].as_f64().expect("bleu"), best.1);
    assert_eq!(v["loss"].as_f64().expect("loss"), loss[best.0].parse::<f64>().expect("loss"));
}
