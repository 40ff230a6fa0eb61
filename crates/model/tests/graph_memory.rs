//! What one training step of the GRU keeps alive, counted by a global allocator (its own
//! test binary, so nothing else allocates beside it).
//!
//! Regression test: the attention context went through candle's `matmul`, whose gradient for
//! the encoder memory recorded its operands, so the memory's summed gradient was a chain
//! that kept every decoder step's `(B, S, H)` gradient and partial sum alive until the end
//! of backward (and Bahdanau's scores kept `tanh(k + q)`, `(B, S, H)` a step). The step's
//! peak then grew by several `B · S · H` floats per target token; now it grows by the
//! step's own small tensors. (The fused context op also needs the memory contiguous: the
//! decoder makes it so once, or each step would copy it.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::Device;
use s2s_data::{Batch, Example, EOS};
use s2s_model::gru::{AttentionKind, GruConfig, GruModel};
use s2s_model::{DecodingConfig, Mode, ModelDims, TrainRngs, TranslationModel};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; the counters are atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const B: usize = 8;
const H: usize = 64;

/// Bytes a training step's forward and backward pass take above what was live before it,
/// for `B` sentences of `s` source tokens and `t` target tokens.
fn step_peak(attention: AttentionKind, s: usize, t: usize) -> usize {
    let cfg = GruConfig { attention, hidden_size: H, embedding_size: H, dropout: 0.1, ..Default::default() };
    let dims = ModelDims { src_vocab: 40, tgt_vocab: 40, max_length: s };
    let mut model = GruModel::seeded(&cfg, &DecodingConfig::default(), dims, 0, &Device::Cpu).expect("model");
    model.set_threads(1);
    let token = |i: usize| 4 + (i * 7 % 30) as u32;
    let examples: Vec<Example> = (0..B)
        .map(|r| Example {
            src: (0..s - 1).map(|i| token(i + r)).chain([EOS]).collect(),
            tgt: (0..t - 1).map(|i| token(3 * i + r)).chain([EOS]).collect(),
        })
        .collect();
    let batch = Batch::new(&examples, &(0..B).collect::<Vec<_>>());
    let mut rngs = TrainRngs::new(1);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mode = Mode::Train { rngs: &mut rngs, teacher_forcing_ratio: 1.0, label_smoothing: 0.0 };
    let (loss, grads) = model.loss_and_grads(&batch, mode).expect("step");
    assert!(loss.is_finite());
    drop(grads);
    PEAK.load(Ordering::Relaxed) - before
}

/// How many bytes the step's peak grows by per target token, for `s` source tokens.
fn growth_per_target_token(attention: AttentionKind, s: usize) -> f64 {
    let (short, long) = (step_peak(attention, s, 10), step_peak(attention, s, 40));
    long.saturating_sub(short) as f64 / 30.0
}

/// Each target token's share of the step's peak may hold small per-step tensors (the
/// GRU cell's `(B, H)` activations, the `(B, S)` attention weights) but no `(B, S, H)` one:
/// the growth per target token must hardly depend on the source length.
#[test]
fn a_training_step_keeps_no_memory_sized_tensor_per_target_token() {
    let (s_short, s_long) = (30, 120);
    // One `(B, S, H)` f32 tensor per extra source token.
    let memory_per_source_token = (B * H * std::mem::size_of::<f32>()) as f64;
    for attention in [AttentionKind::Bahdanau, AttentionKind::LuongGeneral, AttentionKind::Location] {
        let (short, long) = (growth_per_target_token(attention, s_short), growth_per_target_token(attention, s_long));
        let memories = (long - short) / (s_long - s_short) as f64 / memory_per_source_token;
        // Before the fix: 2.2 (Bahdanau), 4.0 (Luong general), 2.1 (location); after: 0.3, 0.0, 0.0.
        assert!(
            memories < 0.5,
            "{attention:?}: each target token keeps {memories:.2} (B, S, H) tensors \
             (growth per target token {short:.0} bytes at S = {s_short}, {long:.0} at S = {s_long})"
        );
    }
}
