//! Gunzip with read-ahead: a thread decompresses the next megabytes while the caller parses.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::thread::JoinHandle;

use flate2::bufread::MultiGzDecoder;

/// Decompressed bytes per message from the read-ahead thread.
const PIECE: usize = 1 << 20;
/// Messages buffered ahead of the reader.
const AHEAD: usize = 4;

/// How a gzip stream failed, so the binding can raise what Python's `gzip` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipFailure {
    /// The stream ended before its end-of-stream marker (Python: `EOFError`).
    Truncated,
    /// Not gzip data, bad CRC or length, corrupt deflate data (Python: `gzip.BadGzipFile`).
    Corrupt,
    /// The file could not be read (Python: `OSError`).
    Io,
}

/// A failure of the read-ahead thread, with the kind and message.
#[derive(Debug, Clone)]
pub struct GzipError {
    /// What kind of failure.
    pub kind: GzipFailure,
    /// Human-readable detail.
    pub message: String,
    /// The OS error number, for I/O failures.
    pub errno: Option<i32>,
}

impl GzipError {
    fn from_io(e: &io::Error) -> Self {
        GzipError {
            kind: classify(e),
            message: e.to_string(),
            errno: e.raw_os_error(),
        }
    }
}

fn classify(e: &io::Error) -> GzipFailure {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => GzipFailure::Truncated,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
            GzipFailure::Corrupt
        }
        _ => GzipFailure::Io,
    }
}

type Piece = Result<Vec<u8>, GzipError>;

/// Sequential reader of a (multi-member) gzip file, decompressing ahead on its own thread.
pub struct GzipReader {
    rx: Option<Mutex<Receiver<Piece>>>,
    thread: Option<JoinHandle<()>>,
    current: Vec<u8>,
    pos: usize,
    offset: u64,
    failed: Option<GzipError>,
}

impl GzipReader {
    /// Opens `path` and starts decompressing it in the background.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let (tx, rx) = sync_channel::<Piece>(AHEAD);
        let thread = std::thread::Builder::new()
            .name("dupcore-gunzip".into())
            .spawn(move || {
                let mut input = BufReader::with_capacity(256 * 1024, file);
                // An empty file reads as empty, as Python's gzip reads it (no member at all).
                match input.fill_buf() {
                    Ok([]) => return,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(GzipError::from_io(&e)));
                        return;
                    }
                }
                let mut dec = MultiGzDecoder::new(input);
                loop {
                    let mut buf = vec![0u8; PIECE];
                    let mut filled = 0;
                    let result = loop {
                        match dec.read(&mut buf[filled..]) {
                            Ok(0) => break Ok(true),
                            Ok(n) => {
                                filled += n;
                                if filled == PIECE {
                                    break Ok(false);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    buf.truncate(filled);
                    match result {
                        Ok(eof) => {
                            if (!buf.is_empty() && tx.send(Ok(buf)).is_err()) || eof {
                                return;
                            }
                        }
                        Err(e) => {
                            if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
                                return;
                            }
                            let _ = tx.send(Err(GzipError::from_io(&e)));
                            return;
                        }
                    }
                }
            })?;
        Ok(GzipReader {
            rx: Some(Mutex::new(rx)),
            thread: Some(thread),
            current: Vec::new(),
            pos: 0,
            offset: 0,
            failed: None,
        })
    }

    /// Decompressed bytes returned so far (the stream position).
    pub fn tell(&self) -> u64 {
        self.offset
    }

    fn refill(&mut self) -> Result<bool, GzipError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(rx) = &self.rx else { return Ok(false) };
        let received = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => {
                return Err(GzipError {
                    kind: GzipFailure::Io,
                    message: "read-ahead state poisoned".into(),
                    errno: None,
                })
            }
        };
        match received {
            Ok(Ok(piece)) => {
                self.current = piece;
                self.pos = 0;
                Ok(true)
            }
            Ok(Err(e)) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            Err(_) => {
                self.rx = None;
                Ok(false)
            }
        }
    }

    /// Decompressed bytes available without waiting for the read-ahead thread.
    pub fn buffered(&self) -> &[u8] {
        &self.current[self.pos..]
    }

    /// Marks `n` bytes of `buffered()` as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.current.len() - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Appends up to `n` bytes to `out` (fewer only at the end); returns how many.
    pub fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> Result<usize, GzipError> {
        let start = out.len();
        while out.len() - start < n {
            if self.pos == self.current.len() && !self.refill()? {
                break;
            }
            let take = (n - (out.len() - start)).min(self.current.len() - self.pos);
            out.extend_from_slice(&self.current[self.pos..self.pos + take]);
            self.pos += take;
        }
        let got = out.len() - start;
        self.offset += got as u64;
        Ok(got)
    }

    /// Skips up to `n` bytes; returns how many were skipped.
    pub fn skip(&mut self, n: u64) -> Result<u64, GzipError> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.current.len() && !self.refill()? {
                break;
            }
            let take = left.min((self.current.len() - self.pos) as u64) as usize;
            self.pos += take;
            left -= take as u64;
        }
        self.offset += n - left;
        Ok(n - left)
    }
}

impl Drop for GzipReader {
    fn drop(&mut self) {
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn empty_file_reads_as_empty() {
        let p = std::env::temp_dir().join(format!("dupcore-gz-empty-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        let mut r = GzipReader::open(&p).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.read_into(&mut out, 100).unwrap(), 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn reads_and_reports_truncation() {
        let dir = std::env::temp_dir().join(format!("dupcore-gr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        let path = dir.join("a.gz");
        std::fs::write(&path, &gz).unwrap();
        let mut r = GzipReader::open(&path).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.skip(10).unwrap(), 10);
        while r.read_into(&mut out, 65536).unwrap() > 0 {}
        assert_eq!(out, data[10..]);
        assert_eq!(r.tell(), data.len() as u64);

        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let mut r = GzipReader::open(&path).unwrap();
        let err = loop {
            match r.read_into(&mut Vec::new(), 1 << 20) {
                Ok(0) => panic!("truncated stream read to the end"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind, GzipFailure::Truncated);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
