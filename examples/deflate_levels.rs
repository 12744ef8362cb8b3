//! Deflate speed and size per level on a file, as dupcore's writers compress (128 KiB chunks
//! primed with the previous 32 KiB, one core):
//! `cargo run --release --example deflate_levels -- FILE`.

use std::time::Instant;

use dupcore::deflate::{compress_chunk, Primer, CHUNK, WINDOW_BITS};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: deflate_levels FILE");
        std::process::exit(2);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    for level in 1..=9u32 {
        let t = Instant::now();
        let mut primer = Primer::new(WINDOW_BITS);
        let mut total = 0usize;
        for (i, ch) in chunks.iter().enumerate() {
            let dict = primer.next(ch);
            total += compress_chunk(&dict, ch, i + 1 == chunks.len(), level, WINDOW_BITS).len();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "level {level}: {:7.1} MiB/s  size {:.4} of the input",
            data.len() as f64 / secs / 1_048_576.0,
            total as f64 / data.len().max(1) as f64
        );
    }
}
