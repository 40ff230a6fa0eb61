//! `s2s serve`: a local, read-only web app and JSON API over run folders. The page (HTML,
//! CSS and JavaScript embedded in the binary) lists runs, follows a training run's curves,
//! and translates typed sentences with any kept checkpoint, showing the attention as a
//! heatmap (a Transformer's by layer and head). Scripts use the same API:
//!
//! - `GET /api/runs`: every run served, with status, model and best metrics;
//! - `GET /api/runs/{name}`: one run's summary, metrics, config and report translations;
//! - `POST /api/translate`: `{"run", "checkpoint", "sentences", "beam", "n_best", "heads"}`
//!   → translations, scores, tokens and attention.
//!
//! Safety: run names resolve under the served folders only ([`s2s_run::roots`]); bodies,
//! sentence counts and lengths are limited ([`Limits`]); every request error is a 4xx with
//! a JSON body; nothing is ever written. Opened runs are kept up to a memory budget
//! ([`models::ModelCache`]) and decoding runs on blocking threads.

pub mod api;
mod assets;
pub mod error;
pub mod limits;
pub mod models;
pub mod wire;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use s2s_run::roots::RunRoots;

pub use error::{ApiError, ServeError};
pub use limits::Limits;

/// What `s2s serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Folders of runs, or run folders.
    pub roots: Vec<PathBuf>,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub limits: Limits,
    /// Bytes of model weights kept open at most.
    pub cache_bytes: u64,
}

/// What every request reads.
#[derive(Debug)]
pub struct AppState {
    pub roots: RunRoots,
    pub models: models::ModelCache,
    pub limits: Limits,
}

/// The routes: the page, its assets and the API.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.body_bytes;
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/style.css", get(assets::style))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{*name}", get(api::run))
        .route("/api/translate", post(api::translate))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Whether binding `host` exposes the server beyond this machine (anything but a loopback
/// address or `localhost`).
pub fn is_public(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => !ip.is_loopback(),
        Err(_) => host != "localhost",
    }
}

/// Serves until the process is stopped (Ctrl-C ends it cleanly). `on_listen` is told the
/// address once the socket is bound (with the port picked when `port` is 0).
pub fn serve(options: &ServeOptions, on_listen: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let state = Arc::new(AppState {
        roots: RunRoots::new(&options.roots)?,
        models: models::ModelCache::new(options.cache_bytes),
        limits: options.limits,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let addr = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
        let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        on_listen(local);
        let stop = async {
            // Without a Ctrl-C handler the default one ends the process, which is as clean.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        axum::serve(listener, router(state)).with_graceful_shutdown(stop).await.map_err(ServeError::Stopped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_private() {
        assert!(!is_public("127.0.0.1"));
        assert!(!is_public("::1"));
        assert!(!is_public("localhost"));
        assert!(is_public("0.0.0.0"));
        assert!(is_public("192.168.1.4"));
        assert!(is_public("example.org"));
    }
}
