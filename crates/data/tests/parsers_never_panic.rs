//! The data crate's parsers of user input, fed arbitrary bytes: a TSV data file and a
//! `tokenizer.json` each give a value or an error, never a panic.

use proptest::prelude::*;
use s2s_data::{DataConfig, Dataset, Tokenizer, TokenizerKind};

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_bpe.json")
}

/// Bytes that look like TSV often enough to reach past the first check: words, tabs,
/// newlines, carriage returns, a byte-order mark, invalid UTF-8, NUL.
fn tsv_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\t".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"i am\tje suis".to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(vec![0]),
        "[a-zA-Z .!?\u{e9}\u{1F600}]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_tsv_file_loads_or_is_refused(bytes in tsv_like(), bpe in any::<bool>()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pairs.tsv");
        std::fs::write(&path, &bytes).expect("write");
        let cfg = DataConfig {
            dataset: Dataset::Tsv,
            path: Some(path),
            valid_fraction: 0.0,
            tokenizer: if bpe { TokenizerKind::Bpe } else { TokenizerKind::Word },
            max_vocab_size: if bpe { 40 } else { 0 },
            ..Default::default()
        };
        let mut cfg = cfg;
        cfg.fill_defaults();
        let _ = s2s_data::load(&cfg, 0, 1);
    }

    /// Arbitrary bytes, JSON-ish text, and a real tokenizer.json with bytes changed or cut.
    #[test]
    fn a_tokenizer_file_loads_or_is_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        json in "[{}\\[\\]\":,a-z0-9 ]{0,200}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut real = std::fs::read(fixture()).expect("fixture");
        for (at, b) in edits {
            let i = at.index(real.len());
            real[i] = b;
        }
        real.truncate(cut.index(real.len() + 1));
        let norm = DataConfig::default().normalization();
        for content in [bytes, json.into_bytes(), real] {
            let path = dir.path().join("tokenizer.json");
            std::fs::write(&path, &content).expect("write");
            let _ = Tokenizer::load(TokenizerKind::Bpe, norm, &path);
            let _ = Tokenizer::load(TokenizerKind::Word, norm, &path);
        }
    }
}
