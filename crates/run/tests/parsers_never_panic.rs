//! The run crate's parsers of user input, fed arbitrary bytes: an experiment config with
//! `--set` overrides (layered over the defaults), a run's `config.toml`, and a
//! checkpoint's `state.json` each give a value or an error, never a panic.

use proptest::prelude::*;
use s2s_run::config::ExperimentConfig;

/// Text that looks like a config often enough to get past the TOML parser: sections,
/// real and misspelt keys, values of every type.
fn config_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[run]".to_string()),
        Just("[data]".to_string()),
        Just("[model]".to_string()),
        Just("[train]".to_string()),
        Just("[report]".to_string()),
        Just("[sweep]".to_string()),
        (
            prop::sample::select(vec![
                "epochs",
                "learning_rate",
                "architecture",
                "hidden_size",
                "heads",
                "attention",
                "dataset",
                "path",
                "threads",
                "seed",
                "beam_size",
                "tie_embeddings",
                "max_length",
                "tokenizer",
                "batch_tokens",
                "hparams",
                "lerning_rate",
                "sentences",
            ]),
            prop::sample::select(vec![
                "0",
                "1",
                "-1",
                "0.5",
                "1e308",
                "nan",
                "inf",
                "true",
                "\"transformer\"",
                "\"gru\"",
                "\"x\"",
                "[]",
                "[1, 2]",
                "{}",
                "18446744073709551616",
                "\"all\"",
                "\"bpe\"",
                "\"seed\"",
            ]),
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|v| v.join("\n"))
}

fn set_like() -> impl Strategy<Value = String> {
    prop_oneof!["(run|data|model|train|report)\\.[a-z_]{1,16}=[ -~]{0,12}", "[ -~]{0,20}",]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_config_loads_or_is_refused(
        text in config_like(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        sets in prop::collection::vec(set_like(), 0..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("exp.toml");
        for content in [text.into_bytes(), bytes] {
            std::fs::write(&path, &content).expect("write");
            if let Ok(cfg) = ExperimentConfig::load(&path, &sets) {
                // What loads also writes itself out and reads back.
                let written = cfg.to_toml().expect("a loaded config writes");
                prop_assert_eq!(ExperimentConfig::parse_resolved(&written, &path).expect("reads back"), cfg);
            }
            if let Ok(text) = std::str::from_utf8(&content) {
                let _ = ExperimentConfig::parse_resolved(text, &path);
            }
        }
    }

    #[test]
    fn a_checkpoint_state_is_read_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        json in "[{}\\[\\]\":,a-z0-9_ .]{0,200}",
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for content in [bytes, json.into_bytes()] {
            std::fs::write(dir.path().join("state.json"), &content).expect("write");
            let _ = s2s_run::checkpoint::verify(dir.path());
        }
    }
}
