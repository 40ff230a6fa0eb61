//! docs/config.md against the code: every key of every section (each model family's
//! keys, the shared ones), with its default, and no key the code does not read. A key
//! added, removed or given another default fails here until the page says so.

use std::collections::BTreeMap;

use s2s_model::keys::field_names;
use serde::{de::DeserializeOwned, Serialize};

/// (key, family) → default, as the page's tables list them.
type Rows = BTreeMap<(String, String), String>;

fn documented() -> Rows {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let text = std::fs::read_to_string(&path).expect("docs/config.md");
    let mut rows = Rows::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let key = cells[0].trim_matches('`').to_string();
        let default = cells[1].trim_matches('`').to_string();
        let family = if key.starts_with("model.") { cells[2].to_string() } else { String::new() };
        assert!(rows.insert((key.clone(), family), default).is_none(), "{key} is listed twice");
    }
    rows
}

/// Each key of `T` in `section` with its default (`unset` for none).
fn section<T: Serialize + DeserializeOwned>(section: &str, defaults: &T, family: &str, rows: &mut Rows) {
    let table = toml::Table::try_from(defaults).expect("defaults serialize");
    for key in field_names::<T>() {
        let default = table.get(*key).map_or("unset".to_string(), toml::Value::to_string);
        rows.insert((format!("{section}.{key}"), family.to_string()), default);
    }
}

fn from_code() -> Rows {
    let mut rows = Rows::new();
    let cfg = s2s_run::config::ExperimentConfig::default();
    section("run", &cfg.run, "", &mut rows);
    section("data", &cfg.data, "", &mut rows);
    section("train", &cfg.train, "", &mut rows);
    section("train", &cfg.task, "", &mut rows);
    section("report", &cfg.report, "", &mut rows);
    let every = "every family";
    rows.insert(("model.architecture".into(), every.into()), format!("{:?}", cfg.model.architecture().name()));
    section("model", &cfg.model.decoding, every, &mut rows);
    for arch in s2s_model::registry::FAMILIES.iter().filter(|a| !a.is_example()) {
        let table = arch.default_config().to_table().expect("family defaults serialize");
        for key in arch.keys() {
            let default = table.get(*key).map_or("unset".to_string(), toml::Value::to_string);
            rows.insert((format!("model.{key}"), arch.name().to_string()), default);
        }
    }
    rows
}

#[test]
fn docs_config_md_lists_every_key_with_its_default() {
    let (doc, code) = (documented(), from_code());
    let missing: Vec<_> = code.iter().filter(|(k, _)| !doc.contains_key(*k)).collect();
    let unknown: Vec<_> = doc.keys().filter(|k| !code.contains_key(*k)).collect();
    let wrong: Vec<_> = code.iter().filter_map(|(k, v)| doc.get(k).filter(|d| *d != v).map(|d| (k, d, v))).collect();
    assert!(missing.is_empty(), "keys docs/config.md does not list (key, family) -> default: {missing:?}");
    assert!(unknown.is_empty(), "keys docs/config.md lists that the code does not read: {unknown:?}");
    assert!(wrong.is_empty(), "defaults docs/config.md gets wrong (key, page, code): {wrong:?}");
}
