//! Charts and text reports of a run: loss curves, attention heatmaps, translations.

pub mod colormap;
pub mod config;
pub mod error;
pub mod head_grid;
pub mod heatmap;
pub mod html;
pub mod loss_curve;
pub mod terminal;
pub mod text;
mod title;

pub use colormap::Colormap;
pub use config::AttentionView;
pub use config::ReportConfig;
pub use error::ReportError;
pub use head_grid::{attention_heads_svg, HeadGrid};
pub use heatmap::{attention_heatmap, attention_heatmap_svg, Heatmap};
pub use html::Page;
pub use loss_curve::{group_color, line_chart, wants_log_scale, Series, Stroke};
pub use terminal::terminal_heatmap;
pub use text::{escape_html, slug, wrap};

#[cfg(test)]
mod tests;
