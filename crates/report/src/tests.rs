use crate::*;

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

fn parse(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).expect("read svg");
    roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    text
}

#[test]
fn heatmap_is_well_formed_with_hostile_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("h.svg");
    let src = words("<script>alert(1)</script> & \"quoted\" 'single' élève EOS");
    let out = words("a&b </svg> EOS");
    let weights: Vec<Vec<f32>> =
        (0..out.len()).map(|r| (0..src.len()).map(|c| ((r + c) % 3) as f32 / 2.0).collect()).collect();
    let map =
        Heatmap { title: "attention: <b>x</b> & y", source: &src, output: &out, weights: &weights, annotate: true };
    for cm in [Colormap::Bone, Colormap::Ylorrd] {
        attention_heatmap(&p, &map, cm).expect("draw");
        let text = parse(&p);
        assert!(!text.contains("<script>"));
        assert!(text.contains("source tokens") && text.contains("generated tokens") && text.contains("weight"));
        assert!(text.contains("élève"));
    }
}

#[test]
fn heatmap_rejects_ragged_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = words("a b");
    let out = words("x");
    let weights = vec![vec![1.0f32]];
    let map = Heatmap { title: "t", source: &src, output: &out, weights: &weights, annotate: true };
    assert!(attention_heatmap(&dir.path().join("h.svg"), &map, Colormap::Bone).is_err());
}

#[test]
fn loss_chart_has_title_axes_and_legend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("loss.svg");
    let series = vec![
        Series::new("train_loss", (1..=20).map(|i| (i as f64, 3.0 / i as f64)).collect(), 0),
        Series::new("valid_loss", vec![(5.0, 1.0), (10.0, f64::NAN), (20.0, 0.4)], 0).dashed(),
    ];
    line_chart(&p, "Loss <run & co>", "epoch", "loss", &series).expect("draw");
    let text = parse(&p);
    for needle in ["Loss &lt;run &amp; co&gt;", "epoch", "loss", "train_loss", "valid_loss"] {
        assert!(text.contains(needle), "missing {needle}");
    }
    line_chart(&p, "single", "epoch", "loss", &[Series::new("x", vec![(1.0, 1.0)], 0)]).expect("one point");
    parse(&p);
}

#[test]
fn slugs() {
    assert_eq!(slug("I am a student."), "i-am-a-student");
    assert_eq!(slug("<script>"), "script");
    assert_eq!(slug("???"), "sentence");
}

#[test]
fn long_sentences_get_small_cells_and_vertical_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("long.svg");
    // 50 source pieces and 45 output pieces, as a long Multi30k sentence gives.
    let src: Vec<String> = (0..50).map(|i| format!("\u{2581}piece{i}")).collect();
    let out: Vec<String> = (0..45).map(|i| format!("\u{2581}out{i}")).collect();
    let weights: Vec<Vec<f32>> = (0..45).map(|r| (0..50).map(|c| if c == r { 1.0 } else { 0.0 }).collect()).collect();
    let title = "a very long title ".repeat(20);
    let map = Heatmap { title: &title, source: &src, output: &out, weights: &weights, annotate: true };
    attention_heatmap(&p, &map, Colormap::Ylorrd).expect("draw");
    let text = parse(&p);
    let doc = roxmltree::Document::parse(&text).expect("xml");
    let width: f64 = doc.root_element().attribute("width").and_then(|w| w.parse().ok()).expect("width");
    // 26-pixel columns instead of 60: about 1,500 pixels, not 3,200.
    assert!(width < 1600.0, "{width}");
    // Every label is there, the column labels turned (rotate), and the title wrapped
    // onto several lines, none of it cut.
    for l in src.iter().chain(&out) {
        assert!(text.contains(&format!("\n{l}\n")), "{l} missing");
    }
    assert!(text.contains("rotate"), "column labels are not vertical");
    assert!(!text.contains("...") && text.contains("source tokens"));
    assert_eq!(text.matches("very").count(), 20, "a title word is missing");
}
