//! The `[model]` section of an experiment config: `architecture` picks a family
//! ([`crate::registry`]), the family's own struct reads its keys, and
//! [`DecodingConfig`] reads the keys every family shares (how translations are decoded).
//! In a file the keys stay flat under `[model]`. [`build`] makes the configured model.

use candle_core::Device;
use serde::Serialize;

use crate::error::Result;
use crate::family::TranslationModel;
use crate::params::Weights;
use crate::registry::{Architecture, FamilyConfig};
use crate::shared_config::{DecodingConfig, ModelDims, ParameterCount};

/// The whole `[model]` section: the family's config and the decoding keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelConfig {
    pub family: FamilyConfig,
    pub decoding: DecodingConfig,
}

/// The key that names the family.
pub const ARCHITECTURE_KEY: &str = "architecture";

impl ModelConfig {
    pub fn architecture(&self) -> Architecture {
        self.family.architecture()
    }

    /// Checks the family's keys and the decoding keys.
    pub fn validate(&self) -> Result<()> {
        self.family.as_family().validate()?;
        self.decoding.validate()
    }

    /// The `[model]` keys `architecture` means something for: its family's and the
    /// decoding keys (`architecture` itself included).
    pub fn keys_of(architecture: Architecture) -> Vec<&'static str> {
        let mut keys = vec![ARCHITECTURE_KEY];
        keys.extend(architecture.keys());
        keys.extend(DecodingConfig::keys());
        keys
    }

    /// The family that declares `key`, other than `architecture`'s, if any: for a message
    /// that says which family a misplaced key belongs to.
    pub fn other_family_of(architecture: Architecture, key: &str) -> Option<Architecture> {
        crate::registry::FAMILIES.iter().copied().find(|a| *a != architecture && a.keys().contains(&key))
    }

    /// The section as one flat TOML table: `architecture`, the family's keys, then the
    /// decoding keys.
    pub fn to_table(&self) -> std::result::Result<toml::Table, toml::ser::Error> {
        let mut table = toml::Table::new();
        table.insert(ARCHITECTURE_KEY.into(), toml::Value::String(self.architecture().name().into()));
        table.extend(self.family.to_table()?);
        table.extend(toml::Table::try_from(&self.decoding)?);
        Ok(table)
    }
}

impl Serialize for ModelConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_table().map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

/// A model of the configured family, its weights drawn from a seed or read from a file.
pub fn build(
    cfg: &ModelConfig,
    dims: ModelDims,
    weights: Weights,
    device: &Device,
) -> Result<Box<dyn TranslationModel>> {
    cfg.validate()?;
    cfg.family.as_family().build(&cfg.decoding, dims, weights, device)
}

/// The number of parameters [`build`] would create, computed from the sizes alone, so that
/// a run can refuse a model too big for the machine.
pub fn parameter_count(cfg: &ModelConfig, dims: &ModelDims) -> ParameterCount {
    cfg.family.as_family().parameter_count(&cfg.decoding, dims)
}
