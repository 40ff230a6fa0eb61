# Task runner for s2s (https://github.com/casey/just; `pip install rust-just`).

# Train from an experiment config, e.g. `just run configs/base.toml --set train.epochs=50`.
run CONFIG *ARGS:
    cargo run --release -- run {{CONFIG}} {{ARGS}}

# Print the resolved config without training.
config CONFIG *ARGS:
    cargo run --release -- config {{CONFIG}} {{ARGS}}

# Translate with a trained run: `just translate experiments/base-... "i am a student"`.
translate RUN *ARGS:
    cargo run --release -- translate {{RUN}} {{ARGS}}

# Build the release binary.
build:
    cargo build --release

# All tests (the same as the README's test command).
test:
    cargo nextest run --workspace

# Formatting, lints, rustdoc and import circles (what CI checks before the tests).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
    python3 scripts/check_module_cycles.py

# Speed against PyTorch (needs `pip install torch`; not part of the tests).
bench *ARGS:
    python3 scripts/bench.py {{ARGS}}

# Build with CUDA (see the README's CUDA section for the toolkit).
build-cuda:
    CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} cargo build --release --features cuda --target-dir target/cuda

# Resume a run from its newest checkpoint.
resume RUN *ARGS:
    cargo run --release -- resume {{RUN}} {{ARGS}}

# Score a run on held-out data.
eval RUN *ARGS:
    cargo run --release -- eval {{RUN}} {{ARGS}}

# List runs under experiments/.
list *ARGS:
    cargo run --release -- list {{ARGS}}

# Compare runs (all under experiments/ when none are named).
compare *ARGS:
    cargo run --release -- compare {{ARGS}}

# The web app over run folders: `just serve` (experiments/), or `just serve DIR --port 8081`.
serve *ARGS:
    cargo run --release -- serve {{ARGS}}

# Latency of POST /api/translate (p50/p99), requests/s with 8 clients, peak memory.
bench-serve *ARGS: build
    python3 scripts/bench_serve.py {{ARGS}}

# Rewrite a run's report.html.
report RUN:
    cargo run --release -- report {{RUN}}

# Train a grid of configs: `just sweep configs/base.toml --grid train.learning_rate=0.01,0.001`.
sweep CONFIG *ARGS:
    cargo run --release -- sweep {{CONFIG}} {{ARGS}}

# Side by side with JoeyNMT 2.3 on Multi30k (see scripts/bench_peer.py for its setup).
bench-peer *ARGS: build
    python3 scripts/bench_peer.py {{ARGS}}

# Seconds per epoch and peak memory against sentence length (Multi30k, copy task).
bench-scaling *ARGS: build
    python3 scripts/bench_scaling.py {{ARGS}}

# 10k-word vocabularies and 50-token sentences: speed against PyTorch, memory against
# batch_tokens, data loading against pairs (`--torch-python` a Python with torch).
bench-vocab *ARGS: build
    python3 scripts/bench_vocab.py {{ARGS}}

# Learn a config's BPE tokenizer once: `just tokenizer configs/multi30k.toml --set data.train_path=...`.
tokenizer CONFIG *ARGS:
    cargo run --release -- tokenizer train {{CONFIG}} {{ARGS}}

# Decoding speed: s2s beside CTranslate2 fp32 and int8 (greedy and beam 5, batches of 32 and
# 1, 2 threads) on a Multi30k Transformer run, or `train` to train one first; needs
# `pip install ctranslate2 tokenizers sacrebleu`.
bench-decode RUN="train" *ARGS: build
    python3 scripts/bench_decode.py {{RUN}} {{ARGS}}

# Write a Transformer run's checkpoint as a CTranslate2 model: `just export RUN OUT`.
export RUN OUT *ARGS:
    cargo run --release -- export {{RUN}} --to ctranslate2 {{OUT}} {{ARGS}}
