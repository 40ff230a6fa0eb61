//! End to end: `s2s run` trains a tiny model and writes a complete run folder.

mod common;

use common::*;

#[test]
fn tiny_run_writes_a_complete_run_folder_and_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8")], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("parameters:") && stdout.contains("encoder.gru"), "{stdout}");
    assert!(stdout.contains("run folder:"), "{stdout}");

    let run_dir = only_run(dir.path());
    // The closing lines say where the report is, and it is there.
    let report = run_dir.join("report.html");
    assert!(
        stdout.contains(&format!("open the report: {}", report.strip_prefix(dir.path()).expect("rel").display())),
        "{stdout}"
    );
    assert!(report.is_file());
    for f in [
        "config.toml",
        "run.json",
        "metrics.csv",
        "loss.svg",
        "translations.txt",
        "checkpoints/step-00000090/model.safetensors",
        "checkpoints/step-00000090/optimizer.safetensors",
        "checkpoints/step-00000090/state.json",
        "checkpoints/src_vocab.json",
        "checkpoints/tgt_vocab.json",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).expect("run.json")).expect("json");
    assert_eq!(info["status"], "completed");
    assert_eq!(info["seed"], 3);
    assert!(info["parameters"]["total"].as_u64().expect("total") > 1000);
    assert!(info["final_metrics"]["train_loss"].as_f64().is_some());
    assert_eq!(column(&run_dir.join("metrics.csv"), "epoch").len(), 30);

    // Readable tensor names, loadable by any safetensors reader.
    let tensors = candle_core::safetensors::load(
        run_dir.join("checkpoints/step-00000090/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .expect("safetensors");
    for name in ["encoder.embedding.weight", "encoder.gru.weight_ih_l0", "decoder.gru.weight_hh_l0", "decoder.out.bias"]
    {
        assert!(tensors.contains_key(name), "no {name} in {:?}", tensors.keys());
    }

    assert_xml(&run_dir.join("loss.svg"));
    let svgs: Vec<_> = std::fs::read_dir(run_dir.join("attention")).expect("attention").collect();
    assert_eq!(svgs.len(), 5);
    for e in svgs {
        assert_xml(&e.expect("entry").path());
    }

    // The reloaded checkpoint translates exactly as the run did at its end.
    let translations = std::fs::read_to_string(run_dir.join("translations.txt")).expect("translations");
    let blocks: Vec<&str> = translations.split("\n\n").filter(|b| !b.trim().is_empty()).collect();
    assert_eq!(blocks.len(), 5);
    for b in blocks {
        let src = b.lines().find_map(|l| l.strip_prefix("> ")).expect("source line");
        let pred = b.lines().find_map(|l| l.strip_prefix("< ")).unwrap_or("");
        let out = run(&["translate", run_dir.to_str().expect("utf8"), "--checkpoint", "last", src], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stdout.trim(), pred.trim(), "{src}");
    }
}

#[test]
fn same_config_and_seed_give_identical_losses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for out_dir in [&a, &b] {
        let set = format!("run.output_dir={}", out_dir.display());
        let out = run(&["run", cfg.to_str().expect("utf8"), "--set", &set, "--set", "train.epochs=8"], dir.path());
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let first = |d: &std::path::Path| {
        let run = std::fs::read_dir(d).expect("dir").next().expect("a run").expect("entry").path();
        column(&run.join("metrics.csv"), "train_loss")
    };
    let (la, lb) = (first(&a), first(&b));
    assert_eq!(la.len(), 8);
    assert_eq!(la, lb);
}

/// report.html tells the run's story at a glance: the model line and headline results
/// first, the loss curve before the translations, the heatmaps in the translation table's
/// order captioned by their sentences, no metrics column empty in every row; a run of few
/// epochs draws its loss by step from steps.csv.
#[test]
fn the_report_opens_with_the_model_and_results_and_follows_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(
        &["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=3", "--set", "report.loss_every=1"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = only_run(dir.path());
    let page = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle} not on the page"));
    // The model line: family, parameters, optimizer and learning rate, epochs.
    for needle in ["GRU, ", " parameters · ", "learning rate 0.02", "3 epochs"] {
        at(needle);
    }
    assert!(at("<h2>Loss</h2>") < at("<h2>Translations</h2>"), "the loss curve comes before the translations");
    // Heatmaps in the table's order, each captioned by its sentence, not its file name.
    let table = std::fs::read_to_string(run_dir.join("translations.txt")).expect("translations");
    let sources: Vec<&str> = table.lines().filter_map(|l| l.strip_prefix("> ")).collect();
    let attention = at("<h2>Attention</h2>");
    let captions: Vec<usize> = sources
        .iter()
        .map(|s| attention + page[attention..].find(&format!("<figcaption>{s}</figcaption>")).expect(s))
        .collect();
    assert!(captions.windows(2).all(|w| w[0] < w[1]), "heatmaps out of the table's order: {captions:?}");
    assert!(!page.contains("<figcaption>i-am-a-student</figcaption>"), "a slug as a caption");
    // No validation here: no valid_* column in the metrics table.
    let metrics = &page[at("<h2>Metrics</h2>")..];
    assert!(!metrics[..metrics.find("</table>").expect("table")].contains("valid_loss"), "an empty column is shown");
    // 3 epochs of 3 steps, the loss every step: loss.svg is drawn by step.
    assert_eq!(column(&run_dir.join("steps.csv"), "step"), ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let loss = std::fs::read_to_string(run_dir.join("loss.svg")).expect("loss.svg");
    assert!(loss.contains(">step<") || loss.contains("\nstep\n"), "loss.svg is not drawn by step");
}
