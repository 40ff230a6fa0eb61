//! SHA-256 as lowercase hex: the one way the project names the content of a file, a
//! tokenizer, a dataset or a checkpoint tensor file.

use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256Hex::new().update(bytes).finish()
}

/// A SHA-256 fed in parts, finished as lowercase hex.
#[derive(Debug, Clone, Default)]
pub struct Sha256Hex(Sha256);

impl Sha256Hex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.0.update(bytes);
        self
    }

    pub fn finish(&self) -> String {
        self.0.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2's example: `echo -n abc | sha256sum`.
    #[test]
    fn matches_sha256sum() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        assert_eq!(Sha256Hex::new().update("a").update(b"bc").finish(), abc);
    }
}
