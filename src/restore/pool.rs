//! Small regular files written by a pool of threads, with everything else kept in order.
//!
//! The restore walk stays on one thread and decides everything in duplicity's order; only the
//! writing of a small regular file whose data is already in memory (create, write, owner,
//! mode, times) goes to a writer thread. [`Ordered`] wraps the caller's [`Host`] so that what
//! the caller sees is exactly what a one-thread restore shows: events that come after a file
//! handed to the pool wait until that file is written and its own events are out, and work
//! that must see the files before it on disk (a directory's attributes when the walk leaves
//! it) waits its turn in the same queue. The first error that stops a one-thread restore stops
//! this one, with the same events before it.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::error::{RestoreError, RestoreResult};
use super::{Event, Host};

/// Regular files up to this size may go to a writer thread (larger ones stream on the walk's
/// thread, without being held in memory).
pub const POOLED_FILE_MAX: u64 = 1 << 20;
/// Bytes of file data held for the writer threads at most.
const IN_FLIGHT_BYTES: usize = 32 << 20;
/// Files handed to the writer threads and not yet reported at most.
const IN_FLIGHT_FILES: usize = 1024;

/// Work on a writer thread: writes a file, collecting what it logs.
pub type WriteFile = Box<dyn FnOnce(&mut Collector) -> RestoreResult<()> + Send>;

/// A regular file to write on a writer thread.
pub struct FileJob {
    /// Its data size, counted against the memory bound.
    pub bytes: usize,
    /// Writes it, collecting what it logs; an error that is not common stops the restore.
    pub run: WriteFile,
}

/// Work that needs every file handed over before it to be on disk.
pub type AfterWrites = Box<dyn FnOnce(&mut Collector) -> RestoreResult<()>>;

/// A [`Host`] for work done away from the caller: events are kept, volumes are not served.
#[derive(Default)]
pub struct Collector {
    /// Events in the order they happened.
    pub events: Vec<Event>,
}

impl Host for Collector {
    fn next_volume(&mut self, _set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        Err(RestoreError::Assertion(
            "a file writer asked for a volume".into(),
        ))
    }

    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

struct Done {
    seq: u64,
    events: Vec<Event>,
    result: RestoreResult<()>,
}

enum Slot {
    Event(Event),
    File {
        seq: u64,
        bytes: usize,
        done: Option<(Vec<Event>, RestoreResult<()>)>,
    },
    After(AfterWrites),
}

struct Workers {
    stop: Arc<AtomicBool>,
    jobs: Option<Sender<(u64, FileJob)>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    fn start(count: usize) -> RestoreResult<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (jobs, job_rx) = channel::<(u64, FileJob)>();
        let (done_tx, done) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut threads = Vec::with_capacity(count);
        for _ in 0..count {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            let stop = Arc::clone(&stop);
            let spawned = std::thread::Builder::new()
                .name("dupcore-write".into())
                .spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((seq, job)) = next else { return };
                    let mut collector = Collector::default();
                    let result = if stop.load(Ordering::Relaxed) {
                        Ok(()) // the restore has stopped: nothing more is written
                    } else {
                        (job.run)(&mut collector)
                    };
                    let done = Done {
                        seq,
                        events: collector.events,
                        result,
                    };
                    if tx.send(done).is_err() {
                        return;
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => return Err(RestoreError::os(&e, b"<writer thread>")),
            }
        }
        Ok(Workers {
            stop,
            jobs: Some(jobs),
            done,
            threads,
        })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The caller's host with a pool of file writers and the queue that keeps their results in
/// the walk's order.
pub struct Ordered<'h> {
    inner: &'h mut dyn Host,
    workers: Option<Workers>,
    queue: VecDeque<Slot>,
    next_seq: u64,
    files: usize,
    bytes: usize,
    /// The error that stopped the restore, once the queue reached it (until returned).
    failed: Option<RestoreError>,
    /// Set with `failed`: nothing after the error is passed on or written.
    stopped: bool,
}

impl<'h> Ordered<'h> {
    /// `inner` with `writers` writer threads (0: everything on the caller's thread).
    pub fn new(inner: &'h mut dyn Host, writers: usize) -> RestoreResult<Self> {
        let workers = match writers {
            0 => None,
            n => Some(Workers::start(n)?),
        };
        Ok(Ordered {
            inner,
            workers,
            queue: VecDeque::new(),
            next_seq: 0,
            files: 0,
            bytes: 0,
            failed: None,
            stopped: false,
        })
    }

    /// Passes on what is ready at the front of the queue; the first stopping error ends it.
    fn drain(&mut self) {
        while !self.stopped {
            let ready = match self.queue.front() {
                None => return,
                Some(Slot::File { done, .. }) => done.is_some(),
                Some(_) => true,
            };
            if !ready {
                return;
            }
            match self.queue.pop_front() {
                Some(Slot::Event(e)) => self.inner.event(e),
                Some(Slot::File {
                    done: Some((events, result)),
                    bytes,
                    ..
                }) => {
                    self.files -= 1;
                    self.bytes -= bytes;
                    self.pass(events, result);
                }
                Some(Slot::After(op)) => {
                    let mut collector = Collector::default();
                    let result = op(&mut collector);
                    self.pass(collector.events, result);
                }
                _ => return,
            }
        }
    }

    fn pass(&mut self, events: Vec<Event>, result: RestoreResult<()>) {
        for e in events {
            self.inner.event(e);
        }
        if let Err(e) = result {
            self.stop(e);
        }
    }

    fn stop(&mut self, e: RestoreError) {
        self.failed = Some(e);
        self.stopped = true;
        self.queue.clear();
        if let Some(w) = &self.workers {
            w.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Waits for one written file to be reported.
    fn wait_one(&mut self) {
        let Some(workers) = &self.workers else { return };
        let Ok(done) = workers.done.recv() else {
            self.stop(RestoreError::Assertion(
                "the file writer threads stopped".into(),
            ));
            return;
        };
        for slot in self.queue.iter_mut() {
            if let Slot::File { seq, done: d, .. } = slot {
                if *seq == done.seq {
                    *d = Some((done.events, done.result));
                    break;
                }
            }
        }
        self.drain();
    }

    fn status(&mut self) -> RestoreResult<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the restore with `result`: what is queued before it is passed on first, and an
    /// error that comes earlier in the walk's order wins.
    pub fn finish<T>(&mut self, result: RestoreResult<T>) -> RestoreResult<T> {
        let earlier = self.wait_writes();
        match (earlier, result) {
            (Err(e), _) => Err(e),
            (Ok(()), r) => r,
        }
    }
}

impl Host for Ordered<'_> {
    fn next_volume(&mut self, set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        // the caller logs volume progress when asked for a volume: everything before first
        self.wait_writes()?;
        self.inner.next_volume(set)
    }

    fn event(&mut self, event: Event) {
        if self.stopped {
            return; // a one-thread restore would have stopped before this
        }
        if self.queue.is_empty() {
            self.inner.event(event);
        } else {
            self.queue.push_back(Slot::Event(event));
        }
    }

    /// Hands `job` to a writer thread; gives it back when there are none.
    fn spawn_write(&mut self, job: FileJob) -> RestoreResult<Option<FileJob>> {
        if self.workers.is_none() {
            return Ok(Some(job));
        }
        let bytes = job.bytes;
        while !self.stopped
            && self.files > 0
            && (self.files >= IN_FLIGHT_FILES || self.bytes + bytes > IN_FLIGHT_BYTES)
        {
            self.wait_one();
        }
        self.status()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let sent = self
            .workers
            .as_ref()
            .and_then(|w| w.jobs.as_ref())
            .map(|tx| tx.send((seq, job)));
        match sent {
            Some(Ok(())) => {}
            Some(Err(back)) => return Ok(Some(back.0 .1)),
            None => return Err(RestoreError::Assertion("no file writer threads".into())),
        }
        self.files += 1;
        self.bytes += bytes;
        self.queue.push_back(Slot::File {
            seq,
            bytes,
            done: None,
        });
        Ok(None)
    }

    /// Runs `op` once every file handed over before it is written and reported.
    fn after_writes(&mut self, op: AfterWrites) -> RestoreResult<()> {
        self.status()?;
        self.queue.push_back(Slot::After(op));
        self.drain();
        self.status()
    }

    /// Waits until every file handed over is written and everything before is passed on.
    fn wait_writes(&mut self) -> RestoreResult<()> {
        while !self.stopped && !self.queue.is_empty() {
            if self.files == 0 {
                self.drain();
            } else {
                self.wait_one();
            }
        }
        self.status()
    }
}
