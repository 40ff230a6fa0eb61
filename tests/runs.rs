//! What users do with runs: list, compare, translate, sweep, and reports that stay
//! valid markup whatever the data holds.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn runs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .filter(|p| p.join("run.json").exists())
        .collect();
    v.sort();
    v
}

fn parse_markup(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read");
    let body = text.trim_start_matches("<!DOCTYPE html>\n");
    if let Err(e) = roxmltree::Document::parse(body) {
        panic!("{} does not parse: {e}", path.display());
    }
    assert!(!text.contains("<script"), "{} holds a script tag", path.display());
}

fn all_markup(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_markup(&p));
        } else if p.extension().is_some_and(|x| x == "svg" || x == "html") {
            out.push(p);
        }
    }
    out
}

#[test]
fn compare_shows_only_differing_keys_and_json_has_the_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    for h in ["16", "24"] {
        let out = run(
            &[
                "run",
                cfg.to_str().expect("utf8"),
                "--set",
                &format!("model.hidden_size={h}"),
                "--set",
                "train.epochs=5",
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let runs = runs_in(&dir.path().join("experiments"));
    assert_eq!(runs.len(), 2);
    let out = run(&["compare", "--json", "--out", "cmp"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(v["keys"], serde_json::json!(["model.hidden_size"]));
    for r in v["runs"].as_array().expect("runs") {
        assert!(r["results"]["train_loss"].as_f64().expect("train_loss") > 0.0);
        assert_eq!(r["results"]["epochs"].as_f64(), Some(5.0));
        assert_eq!(r["status"], "completed");
    }
    let table = text(&run(&["compare"], dir.path())).0;
    assert!(table.contains("model.hidden_size") && !table.contains("train.learning_rate"), "{table}");
    let all = text(&run(&["compare", "--all-keys", "--csv"], dir.path())).0;
    assert!(all.contains("train.learning_rate"), "{all}");
    for f in ["cmp/index.html", "cmp/loss.svg"] {
        parse_markup(&dir.path().join(f));
    }
    assert!(dir.path().join("cmp/attention").read_dir().expect("heatmaps").count() >= 10);
}

#[test]
fn list_reports_statuses_including_stale_and_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=3"], dir.path());
    assert!(out.status.success());
    let done = only_run(dir.path());
    let exp = dir.path().join("experiments");
    for (name, status) in [("stale-run", "running"), ("stopped-run", "interrupted"), ("broken-run", "failed")] {
        let d = exp.join(name);
        std::process::Command::new("cp").arg("-r").arg(&done).arg(&d).status().expect("cp");
        let j = std::fs::read_to_string(d.join("run.json"))
            .expect("json")
            .replace("\"completed\"", &format!("\"{status}\""));
        std::fs::write(d.join("run.json"), j).expect("write");
    }
    let mut child = s2s()
        .args(["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=100000", "--set", "run.name=live"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !runs_in(&exp).iter().any(|p| p.to_string_lossy().contains("live-")) {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let listing = text(&run(&["list"], dir.path())).0;
    child.kill().expect("kill");
    child.wait().expect("wait");
    let status_of = |needle: &str| {
        listing.lines().find(|l| l.starts_with(needle)).and_then(|l| l.split_whitespace().nth(1)).map(str::to_string)
    };
    assert_eq!(status_of("tiny-").as_deref(), Some("completed"), "{listing}");
    assert_eq!(status_of("stale-run").as_deref(), Some("stale"), "{listing}");
    assert_eq!(status_of("stopped-run").as_deref(), Some("interrupted"), "{listing}");
    assert_eq!(status_of("broken-run").as_deref(), Some("failed"), "{listing}");
    assert_eq!(status_of("live-").as_deref(), Some("running"), "{listing}");
    // Once the process is gone, the same run is stale.
    let listing = text(&run(&["list"], dir.path())).0;
    let live = listing.lines().find(|l| l.starts_with("live-")).expect("live line");
    assert!(live.contains("stale"), "{listing}");
}

#[test]
fn translate_handles_unknown_words_and_overlong_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=3"], dir.path());
    assert!(out.status.success());
    let r = only_run(dir.path());
    let r_s = r.to_str().expect("utf8");
    let out = run(&["translate", r_s, "i am a zebra"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("zebra") && stderr.contains("UNK"), "{stderr}");
    // The CLI prints exactly what the library translates with the same checkpoint.
    let opened = s2s_run::OpenedRun::open(&r, &s2s_run::Which::Best).expect("open");
    let expected = opened.translate_n_best("i am a zebra", 1, 1).expect("translate");
    assert_eq!(stdout, format!("{}\n", expected[0].output.join(" ")));
    assert!(expected[0].unknown == ["zebra"], "{:?}", expected[0].unknown);
    let long = "i am a student i am a student i am";
    let out = run(&["translate", r_s, long], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("max_length 10"), "{}", text(&out).1);
    let heat = dir.path().join("h.svg");
    let out = run(
        &[
            "translate",
            r_s,
            "--beam",
            "3",
            "--n-best",
            "2",
            "--heatmap",
            heat.to_str().expect("utf8"),
            "he is a teacher",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.lines().count(), 2);
    parse_markup(&heat);
}

#[test]
fn sweep_makes_one_folder_per_grid_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let out = run(
        &[
            "sweep",
            cfg.to_str().expect("utf8"),
            "--grid",
            "model.hidden_size=8,12",
            "--grid",
            "train.learning_rate=0.01,0.02",
            "--set",
            "train.epochs=2",
            "--jobs",
            "2",
        ],
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let runs = sweep_runs(dir.path());
    assert_eq!(runs.len(), 4, "{runs:?}");
    for point in [
        "hidden_size=8-learning_rate=0.01",
        "hidden_size=8-learning_rate=0.02",
        "hidden_size=12-learning_rate=0.01",
        "hidden_size=12-learning_rate=0.02",
    ] {
        assert!(runs.iter().any(|r| r.to_string_lossy().contains(point)), "no run for {point}");
    }
    assert!(stdout.contains("model.hidden_size") && stdout.contains("train.learning_rate"), "{stdout}");
}

#[test]
fn a_sweep_file_crosses_its_variants_with_its_grid() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_config(dir.path(), "");
    let sweeps = dir.path().join("sweeps");
    std::fs::create_dir(&sweeps).expect("mkdir");
    let file = sweeps.join("ablation.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
config = "../tiny.toml"
grid = { "run.seed" = [1, 2] }
[sweep.variants]
baseline = {}
smooth = { "train.label_smoothing" = 0.1, "train.epochs" = 3 }
"#,
    )
    .expect("write");
    let out = run(&["sweep", file.to_str().expect("utf8"), "--set", "train.epochs=2"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let runs = sweep_runs(dir.path());
    assert_eq!(runs.len(), 4, "{runs:?}");
    for point in ["tiny-baseline-seed=1", "tiny-baseline-seed=2", "tiny-smooth-seed=1", "tiny-smooth-seed=2"] {
        assert!(runs.iter().any(|r| r.to_string_lossy().contains(point)), "no run for {point}");
    }
    // The variant's value wins over the command line's --set.
    let smooth = runs.iter().find(|r| r.to_string_lossy().contains("smooth-seed=1")).expect("run");
    let config = std::fs::read_to_string(smooth.join("config.toml")).expect("config");
    assert!(config.contains("label_smoothing = 0.1") && config.contains("epochs = 3"), "{config}");
    assert!(stdout.contains("train.label_smoothing") && stdout.contains("run.seed"), "{stdout}");
    // A sweep file takes no --grid.
    let out = run(&["sweep", file.to_str().expect("utf8"), "--grid", "run.seed=3"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hostile_words_still_give_valid_svg_and_html() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hostile.tsv");
    std::fs::write(
        &data,
        "<script>alert(1)</script> & \"x\"\télève 'y' <b>\nhello & bye\tsalut <i>\n\"quoted\" words\t« mots »\n",
    )
    .expect("write");
    let cfg = dir.path().join("h.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ndataset = \"tsv\"\ntrain_path = \"{}\"\nascii = false\nletters_only = false\nshuffle = false\n\
             [model]\nhidden_size = 8\n[train]\nepochs = 2\nbatch_size = 2\nvalidate_every = 0\n\
             [report]\nsentences = [\"<script>alert(1)</script> & \\\"x\\\"\", \"hello & bye\"]\ntrack_attention = true\n",
            data.display()
        ),
    )
    .expect("write");
    let out = run(&["run", cfg.to_str().expect("utf8")], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let r = only_run(dir.path());
    let files = all_markup(&r);
    assert!(files.iter().any(|f| f.ends_with("report.html")));
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        parse_markup(&f);
    }
    let out = run(&["compare", "--out", "cmp"], dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    parse_markup(&dir.path().join("cmp/index.html"));
}

/// A reader that goes away (`s2s list | head -n 1`) ends a printing command quietly with
/// status 0, and a training run whose output nobody reads trains to its end.
#[test]
fn a_closed_pipe_ends_printing_quietly_and_training_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let closed = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        writer
    };
    let train = s2s()
        .args(["run", cfg.to_str().expect("utf8")])
        .current_dir(dir.path())
        .stdout(closed())
        .output()
        .expect("s2s runs");
    assert!(train.status.success(), "{}", text(&train).1);
    let run = only_run(dir.path());
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json")).expect("json");
    assert_eq!(info["status"], "completed");
    assert_eq!(info["final_metrics"]["epochs"], 30);
    for args in [vec!["list"], vec!["translate", run.to_str().expect("utf8"), "i am a student"], vec!["compare"]] {
        let out = s2s().args(&args).current_dir(dir.path()).stdout(closed()).output().expect("s2s runs");
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// `translate` refuses a beam of 0 and more n-best translations than its beam keeps (it
/// used to decode greedily, and to widen the beam and print `PAD`), and names the line of
/// standard input that is not UTF-8.
#[test]
fn translate_refuses_what_it_cannot_do_and_names_stdin_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    assert!(run(&["run", cfg.to_str().expect("utf8")], dir.path()).status.success());
    let run_dir = only_run(dir.path());
    let run_s = run_dir.to_str().expect("utf8");
    for (args, needle) in [
        (vec!["--beam", "0"], "--beam 0: the beam must be at least 1"),
        (vec!["--beam", "2", "--n-best", "50"], "--n-best 50 is more than --beam 2"),
        (vec!["--n-best", "0"], "--n-best 0"),
    ] {
        let mut all = vec!["translate", run_s, "i am a student"];
        all.extend(&args);
        let out = run(&all, dir.path());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle) && stderr.trim_end().lines().count() == 1, "{args:?}: {stderr}");
    }
    // Without --beam, --n-best widens the run's beam: three hypotheses, none with PAD.
    let out = run(&["translate", run_s, "i am a student", "--n-best", "3"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(!stdout.contains("PAD") && !stdout.contains("SOS"), "{stdout}");
    // Regression: an emoji the normalization removes was dropped without a word.
    let out = run(&["translate", run_s, "i am a student \u{1F600}"], dir.path());
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("\u{1F600} dropped by the run's normalization"), "{stderr}");
    let mut child = s2s()
        .args(["translate", run_s])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"i am a student\n\xff\xfe broken\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("standard input, line 2") && stderr.contains("UTF-8"), "{stderr}");
}

/// Regression: a run whose metrics.csv is garbage was listed and compared as a normal
/// completed run with every metric "–" and no warning.
#[test]
fn a_damaged_metrics_file_is_listed_as_damaged_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    assert!(run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=2"], dir.path()).status.success());
    let r = only_run(dir.path());
    std::fs::write(r.join("metrics.csv"), b"\x00\x01garbage\nmore garbage\n").expect("write");
    for args in [vec!["list"], vec!["compare"]] {
        let out = run(&args, dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("is damaged") && stderr.contains("metrics.csv"), "{args:?}: {stderr}");
        if args == ["list"] {
            assert!(stdout.contains("damaged"), "{stdout}");
        }
    }
}

/// A run is named by its folder, `latest`, or a unique prefix of its name in
/// experiments/; a prefix that fits several runs or none says so.
#[test]
fn runs_are_named_by_latest_or_a_unique_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    assert!(run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=2"], dir.path()).status.success());
    for name in ["latest", "tiny"] {
        let out = run(&["translate", name, "i am a student"], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success() && stdout.lines().count() == 1, "{name}: {stderr}");
    }
    let out = run(&["eval", "nothing-like-it"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no run in experiments starts with it"), "{stderr}");
    assert!(run(&["run", cfg.to_str().expect("utf8"), "--set", "train.epochs=1"], dir.path()).status.success());
    let out = run(&["report", "tiny"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 runs in experiments start with it"), "{stderr}");
    assert!(run(&["report", "latest"], dir.path()).status.success());
}
