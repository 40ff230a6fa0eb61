//! Corpus-level translation metrics, identical to sacreBLEU's defaults. They depend on
//! nothing else of s2s (no model, no plotting), so scoring can be used on its own.
//!
//! `bleu_fixtures.json` is a copy of `shared/bench/bleu_fixtures.json`, produced by
//! `python3 shared/bench/make_bleu_fixtures.py` with sacrebleu 2.6.0
//! (`sacrebleu.corpus_bleu(hyps, [refs])`, `sacrebleu.corpus_chrf(hyps, [refs])`).

mod bleu;
mod chrf;
mod tokenize_13a;

pub use bleu::{corpus_bleu, corpus_bleu_stats, BleuStats};
pub use chrf::corpus_chrf;
pub use tokenize_13a::tokenize_13a;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sacrebleu_fixtures() {
        let fixtures: serde_json::Value =
            serde_json::from_str(include_str!("bleu_fixtures.json")).expect("fixture json");
        let cases = fixtures["cases"].as_array().expect("cases");
        assert!(cases.len() >= 5);
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array().expect("array").iter().map(|s| s.as_str().expect("str").to_string()).collect()
        };
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let hyps = strings(&case["hypotheses"]);
            let refs = strings(&case["references"]);
            let s = corpus_bleu_stats(&hyps, &refs);
            let num = |k: &str| case[k].as_f64().expect(k);
            assert!((s.bleu - num("bleu")).abs() < 1e-9, "{name}: bleu {} vs {}", s.bleu, num("bleu"));
            assert!((s.bp - num("bp")).abs() < 1e-9, "{name}: bp");
            assert_eq!(s.sys_len as f64, num("sys_len"), "{name}: sys_len");
            assert_eq!(s.ref_len as f64, num("ref_len"), "{name}: ref_len");
            for (i, p) in case["precisions"].as_array().expect("p").iter().enumerate() {
                let p = p.as_f64().expect("f");
                assert!((s.precisions[i] - p).abs() < 1e-9, "{name}: precision {i}: {} vs {p}", s.precisions[i]);
                assert_eq!(s.counts[i] as f64, case["counts"][i].as_f64().expect("c"), "{name}: counts");
                assert_eq!(s.totals[i] as f64, case["totals"][i].as_f64().expect("t"), "{name}: totals");
            }
            let chrf = corpus_chrf(&hyps, &refs);
            assert!((chrf - num("chrf")).abs() < 1e-9, "{name}: chrf {chrf} vs {}", num("chrf"));
        }
    }
}
