//! `s2s serve`'s JSON API end to end: listing, run details, greedy and beam translation,
//! a Transformer's heads, and the safety rules (names that leave the served folders, bad
//! JSON, oversized bodies, a damaged checkpoint, nothing written, concurrent clients).

mod common;

use std::path::Path;

use common::server::{agent, fixture, run_named, snapshot, Server};
use serde_json::{json, Value};

fn dims(grid: &Value) -> (usize, usize, usize) {
    let rows = grid["weights"].as_array().expect("weights");
    let cols = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    assert!(rows.iter().all(|r| r.as_array().map_or(0, Vec::len) == cols), "ragged grid");
    (
        grid["output"].as_array().expect("output").len(),
        grid["source"].as_array().expect("source").len(),
        rows.len() * cols,
    )
}

#[test]
fn api_lists_runs_translates_and_refuses_what_it_must() {
    let fx = fixture();
    let before = snapshot(&fx.join("experiments"));
    let server = Server::start(&["experiments"], &fx);
    let (gru, tf) = (run_named(&fx, "gru-"), run_named(&fx, "tf-"));

    let (status, runs) = server.get("/api/runs");
    assert_eq!(status, 200, "{runs}");
    let names: Vec<&str> = runs.as_array().expect("list").iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(names, [gru.as_str(), tf.as_str()]);
    assert_eq!(runs[0]["status"], "completed");
    assert!(runs[1]["model"].as_str().expect("model").contains("4 heads"), "{runs}");

    let (status, detail) = server.get(&format!("/api/runs/{gru}"));
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["metrics"]["train_loss"].as_array().expect("curve").len(), 30);
    assert!(detail["config"].as_str().expect("config").contains("[model]"));
    assert!(!detail["translations"].as_array().expect("rows").is_empty());
    // The notebook's pairs have no validation split: numbered checkpoints only.
    assert_eq!(detail["checkpoints"], json!(["step-60", "step-90"]));
    let (_, detail) = server.get(&format!("/api/runs/{tf}"));
    assert_eq!(detail["checkpoints"][0], "best");

    // Greedy: one hypothesis; rows = output tokens + EOS, columns = source tokens + EOS.
    let (status, r) =
        server.post("/api/translate", &json!({"run": gru, "sentences": ["i am a student", "he is a teacher"]}));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["translations"].as_array().expect("list").len(), 2);
    let h = &r["translations"][0]["hypotheses"][0];
    assert!(!h["text"].as_str().expect("text").is_empty(), "{r}");
    let (rows, cols, _) = dims(&h["attention"]["tokens"]);
    assert_eq!(cols, 5, "i am a student + EOS");
    assert!(rows >= h["output"].as_array().expect("output").len());
    assert!(h.get("layers").is_none());

    // Beam with n-best: best first by score.
    let body = json!({"run": gru, "checkpoint": "last", "sentences": ["i am a student"], "beam": 4, "n_best": 3});
    let (status, r) = server.post("/api/translate", &body);
    assert_eq!(status, 200, "{r}");
    let hyps = r["translations"][0]["hypotheses"].as_array().expect("hyps");
    assert_eq!(hyps.len(), 3);
    let scores: Vec<f64> = hyps.iter().map(|h| h["score"].as_f64().expect("score")).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(r["checkpoint"].as_str().expect("ck").starts_with("step-"));

    // A Transformer with heads: 2 layers of 4 heads, each map the same shape.
    let (status, r) = server.post("/api/translate", &json!({"run": tf, "sentences": ["a b c"], "heads": true}));
    assert_eq!(status, 200, "{r}");
    let h = &r["translations"][0]["hypotheses"][0];
    let layers = h["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["heads"].as_array().expect("heads").len(), 4);
    assert_eq!(layers[1]["heads"][2]["label"], "layer 1, head 2");
    assert_eq!(dims(&layers[1]["heads"][2]["tokens"]), dims(&h["attention"]["tokens"]));
    assert_eq!(h["attention"]["label"], "last layer, mean over heads");

    // Refused, each with a 4xx and a JSON error.
    let refused: Vec<(Value, u16, &str)> = vec![
        (json!({"run": "../experiments/x", "sentences": ["a"]}), 400, "bad_run_name"),
        (json!({"run": "/etc", "sentences": ["a"]}), 400, "bad_run_name"),
        (json!({"run": format!("{gru}/../{gru}"), "sentences": ["a"]}), 400, "bad_run_name"),
        (json!({"run": "nope", "sentences": ["a"]}), 404, "unknown_run"),
        (json!({"run": gru, "checkpoint": "../../best", "sentences": ["a"]}), 400, "bad_checkpoint"),
        (json!({"run": gru, "checkpoint": "step-99999", "sentences": ["a"]}), 400, "bad_checkpoint"),
        (json!({"run": gru, "sentences": []}), 400, "bad_request"),
        (json!({"run": gru, "sentences": vec!["a"; 33]}), 413, "too_large"),
        (json!({"run": gru, "sentences": ["a ".repeat(600)]}), 413, "too_large"),
        (json!({"run": gru, "sentences": ["a"], "beam": 2, "n_best": 3}), 400, "bad_request"),
        (json!({"run": gru, "sentences": ["a"], "beem": 2}), 400, "bad_request"),
    ];
    for (body, want, kind) in refused {
        let (status, err) = server.post("/api/translate", &body);
        assert_eq!((status, err["kind"].as_str()), (want, Some(kind)), "{body} -> {err}");
        assert!(!err["error"].as_str().expect("message").is_empty());
    }
    let (status, err) = server.post_raw("/api/translate", b"{not json");
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().expect("message").contains("not a translate request"), "{err}");
    let big = format!(r#"{{"run": "{gru}", "sentences": ["{}"]}}"#, "a ".repeat(50_000));
    let (status, err) = server.post_raw("/api/translate", big.as_bytes());
    assert_eq!((status, err["kind"].as_str()), (413, Some("too_large")), "{err}");
    for path in ["/api/runs/..%2F..%2Fetc", "/api/runs/%2Fetc%2Fpasswd", "/api/runs/nope", "/api/nothing"] {
        let (status, err) = server.get(path);
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(err["error"].is_string(), "{path}: {err}");
    }
    drop(server);
    assert_eq!(before, snapshot(&fx.join("experiments")), "the server wrote into a run folder");
}

#[test]
fn api_serves_8_clients_of_50_requests_each_without_an_error() {
    let fx = fixture();
    let server = Server::start(&["experiments"], &fx);
    let (gru, tf) = (run_named(&fx, "gru-"), run_named(&fx, "tf-"));
    let url = format!("{}/api/translate", server.url);
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (url, run) = (url.clone(), if c % 2 == 0 { gru.clone() } else { tf.clone() });
                s.spawn(move || {
                    let agent = agent();
                    let sentence = if c % 2 == 0 { "i am a student" } else { "a b c d" };
                    for i in 0..50 {
                        let beam = if i % 10 == 9 { 3 } else { 1 };
                        let body = json!({"run": run, "sentences": [sentence], "beam": beam});
                        let mut r = agent.post(&url).send_json(&body).expect("answer");
                        assert_eq!(r.status().as_u16(), 200, "client {c} request {i}");
                        let v: Value = r.body_mut().read_json().expect("json");
                        assert!(v["translations"][0]["hypotheses"][0]["text"].is_string());
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client");
        }
    });
}

#[test]
fn a_damaged_checkpoint_and_a_symlink_out_are_refused() {
    let fx = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let gru = run_named(&fx, "gru-");
    copy_dir(&fx.join("experiments").join(&gru), &served.join(&gru));
    std::fs::write(served.join(&gru).join("checkpoints/step-00000090/model.safetensors"), b"garbage").expect("damage");
    copy_dir(&fx.join("experiments").join(&gru), &tmp.path().join("outside"));
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("outside"), served.join("escape")).expect("symlink");
    let server = Server::start(&[served.to_str().expect("utf8")], tmp.path());
    let body = json!({"run": gru, "checkpoint": "step-90", "sentences": ["i am a student"]});
    let (status, err) = server.post("/api/translate", &body);
    assert_eq!((status, err["kind"].as_str()), (422, Some("run_error")), "{err}");
    assert!(err["error"].as_str().expect("message").contains("checksum"), "{err}");
    // `last` passes over the damaged one for the previous checkpoint, which verifies.
    let (status, r) = server.post("/api/translate", &json!({"run": gru, "checkpoint": "last", "sentences": ["i am"]}));
    assert_eq!((status, r["checkpoint"].as_str()), (200, Some("step-00000060")), "{r}");
    #[cfg(unix)]
    {
        let (status, err) = server.post("/api/translate", &json!({"run": "escape", "sentences": ["i am"]}));
        assert_eq!((status, err["kind"].as_str()), (404, Some("unknown_run")), "{err}");
        let (_, runs) = server.get("/api/runs");
        assert_eq!(runs.as_array().expect("list").len(), 1, "{runs}");
        // A file of a served run that is a symlink out of it is not sent.
        std::fs::write(tmp.path().join("secret.txt"), "> top secret\n< x\n").expect("secret");
        let report = served.join(&gru).join("translations.txt");
        std::fs::remove_file(&report).expect("rm");
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), &report).expect("symlink");
        let (status, detail) = server.get(&format!("/api/runs/{gru}"));
        assert_eq!(status, 200, "{detail}");
        assert!(!detail.to_string().contains("top secret"), "{detail}");
    }
}

#[test]
fn a_new_checkpoint_is_picked_up_and_a_small_cache_still_serves_every_run() {
    let fx = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served");
    let (gru, tf) = (run_named(&fx, "gru-"), run_named(&fx, "tf-"));
    for run in [&gru, &tf] {
        copy_dir(&fx.join("experiments").join(run), &served.join(run));
    }
    // A budget of 0 MiB keeps one run open at a time: every switch reopens.
    let server = Server::start(&[served.to_str().expect("utf8"), "--cache-mib", "0"], tmp.path());
    let ask =
        |run: &str| server.post("/api/translate", &json!({"run": run, "checkpoint": "last", "sentences": ["a b"]}));
    for run in [&gru, &tf, &gru, &tf] {
        let (status, r) = ask(run);
        assert_eq!(status, 200, "{r}");
    }
    assert_eq!(ask(&gru).1["checkpoint"], "step-00000090");
    // As a training run writes a newer checkpoint, `last` opens it.
    let ck = served.join(&gru).join("checkpoints");
    copy_dir(&ck.join("step-00000090"), &ck.join("step-00000120"));
    assert_eq!(ask(&gru).1["checkpoint"], "step-00000120");
}

#[test]
fn serve_warns_when_it_binds_beyond_loopback_and_refuses_a_missing_folder() {
    let fx = fixture();
    let server = Server::start(&["experiments", "--host", "0.0.0.0"], &fx);
    assert!(server.stderr().contains("warning: binding 0.0.0.0"), "{}", server.stderr());
    drop(server);
    let local = Server::start(&["experiments"], &fx);
    assert!(local.url.starts_with("http://127.0.0.1:"), "{}", local.url);
    assert!(!local.stderr().contains("warning"), "{}", local.stderr());
    let out = common::run(&["serve", "no-such-folder", "--port", "0"], &fx);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).1.contains("no-such-folder"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}
