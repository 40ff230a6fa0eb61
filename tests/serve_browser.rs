//! `s2s serve`'s page in headless Chromium, driven through chromedriver (WebDriver): the
//! explorer on a GRU run (translation text and heatmap cells against the API's answer), a
//! Transformer's layer and head pickers and its layer × head grid, two runs side by side,
//! and a run page whose curve grows while the run trains. Needs Debian's `chromium` and
//! `chromium-driver` (`.ci/run` installs them); under `CI` their absence is a failure.
//! With `SERVE_SCREENSHOTS=DIR` set, each step's screenshot is written there.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{fixture, run_named, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port; killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The browser tools, or `None` (outside CI) to skip.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("S2S_CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    let driver = std::env::var_os("S2S_CHROMEDRIVER").map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from);
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let missing =
        format!("{} or {} is missing (apt-get install chromium chromium-driver)", chromium.display(), driver.display());
    assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: {missing}");
    eprintln!("skipped outside CI: {missing}");
    None
}

async fn browser(chromium: &Path, driver: &Path, profile: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child, port);
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "binary": chromium, "args": args }));
    let url = format!("http://127.0.0.1:{}", driver.1);
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            Ok(c) => return (driver, c),
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

async fn shot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("SERVE_SCREENSHOTS") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("write screenshot");
    }
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.expect("find_all").len()
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.expect(css).text().await.expect("text")
}

async fn wait_for(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Polls `f` until it is true (or panics after `secs`).
async fn until<F: std::future::Future<Output = bool>>(secs: u64, what: &str, mut f: impl FnMut() -> F) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cells(grid: &Value) -> usize {
    grid["weights"].as_array().expect("rows").iter().map(|r| r.as_array().expect("row").len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_translates_shows_heads_side_by_side_and_follows_a_run() {
    let Some((chromium, driver)) = tools() else { return };
    let fx = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    // A run that trains while the page watches it, in a folder served beside the fixture's.
    let live = tmp.path().join("live");
    std::fs::create_dir_all(&live).expect("live folder");
    let cfg = common::tiny_config(tmp.path(), "");
    let mut training = common::s2s()
        .args(["run", cfg.to_str().expect("utf8"), "--set", "run.name=live", "--set", "train.epochs=100000"])
        .args(["--set", &format!("run.output_dir={}", live.display()), "--set", "train.checkpoint_every=50"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("training.log")).expect("log"))
        .spawn()
        .expect("training starts");
    let server = Server::start(&["experiments", live.to_str().expect("utf8")], &fx);
    let (gru, tf) = (run_named(&fx, "gru-"), run_named(&fx, "tf-"));
    let (_driver, c) = browser(&chromium, &driver, &tmp.path().join("profile")).await;

    // The runs page lists every run.
    c.goto(&format!("{}/", server.url)).await.expect("goto");
    wait_for(&c, "#runs-table").await;
    assert!(count(&c, &format!("tr[data-run='{gru}']")).await == 1);
    shot(&c, "runs").await;

    // Explorer, GRU: the translation and the heatmap are the API's.
    let sentence = "i am a student";
    let (_, api) = server.post("/api/translate", &json!({"run": gru, "sentences": [sentence]}));
    let want = &api["translations"][0]["hypotheses"][0];
    c.goto(&format!("{}/#/explore/{gru}", server.url)).await.expect("goto");
    wait_for(&c, "#sentences").await;
    c.find(Locator::Css("#sentences")).await.expect("box").send_keys(sentence).await.expect("type");
    c.find(Locator::Css("#translate")).await.expect("button").click().await.expect("click");
    wait_for(&c, ".translation-text").await;
    assert_eq!(text_of(&c, ".translation-text").await, want["text"].as_str().expect("text"));
    assert_eq!(count(&c, ".main-map svg.heatmap rect.cell").await, cells(&want["attention"]["tokens"]));
    assert_eq!(text_of(&c, ".main-map .map-caption").await, "attention · tokens");
    shot(&c, "explorer-gru").await;

    // Explorer, Transformer: layer 1, head 2, then the grid of 2 layers × (4 heads + mean).
    c.goto(&format!("{}/#/explore/{tf}", server.url)).await.expect("goto");
    wait_for(&c, "#sentences").await;
    c.find(Locator::Css("#sentences")).await.expect("box").send_keys("a b c d e").await.expect("type");
    c.find(Locator::Css("#translate")).await.expect("button").click().await.expect("click");
    wait_for(&c, "select.layer").await;
    assert_eq!(count(&c, ".grid-maps figure").await, 2 * 5);
    c.find(Locator::Css("select.layer")).await.expect("layer").select_by_value("1").await.expect("layer 1");
    c.find(Locator::Css("select.head")).await.expect("head").select_by_value("2").await.expect("head 2");
    assert_eq!(text_of(&c, ".main-map .map-caption").await, "layer 1, head 2 · tokens");
    assert_eq!(count(&c, ".grid-maps figure.chosen[data-layer='1'][data-head='2']").await, 1);
    let (_, api) = server.post("/api/translate", &json!({"run": tf, "sentences": ["a b c d e"], "heads": true}));
    let head = &api["translations"][0]["hypotheses"][0]["layers"][1]["heads"][2]["tokens"];
    assert_eq!(count(&c, ".main-map svg.heatmap rect.cell").await, cells(head));
    shot(&c, "explorer-transformer-heads").await;
    // Colours stretched to the map's largest weight say so.
    c.find(Locator::Css("input.stretch")).await.expect("stretch").click().await.expect("click");
    assert!(text_of(&c, ".main-map .map-caption").await.starts_with("layer 1, head 2 · tokens · colours 0–"));

    // Side by side: the same sentence through the GRU and the Transformer.
    c.goto(&format!("{}/#/compare?a={gru}@best&b={tf}@last", server.url)).await.expect("goto");
    wait_for(&c, "#compare-sentence").await;
    c.find(Locator::Css("#compare-sentence")).await.expect("box").send_keys("a b c").await.expect("type");
    c.find(Locator::Css("#compare-translate")).await.expect("button").click().await.expect("click");
    wait_for(&c, "#panes .pane").await;
    until(30, "two heatmaps", || async { count(&c, "#panes .pane .main-map svg.heatmap").await == 2 }).await;
    let captions = text_of(&c, "#panes").await;
    assert!(captions.contains(&format!("A: {gru}")) && captions.contains(&format!("B: {tf}")), "{captions}");
    shot(&c, "side-by-side").await;

    // A run page follows the training run: its loss curve gains points without a reload.
    let live_run = {
        let start = Instant::now();
        loop {
            let names = std::fs::read_dir(&live).map(|d| d.flatten().count()).unwrap_or(0);
            if names > 0 && server.get("/api/runs").1.as_array().is_some_and(|r| r.iter().any(|x| x["running"] == true))
            {
                break server
                    .get("/api/runs")
                    .1
                    .as_array()
                    .expect("runs")
                    .iter()
                    .find(|x| x["running"] == true)
                    .expect("live")["name"]
                    .as_str()
                    .expect("name")
                    .to_string();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(tmp.path().join("training.log")).unwrap_or_default();
                panic!("the live run never showed as running: {}\n{log}", server.get("/api/runs").1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    c.goto(&format!("{}/#/run/{live_run}", server.url)).await.expect("goto");
    wait_for(&c, "polyline.series[data-name='train']").await;
    let points = || async {
        // The live page redraws the curve as epochs come in: an element gone stale between
        // finding it and reading it is found again.
        for _ in 0..50 {
            if let Ok(e) = c.find(Locator::Css("polyline.series[data-name='train']")).await {
                if let Ok(p) = e.attr("data-points").await {
                    return p.and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the training curve could not be read");
    };
    let first = points().await;
    until(30, "the curve to grow", || async { points().await > first }).await;
    assert!(text_of(&c, ".status-running").await.contains("running"));
    shot(&c, "run-page-live").await;

    let _ = training.kill();
    let _ = training.wait();
    c.close().await.expect("close");
}
