//! Sentence normalization, each step switchable from the config.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

use crate::config::DataConfig;

/// The tutorial's English prefixes (`eng_prefixes`), after normalization.
pub const ENGLISH_PREFIXES: &[&str] = &[
    "i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ", "we are", "we re ", "they are",
    "they re ",
];

/// Normalizes one sentence as the config says and returns its tokens.
pub fn normalize(text: &str, cfg: &DataConfig) -> Vec<String> {
    let mut s: String = text.trim().to_string();
    if cfg.lowercase {
        s = s.to_lowercase();
    }
    if cfg.ascii {
        s = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
    }
    if cfg.separate_punctuation {
        let mut out = String::with_capacity(s.len() + 4);
        for c in s.chars() {
            if matches!(c, '.' | '!' | '?') {
                out.push(' ');
            }
            out.push(c);
        }
        s = out;
    }
    if cfg.letters_only {
        s = s.chars().map(|c| if c.is_ascii_alphabetic() || matches!(c, '.' | '!' | '?') { c } else { ' ' }).collect();
    }
    s.split_whitespace().map(str::to_string).collect()
}

/// Whether a normalized English sentence passes the tutorial's prefix filter.
pub fn has_english_prefix(tokens: &[String]) -> bool {
    let joined = tokens.join(" ") + " ";
    ENGLISH_PREFIXES.iter().any(|p| joined.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_normalization() {
        let cfg = DataConfig::default();
        // torch_ref.normalize("Va !") == "va !" ; normalize("Ça m'a plu.") == "ca m a plu ."
        assert_eq!(normalize("Va !", &cfg), ["va", "!"]);
        assert_eq!(normalize("Ça m'a plu.", &cfg), ["ca", "m", "a", "plu", "."]);
        assert_eq!(normalize("  Élève\u{a0}!", &cfg), ["eleve", "!"]);
    }

    #[test]
    fn steps_can_be_switched_off() {
        let cfg = DataConfig { lowercase: false, ascii: false, letters_only: false, ..Default::default() };
        assert_eq!(normalize("Été, oui!", &cfg), ["Été,", "oui", "!"]);
    }

    #[test]
    fn prefix_filter() {
        let cfg = DataConfig::default();
        assert!(has_english_prefix(&normalize("I'm tired.", &cfg)));
        assert!(has_english_prefix(&normalize("He is tall.", &cfg)));
        assert!(!has_english_prefix(&normalize("Go away.", &cfg)));
    }
}
