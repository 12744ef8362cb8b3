//! The reading side of a stream produced ahead on its own thread (the gzip reader of volumes and
//! the OpenPGP decryptor): pieces of data, then an end value or a failure, over a bounded
//! channel; the reader keeps the current piece, its position and the first failure.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// What the producing thread sends.
pub enum Message<T, E> {
    /// The next piece of data.
    Data(Vec<u8>),
    /// The data is complete; the producer's result (for example the good signatures).
    End(T),
    /// The stream failed; no more messages follow.
    Failed(E),
}

/// Where a producer sends its messages.
pub type Sender<T, E> = SyncSender<Message<T, E>>;

/// The reading side; `E` is the stream's error type.
pub struct ReadAhead<T, E> {
    rx: Option<Mutex<Receiver<Message<T, E>>>>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    end: Option<T>,
    error: Option<E>,
    /// The error for a producer that stopped without `End` or `Failed`.
    stopped: fn() -> E,
}

impl<T: Send + 'static, E: Clone + Send + 'static> ReadAhead<T, E> {
    /// Starts `produce` on a thread named `name`, at most `ahead` messages ahead of the reader;
    /// `stopped` is the error when it ends without `End` or `Failed`.
    pub fn spawn(
        name: &str,
        ahead: usize,
        stopped: fn() -> E,
        produce: impl FnOnce(Sender<T, E>) + Send + 'static,
    ) -> io::Result<Self> {
        let (tx, rx) = sync_channel(ahead.max(1));
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || produce(tx))?;
        Ok(ReadAhead {
            rx: Some(Mutex::new(rx)),
            thread: Some(thread),
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            end: None,
            error: None,
            stopped,
        })
    }

    /// Makes data available; false at the end of the stream.
    pub fn fill(&mut self) -> Result<bool, E> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        while self.pos >= self.buf.len() {
            if self.end.is_some() {
                return Ok(false);
            }
            let Some(rx) = &self.rx else {
                return Err((self.stopped)());
            };
            let got = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
            match got {
                Ok(Message::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Message::End(t)) => self.end = Some(t),
                Ok(Message::Failed(e)) => {
                    self.error = Some(e.clone());
                    return Err(e);
                }
                Err(_) => {
                    let e = (self.stopped)();
                    self.error = Some(e.clone());
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Data available without waiting (empty after a failure).
    pub fn buffered(&self) -> &[u8] {
        if self.error.is_some() {
            return &[];
        }
        &self.buf[self.pos.min(self.buf.len())..]
    }

    /// Marks `n` bytes of `buffered()` as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len().saturating_sub(self.pos));
        self.pos += n;
        self.offset += n as u64;
    }

    /// The rest of the current piece, without copying when none of it was read yet.
    pub fn take_piece(&mut self) -> Vec<u8> {
        let rest = if self.pos == 0 {
            std::mem::take(&mut self.buf)
        } else {
            self.buf[self.pos.min(self.buf.len())..].to_vec()
        };
        self.buf.clear();
        self.pos = 0;
        self.offset += rest.len() as u64;
        rest
    }

    /// Appends up to `n` bytes to `out` (fewer only at the end); returns how many.
    pub fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> Result<usize, E> {
        let start = out.len();
        while out.len() - start < n && self.fill()? {
            let take = (n - (out.len() - start)).min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.consume(take);
        }
        Ok(out.len() - start)
    }

    /// Skips up to `n` bytes; returns how many were skipped.
    pub fn skip(&mut self, n: u64) -> Result<u64, E> {
        let mut left = n;
        while left > 0 && self.fill()? {
            let take = left.min((self.buf.len() - self.pos) as u64) as usize;
            self.consume(take);
            left -= take as u64;
        }
        Ok(n - left)
    }

    /// Bytes handed out so far.
    pub fn tell(&self) -> u64 {
        self.offset
    }

    /// The producer's end value, once the end was reached.
    pub fn end(&self) -> Option<&T> {
        self.end.as_ref()
    }

    /// Stops the producer (its next send fails) and waits for its thread.
    pub fn close(&mut self) {
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<T, E> Drop for ReadAhead<T, E> {
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

    #[test]
    fn pieces_end_and_failures() {
        let mut r: ReadAhead<u8, String> = ReadAhead::spawn(
            "t",
            2,
            || "stopped".into(),
            |tx| {
                for i in 0..3u8 {
                    let _ = tx.send(Message::Data(vec![i; 10]));
                }
                let _ = tx.send(Message::End(7));
            },
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(r.skip(5).unwrap(), 5);
        assert_eq!(r.read_into(&mut out, 100).unwrap(), 25);
        assert_eq!(r.tell(), 30);
        assert_eq!(r.end(), Some(&7));
        let mut r: ReadAhead<(), String> = ReadAhead::spawn(
            "t",
            2,
            || "stopped".into(),
            |tx| {
                let _ = tx.send(Message::Data(vec![1; 4]));
            },
        )
        .unwrap();
        assert_eq!(r.read_into(&mut Vec::new(), 4).unwrap(), 4);
        assert_eq!(r.fill().unwrap_err(), "stopped");
        assert!(r.buffered().is_empty());
    }
}
