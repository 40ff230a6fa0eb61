//! The Transformer against PyTorch (fixtures from `scripts/transformer_fixtures.py`), and
//! its model-level properties: every parameter learns, PAD changes nothing, the cache
//! changes nothing, the size-only count is exact.

use candle_core::{Device, Tensor, Var};
use s2s_data::{Batch, Example, EOS, PAD};
use serde_json::Value;

use super::kernels::KeyMask;
use super::*;
use crate::family::Family;
use crate::params::{seeded_builder, ParamStore};
use crate::shared_config::{DecodingConfig, ModelDims, TieEmbeddings};
use crate::training::{Mode, TrainRngs};

const FIXTURES: &str = include_str!("fixtures.json");

/// The fixtures' parameter formula (`fill` in the script).
fn fill(name: &str, shape: &[usize]) -> Tensor {
    let c = (name.bytes().map(u32::from).sum::<u32>() % 17) as f32 * 0.1;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| 0.3 * (0.7 * i as f32 + c).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("fill")
}

/// The fixtures' input formula (`inputs` in the script), as a variable.
fn input(name: &str, shape: &[usize]) -> Var {
    let c = (name.bytes().map(u32::from).sum::<u32>() % 13) as f32 * 0.3;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (0.37 * i as f32 + c).cos()).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).expect("input")).expect("var")
}

fn probe(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n).map(|i| (0.91 * i as f32 + 0.5).sin()).collect();
    Tensor::from_vec(v, n, &Device::Cpu).expect("probe")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn assert_close(what: &str, got: &Tensor, want: &Value) {
    let got: Vec<f32> = got.flatten_all().expect("flat").to_vec1().expect("vec");
    let want = floats(want);
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, e)) in got.iter().zip(&want).enumerate() {
        assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{what}[{i}]: {a} vs PyTorch {e}");
    }
}

/// Fills every variable of `store` by its name and returns the store's variables.
fn filled(store: &ParamStore) -> Vec<(String, Var)> {
    let vars = store.vars();
    for (name, var) in &vars {
        var.set(&fill(name, var.dims())).expect("set");
    }
    vars
}

/// Backpropagates `sum(out · probe)` and checks the output, the inputs' and every
/// parameter's gradients against a fixture case.
fn check_case(case: &str, out: &Tensor, inputs: &[(&str, &Var)], vars: &[(String, Var)]) {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    let fx = &all["cases"][case];
    assert_close(&format!("{case} output"), out, &fx["output"]);
    let loss = (out.flatten_all().expect("flat") * probe(out.elem_count())).expect("mul").sum_all().expect("sum");
    let grads = loss.backward().expect("backward");
    for (name, var) in inputs {
        let g = grads.get(var.as_tensor()).expect("input grad");
        assert_close(&format!("{case} d{name}"), g, &fx["input_grads"][*name]);
    }
    let want = fx["param_grads"].as_object().expect("param grads");
    assert_eq!(want.len(), vars.len(), "{case}: parameter count");
    for (name, var) in vars {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{case}: {name} has no gradient"));
        assert_close(&format!("{case} d{name}"), g, &want[name]);
    }
}

const D: usize = 8;
const HEADS: usize = 2;
const FF: usize = 16;
const NO_DROPOUT: Dropouts = Dropouts { residual: 0.0, attention: 0.0, activation: 0.0 };

fn dev() -> Device {
    Device::Cpu
}

/// Both attention paths: the fused op (no weights wanted) and candle's composed ops.
const PATHS: [(bool, &str); 2] = [(false, "fused"), (true, "composed")];

#[test]
fn multi_head_attention_matches_pytorch() {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    for (need_weights, path) in PATHS {
        let (store, vb) = seeded_builder(0, &dev());
        let mha = MultiHeadAttention::new(D, HEADS, vb).expect("mha");
        let vars = filled(&store);
        let (q, m) = (input("query", &[2, 3, D]), input("memory", &[2, 4, D]));
        let pad = KeyMask::padding(&[4, 2], 4);
        let memory = mha.memory(m.as_tensor()).expect("memory");
        let (out, w) = mha.cross_attention(q.as_tensor(), &memory, &pad, 0.0, None, need_weights).expect("cross");
        assert_eq!(w.is_some(), need_weights, "{path}");
        // PyTorch had key and value as separate leaves of the same values: their gradients
        // sum to ours.
        let g = &all["cases"]["mha_cross"]["input_grads"];
        let summed: Vec<f64> =
            floats(&g["memory"]).iter().zip(floats(&g["memory2"])).map(|(a, b)| f64::from(a + b)).collect();
        let loss = (out.flatten_all().expect("f") * probe(out.elem_count())).expect("m").sum_all().expect("s");
        let grads = loss.backward().expect("backward");
        assert_close(&format!("{path} mha_cross dmemory"), grads.get(m.as_tensor()).expect("dm"), &Value::from(summed));
        check_case("mha_cross", &out, &[("query", &q)], &vars);

        let (store, vb) = seeded_builder(0, &dev());
        let mha = MultiHeadAttention::new(D, HEADS, vb).expect("mha");
        let vars = filled(&store);
        let q = input("query", &[2, 3, D]);
        let (out, _) = mha.self_attention(q.as_tensor(), &KeyMask::causal(), 0.0, None, need_weights).expect("self");
        let g = &all["cases"]["mha_self_causal"]["input_grads"];
        let summed: Vec<f64> = floats(&g["query"])
            .iter()
            .zip(floats(&g["q2"]).iter().zip(floats(&g["q3"])))
            .map(|(a, (b, c))| f64::from(a + b + c))
            .collect();
        let loss = (out.flatten_all().expect("f") * probe(out.elem_count())).expect("m").sum_all().expect("s");
        let dq = loss.backward().expect("b");
        assert_close(&format!("{path} mha_self dquery"), dq.get(q.as_tensor()).expect("dq"), &Value::from(summed));
        check_case("mha_self_causal", &out, &[], &vars);
    }
}

#[test]
fn encoder_layers_match_pytorch_in_both_norm_orders() {
    for (norm, tag) in [(Norm::Pre, "pre"), (Norm::Post, "post")] {
        let (store, vb) = seeded_builder(0, &dev());
        let layer = EncoderLayer::new(D, HEADS, FF, norm, NO_DROPOUT, vb).expect("layer");
        let vars = filled(&store);
        let m = input("memory", &[2, 4, D]);
        let out = layer.forward(m.as_tensor(), &KeyMask::padding(&[4, 2], 4), None).expect("forward");
        check_case(&format!("encoder_{tag}"), &out, &[("memory", &m)], &vars);
    }
}

#[test]
fn decoder_layers_match_pytorch_in_both_norm_orders() {
    for (need_weights, path) in PATHS {
        for (norm, tag) in [(Norm::Pre, "pre"), (Norm::Post, "post")] {
            let (store, vb) = seeded_builder(0, &dev());
            let layer = DecoderLayer::new(D, HEADS, FF, norm, NO_DROPOUT, vb).expect("layer");
            let vars = filled(&store);
            let (q, m) = (input("query", &[2, 3, D]), input("memory", &[2, 4, D]));
            let memory = layer.memory(m.as_tensor(), &KeyMask::padding(&[4, 2], 4)).expect("memory");
            let (out, w) = layer.forward(q.as_tensor(), &memory, None, need_weights).expect("forward");
            assert_eq!(w.is_some(), need_weights, "{path}");
            check_case(&format!("decoder_{tag}"), &out, &[("query", &q), ("memory", &m)], &vars);
        }
    }
}

fn small(norm: Norm, positions: Positions, tie: TieEmbeddings) -> TransformerConfig {
    TransformerConfig {
        hidden_size: 8,
        heads: 2,
        ff_size: 12,
        encoder_layers: 2,
        decoder_layers: 1,
        dropout: 0.1,
        attention_dropout: 0.1,
        activation_dropout: 0.1,
        norm,
        positions,
        tie_embeddings: tie,
    }
}

const DIMS: ModelDims = ModelDims { src_vocab: 11, tgt_vocab: 11, max_length: 7 };

fn example_batch_examples() -> Vec<Example> {
    vec![
        Example { src: vec![4, 5, 6, 7, EOS], tgt: vec![8, 9, 10, EOS] },
        Example { src: vec![5, 9, EOS], tgt: vec![7, 4, 6, 5, 8, EOS] },
        Example { src: vec![10, EOS], tgt: vec![6, EOS] },
    ]
}

fn example_batch() -> Batch {
    Batch::new(&example_batch_examples(), &[0, 1, 2])
}

#[test]
fn parameter_count_matches_the_built_model() {
    for norm in [Norm::Pre, Norm::Post] {
        for positions in [Positions::Sinusoidal, Positions::Learned] {
            for tie in [TieEmbeddings::None, TieEmbeddings::Decoder, TieEmbeddings::All] {
                let cfg = small(norm, positions, tie);
                let model = Transformer::seeded(&cfg, &DecodingConfig::default(), DIMS, 0, &dev()).expect("model");
                let counted = cfg.parameter_count(&DecodingConfig::default(), &DIMS);
                assert_eq!(counted.total, model.params().total() as u128, "{cfg:?}");
            }
        }
    }
}

/// Parameter names follow `torch.nn.Transformer`'s state_dict.
#[test]
fn parameter_names_follow_torch_nn_transformer() {
    let model = Transformer::seeded(
        &small(Norm::Pre, Positions::Sinusoidal, TieEmbeddings::None),
        &DecodingConfig::default(),
        DIMS,
        0,
        &dev(),
    )
    .expect("model");
    let names: Vec<String> = model.params().vars().into_iter().map(|(n, _)| n).collect();
    for want in [
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.layers.1.linear2.bias",
        "encoder.norm.weight",
        "decoder.layers.0.multihead_attn.out_proj.weight",
        "decoder.layers.0.norm3.bias",
        "decoder.norm.bias",
        "src_embedding.weight",
        "tgt_embedding.weight",
        "output.weight",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

/// One training step gives every parameter a non-zero gradient (no op without a backward
/// pass cuts the graph), for every option and with the batch split over two threads.
#[test]
fn every_parameter_gets_a_gradient() {
    // Attention dropout 0 trains through the fused attention op, 0.1 through the composed ops.
    for (norm, positions, tie, threads, attention_dropout) in [
        (Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder, 1, 0.1),
        (Norm::Post, Positions::Learned, TieEmbeddings::None, 2, 0.1),
        (Norm::Pre, Positions::Learned, TieEmbeddings::All, 1, 0.1),
        (Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder, 2, 0.0),
        (Norm::Post, Positions::Sinusoidal, TieEmbeddings::None, 1, 0.0),
    ] {
        let cfg = TransformerConfig { attention_dropout, ..small(norm, positions, tie) };
        let mut model = Transformer::seeded(&cfg, &DecodingConfig::default(), DIMS, 3, &dev()).expect("model");
        model.set_threads(threads);
        let mut rngs = TrainRngs::new(1);
        let mode = Mode::Train { rngs: &mut rngs, teacher_forcing_ratio: 1.0, label_smoothing: 0.1 };
        let (loss, grads) = model.loss_and_grads(&example_batch(), mode).expect("grads");
        assert!(loss.is_finite() && loss > 0.0);
        for (name, var) in model.params().vars() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
            let norm: f32 = g.sqr().expect("sq").sum_all().expect("sum").to_scalar().expect("scalar");
            assert!(norm > 0.0, "{name}: zero gradient ({norm:?}, {positions:?} {tie:?})");
        }
    }
}

/// Changing ids under PAD (source and target) changes no bit of the loss or of any
/// gradient.
#[test]
fn padding_changes_nothing() {
    let cfg = TransformerConfig {
        dropout: 0.0,
        attention_dropout: 0.0,
        activation_dropout: 0.0,
        ..small(Norm::Pre, Positions::Learned, TieEmbeddings::Decoder)
    };
    let model = Transformer::seeded(&cfg, &DecodingConfig::default(), DIMS, 5, &dev()).expect("model");
    let batch = example_batch();
    let mut other = batch.clone();
    for (i, id) in other.src.iter_mut().enumerate() {
        if *id == PAD && i % 2 == 0 {
            *id = 9;
        }
    }
    for id in other.tgt.iter_mut().filter(|id| **id == PAD) {
        *id = 4;
    }
    assert_ne!(batch.src, other.src);
    let run = |b: &Batch| {
        let loss = model.loss(b, Mode::Eval).expect("loss");
        let grads = loss.backward().expect("backward");
        let mut bits = vec![loss.to_scalar::<f32>().expect("scalar").to_bits()];
        for (_, var) in model.params().vars() {
            let g: Vec<f32> = grads.get(var.as_tensor()).expect("grad").flatten_all().expect("f").to_vec1().expect("v");
            bits.extend(g.iter().map(|x| x.to_bits()));
        }
        bits
    };
    assert_eq!(run(&batch), run(&other));
}

/// Decoding with the key/value caches gives the ids, log-probabilities and attention of
/// recomputing every prefix, greedy and beam.
#[test]
fn cached_decoding_equals_recomputing() {
    for norm in [Norm::Pre, Norm::Post] {
        let cfg = small(norm, Positions::Sinusoidal, TieEmbeddings::Decoder);
        let decoding = DecodingConfig { max_decode_length: 6, ..Default::default() };
        let model = Transformer::seeded(&cfg, &decoding, DIMS, 11, &dev()).expect("model");
        let sources = vec![vec![4, 5, 6, 7, EOS], vec![9, EOS], vec![10, 8, EOS]];
        let cached = model.greedy_with(&sources, 6, false, true).expect("cached");
        let recomputed = model.greedy_with(&sources, 6, false, false).expect("recomputed");
        for (a, b) in cached.iter().zip(&recomputed) {
            assert_eq!(a.ids, b.ids);
            assert!((a.log_prob - b.log_prob).abs() < 1e-5, "{} vs {}", a.log_prob, b.log_prob);
            for (ra, rb) in a.attention.iter().zip(&b.attention) {
                for (x, y) in ra.iter().zip(rb) {
                    assert!((x - y).abs() < 1e-5);
                }
            }
        }
        for s in &sources {
            let a = model.beam_with(s, 3, 3, true).expect("cached beam");
            let b = model.beam_with(s, 3, 3, false).expect("recomputed beam");
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.ids, y.ids);
                assert!((x.log_prob - y.log_prob).abs() < 1e-5);
            }
        }
    }
}

/// The forced pass that draws the heads' heatmaps sees what greedy decoding saw: its
/// last layer's head average is the hypothesis's attention.
#[test]
fn attention_heads_agree_with_decoding() {
    let cfg = small(Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder);
    let decoding = DecodingConfig { max_decode_length: 5, ..Default::default() };
    let model = Transformer::seeded(&cfg, &decoding, DIMS, 2, &dev()).expect("model");
    let source = vec![4, 6, 8, EOS];
    let hyp = &model.greedy(std::slice::from_ref(&source)).expect("greedy")[0];
    let heads = model.attention_heads(&source, &hyp.ids).expect("heads").expect("per-head maps");
    assert_eq!(heads.len(), 1, "layers");
    assert_eq!(heads[0].len(), 2, "heads");
    let last = &heads[heads.len() - 1];
    for (step, row) in hyp.attention.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            let mean = (last[0][step][j] + last[1][step][j]) / 2.0;
            assert!((mean - w).abs() < 1e-5, "step {step}, position {j}");
        }
    }
}

/// The graph-free decoder (`inference`, what the CPU decodes with) gives the candle
/// decoder's ids, log-probabilities and attention, greedy and beam, for both norm orders,
/// both position kinds and untied outputs, with the sentences stepped together (of
/// different lengths, so with padding) and shared out between two threads.
#[test]
fn graph_free_decoding_equals_the_candle_decoder() {
    let close = |a: &[Hypothesis], b: &[Hypothesis], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.ids, y.ids, "{what}");
            assert!((x.log_prob - y.log_prob).abs() < 1e-4, "{what}: {} vs {}", x.log_prob, y.log_prob);
            assert_eq!(x.attention.len(), y.attention.len(), "{what}");
            for (ra, rb) in x.attention.iter().zip(&y.attention) {
                assert_eq!(ra.len(), rb.len(), "{what}");
                for (p, q) in ra.iter().zip(rb) {
                    assert!((p - q).abs() < 1e-5, "{what}: attention {p} vs {q}");
                }
            }
        }
    };
    for (norm, positions, tie) in [
        (Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder),
        (Norm::Post, Positions::Learned, TieEmbeddings::None),
        (Norm::Pre, Positions::Learned, TieEmbeddings::All),
    ] {
        // 130 feed-forward units: three column panels, the last partial, so that a helper
        // thread's share of a product is exercised.
        let cfg = TransformerConfig { decoder_layers: 2, ff_size: 130, ..small(norm, positions, tie) };
        let decoding = DecodingConfig { max_decode_length: 6, ..Default::default() };
        for (threads, frozen) in [(1, false), (2, false), (1, true), (2, true)] {
            let mut model = Transformer::seeded(&cfg, &decoding, DIMS, 13, &dev()).expect("model");
            model.set_threads(threads);
            if frozen {
                model.freeze().expect("freeze");
            }
            let what = format!("{norm:?} {positions:?} {tie:?}, {threads} thread(s), frozen {frozen}");
            let sources: Vec<Vec<u32>> =
                (0..20).map(|i| (0..1 + i % 5).map(|j| 4 + (i * 3 + j) as u32 % 7).chain([EOS]).collect()).collect();
            let reference: Vec<Hypothesis> = sources
                .iter()
                .flat_map(|s| model.greedy_with(std::slice::from_ref(s), 6, true, true).expect("candle greedy"))
                .collect();
            close(&model.greedy_steps(&sources, 6, true).expect("greedy"), &reference, &what);
            let beams = model.beam_batch(&sources, 3, 2).expect("beam batch");
            for (s, got) in sources.iter().zip(&beams) {
                close(got, &model.beam_with(s, 3, 2, true).expect("candle beam"), &what);
            }
            // One sentence alone: its beam's rows share the products with the helper thread
            // (with 2 threads).
            close(
                &model.beam(&sources[7], 3, 2).expect("beam"),
                &model.beam_with(&sources[7], 3, 2, true).expect("candle"),
                &what,
            );
        }
    }
}

/// The graph-free teacher-forced loss (validation's and `eval`'s on the CPU) equals the
/// training graph's forward pass, with and without a helper thread, frozen or not.
#[test]
fn graph_free_eval_loss_equals_the_training_forward_pass() {
    for (norm, positions, tie) in [
        (Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder),
        (Norm::Post, Positions::Learned, TieEmbeddings::None),
    ] {
        let cfg = TransformerConfig { decoder_layers: 2, ff_size: 130, ..small(norm, positions, tie) };
        for (threads, frozen) in [(1, false), (2, false), (2, true)] {
            let mut model = Transformer::seeded(&cfg, &DecodingConfig::default(), DIMS, 5, &dev()).expect("model");
            model.set_threads(threads);
            if frozen {
                model.freeze().expect("freeze");
            }
            for batch in [example_batch(), Batch::new(&example_batch_examples()[..1], &[0])] {
                let want = crate::family::eval_loss_by_parts(&model, &batch).expect("forward pass");
                let got = model.eval_loss(&batch).expect("graph-free");
                assert!(
                    (got - want).abs() < 1e-5 * want.abs().max(1.0),
                    "{norm:?} {positions:?}, {threads} thread(s), frozen {frozen}: {got} vs {want}"
                );
            }
        }
    }
}

/// Validation packs the weights once for its span; after the span, decoding reads the
/// weights again (an optimizer step in between is not decoded with stale copies), while a
/// frozen model keeps its copy.
#[test]
fn an_inference_span_packs_once_and_training_on_reads_the_weights_again() {
    let cfg = TransformerConfig { ff_size: 130, ..small(Norm::Pre, Positions::Sinusoidal, TieEmbeddings::Decoder) };
    let decoding = DecodingConfig { max_decode_length: 6, ..Default::default() };
    let mut model = Transformer::seeded(&cfg, &decoding, DIMS, 3, &dev()).expect("model");
    let sources: Vec<Vec<u32>> = (0..4).map(|i| vec![4 + i, 5, 6 + i, EOS]).collect();
    let ids = |h: Vec<Hypothesis>| h.into_iter().map(|h| h.ids).collect::<Vec<_>>();
    let first = model.greedy_steps(&sources, 6, true).expect("greedy");
    let outside_log_probs: Vec<f32> = first.iter().map(|h| h.log_prob).collect();
    let outside = ids(first);
    model.begin_inference().expect("begin");
    assert!(model.packed.is_kept());
    assert_eq!(ids(model.greedy_steps(&sources, 6, true).expect("greedy")), outside);
    model.end_inference();
    assert!(!model.packed.is_kept());
    // An optimizer step: every weight changes in place.
    for (_, var) in model.params().vars() {
        let changed = (var.as_tensor().sin().expect("sin") * 3.0).expect("scale");
        var.set(&changed).expect("set");
    }
    let candle: Vec<Hypothesis> = sources
        .iter()
        .flat_map(|s| model.greedy_with(std::slice::from_ref(s), 6, true, true).expect("candle"))
        .collect();
    let after = model.greedy_steps(&sources, 6, true).expect("greedy");
    for ((a, c), o) in after.iter().zip(&candle).zip(&outside_log_probs) {
        assert_eq!(a.ids, c.ids);
        assert!((a.log_prob - c.log_prob).abs() < 1e-4, "decoded from stale weights: {} vs {}", a.log_prob, c.log_prob);
        assert!((a.log_prob - o).abs() > 1e-3, "the change must show in the scores");
    }
    model.freeze().expect("freeze");
    model.begin_inference().expect("begin");
    model.end_inference();
    assert!(model.packed.is_kept(), "a frozen model keeps its copy");
}
