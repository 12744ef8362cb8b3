//! The reading side of a stream produced ahead on its own thread (the gzip reader of volumes and
//! the OpenPGP decryptor): pieces of data, then an end value or a failure; the reader keeps the
//! current piece, its position and the first failure.
//!
//! At most `ahead` pieces wait in memory. When a [`Spill`] is in place (a restore sets one up
//! in duplicity's temporary directory), a producer that finds them all waiting writes further
//! pieces to an unlinked spool file instead of waiting, up to the spill's byte budget shared by
//! all readers: the volumes fetched ahead of the one being read are then decoded in parallel,
//! on other cores, at no cost in memory. A spool that cannot be written (disk full) is given
//! up for waiting, never an error.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What the producing thread sends.
pub enum Message<T, E> {
    /// The next piece of data.
    Data(Vec<u8>),
    /// The data is complete; the producer's result (for example the good signatures).
    End(T),
    /// The stream failed; no more messages follow.
    Failed(E),
    /// The next `n` bytes are in the spool file (sent by [`Sender::send`] only).
    Spilled(usize),
}

/// Where and how much the producers of a restore may spill (see the module documentation).
pub struct Spill {
    dir: PathBuf,
    budget: u64,
    used: AtomicU64,
}

impl Spill {
    /// Spool files go to `dir`, at most `budget` bytes in all at any time.
    pub fn new(dir: PathBuf, budget: u64) -> Arc<Spill> {
        Arc::new(Spill {
            dir,
            budget,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes in spool files now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.budget).then_some(u + n)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

static SPILL: Mutex<Option<Arc<Spill>>> = Mutex::new(None);

/// Puts `spill` in place for readers started from now on (`None`: readers wait instead).
pub fn set_spill(spill: Option<Arc<Spill>>) {
    *SPILL.lock().unwrap_or_else(|p| p.into_inner()) = spill;
}

fn current_spill() -> Option<Arc<Spill>> {
    SPILL.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Flow control shared by a reader and its producer.
struct Flow {
    state: Mutex<FlowState>,
    room: Condvar,
    ahead: usize,
    spill: Option<Arc<Spill>>,
    spool: Mutex<Option<File>>,
}

#[derive(Default)]
struct FlowState {
    /// Pieces sent and not yet taken by the reader.
    waiting: usize,
    /// The reader is gone.
    closed: bool,
    /// Bytes written to the spool (its length).
    spooled: u64,
    /// The spool could not be created or written: wait from now on.
    spool_failed: bool,
}

impl Flow {
    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
    }

    /// Drops the spool and gives its bytes back to the budget (after the producer stopped).
    fn release_spool(&self) {
        let spooled = std::mem::take(&mut self.lock().spooled);
        if let (Some(spill), true) = (&self.spill, spooled > 0) {
            spill.release(spooled);
        }
        *self.spool_file() = None;
    }

    fn spool_file(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn taken(&self) {
        let mut st = self.lock();
        st.waiting = st.waiting.saturating_sub(1);
        drop(st);
        self.room.notify_all();
    }

    /// Writes `data` at the end of the spool; false (and no more spilling) when it cannot.
    fn spool_write(&self, at: u64, data: &[u8]) -> bool {
        let Some(spill) = &self.spill else {
            return false;
        };
        let mut spool = self.spool_file();
        if spool.is_none() {
            match create_spool(&spill.dir) {
                Ok(f) => *spool = Some(f),
                Err(_) => return false,
            }
        }
        match spool.as_ref() {
            Some(f) => f.write_all_at(data, at).is_ok(),
            None => false,
        }
    }
}

fn create_spool(dir: &std::path::Path) -> io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("dupcore-spool-{}-{n}", std::process::id()));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.release_spool();
    }
}

/// Where a producer sends its messages.
pub struct Sender<T, E> {
    tx: std::sync::mpsc::Sender<Message<T, E>>,
    flow: Arc<Flow>,
}

impl<T, E> Clone for Sender<T, E> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            flow: Arc::clone(&self.flow),
        }
    }
}

/// The reader went away; the message was not delivered.
#[derive(Debug)]
pub struct Gone;

impl<T, E> Sender<T, E> {
    /// Pieces sent and not yet taken by the reader.
    pub fn waiting(&self) -> usize {
        self.flow.lock().waiting
    }

    /// Sends `msg`: a piece waits for room among the `ahead` pieces in memory, or goes to the
    /// spool when one is in place; `Err` when the reader is gone.
    pub fn send(&self, msg: Message<T, E>) -> Result<(), Gone> {
        let Message::Data(data) = msg else {
            return self.tx.send(msg).map_err(|_| Gone);
        };
        let mut st = self.flow.lock();
        loop {
            if st.closed {
                return Err(Gone);
            }
            if st.waiting < self.flow.ahead {
                st.waiting += 1;
                drop(st);
                return self.tx.send(Message::Data(data)).map_err(|_| Gone);
            }
            let len = data.len() as u64;
            let spill_ok =
                !st.spool_failed && self.flow.spill.as_ref().is_some_and(|s| s.reserve(len));
            if spill_ok {
                let at = st.spooled;
                if self.flow.spool_write(at, &data) {
                    st.spooled += len;
                    drop(st);
                    return self.tx.send(Message::Spilled(data.len())).map_err(|_| Gone);
                }
                st.spool_failed = true;
                if let Some(s) = &self.flow.spill {
                    s.release(len);
                }
                continue;
            }
            st = self.flow.room.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The reading side; `E` is the stream's error type.
pub struct ReadAhead<T, E> {
    rx: Option<Mutex<Receiver<Message<T, E>>>>,
    flow: Arc<Flow>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    /// Bytes of the spool read so far.
    unspooled: u64,
    end: Option<T>,
    error: Option<E>,
    /// The error for a producer that stopped without `End` or `Failed`.
    stopped: fn() -> E,
}

impl<T: Send + 'static, E: Clone + Send + 'static> ReadAhead<T, E> {
    /// Starts `produce` on a thread named `name`, at most `ahead` pieces ahead of the reader in
    /// memory (more in a spool when a restore has put a [`Spill`] in place); `stopped` is the
    /// error when it ends without `End` or `Failed`.
    pub fn spawn(
        name: &str,
        ahead: usize,
        stopped: fn() -> E,
        produce: impl FnOnce(Sender<T, E>) + Send + 'static,
    ) -> io::Result<Self> {
        Self::spawn_with_spill(name, ahead, current_spill(), stopped, produce)
    }

    /// Like [`ReadAhead::spawn`], with the given spill (or none) instead of the restore's.
    pub fn spawn_with_spill(
        name: &str,
        ahead: usize,
        spill: Option<Arc<Spill>>,
        stopped: fn() -> E,
        produce: impl FnOnce(Sender<T, E>) + Send + 'static,
    ) -> io::Result<Self> {
        let (tx, rx) = channel();
        let flow = Arc::new(Flow {
            state: Mutex::new(FlowState::default()),
            room: Condvar::new(),
            ahead: ahead.max(1),
            spill,
            spool: Mutex::new(None),
        });
        let sender = Sender {
            tx,
            flow: Arc::clone(&flow),
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || produce(sender))?;
        Ok(ReadAhead {
            rx: Some(Mutex::new(rx)),
            flow,
            thread: Some(thread),
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            unspooled: 0,
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
                    self.flow.taken();
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Message::Spilled(n)) => {
                    let mut piece = std::mem::take(&mut self.buf);
                    piece.clear();
                    piece.resize(n, 0);
                    let read = match self.flow.spool_file().as_ref() {
                        Some(f) => f.read_exact_at(&mut piece, self.unspooled),
                        None => Err(io::ErrorKind::NotFound.into()),
                    };
                    if read.is_err() {
                        let e = (self.stopped)();
                        self.error = Some(e.clone());
                        return Err(e);
                    }
                    self.unspooled += n as u64;
                    self.buf = piece;
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

    /// Stops the producer (its next send fails), waits for its thread and drops the spool.
    pub fn close(&mut self) {
        self.rx = None;
        self.flow.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.flow.release_spool();
    }
}

impl<T, E> Drop for ReadAhead<T, E> {
    fn drop(&mut self) {
        self.rx = None;
        self.flow.close();
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

    /// A producer of `n` numbered pieces of 1 KiB.
    fn numbered(n: u32) -> impl FnOnce(Sender<(), String>) + Send + 'static {
        move |tx| {
            for i in 0..n {
                if tx.send(Message::Data(vec![(i % 251) as u8; 1024])).is_err() {
                    return;
                }
            }
            let _ = tx.send(Message::End(()));
        }
    }

    /// A reader of [`numbered`]`(n)` with the given spill.
    fn spilling(name: &str, ahead: usize, spill: &Arc<Spill>, n: u32) -> ReadAhead<(), String> {
        let stopped = || "stopped".into();
        ReadAhead::spawn_with_spill(name, ahead, Some(Arc::clone(spill)), stopped, numbered(n))
            .unwrap()
    }

    fn read_all(r: &mut ReadAhead<(), String>) -> Vec<u8> {
        let mut out = Vec::new();
        while r.read_into(&mut out, 1 << 20).unwrap() > 0 {}
        out
    }

    fn expected(n: u32) -> Vec<u8> {
        (0..n).flat_map(|i| vec![(i % 251) as u8; 1024]).collect()
    }

    fn wait_until(what: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn producer_spills_past_the_pieces_in_memory_and_order_is_kept() {
        let dir = std::env::temp_dir();
        let spill = Spill::new(dir, 1 << 30);
        let mut r = spilling("t", 2, &spill, 300);
        // the producer finishes without the reader taking anything: 298 pieces spilled
        wait_until(|| spill.used() == 298 * 1024);
        assert_eq!(read_all(&mut r), expected(300));
        drop(r);
        assert_eq!(
            spill.used(),
            0,
            "the spool's bytes are released with the reader"
        );
    }

    #[test]
    fn spill_budget_is_shared_and_then_the_producer_waits() {
        let spill = Spill::new(std::env::temp_dir(), 10 * 1024);
        let mut a = spilling("a", 1, &spill, 50);
        wait_until(|| spill.used() == 10 * 1024);
        let mut b = spilling("b", 1, &spill, 20);
        // b finds the budget spent: it waits with one piece in memory and spills nothing
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(spill.used(), 10 * 1024);
        assert_eq!(read_all(&mut b), expected(20));
        assert_eq!(read_all(&mut a), expected(50));
        assert!(spill.used() <= 10 * 1024);
        drop(a);
        assert_eq!(spill.used(), 0);
    }

    #[test]
    fn a_spool_that_cannot_be_created_means_waiting_not_failing() {
        let spill = Spill::new(PathBuf::from("/nonexistent/dupcore-spool-dir"), 1 << 30);
        let mut r = spilling("t", 2, &spill, 100);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(spill.used(), 0);
        assert_eq!(read_all(&mut r), expected(100));
    }

    #[test]
    fn closing_wakes_a_waiting_producer() {
        let mut r: ReadAhead<(), String> =
            ReadAhead::spawn_with_spill("t", 1, None, || "stopped".into(), numbered(1000)).unwrap();
        assert!(r.fill().unwrap());
        r.close(); // joins the producer: it must have seen the reader go
    }
}
