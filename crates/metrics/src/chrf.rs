//! Corpus chrF2 with sacreBLEU's defaults: character 6-grams, whitespace removed, β = 2.

use std::collections::HashMap;

const ORDER: usize = 6;
const BETA: f64 = 2.0;

fn char_ngrams(chars: &[char], n: usize) -> HashMap<&[char], usize> {
    let mut m = HashMap::new();
    if chars.len() >= n {
        for w in chars.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Corpus chrF (0–100) of `hyps` against one reference each.
pub fn corpus_chrf(hyps: &[String], refs: &[String]) -> f64 {
    let mut stats = [[0usize; 3]; ORDER]; // hyp, ref, match
    for (h, r) in hyps.iter().zip(refs) {
        let hc: Vec<char> = h.chars().filter(|c| !c.is_whitespace()).collect();
        let rc: Vec<char> = r.chars().filter(|c| !c.is_whitespace()).collect();
        for n in 1..=ORDER {
            let (hn, rn) = (char_ngrams(&hc, n), char_ngrams(&rc, n));
            stats[n - 1][0] += hc.len().saturating_sub(n - 1);
            stats[n - 1][1] += rc.len().saturating_sub(n - 1);
            stats[n - 1][2] += hn.iter().map(|(g, c)| (*c).min(rn.get(g).copied().unwrap_or(0))).sum::<usize>();
        }
    }
    let (mut p, mut r, mut eff) = (0f64, 0f64, 0usize);
    for [nh, nr, nm] in stats {
        if nh > 0 && nr > 0 {
            p += nm as f64 / nh as f64;
            r += nm as f64 / nr as f64;
            eff += 1;
        }
    }
    if eff == 0 {
        return 0.0;
    }
    let (p, r) = (p / eff as f64, r / eff as f64);
    let b2 = BETA * BETA;
    if p + r == 0.0 {
        0.0
    } else {
        100.0 * (1.0 + b2) * p * r / (b2 * p + r)
    }
}
