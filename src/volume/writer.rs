//! A volume file writer: compression on the rayon pool, ordered writing and hashing on a
//! dedicated thread, so the caller only hands over bytes.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::deflate::{
    compress_chunk, compression_pool, gzip_trailer, member_header, Deflate, Primer, CHUNK, MEMBER,
    MEMBER_OVERHEAD, WINDOW_BITS,
};
use crate::hash::{Digests, VolumeHasher};

/// Chunks queued or being compressed at once (bounds memory to about this × 128 KiB).
const MAX_IN_FLIGHT: usize = 8;

/// One piece of output, in file order.
enum Job {
    Ready(Vec<u8>),
    Compressing {
        raw_len: u64,
        /// The chunk ends its gzip member.
        member_end: bool,
        rx: Receiver<(Vec<u8>, crc32fast::Hasher)>,
    },
}

/// How the gzip members of a volume are framed.
#[derive(Clone, Copy)]
struct Frame {
    mtime: u32,
    /// The zlib level the headers record.
    level: u32,
}

#[derive(Default)]
struct Progress {
    written: AtomicU64,
    raw_done: AtomicU64,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Progress {
    fn advance(&self, raw: u64) {
        self.raw_done.fetch_add(raw, Ordering::Release);
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }
}

/// What a finished volume file holds.
#[derive(Clone, Debug)]
pub struct VolumeSummary {
    /// Bytes in the file, and their SHA-1 and MD5.
    pub digests: Digests,
    /// Uncompressed bytes written into it.
    pub raw_len: u64,
}

/// Writes one volume file, gzip-compressed in parallel or plain, hashing what reaches the disk.
///
/// A gzip volume is a series of gzip members of up to [`MEMBER`] uncompressed bytes, each
/// with its size in its header's extra field ([`member_header`]): gzip readers read them as
/// one stream, and dupcore's reader inflates several at once.
pub struct VolumeWriter {
    gzip: Option<Deflate>,
    /// Uncompressed bytes in the open gzip member (0: none open).
    member_raw: usize,
    /// Whether a gzip member has been begun.
    any_member: bool,
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<io::Result<Digests>>>,
    progress: Arc<Progress>,
    pending: Vec<u8>,
    primer: Primer,
    raw_total: u64,
    submitted_raw: u64,
}

fn writer_loop(
    mut file: File,
    rx: Receiver<Job>,
    frame: Option<Frame>,
    progress: Arc<Progress>,
) -> io::Result<Digests> {
    let mut hasher = VolumeHasher::default();
    // the open gzip member: its compressed chunks, their CRC-32 and uncompressed length
    let mut member = Vec::new();
    let mut crc = crc32fast::Hasher::new();
    let mut member_raw: u64 = 0;
    let mut put = |bytes: &[u8], hasher: &mut VolumeHasher| -> io::Result<()> {
        file.write_all(bytes)?;
        hasher.update(bytes);
        Ok(())
    };
    let count = |bytes: usize| {
        progress.written.fetch_add(bytes as u64, Ordering::Relaxed);
    };
    for job in rx {
        match job {
            Job::Ready(bytes) => {
                put(&bytes, &mut hasher)?;
                count(bytes.len());
                progress.advance(bytes.len() as u64);
            }
            Job::Compressing {
                raw_len: chunk_len,
                member_end,
                rx,
            } => {
                let (bytes, chunk_crc) = rx
                    .recv()
                    .map_err(|_| io::Error::other("a compression job ended without a result"))?;
                let frame = frame.ok_or_else(|| io::Error::other("a plain volume compressed"))?;
                if member.is_empty() {
                    count(MEMBER_OVERHEAD); // the header and trailer it will have
                }
                crc.combine(&chunk_crc);
                member_raw += chunk_len;
                member.extend_from_slice(&bytes);
                count(bytes.len());
                if member_end {
                    let size = u32::try_from(MEMBER_OVERHEAD + member.len())
                        .map_err(|_| io::Error::other("a gzip member over 4 GiB"))?;
                    put(&member_header(frame.mtime, frame.level, size), &mut hasher)?;
                    put(&member, &mut hasher)?;
                    let crc = std::mem::take(&mut crc).finalize();
                    put(&gzip_trailer(crc, member_raw), &mut hasher)?;
                    member.clear();
                    member_raw = 0;
                }
                progress.advance(chunk_len);
            }
        }
    }
    if !member.is_empty() {
        return Err(io::Error::other("a gzip member was left open"));
    }
    file.flush()?;
    Ok(hasher.finish())
}

impl VolumeWriter {
    /// Creates `path`; `gzip` Some(setting) writes a gzip member with header `mtime`.
    pub fn create(path: &Path, gzip: Option<Deflate>, mtime: u32) -> io::Result<Self> {
        let file = File::create(path)?;
        let (tx, rx) = sync_channel::<Job>(MAX_IN_FLIGHT);
        let progress = Arc::new(Progress::default());
        let p2 = Arc::clone(&progress);
        let frame = gzip.map(|with| Frame {
            mtime,
            level: with.zlib_equivalent(),
        });
        let thread = std::thread::Builder::new()
            .name("dupcore-volume-writer".into())
            .spawn(move || writer_loop(file, rx, frame, p2))?;
        Ok(VolumeWriter {
            gzip,
            member_raw: 0,
            any_member: false,
            tx: Some(tx),
            thread: Some(thread),
            progress,
            pending: Vec::with_capacity(CHUNK),
            primer: Primer::new(WINDOW_BITS),
            raw_total: 0,
            submitted_raw: 0,
        })
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.take_thread_error())
        }
    }

    fn take_thread_error(&mut self) -> io::Error {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the volume writer thread panicked"),
            _ => io::Error::other("the volume writer has already stopped"),
        }
    }

    /// Hands the pending bytes on; with gzip they end their member when `end_member` or when
    /// the member is full.
    fn submit(&mut self, end_member: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.submitted_raw += data.len() as u64;
        match self.gzip {
            None => {
                if !data.is_empty() {
                    self.send(Job::Ready(data))?;
                }
            }
            Some(with) => {
                if self.member_raw == 0 {
                    // a member's first chunk refers to nothing before it
                    self.primer = Primer::new(WINDOW_BITS);
                }
                let dict = self.primer.next(&data);
                let member_end = end_member || self.member_raw + data.len() >= MEMBER;
                self.member_raw = if member_end {
                    0
                } else {
                    self.member_raw + data.len()
                };
                self.any_member = true;
                let raw_len = data.len() as u64;
                let (rtx, rrx) = sync_channel(1);
                compression_pool().spawn(move || {
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(&data);
                    let out = compress_chunk(&dict, &data, member_end, with, WINDOW_BITS);
                    let _ = rtx.send((out, crc));
                });
                self.send(Job::Compressing {
                    raw_len,
                    member_end,
                    rx: rrx,
                })?;
            }
        }
        Ok(())
    }

    /// Whether bytes are waiting or a gzip member is open: what `settle` must hand on.
    fn unsettled(&self) -> bool {
        !self.pending.is_empty() || self.member_raw > 0
    }

    /// Appends uncompressed bytes to the volume.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.tx.is_none() {
            return Err(io::Error::other("write to a closed volume"));
        }
        self.raw_total += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.submit(false)?;
            }
        }
        Ok(())
    }

    /// A bound the file size cannot exceed once everything written so far reaches the disk.
    ///
    /// Bytes still being compressed count at deflate's worst case (stored blocks: 5 bytes per
    /// 16 KiB plus a sync marker per chunk) and with the frame of every member they may begin;
    /// the open member counts with its header and trailer, so a volume never overshoots
    /// because of the pipeline.
    pub fn upper_bound(&self) -> u64 {
        let written = self.progress.written.load(Ordering::Acquire);
        let raw_done = self.progress.raw_done.load(Ordering::Acquire);
        let in_flight = self.raw_total.saturating_sub(raw_done);
        let members = in_flight / MEMBER as u64 + 1;
        match self.gzip {
            None => written + in_flight,
            Some(_) => {
                written
                    + in_flight
                    + in_flight / 3000
                    + 16 * (MAX_IN_FLIGHT as u64 + 2)
                    + members * MEMBER_OVERHEAD as u64
            }
        }
    }

    /// Compresses and writes everything given so far (ending the open gzip member), then
    /// returns the exact bytes on disk.
    pub fn settle(&mut self) -> io::Result<u64> {
        if self.unsettled() {
            self.submit(true)?;
        }
        let target = self.submitted_raw;
        loop {
            if self.progress.raw_done.load(Ordering::Acquire) >= target {
                return Ok(self.progress.written.load(Ordering::Acquire));
            }
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return Err(self.take_thread_error());
            }
            let guard = self
                .progress
                .lock
                .lock()
                .map_err(|_| io::Error::other("volume progress poisoned"))?;
            if self.progress.raw_done.load(Ordering::Acquire) < target {
                let _ = self
                    .progress
                    .changed
                    .wait_timeout(guard, Duration::from_millis(50));
            }
        }
    }

    /// Flushes everything, closes the file and returns its size and digests.
    pub fn close(mut self) -> io::Result<VolumeSummary> {
        if self.tx.is_none() {
            return Err(self.take_thread_error());
        }
        // an empty gzip volume is one empty member, as Python's gzip writes it
        if self.unsettled() || (self.gzip.is_some() && !self.any_member) {
            self.submit(true)?;
        }
        self.tx = None;
        let result = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the volume writer thread panicked")),
            None => Err(io::Error::other("the volume writer has already stopped")),
        };
        result.map(|digests| VolumeSummary {
            digests,
            raw_len: self.raw_total,
        })
    }
}

impl Drop for VolumeWriter {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 1;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3000 < 2000 {
                    (i % 97) as u8
                } else {
                    (x >> 16) as u8
                }
            })
            .collect()
    }

    #[test]
    fn gzip_volume_round_trips_and_hashes_disk_bytes() {
        let dir = std::env::temp_dir().join(format!("dupcore-vw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.gz");
        let data = sample(3_000_000);
        let mut w = VolumeWriter::create(&path, Some(Deflate::DEFAULT), 1_700_000_000).unwrap();
        for piece in data.chunks(70_001) {
            w.write(piece).unwrap();
        }
        let settled = w.settle().unwrap();
        assert_eq!(settled, std::fs::metadata(&path).unwrap().len());
        assert!(w.upper_bound() >= settled);
        let s = w.close().unwrap();
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(s.digests.len, disk.len() as u64);
        assert_eq!(
            s.digests.sha1,
            crate::hash::hash_file(&path, crate::hash::Algorithm::Sha1).unwrap()[..]
        );
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&disk[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // members of at most MEMBER bytes, each with its size in its header
        let mut at = 0;
        let mut raw = 0;
        while at < disk.len() {
            let size = crate::deflate::member_size(&disk[at..]).unwrap() as usize;
            let mut one = Vec::new();
            flate2::read::GzDecoder::new(&disk[at..at + size])
                .read_to_end(&mut one)
                .unwrap();
            assert!(!one.is_empty() && one.len() <= MEMBER);
            assert_eq!(one, data[raw..raw + one.len()]);
            raw += one.len();
            at += size;
        }
        assert_eq!((at, raw), (disk.len(), data.len()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_volume_is_the_bytes() {
        let dir = std::env::temp_dir().join(format!("dupcore-vp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v");
        let data = sample(300_000);
        let mut w = VolumeWriter::create(&path, None, 0).unwrap();
        w.write(&data).unwrap();
        assert!(w.upper_bound() >= data.len() as u64);
        assert_eq!(w.settle().unwrap(), data.len() as u64);
        let s = w.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(s.digests.len, data.len() as u64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
