//! Small, self-contained HTML pages: every value escaped, images inlined as data URIs
//! (an SVG inside `<img>` never runs scripts), no external resources.

use crate::text::escape_html;

/// A page under construction.
#[derive(Debug, Default, Clone)]
pub struct Page {
    title: String,
    body: String,
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}th{background:#f3f3f3}\
pre{background:#f7f7f7;padding:1em;overflow:auto}img{max-width:100%;border:1px solid #eee}\
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid figure{margin:0}.gap{color:#999}\
.cols{display:grid;gap:1em;align-items:start}.cols figure{margin:0}.cols img{width:100%}\
table.kv td:first-child{font-weight:bold;background:#f7f7f7}details{margin:1em 0}summary{cursor:pointer}";

impl Page {
    pub fn new(title: &str) -> Self {
        Self { title: title.to_string(), body: String::new() }
    }

    pub fn heading(&mut self, level: u8, text: &str) -> &mut Self {
        let l = level.clamp(1, 4);
        self.body.push_str(&format!("<h{l}>{}</h{l}>\n", escape_html(text)));
        self
    }

    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        self.body.push_str(&format!("<p>{}</p>\n", escape_html(text)));
        self
    }

    pub fn preformatted(&mut self, text: &str) -> &mut Self {
        self.body.push_str(&format!("<pre>{}</pre>\n", escape_html(text)));
        self
    }

    /// A table; `None` cells are shown as a gap.
    pub fn table(&mut self, headers: &[String], rows: &[Vec<Option<String>>]) -> &mut Self {
        self.body.push_str("<table>\n<tr>");
        for h in headers {
            self.body.push_str(&format!("<th>{}</th>", escape_html(h)));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                match c {
                    Some(v) => self.body.push_str(&format!("<td>{}</td>", escape_html(v))),
                    None => self.body.push_str("<td class=\"gap\">–</td>"),
                }
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
        self
    }

    /// Rows of name and value, without a header row.
    pub fn key_values(&mut self, rows: &[(String, String)]) -> &mut Self {
        self.body.push_str("<table class=\"kv\">\n");
        for (k, v) in rows {
            self.body.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>\n", escape_html(k), escape_html(v)));
        }
        self.body.push_str("</table>\n");
        self
    }

    /// A paragraph holding one link (a relative path, escaped).
    pub fn link(&mut self, href: &str, text: &str) -> &mut Self {
        self.body.push_str(&format!("<p><a href=\"{}\">{}</a></p>\n", escape_html(href), escape_html(text)));
        self
    }

    /// Starts / ends a block folded under `summary` until clicked.
    pub fn details_start(&mut self, summary: &str) -> &mut Self {
        self.body.push_str(&format!("<details><summary>{}</summary>\n", escape_html(summary)));
        self
    }

    pub fn details_end(&mut self) -> &mut Self {
        self.body.push_str("</details>\n");
        self
    }

    /// Starts a grid of `n` equal columns (figures scaled to fit); end with [`Self::grid_end`].
    pub fn columns_start(&mut self, n: usize) -> &mut Self {
        self.body.push_str(&format!(
            "<div class=\"cols\" style=\"grid-template-columns:repeat({},minmax(0,1fr))\">\n",
            n.max(1)
        ));
        self
    }

    /// An SVG image inlined as a data URI, with a caption.
    pub fn svg(&mut self, svg: &[u8], caption: &str) -> &mut Self {
        self.body.push_str(&format!(
            "<figure><img alt=\"{c}\" src=\"data:image/svg+xml;base64,{}\"/><figcaption>{c}</figcaption></figure>\n",
            base64(svg),
            c = escape_html(caption)
        ));
        self
    }

    /// Starts / ends a row of figures.
    pub fn grid_start(&mut self) -> &mut Self {
        self.body.push_str("<div class=\"grid\">\n");
        self
    }

    pub fn grid_end(&mut self) -> &mut Self {
        self.body.push_str("</div>\n");
        self
    }

    pub fn render(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape_html(&self.title),
            self.body
        )
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn page_escapes_everything_and_is_well_formed() {
        let mut p = Page::new("<script>alert(1)</script>");
        p.heading(2, "a & b").paragraph("\"quoted\" 'single' élève").preformatted("<b>x</b>");
        p.table(&["k<".into()], &[vec![Some("<script>".into())], vec![None]]);
        p.key_values(&[("a<".into(), "b&".into())]).link("x\"y", "<i>").details_start("<s>").details_end();
        p.columns_start(3).grid_end();
        p.svg(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "c<");
        let html = p.render();
        assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"));
        let body = html.trim_start_matches("<!DOCTYPE html>\n");
        roxmltree::Document::parse(body).expect("well-formed");
    }
}
