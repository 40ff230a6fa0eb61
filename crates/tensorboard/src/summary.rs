//! Summary values as TensorBoard's plugins read them: scalars, text (the text plugin's
//! string tensors), PNG images, the hparams plugin's session records and the custom
//! scalars plugin's layout.

use std::collections::HashMap;

use prost::Message;

use crate::proto::{
    Category, Chart, HParamsData, HParamsPluginData, Image, Layout, MultilineChartContent, PluginData, SessionEndInfo,
    SessionStartInfo, Summary, SummaryKind, SummaryMetadata, SummaryValue, TensorDim, TensorProto, TensorShape,
    DT_STRING, HPARAMS_STATUS_SUCCESS,
};

fn plugin(name: &str, content: Vec<u8>) -> Option<SummaryMetadata> {
    Some(SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.into(), content }), ..Default::default() })
}

pub fn scalar(tag: &str, value: f64) -> SummaryValue {
    SummaryValue { tag: tag.into(), metadata: None, value: Some(SummaryKind::SimpleValue(value as f32)) }
}

/// Markdown text for the text plugin.
pub fn text(tag: &str, markdown: &str) -> SummaryValue {
    let tensor = TensorProto {
        dtype: DT_STRING,
        tensor_shape: Some(TensorShape { dim: vec![TensorDim { size: 1 }] }),
        string_val: vec![markdown.as_bytes().to_vec()],
    };
    SummaryValue { tag: tag.into(), metadata: plugin("text", Vec::new()), value: Some(SummaryKind::Tensor(tensor)) }
}

/// An RGBA PNG for the images plugin.
pub fn image(tag: &str, png: Vec<u8>, width: u32, height: u32) -> SummaryValue {
    let image = Image { height: height as i32, width: width as i32, colorspace: 4, encoded_image_string: png };
    SummaryValue { tag: tag.into(), metadata: None, value: Some(SummaryKind::Image(image)) }
}

fn hparams(tag: &str, data: HParamsData) -> SummaryValue {
    let content = HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
    SummaryValue { tag: tag.into(), metadata: plugin("hparams", content), value: None }
}

/// The run's hyperparameters (one HPARAMS row); its metrics are its scalars.
pub fn session_start(values: HashMap<String, prost_types::Value>, start_time_secs: f64) -> SummaryValue {
    let info = SessionStartInfo { hparams: values, group_name: String::new(), start_time_secs };
    hparams("_hparams_/session_start_info", HParamsData::SessionStartInfo(info))
}

pub fn session_end(end_time_secs: f64) -> SummaryValue {
    let info = SessionEndInfo { status: HPARAMS_STATUS_SUCCESS, end_time_secs };
    hparams("_hparams_/session_end_info", HParamsData::SessionEndInfo(info))
}

pub fn summary(values: Vec<SummaryValue>) -> Summary {
    Summary { value: values }
}

/// The custom scalars layout: each (chart title, tag regexes) on one plot, so that the
/// training and validation loss share a chart.
pub fn layout(category: &str, charts: &[(&str, &[&str])]) -> SummaryValue {
    let chart = charts
        .iter()
        .map(|(title, tags)| Chart {
            title: (*title).to_string(),
            multiline: Some(MultilineChartContent { tag: tags.iter().map(|t| (*t).to_string()).collect() }),
        })
        .collect();
    let layout = Layout { version: 0, category: vec![Category { title: category.into(), chart, closed: false }] };
    // A scalar string tensor (no dimensions), as the plugin's own writer makes it.
    let tensor = TensorProto {
        dtype: DT_STRING,
        tensor_shape: Some(TensorShape { dim: Vec::new() }),
        string_val: vec![layout.encode_to_vec()],
    };
    SummaryValue {
        tag: "custom_scalars__config__".into(),
        metadata: plugin("custom_scalars", Vec::new()),
        value: Some(SummaryKind::Tensor(tensor)),
    }
}

/// A config value as an hparam: floats as numbers, integers as their digits (the
/// HPARAMS table prints every number with four decimals: `heads 4.0000`), booleans,
/// and anything else as its text.
pub fn hparam_value(v: &toml::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        toml::Value::Integer(i) => Kind::StringValue(i.to_string()),
        toml::Value::Float(f) => Kind::NumberValue(*f),
        toml::Value::Boolean(b) => Kind::BoolValue(*b),
        toml::Value::String(s) => Kind::StringValue(s.clone()),
        other => Kind::StringValue(other.to_string()),
    };
    prost_types::Value { kind: Some(kind) }
}
