//! Deflate engines compared on a file, one core: dupcore's engines as its writers use them
//! (128 KiB chunks primed with the previous 32 KiB, sync-flushed into one stream) at each level,
//! and libdeflate for reference (it cannot prime or sync-flush, so 1 MiB independent streams):
//! `cargo run --release --features isal --example deflate_engines -- FILE`.

use std::time::Instant;

use dupcore::deflate::{compress_chunk, Deflate, Engine, Primer, CHUNK, WINDOW_BITS};

fn report(name: &str, bytes: usize, secs: f64, out: usize) {
    println!(
        "{name:26} {:7.1} MiB/s  size {:.4} of the input",
        bytes as f64 / secs / 1_048_576.0,
        out as f64 / bytes.max(1) as f64
    );
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: deflate_engines FILE");
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
    for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
        for level in engine.levels() {
            let with = Deflate { engine, level };
            let t = Instant::now();
            let mut primer = Primer::new(WINDOW_BITS);
            let mut total = 0usize;
            for (i, ch) in chunks.iter().enumerate() {
                let dict = primer.next(ch);
                total += compress_chunk(&dict, ch, i + 1 == chunks.len(), with, WINDOW_BITS).len();
            }
            let name = format!("{} {level}", engine.name());
            report(&name, data.len(), t.elapsed().as_secs_f64(), total);
        }
    }
    for level in [1, 4, 6, 7, 9, 12] {
        let Ok(lvl) = libdeflater::CompressionLvl::new(level) else {
            continue;
        };
        let mut c = libdeflater::Compressor::new(lvl);
        let t = Instant::now();
        let mut total = 0usize;
        for piece in data.chunks(1 << 20) {
            let mut out = vec![0u8; c.deflate_compress_bound(piece.len())];
            total += c.deflate_compress(piece, &mut out).unwrap_or(out.len());
        }
        let name = format!("libdeflate {level} (1 MiB)");
        report(&name, data.len(), t.elapsed().as_secs_f64(), total);
    }
}
