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

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
