//! A sweep file fed arbitrary bytes gives a sweep or an error, never a panic.

use proptest::prelude::*;
use s2s_sweep::{Sweep, SweepArgs};

fn sweep_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[sweep]".to_string()),
        Just("[sweep.grid]".to_string()),
        Just("[sweep.set]".to_string()),
        Just("[sweep.slurm]".to_string()),
        Just("[sweep.variants]".to_string()),
        Just("config = \"base.toml\"".to_string()),
        Just("\"run.seed\" = [0, 1]".to_string()),
        Just("\"run.seed\" = [0, 0]".to_string()),
        Just("\"train.learning_rate\" = []".to_string()),
        Just("launcher = \"slurm\"".to_string()),
        Just("jobs = 0".to_string()),
        Just("name = \"../x\"".to_string()),
        Just("a = { \"model.attention\" = \"luong-dot\" }".to_string()),
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_sweep_file_loads_or_is_refused(text in sweep_like(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sweep.toml");
        for content in [text.into_bytes(), bytes] {
            std::fs::write(&path, &content).expect("write");
            let _ = Sweep::from_file(&path, &SweepArgs::default());
        }
    }
}
