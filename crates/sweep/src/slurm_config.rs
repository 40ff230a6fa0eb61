//! `[sweep.slurm]`: the `#SBATCH` settings of a sweep's array job, and the job script they
//! make ([`job_script`], a pure function of the sweep).

use std::path::Path;

use serde::{Deserialize, Serialize};

use s2s_run::error::{Result, RunError};

/// `[sweep.slurm]`: what the array job asks Slurm for. Unset keys are left to the
/// cluster's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Time limit per array task, in sbatch's syntax (`30`, `1:00:00`, `2-00:00:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// Memory per node, in sbatch's syntax (`8G`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Generic resources for points with `run.device = "cuda"` (`gpu:1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%P`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array_parallelism: Option<usize>,
    /// USR2 this many seconds before the time limit: checkpoint and requeue.
    pub signal_seconds: u32,
    /// Raw `#SBATCH` lines (the prefix may be left out).
    pub extra: Vec<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            time: None,
            cpus_per_task: None,
            mem: None,
            gres: None,
            account: None,
            qos: None,
            array_parallelism: None,
            signal_seconds: 120,
            extra: Vec::new(),
        }
    }
}

/// The keys of `[sweep.slurm]` (and of `--slurm KEY=VALUE`).
pub const KEYS: [&str; 10] = [
    "partition",
    "time",
    "cpus_per_task",
    "mem",
    "gres",
    "account",
    "qos",
    "array_parallelism",
    "signal_seconds",
    "extra",
];

impl SlurmConfig {
    /// Reads `[sweep.slurm]` with `--slurm KEY=VALUE` overrides on top (`extra=` adds a line).
    pub fn from_table(mut table: toml::Table, overrides: &[String], origin: &str) -> Result<Self> {
        for o in overrides {
            let (k, v) =
                o.split_once('=').ok_or_else(|| RunError::Refused(format!("--slurm {o:?}: expected KEY=VALUE")))?;
            let k = k.trim();
            check_key(k, "--slurm")?;
            let value = match k {
                "extra" => {
                    let mut lines = match table.remove("extra") {
                        Some(toml::Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    lines.push(toml::Value::String(v.to_string()));
                    toml::Value::Array(lines)
                }
                "cpus_per_task" | "array_parallelism" | "signal_seconds" => {
                    let n: i64 = v
                        .trim()
                        .parse()
                        .map_err(|_| RunError::Refused(format!("--slurm {k}={v:?}: expected a whole number")))?;
                    toml::Value::Integer(n)
                }
                _ => toml::Value::String(v.to_string()),
            };
            table.insert(k.to_string(), value);
        }
        for k in table.keys() {
            check_key(k, origin)?;
        }
        let cfg: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| RunError::Refused(format!("{origin}: sweep.slurm: {}", e.message())))?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |m: String| Err(RunError::Refused(format!("{origin}: sweep.slurm.{m}")));
        let texts = [
            ("partition", &self.partition),
            ("time", &self.time),
            ("mem", &self.mem),
            ("gres", &self.gres),
            ("account", &self.account),
            ("qos", &self.qos),
        ];
        for (k, v) in texts {
            if let Some(v) = v {
                if v.trim().is_empty() || v.contains(['\n', '\r']) || v.contains(char::is_whitespace) {
                    return bad(format!("{k} = {v:?}: expected one word"));
                }
            }
        }
        if let Some(line) = self.extra.iter().find(|l| l.contains(['\n', '\r'])) {
            return bad(format!("extra: {line:?} must be one line"));
        }
        if self.signal_seconds == 0 || self.signal_seconds > 65_535 {
            return bad(format!("signal_seconds = {}: expected 1 to 65535", self.signal_seconds));
        }
        if self.array_parallelism == Some(0) {
            return bad("array_parallelism = 0: expected at least 1".into());
        }
        if self.cpus_per_task == Some(0) {
            return bad("cpus_per_task = 0: expected at least 1".into());
        }
        Ok(())
    }
}

fn check_key(k: &str, origin: &str) -> Result<()> {
    if KEYS.contains(&k) {
        return Ok(());
    }
    let hint = s2s_run::config::nearest(k, &KEYS).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
    Err(RunError::Refused(format!("{origin}: unknown Slurm key `{k}` (known: {}){hint}", KEYS.join(", "))))
}

/// What a job script runs and where.
#[derive(Debug, Clone)]
pub struct JobPlan<'a> {
    pub name: &'a str,
    /// The sweep folder (absolute).
    pub sweep_dir: &'a Path,
    /// The `s2s` binary (absolute; compute nodes must see it at this path).
    pub program: &'a Path,
    /// Where the tasks start (the folder `s2s sweep` ran in, so relative paths in the
    /// config mean the same).
    pub workdir: &'a Path,
    /// Which points the script's own `--array` covers.
    pub indices: &'a [usize],
    /// Whether to ask for `gres` (every point in `indices` runs on CUDA).
    pub gpu: bool,
}

/// The array job script: one task per point; the batch shell becomes `s2s sweep point`,
/// so Slurm's USR2 (`--signal=B:USR2@N`) reaches the trainer itself.
pub fn job_script(cfg: &SlurmConfig, plan: &JobPlan, log_pattern: &Path) -> String {
    let mut lines = vec!["#!/bin/bash".to_string()];
    let mut sbatch = |l: String| lines.push(format!("#SBATCH {l}"));
    sbatch(format!("--job-name=s2s-{}", plan.name));
    sbatch(format!("--array={}", array_spec(plan.indices, cfg.array_parallelism)));
    sbatch("--requeue".into());
    sbatch("--open-mode=append".into());
    sbatch(format!("--output={}", log_pattern.display()));
    sbatch(format!("--signal=B:USR2@{}", cfg.signal_seconds));
    sbatch(format!("--chdir={}", plan.workdir.display()));
    for (flag, v) in [
        ("partition", &cfg.partition),
        ("time", &cfg.time),
        ("mem", &cfg.mem),
        ("account", &cfg.account),
        ("qos", &cfg.qos),
    ] {
        if let Some(v) = v {
            sbatch(format!("--{flag}={v}"));
        }
    }
    if let Some(n) = cfg.cpus_per_task {
        sbatch(format!("--cpus-per-task={n}"));
    }
    if plan.gpu {
        if let Some(g) = &cfg.gres {
            sbatch(format!("--gres={g}"));
        }
    }
    for l in &cfg.extra {
        let l = l.trim();
        lines.push(if l.starts_with("#SBATCH") { l.to_string() } else { format!("#SBATCH {l}") });
    }
    lines.push(String::new());
    lines.push(format!("# s2s sweep {}: one array task per point of points.json.", plan.name));
    lines.push(format!(
        "exec {} sweep point {} \"$SLURM_ARRAY_TASK_ID\"",
        shell_quote(&plan.program.display().to_string()),
        shell_quote(&plan.sweep_dir.display().to_string())
    ));
    lines.push(String::new());
    lines.join("\n")
}

/// `0-3`, `0,2,5-7`, with `%P` when at most P may run at once.
pub fn array_spec(indices: &[usize], parallelism: Option<usize>) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { sorted[i].to_string() } else { format!("{}-{}", sorted[i], sorted[j]) });
        i = j + 1;
    }
    let mut spec = parts.join(",");
    if let Some(p) = parallelism {
        spec.push_str(&format!("%{p}"));
    }
    spec
}

/// `'text'` for sh, with embedded quotes escaped.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_runs_of_indices() {
        assert_eq!(array_spec(&[0, 1, 2, 3], None), "0-3");
        assert_eq!(array_spec(&[5, 0, 2, 6, 7], Some(2)), "0,2,5-7%2");
        assert_eq!(array_spec(&[4], None), "4");
    }

    #[test]
    fn overrides_and_unknown_keys() {
        let table: toml::Table = toml::from_str("partition = \"gpu\"\ntime = \"1:00:00\"").expect("toml");
        let cfg = SlurmConfig::from_table(
            table,
            &["time=2:00:00".into(), "cpus_per_task=4".into(), "extra=--exclusive".into()],
            "f.toml",
        )
        .expect("cfg");
        assert_eq!(cfg.partition.as_deref(), Some("gpu"));
        assert_eq!(cfg.time.as_deref(), Some("2:00:00"));
        assert_eq!(cfg.cpus_per_task, Some(4));
        assert_eq!(cfg.extra, ["--exclusive"]);
        assert_eq!(cfg.signal_seconds, 120);
        let err = SlurmConfig::from_table(toml::Table::new(), &["partitoin=x".into()], "f.toml").expect_err("typo");
        assert!(err.to_string().contains("unknown Slurm key `partitoin`") && err.to_string().contains("partition"));
        let table: toml::Table = toml::from_str("nodes = 2").expect("toml");
        assert!(SlurmConfig::from_table(table, &[], "f.toml").expect_err("unknown").to_string().contains("`nodes`"));
        let err = SlurmConfig::from_table(toml::Table::new(), &["signal_seconds=0".into()], "f.toml");
        assert!(err.expect_err("zero").to_string().contains("signal_seconds"));
        let err = SlurmConfig::from_table(toml::Table::new(), &["mem=8G\n#SBATCH --x".into()], "f.toml");
        assert!(err.expect_err("newline").to_string().contains("mem"));
    }

    #[test]
    fn the_job_script_becomes_the_point_task_and_asks_for_gres_on_gpus_only() {
        let cfg = SlurmConfig {
            partition: Some("debug".into()),
            gres: Some("gpu:1".into()),
            array_parallelism: Some(2),
            signal_seconds: 90,
            extra: vec!["--exclusive".into(), "#SBATCH --nice=10".into()],
            ..SlurmConfig::default()
        };
        let plan = JobPlan {
            name: "lr",
            sweep_dir: Path::new("/x/sweep-lr-1"),
            program: Path::new("/opt/it's/s2s"),
            workdir: Path::new("/x"),
            indices: &[0, 1, 2],
            gpu: false,
        };
        let s = job_script(&cfg, &plan, Path::new("/x/sweep-lr-1/logs/point-%a.out"));
        for line in [
            "#SBATCH --array=0-2%2",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            "#SBATCH --signal=B:USR2@90",
            "#SBATCH --output=/x/sweep-lr-1/logs/point-%a.out",
            "#SBATCH --partition=debug",
            "#SBATCH --exclusive",
            "#SBATCH --nice=10",
            "exec '/opt/it'\\''s/s2s' sweep point '/x/sweep-lr-1' \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing from\n{s}");
        }
        assert!(!s.contains("gres"));
        let gpu = job_script(&cfg, &JobPlan { gpu: true, ..plan }, Path::new("/l"));
        assert!(gpu.lines().any(|l| l == "#SBATCH --gres=gpu:1"));
    }
}
