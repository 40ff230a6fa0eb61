//! Corpus BLEU with sacreBLEU's defaults: 13a tokens, 4-grams, exponential smoothing.

use std::collections::HashMap;

use crate::tokenize_13a::tokenize_13a;

/// BLEU and the statistics sacreBLEU reports with it.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuStats {
    /// 0–100.
    pub bleu: f64,
    /// Smoothed n-gram precisions in percent.
    pub precisions: [f64; 4],
    pub counts: [usize; 4],
    pub totals: [usize; 4],
    pub bp: f64,
    pub sys_len: usize,
    pub ref_len: usize,
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Corpus BLEU of `hyps` against one reference each.
pub fn corpus_bleu_stats(hyps: &[String], refs: &[String]) -> BleuStats {
    let (mut counts, mut totals) = ([0usize; 4], [0usize; 4]);
    let (mut sys_len, mut ref_len) = (0, 0);
    for (h, r) in hyps.iter().zip(refs) {
        let (ht, rt) = (tokenize_13a(h), tokenize_13a(r));
        sys_len += ht.len();
        ref_len += rt.len();
        for n in 1..=4 {
            let (hn, rn) = (ngrams(&ht, n), ngrams(&rt, n));
            counts[n - 1] += hn.iter().map(|(g, c)| (*c).min(rn.get(g).copied().unwrap_or(0))).sum::<usize>();
            totals[n - 1] += ht.len().saturating_sub(n - 1);
        }
    }
    let mut precisions = [0f64; 4];
    let mut smooth = 1f64;
    for n in 0..4 {
        if totals[n] == 0 {
            break;
        }
        if counts[n] == 0 {
            smooth *= 2.0;
            precisions[n] = 100.0 / (smooth * totals[n] as f64);
        } else {
            precisions[n] = 100.0 * counts[n] as f64 / totals[n] as f64;
        }
    }
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let bleu = if counts.iter().all(|&c| c == 0) {
        precisions = [0.0; 4];
        0.0
    } else {
        let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        bp * (precisions.iter().map(|&p| log(p)).sum::<f64>() / 4.0).exp()
    };
    BleuStats { bleu, precisions, counts, totals, bp, sys_len, ref_len }
}

/// Corpus BLEU (0–100).
pub fn corpus_bleu(hyps: &[String], refs: &[String]) -> f64 {
    corpus_bleu_stats(hyps, refs).bleu
}
