//! Deflate engines compared on a file, one core: dupcore's engines as its writers use them
//! (128 KiB chunks primed with the previous 32 KiB, sync-flushed into one stream) at each level,
//! and libdeflate for reference (it cannot prime or sync-flush, so 1 MiB independent streams);
//! then inflate of the file gzipped at the default setting, by flate2/zlib-rs and by ISA-L:
//! `cargo run --release --features isal --example deflate_engines -- FILE`.

use std::io::Read;
use std::time::Instant;

use dupcore::deflate::{
    compress_chunk, gzip_header, gzip_trailer, Deflate, Engine, Primer, CHUNK, WINDOW_BITS,
};

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
    let mut gz = gzip_header(0, 6).to_vec();
    let mut primer = Primer::new(WINDOW_BITS);
    for (i, ch) in chunks.iter().enumerate() {
        let dict = primer.next(ch);
        gz.extend(compress_chunk(
            &dict,
            ch,
            i + 1 == chunks.len(),
            Deflate::DEFAULT,
            WINDOW_BITS,
        ));
    }
    gz.extend(gzip_trailer(crc32fast::hash(&data), data.len() as u64));
    let inflate = |name: &str, reader: &mut dyn Read| {
        let t = Instant::now();
        let mut out = Vec::with_capacity(data.len());
        reader
            .read_to_end(&mut out)
            .expect("inflating our own gzip");
        assert!(out == data, "{name} inflated other bytes");
        report(name, data.len(), t.elapsed().as_secs_f64(), gz.len());
    };
    inflate(
        "inflate zlib-rs",
        &mut flate2::bufread::MultiGzDecoder::new(&gz[..]),
    );
    #[cfg(feature = "isal")]
    inflate(
        "inflate isal",
        &mut dupcore::deflate::IsalGzDecoder::new(&gz[..]),
    );
}
