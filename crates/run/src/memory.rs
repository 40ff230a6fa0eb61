//! Refusing a model too big for the machine before anything is allocated: the weights,
//! their gradients and the optimizer's moments are estimated from the config and the
//! vocabulary sizes, and compared with the memory this process can still get.

use s2s_model::{parameter_count, ModelConfig, ModelDims};
use s2s_trainer::Optimizer;

use crate::error::{Result, RunError};

/// What a model of this config needs, in bytes, for training (`training`) or inference.
pub fn estimate_bytes(cfg: &ModelConfig, dims: &ModelDims, training: bool, threads: usize) -> u128 {
    let params = parameter_count(cfg, dims).total;
    // f32 weights; training adds one gradient per thread's part and the optimizer's moments.
    let copies = if training { 1 + threads.max(1) + Optimizer::BUFFERS_PER_PARAMETER } else { 1 };
    params * 4 * copies as u128
}

/// Bytes this process can still allocate: the smaller of the system's available memory
/// and what its cgroup's limit leaves; `None` where neither can be read.
pub fn available_bytes() -> Option<u128> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u128>().ok())
            .map(|kib| kib * 1024)
    });
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|t| t.trim().parse::<u128>().ok());
    let cgroup = match (read("/sys/fs/cgroup/memory.max"), read("/sys/fs/cgroup/memory.current")) {
        (Some(max), Some(cur)) => Some(max.saturating_sub(cur)),
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The key most responsible for a model's size: the thread count when one thread would
/// fit, the vocabulary limit when the vocabulary-sized tensors dominate, else the key its
/// family names for its width.
fn culprit(cfg: &ModelConfig, dims: &ModelDims, training: bool, threads: usize, available: u128) -> String {
    if training && threads > 1 && estimate_bytes(cfg, dims, training, 1) <= available {
        return format!("run.threads = {threads} (each thread keeps its own copy of the gradients)");
    }
    let count = parameter_count(cfg, dims);
    if count.vocabulary * 2 > count.total {
        return format!("data.max_vocab_size (vocabularies {} and {})", dims.src_vocab, dims.tgt_vocab);
    }
    let (key, value) = cfg.family.as_family().width_key();
    format!("model.{key} = {value}")
}

fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u128 << 30) as f64)
}

/// Refuses, with one line naming the key, the estimate and the memory available, when
/// the model cannot fit. Only CPU memory is checked.
pub fn check_fits(cfg: &ModelConfig, dims: &ModelDims, training: bool, threads: usize) -> Result<()> {
    let Some(available) = available_bytes() else { return Ok(()) };
    check_against(cfg, dims, training, threads, available)
}

fn check_against(cfg: &ModelConfig, dims: &ModelDims, training: bool, threads: usize, available: u128) -> Result<()> {
    let need = estimate_bytes(cfg, dims, training, threads);
    if need <= available {
        return Ok(());
    }
    let params = parameter_count(cfg, dims).total;
    let what = if training { "weights, gradients and optimizer moments" } else { "weights" };
    Err(RunError::Refused(format!(
        "{}: the model would have {params} parameters, needing about {} for its {what}; {} of memory is available",
        culprit(cfg, dims, training, threads, available),
        gib(need),
        gib(available)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_hidden_size_is_refused_naming_the_key() {
        let dims = ModelDims { src_vocab: 30, tgt_vocab: 30, max_length: 10 };
        let with = |set: &str| crate::ExperimentConfig::default().with_sets(&[set.to_string()]).expect("config").model;
        let typo = with("model.hidden_size=100000");
        let err = check_against(&typo, &dims, true, 1, 24 << 30).expect_err("too big").to_string();
        assert!(err.starts_with("model.hidden_size = 100000"), "{err}");
        assert!(err.contains("GiB") && err.contains("24.0 GiB of memory is available"), "{err}");
        assert!(!err.contains('\n'));
        let fine = with("model.hidden_size=256");
        check_against(&fine, &dims, true, 1, 24 << 30).expect("fits");
        let big_vocab = ModelDims { src_vocab: 2_000_000_000, tgt_vocab: 30, max_length: 10 };
        let err = check_against(&fine, &big_vocab, false, 1, 24 << 30).expect_err("vocab").to_string();
        assert!(err.starts_with("data.max_vocab_size"), "{err}");
        // Regression: 100,000 threads' gradient copies were blamed on model.hidden_size.
        let err = check_against(&fine, &dims, true, 100_000, 24 << 30).expect_err("threads").to_string();
        assert!(err.starts_with("run.threads = 100000"), "{err}");
    }

    #[test]
    fn this_machine_reports_its_memory() {
        if cfg!(target_os = "linux") {
            assert!(available_bytes().is_some_and(|b| b > 0));
        }
    }
}
