//! Opens a trained run and translates a sentence, using only the libraries:
//! `cargo run --release -p s2s-run --example translate -- experiments/base-... "i am a student"`

use s2s_run::{OpenedRun, Which};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the s2s binary does, before any thread starts: candle's kernels stay on one
    // thread each, and `run.threads` splits the work (libraries never set these).
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    let mut args = std::env::args().skip(1);
    let (Some(run), Some(text)) = (args.next(), args.next()) else {
        return Err("usage: translate RUN_FOLDER SENTENCE".into());
    };
    let run = OpenedRun::open(run.as_ref(), &Which::Best)?;
    for t in run.translate(&[text])? {
        println!("{}  →  {}", t.source, t.text);
        for (word, row) in t.output.iter().zip(&t.attention) {
            let (at, w) = row.iter().enumerate().fold((0, 0f32), |b, (i, &w)| if w > b.1 { (i, w) } else { b });
            let source = t.tokens.get(at).map_or("EOS", String::as_str);
            println!("  {word:<12} attends most to {source:<12} ({w:.2})");
        }
    }
    Ok(())
}
