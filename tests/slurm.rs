//! Sweeps on a real Slurm cluster: the one-node cluster `scripts/slurm-local.sh start`
//! brings up on localhost (`.ci/run` starts it). Under CI these tests fail when the cluster
//! is not up; elsewhere they run when `sbatch` is on PATH and say "not run" otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Whether to run: the cluster answers, or (outside CI, without sbatch) a "not run" line.
fn cluster() -> bool {
    let has_sbatch = Command::new("sbatch").arg("--version").output().is_ok_and(|o| o.status.success());
    let ci = std::env::var_os("CI").is_some();
    if !has_sbatch && !ci {
        eprintln!("NOT RUN: no sbatch on PATH (start a local cluster with scripts/slurm-local.sh start)");
        return false;
    }
    let idle = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| !l.contains("down")));
    assert!(idle, "the Slurm cluster is not up: run scripts/slurm-local.sh start");
    true
}

/// `s2s sweep status DIR --json`.
fn status(sweep: &Path) -> Vec<serde_json::Value> {
    let out = s2s().args(["sweep", "status", "--json"]).arg(sweep).output().expect("status");
    assert!(out.status.success(), "{}", text(&out).1);
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The status table, as users see it.
fn status_table(sweep: &Path) -> String {
    let out = s2s().args(["sweep", "status"]).arg(sweep).output().expect("status");
    assert!(out.status.success(), "{}", text(&out).1);
    text(&out).0
}

/// Polls `status` until `done` holds for it (or panics after `secs`).
fn wait_for(
    sweep: &Path,
    secs: u64,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(sweep);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "waited {secs}s for {what}:\n{}", status_table(sweep));
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn all(s: &[serde_json::Value], run: &str) -> bool {
    s.iter().all(|p| p["run"] == run && !queued(p))
}

fn queued(p: &serde_json::Value) -> bool {
    let s = p["slurm"].as_str().unwrap_or("");
    s.starts_with("PENDING") || s.starts_with("RUNNING")
}

/// Submits a sweep from `cwd` and returns its folder.
fn submit(cwd: &Path, args: &[&str]) -> PathBuf {
    let out = run(&[&["sweep"], args, &["--launcher", "slurm"]].concat(), cwd);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("submitted job"), "{stdout}");
    let line = stdout.lines().find_map(|l| l.strip_prefix("sweep folder: ")).expect("folder line");
    PathBuf::from(line)
}

fn job_id(sweep: &Path, k: usize) -> String {
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("jobs.json")).expect("jobs.json")).expect("json");
    jobs[k]["job_id"].as_str().expect("id").to_string()
}

fn sessions(run: &Path) -> Vec<serde_json::Value> {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json")).expect("json");
    info["sessions"].as_array().expect("sessions").clone()
}

#[test]
fn a_four_point_sweep_of_base_completes_and_compares_by_its_grid_keys() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/base.toml");
    let sweep = submit(
        dir.path(),
        &[
            base.to_str().expect("utf8"),
            "--grid",
            "model.hidden_size=16,32",
            "--grid",
            "train.learning_rate=0.01,0.02",
            "--set",
            "train.epochs=3",
            "--set",
            "run.output_dir=experiments",
        ],
    );
    assert!(sweep.starts_with(dir.path().join("experiments")), "{sweep:?}");
    let script = std::fs::read_to_string(sweep.join("job.sbatch")).expect("job.sbatch");
    assert!(script.contains("#SBATCH --array=0-3") && script.contains("--signal=B:USR2@"), "{script}");
    let s = wait_for(&sweep, 240, "4 completed points", |s| all(s, "completed"));
    assert_eq!(s.len(), 4);
    assert!(s.iter().all(|p| p["epochs"] == 3), "{s:?}");
    let table = status_table(&sweep);
    assert!(table.contains("4 points: 4 completed"), "{table}");
    let out = s2s().args(["compare", "--json"]).arg(&sweep).output().expect("compare");
    assert!(out.status.success(), "{}", text(&out).1);
    let cmp: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cmp["keys"], serde_json::json!(["model.hidden_size", "train.learning_rate"]));
    assert_eq!(cmp["runs"].as_array().expect("runs").len(), 4);
    // The runs are listed with the others.
    let out = run(&["list"], dir.path());
    assert_eq!(text(&out).0.lines().filter(|l| l.contains("completed")).count(), 4, "{}", text(&out).0);
}

#[test]
fn a_preempted_point_requeues_and_ends_byte_identical_to_an_uninterrupted_run() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let sets = ["train.epochs=6000", "train.checkpoint_every=1000"];
    let sweep =
        submit(dir.path(), &[cfg.to_str().expect("utf8"), "--grid", "run.seed=5", "--set", sets[0], "--set", sets[1]]);
    let job = format!("{}_0", job_id(&sweep, 0));
    wait_for(&sweep, 240, "training under way", |s| s[0]["run"] == "running" && s[0]["epochs"].as_u64() > Some(100));
    let before = status_table(&sweep);
    eprintln!("before the signal:\n{before}");
    let out = Command::new("scancel").args(["-b", "-s", "USR2", &job]).output().expect("scancel");
    assert!(out.status.success(), "{}", text(&out).1);
    let s = wait_for(&sweep, 120, "the requeue", |s| {
        s[0]["slurm"].as_str().is_some_and(|x| x.starts_with("PENDING")) && s[0]["run"] == "interrupted"
    });
    eprintln!("requeued:\n{}", status_table(&sweep));
    assert!(s[0]["epochs"].as_u64() < Some(6000), "{s:?}");
    // Real clusters hold a requeued job ~120 s (BeginTime); the test does not wait.
    let out =
        Command::new("scontrol").args(["update", &format!("JobId={job}"), "StartTime=now"]).output().expect("scontrol");
    assert!(out.status.success(), "{}", text(&out).1);
    let s = wait_for(&sweep, 240, "completion after the restart", |s| all(s, "completed"));
    let after = status_table(&sweep);
    eprintln!("after:\n{after}");
    assert_eq!(s[0]["restarts"], 1, "{after}");
    let run_dir = sweep.join("runs/tiny-seed=5");
    let ss = sessions(&run_dir);
    assert_eq!(ss.len(), 2, "{ss:?}");
    assert_eq!((ss[0]["status"].as_str(), ss[1]["status"].as_str()), (Some("interrupted"), Some("completed")));
    assert_eq!(
        (ss[0]["slurm"]["restart_count"].as_u64(), ss[1]["slurm"]["restart_count"].as_u64()),
        (Some(0), Some(1))
    );
    // The same config, trained here in one go.
    let out = run(
        &[
            "run",
            cfg.to_str().expect("utf8"),
            "--set",
            sets[0],
            "--set",
            sets[1],
            "--set",
            "run.seed=5",
            "--set",
            "run.output_dir=local",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let local = std::fs::read_dir(dir.path().join("local")).expect("local").flatten().next().expect("run").path();
    let last = format!("step-{:08}", newest_step(&local));
    assert_eq!(newest_step(&local), newest_step(&run_dir));
    for f in ["model.safetensors", "optimizer.safetensors"] {
        let a = std::fs::read(local.join("checkpoints").join(&last).join(f)).expect("local");
        let b = std::fs::read(run_dir.join("checkpoints").join(&last).join(f)).expect("sweep");
        assert!(a == b, "{last}/{f} differs between the preempted sweep point and the uninterrupted run");
        eprintln!("{last}/{f}: {} bytes, identical", a.len());
    }
}

#[test]
fn a_crashed_point_shows_its_error_and_resubmit_reruns_only_it() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = "i am cold .\tj ai froid .\nhe is tall .\til est grand .\nwe are here .\tnous sommes ici .\n";
    for f in ["a.tsv", "b.tsv", "c.tsv"] {
        std::fs::write(dir.path().join(f), pairs).expect("write");
    }
    let cfg = tiny_config(dir.path(), "");
    // Held, so that b.tsv can disappear between submission and start.
    let sweep = submit(
        dir.path(),
        &[
            cfg.to_str().expect("utf8"),
            "--grid",
            "data.train_path=a.tsv,b.tsv,c.tsv",
            "--set",
            "data.dataset=tsv",
            "--set",
            "train.epochs=3",
            "--slurm",
            "extra=--hold",
        ],
    );
    let job = job_id(&sweep, 0);
    std::fs::rename(dir.path().join("b.tsv"), dir.path().join("b.tsv.away")).expect("rename");
    let out = Command::new("scontrol").args(["release", &job]).output().expect("release");
    assert!(out.status.success(), "{}", text(&out).1);
    let s = wait_for(&sweep, 240, "the points to end", |s| s.iter().all(|p| !queued(p) && p["run"] != "running"));
    let table = status_table(&sweep);
    eprintln!("{table}");
    assert_eq!((s[0]["run"].as_str(), s[2]["run"].as_str()), (Some("completed"), Some("completed")), "{table}");
    assert_eq!(s[1]["run"], "failed", "{table}");
    let error = s[1]["error"].as_str().expect("error line");
    assert!(error.contains("b.tsv"), "{error}");
    assert!(table.contains("2 completed") && table.contains("1 failed"), "{table}");
    std::fs::rename(dir.path().join("b.tsv.away"), dir.path().join("b.tsv")).expect("rename");
    let out = s2s().args(["sweep", "resubmit"]).arg(&sweep).output().expect("resubmit");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("resubmitted point(s) 1 as job"), "{stdout}");
    // The resubmission uses the sweep's job.sbatch, --hold included.
    let out = Command::new("scontrol").args(["release", &job_id(&sweep, 1)]).output().expect("release");
    assert!(out.status.success(), "{}", text(&out).1);
    wait_for(&sweep, 240, "the resubmitted point", |s| all(s, "completed"));
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("jobs.json")).expect("jobs")).expect("json");
    assert_eq!(jobs[1]["points"], serde_json::json!([1]));
    for label in ["train_path=a.tsv", "train_path=c.tsv"] {
        assert_eq!(sessions(&sweep.join(format!("runs/tiny-{label}"))).len(), 1, "{label} was not rerun");
    }
    // Nothing is left to resubmit.
    let out = s2s().args(["sweep", "resubmit"]).arg(&sweep).output().expect("resubmit");
    assert!(text(&out).0.contains("nothing to resubmit"), "{}", text(&out).0);
}

#[test]
fn cancel_stops_the_sweep_and_a_rejected_submission_leaves_nothing() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let sweep = submit(
        dir.path(),
        &[cfg.to_str().expect("utf8"), "--grid", "run.seed=1,2", "--set", "train.epochs=3", "--slurm", "extra=--hold"],
    );
    let out = s2s().args(["sweep", "cancel"]).arg(&sweep).output().expect("cancel");
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("cancelled job"), "{}", text(&out).0);
    let s = wait_for(&sweep, 60, "the cancelled tasks to leave the queue", |s| s.iter().all(|p| !queued(p)));
    assert!(s.iter().all(|p| p["run"] == "not started"), "{s:?}");
    // sbatch's own message, one line, exit 2, and no sweep folder.
    let before = std::fs::read_dir(dir.path().join("experiments")).expect("ls").count();
    let out = run(
        &[
            "sweep",
            cfg.to_str().expect("utf8"),
            "--grid",
            "run.seed=1,2",
            "--launcher",
            "slurm",
            "--slurm",
            "partition=no-such-partition",
        ],
        dir.path(),
    );
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sbatch refused the sweep") && stderr.contains("partition"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path().join("experiments")).expect("ls").count(), before);
}

/// Bad inputs that need no cluster: each one line, exit 2, and no sweep folder.
#[test]
fn bad_sweep_inputs_exit_2_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = tiny_config(dir.path(), "");
    let cfg = cfg.to_str().expect("utf8");
    let file = dir.path().join("sweep.toml");
    std::fs::write(&file, "[sweep]\nconfig = \"tiny.toml\"\ngrid = { \"run.seed\" = [1] }\n[sweep.slurm]\nnodes = 2\n")
        .expect("write");
    let empty = tempfile::tempdir().expect("empty PATH");
    let cases: Vec<(Vec<&str>, Option<&Path>, &str)> = vec![
        (
            vec!["sweep", cfg, "--grid", "run.seed=1", "--launcher", "slurm"],
            Some(empty.path()),
            "`sbatch`, which is not on PATH",
        ),
        (
            vec!["sweep", cfg, "--grid", "run.seed=1", "--launcher", "slurm", "--slurm", "nodes=2"],
            None,
            "unknown Slurm key `nodes`",
        ),
        (vec!["sweep", file.to_str().expect("utf8"), "--launcher", "slurm"], None, "unknown Slurm key `nodes`"),
        (vec!["sweep", cfg, "--grid", "run.seed=1", "--launcher", "pbs"], None, "--launcher \"pbs\""),
        (vec!["sweep", cfg, "--grid", "run.seed=1", "--slurm", "signal_seconds=0"], None, "signal_seconds"),
        (
            vec!["sweep", cfg, "--grid", "model.hidden_size=16,0", "--launcher", "slurm"],
            None,
            "sweep point 1 (hidden_size=0): model.hidden_size",
        ),
    ];
    for (args, path, expected) in cases {
        let mut cmd = s2s();
        cmd.args(&args).current_dir(dir.path());
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let out = cmd.output().expect("s2s");
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!dir.path().join("experiments").exists(), "{args:?} left a folder");
    }
    // A folder that is not a sweep's.
    let out = run(&["sweep", "status", dir.path().to_str().expect("utf8")], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is not a sweep folder"), "{}", text(&out).1);
}
