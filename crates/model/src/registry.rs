//! The model families: the one place that names them. A new family is a folder of this
//! crate with a config struct implementing [`Family`], one variant in [`Architecture`] and
//! [`FamilyConfig`], and one line in each `match` below; nothing outside this crate
//! changes.

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};

#[cfg(feature = "example-family")]
use crate::bag_of_words::BagOfWordsConfig;
use crate::family::Family;
use crate::gru::GruConfig;
use crate::transformer::TransformerConfig;

/// Which model family a run trains (`model.architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// GRU encoder + attention decoder ([`crate::gru`]).
    #[default]
    Gru,
    /// Encoder-decoder Transformer ([`crate::transformer`]).
    Transformer,
    /// The example family, for tests only (`example-family` feature).
    #[cfg(feature = "example-family")]
    BagOfWords,
}

/// One family's config: the `[model]` keys that family reads.
#[derive(Debug, Clone, PartialEq)]
pub enum FamilyConfig {
    Gru(GruConfig),
    Transformer(TransformerConfig),
    #[cfg(feature = "example-family")]
    BagOfWords(BagOfWordsConfig),
}

impl Default for FamilyConfig {
    fn default() -> Self {
        Architecture::default().default_config()
    }
}

/// Every family.
pub const FAMILIES: &[Architecture] = &[
    Architecture::Gru,
    Architecture::Transformer,
    #[cfg(feature = "example-family")]
    Architecture::BagOfWords,
];

impl Architecture {
    /// The name a config gives (`model.architecture`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Gru => "gru",
            Self::Transformer => "transformer",
            #[cfg(feature = "example-family")]
            Self::BagOfWords => "bag-of-words",
        }
    }

    /// Whether the family only shows how to add one (compiled for tests, never released,
    /// left out of the user's reference).
    pub fn is_example(self) -> bool {
        #[cfg(feature = "example-family")]
        if self == Self::BagOfWords {
            return true;
        }
        false
    }

    /// The family's config with every key at its default.
    pub fn default_config(self) -> FamilyConfig {
        match self {
            Self::Gru => FamilyConfig::Gru(GruConfig::default()),
            Self::Transformer => FamilyConfig::Transformer(TransformerConfig::default()),
            #[cfg(feature = "example-family")]
            Self::BagOfWords => FamilyConfig::BagOfWords(BagOfWordsConfig::default()),
        }
    }

    /// The `[model]` keys this family's config struct reads.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Gru => crate::keys::field_names::<GruConfig>(),
            Self::Transformer => crate::keys::field_names::<TransformerConfig>(),
            #[cfg(feature = "example-family")]
            Self::BagOfWords => crate::keys::field_names::<BagOfWordsConfig>(),
        }
    }
}

/// Reads the family's keys with its own struct: `architecture.deserialize(d)`, so that the
/// caller's deserializer (and its error messages) reads each key.
impl<'de> DeserializeSeed<'de> for Architecture {
    type Value = FamilyConfig;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<FamilyConfig, D::Error> {
        Ok(match self {
            Self::Gru => FamilyConfig::Gru(GruConfig::deserialize(d)?),
            Self::Transformer => FamilyConfig::Transformer(TransformerConfig::deserialize(d)?),
            #[cfg(feature = "example-family")]
            Self::BagOfWords => FamilyConfig::BagOfWords(BagOfWordsConfig::deserialize(d)?),
        })
    }
}

impl FamilyConfig {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Gru(_) => Architecture::Gru,
            Self::Transformer(_) => Architecture::Transformer,
            #[cfg(feature = "example-family")]
            Self::BagOfWords(_) => Architecture::BagOfWords,
        }
    }

    /// The family behind this config.
    pub fn as_family(&self) -> &dyn Family {
        match self {
            Self::Gru(c) => c,
            Self::Transformer(c) => c,
            #[cfg(feature = "example-family")]
            Self::BagOfWords(c) => c,
        }
    }

    /// The family's keys as a TOML table, in its struct's order.
    pub fn to_table(&self) -> Result<toml::Table, toml::ser::Error> {
        match self {
            Self::Gru(c) => toml::Table::try_from(c),
            Self::Transformer(c) => toml::Table::try_from(c),
            #[cfg(feature = "example-family")]
            Self::BagOfWords(c) => toml::Table::try_from(c),
        }
    }
}

impl From<GruConfig> for FamilyConfig {
    fn from(c: GruConfig) -> Self {
        Self::Gru(c)
    }
}

impl From<TransformerConfig> for FamilyConfig {
    fn from(c: TransformerConfig) -> Self {
        Self::Transformer(c)
    }
}
