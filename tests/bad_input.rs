//! Every bad input exits with status 2 and one line naming the problem, leaving no run folder.

mod common;

use common::*;

#[test]
fn bad_inputs_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &[&str])] = &[
        ("[train]\nlerning_rate = 0.1\n", "did you mean `learning_rate`", &[]),
        ("[train\nepochs = 1\n", "line 1, column", &[]),
        ("[train]\nepochs = \"ten\"\n", "train.epochs", &[]),
        ("[model]\nhidden_size = 0\n", "model.hidden_size", &[]),
        ("[train]\nlearning_rate = 0.0\n", "train.learning_rate", &[]),
        ("[train]\nlearning_rate = nan\n", "train.learning_rate", &[]),
        ("[train]\nepochs = 0\n", "train.epochs", &[]),
        ("[data]\ndataset = \"europarl\"\n", "europarl", &[]),
        ("[run]\ndevice = \"tpu\"\n", "tpu", &[]),
        ("[run]\ndevice = \"cuda\"\n", "--features cuda", &[]),
        ("", "expected key=value", &["--set", "train.epochs"]),
        ("[data]\ndataset = \"tsv\"\npath = \"missing.tsv\"\n", "missing.tsv", &[]),
        ("[train]\nteacher_forcing_ratio = 1.5\n", "train.teacher_forcing_ratio", &[]),
        ("[model]\narchitecture = \"lstm\"\n", "model.architecture", &[]),
        // Regression: one zero too many used to abort with a failed 120 GB allocation.
        ("", "model.hidden_size = 100000", &["--set", "model.hidden_size=100000"]),
        // Regression: a data file given to a dataset that reads none was silently ignored.
        ("", "data.path in --set means nothing for data.dataset = \"seed\"", &["--set", "data.path=pairs.tsv"]),
        ("[data]\nsynthetic_count = 5\n", "data.synthetic_count in", &[]),
        // Regression: /dev/zero as the data file grew to 10 GB of memory.
        ("[data]\ndataset = \"tsv\"\npath = \"/dev/zero\"\n", "/dev/zero: not a regular file", &[]),
        // Regression: the threads' gradient copies were blamed on model.hidden_size.
        ("", "run.threads = 100000", &["--set", "run.threads=100000"]),
    ];
    for (toml, needle, extra) in cases {
        if cfg!(feature = "cuda") && needle.contains("cuda") {
            continue;
        }
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, toml).expect("write");
        let mut args = vec!["run", p.to_str().expect("utf8")];
        args.extend_from_slice(extra);
        let out = run(&args, dir.path());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{toml:?}: {stderr}");
        assert!(stderr.contains(needle), "{toml:?}: {stderr:?} lacks {needle:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{toml:?}: {stderr:?}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
        assert!(!dir.path().join("experiments").exists(), "{toml:?} left a run folder");
    }
    let out = run(&["run", "no/such/config.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no/such/config.toml"));
    // Regression: an error that names its own cause printed the cause a second time.
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[data]\ndataset = \"tsv\"\npath = \"missing.tsv\"\n").expect("write");
    let stderr = text(&run(&["run", p.to_str().expect("utf8")], dir.path())).1;
    assert_eq!(stderr.matches("os error").count(), 1, "the cause once: {stderr:?}");
    // Regression: a FIFO as the config or the data file waited forever for a writer.
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let fifo_s = fifo.to_str().expect("utf8");
    let data = dir.path().join("fifo-data.toml");
    std::fs::write(&data, format!("[data]\ndataset = \"tsv\"\npath = \"{fifo_s}\"\n")).expect("write");
    for args in [vec!["run", fifo_s], vec!["run", data.to_str().expect("utf8")]] {
        let out = run(&args, dir.path());
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
    // An environment variable's bad value names the variable the user set.
    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, "").expect("write");
    let out = s2s()
        .args(["run", ok.to_str().expect("utf8")])
        .env("S2S_TRAIN__EPOCHS", "ten")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("train.epochs in the environment variable S2S_TRAIN__EPOCHS"), "{stderr}");
}

#[test]
fn config_layering_file_env_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let show = |env: Option<&str>, sets: &[&str]| {
        let mut c = s2s();
        c.arg("config").arg(&cfg).args(sets).current_dir(dir.path());
        if let Some(v) = env {
            c.env("S2S_TRAIN__LEARNING_RATE", v);
        }
        let out = c.output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t: toml::Table = String::from_utf8_lossy(&out.stdout).parse().expect("toml");
        t["train"]["learning_rate"].as_float().expect("float")
    };
    assert_eq!(show(None, &[]), 0.02);
    assert_eq!(show(Some("0.5"), &[]), 0.5);
    assert_eq!(show(Some("0.5"), &["--set", "train.learning_rate=0.25"]), 0.25);
}
