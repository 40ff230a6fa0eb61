//! Summary values as TensorBoard's plugins read them: scalars, text (the text plugin's
//! string tensors), PNG images and the hparams plugin's session records.

use std::collections::HashMap;

use prost::Message;

use crate::proto::{
    HParamsData, HParamsPluginData, Image, PluginData, SessionEndInfo, SessionStartInfo, Summary, SummaryKind,
    SummaryMetadata, SummaryValue, TensorDim, TensorProto, TensorShape, DT_STRING, HPARAMS_STATUS_SUCCESS,
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

/// A config value as an hparam: numbers, booleans, and anything else as its text.
pub fn hparam_value(v: &toml::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        toml::Value::Integer(i) => Kind::NumberValue(*i as f64),
        toml::Value::Float(f) => Kind::NumberValue(*f),
        toml::Value::Boolean(b) => Kind::BoolValue(*b),
        toml::Value::String(s) => Kind::StringValue(s.clone()),
        other => Kind::StringValue(other.to_string()),
    };
    prost_types::Value { kind: Some(kind) }
}
