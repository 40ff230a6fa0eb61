//! `s2s serve [DIR or RUN…]`: the web app and JSON API of `s2s-serve`, on 127.0.0.1 unless
//! told otherwise.

use std::path::PathBuf;

use anyhow::{Context, Result};
use s2s_serve::{Limits, ServeOptions};

use crate::output::outln;

pub fn execute(dirs: &[PathBuf], host: &str, port: u16, cache_mib: u64) -> Result<()> {
    for d in dirs {
        if !d.is_dir() {
            anyhow::bail!("{}: no such folder (give a folder of runs or a run folder)", d.display());
        }
    }
    if s2s_serve::is_public(host) {
        eprintln!(
            "warning: binding {host} serves these runs to other machines too, without any login; \
             use the default 127.0.0.1 unless that is what you want"
        );
    }
    let options = ServeOptions {
        roots: dirs.to_vec(),
        host: host.to_string(),
        port,
        limits: Limits::default(),
        cache_bytes: cache_mib.saturating_mul(1024 * 1024),
    };
    let mut printed = Ok(());
    s2s_serve::serve(&options, |addr| {
        let folders = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        printed = outln!("serving the runs in {folders}\nopen http://{addr}/  (Ctrl-C stops)");
    })
    .with_context(|| format!("s2s serve on {host}:{port}"))?;
    printed.map_err(Into::into)
}
