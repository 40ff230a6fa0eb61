//! Sentence-pair data for seq2seq experiments: sources, normalization, splits,
//! vocabularies and padded batches.

pub mod batch;
pub mod config;
pub mod dataset;
pub mod digest;
pub mod error;
pub mod files;
pub mod normalize;
pub mod rng;
pub mod tokenizer;
pub mod vocab;

pub use batch::{Batch, BatchPlan, Example};
pub use config::{DataConfig, Dataset};
pub use dataset::{learn_tokenizers, load, load_with, Corpus, Fingerprint, Pair};
pub use digest::{sha256_hex, Sha256Hex};
pub use error::DataError;
pub use rng::Rng;
pub use tokenizer::{Tokenized, Tokenizer, TokenizerKind};
pub use vocab::{Vocab, EOS, PAD, SOS, UNK};
