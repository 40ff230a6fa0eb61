//! What one request may ask for.

use crate::error::ApiError;

/// Upper bounds on a request; anything over them is refused with a 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a request body.
    pub body_bytes: usize,
    /// Sentences in one translate request.
    pub sentences: usize,
    /// Characters in one sentence.
    pub sentence_chars: usize,
    /// Beam width (and so n-best).
    pub beam: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_bytes: 64 * 1024, sentences: 32, sentence_chars: 1000, beam: 16 }
    }
}

impl Limits {
    /// Checks a translate request's sentences and decoding against the limits.
    pub fn check(&self, sentences: &[String], beam: usize, n_best: usize) -> Result<(), ApiError> {
        if sentences.is_empty() {
            return Err(ApiError::BadRequest("sentences: give at least one sentence".into()));
        }
        if sentences.len() > self.sentences {
            return Err(ApiError::TooLarge(format!(
                "sentences: {} given, at most {} per request",
                sentences.len(),
                self.sentences
            )));
        }
        for (i, s) in sentences.iter().enumerate() {
            let chars = s.chars().count();
            if chars > self.sentence_chars {
                return Err(ApiError::TooLarge(format!(
                    "sentences[{i}]: {chars} characters, at most {}",
                    self.sentence_chars
                )));
            }
            if s.trim().is_empty() {
                return Err(ApiError::BadRequest(format!("sentences[{i}] is empty")));
            }
        }
        if beam == 0 || beam > self.beam {
            return Err(ApiError::BadRequest(format!("beam: {beam}, give 1 (greedy) to {}", self.beam)));
        }
        if n_best == 0 || n_best > beam {
            return Err(ApiError::BadRequest(format!("n_best: {n_best}, give 1 to the beam width ({beam})")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_what_is_over_them() {
        let l = Limits { sentences: 2, sentence_chars: 5, beam: 4, ..Limits::default() };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(l.check(&s(&["a b"]), 1, 1).is_ok());
        assert!(l.check(&s(&["a b"]), 4, 3).is_ok());
        assert!(matches!(l.check(&s(&["a", "b", "c"]), 1, 1), Err(ApiError::TooLarge(_))));
        assert!(matches!(l.check(&s(&["abcdef"]), 1, 1), Err(ApiError::TooLarge(_))));
        assert!(matches!(l.check(&s(&[]), 1, 1), Err(ApiError::BadRequest(_))));
        assert!(matches!(l.check(&s(&["  "]), 1, 1), Err(ApiError::BadRequest(_))));
        assert!(matches!(l.check(&s(&["a"]), 5, 1), Err(ApiError::BadRequest(_))));
        assert!(matches!(l.check(&s(&["a"]), 2, 3), Err(ApiError::BadRequest(_))));
    }
}
