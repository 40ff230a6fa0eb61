//! `s2s serve` for the end-to-end tests: trained runs to serve (made once per build and
//! shared between test processes), the server on a free port, and a little HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{run, s2s, text, tiny_config};

/// A running `s2s serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub stderr_path: PathBuf,
}

impl Server {
    /// `s2s serve --port 0 ARGS` in `cwd`, once it has said its URL.
    pub fn start(args: &[&str], cwd: &Path) -> Self {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let (file, stderr_path) = log.keep().expect("keep log");
        let mut child = s2s()
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .expect("s2s serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("open ") {
                        break rest.split_whitespace().next().expect("url").trim_end_matches('/').to_string();
                    }
                }
                _ => {
                    let _ = child.wait();
                    panic!("s2s serve stopped: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default());
                }
            }
        };
        Self { child, url, stderr_path }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// GET `path`: (status, body as JSON, or Null).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        answer(agent().get(&format!("{}{path}", self.url)).call())
    }

    /// POST `body` (raw bytes) to `path`.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        answer(agent().post(&format!("{}{path}", self.url)).header("Content-Type", "application/json").send(body))
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, body.to_string().as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// An HTTP client that returns 4xx and 5xx answers rather than errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, serde_json::Value) {
    let mut r = r.expect("an HTTP answer");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// A tiny Transformer (reverse task, 2+2 layers of 4 heads) config in `dir`.
pub fn tiny_reverse_transformer(dir: &Path) -> Vec<String> {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/reverse-transformer.toml");
    [
        "run",
        cfg.to_str().expect("utf8"),
        "--set",
        "data.synthetic_count=300",
        "--set",
        "train.epochs=3",
        "--set",
        "train.warmup_steps=10",
        "--set",
        "run.name=tf",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--set=run.output_dir={}", dir.join("experiments").display())])
    .collect()
}

/// A folder with `experiments/` holding two trained runs, a GRU (`gru-…`, the notebook's
/// pairs) and a Transformer (`tf-…`, the reverse task), trained once per build of the
/// binary and shared by the tests (behind a file lock). Tests must not change it.
pub fn fixture() -> PathBuf {
    let bin = std::fs::metadata(env!("CARGO_BIN_EXE_s2s")).expect("binary");
    let built = bin.modified().expect("mtime").duration_since(std::time::UNIX_EPOCH).expect("epoch").as_nanos();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-fixture-{built}-{}", bin.len()));
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let lock = std::fs::File::create(dir.join(".lock")).expect("lock file");
    lock.lock().expect("lock");
    let ready = dir.join(".ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(dir.join("experiments"));
        let cfg = tiny_config(&dir, "");
        let out = run(
            &["run", cfg.to_str().expect("utf8"), "--set", "run.name=gru", "--set", "train.validate_every=5"],
            &dir,
        );
        assert!(out.status.success(), "{}", text(&out).1);
        let args = tiny_reverse_transformer(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, &dir);
        assert!(out.status.success(), "{}", text(&out).1);
        std::fs::write(&ready, b"").expect("ready");
    }
    dir
}

/// The fixture's run whose name starts with `prefix`.
pub fn run_named(fixture: &Path, prefix: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(fixture.join("experiments"))
        .expect("experiments")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names.pop().expect("a run")
}

/// Every file under `dir` with its size and modification time, to show nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let meta = e.metadata().expect("meta");
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), meta.len(), meta.modified().expect("mtime")));
        }
    }
    out.sort();
    out
}
