//! A signature computed on a thread of its own while the caller goes on with the same data
//! (duplicity's `FileWithSignature` feeds the signature and the delta of a changed file from
//! the same reads: here the two run side by side instead of one after the other).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use super::error::{RsError, RsResult};
use super::SigMaker;

/// Pieces waiting for the signature thread, at most (with 256 KiB pieces: 8 MiB).
const QUEUE: usize = 32;

/// A [`SigMaker`] fed from the caller's thread and run on its own.
pub struct SigThread {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: Option<JoinHandle<RsResult<Vec<u8>>>>,
}

impl SigThread {
    /// Runs `maker` on a new thread; `out` holds its output so far.
    pub fn spawn(mut maker: SigMaker, mut out: Vec<u8>) -> RsResult<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("dupcore-signature".into())
            .spawn(move || {
                for data in rx {
                    maker.update(&data, &mut out)?;
                }
                maker.finish(&mut out);
                Ok(out)
            })
            .map_err(RsError::Io)?;
        Ok(SigThread {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Hands `data` to the thread (waits while its queue is full). A failed thread is
    /// reported by [`SigThread::finish`].
    pub fn feed(&mut self, data: Vec<u8>) {
        if let Some(tx) = &self.tx {
            if tx.send(data).is_err() {
                self.tx = None;
            }
        }
    }

    /// Waits for the thread and returns the whole signature.
    pub fn finish(mut self) -> RsResult<Vec<u8>> {
        self.tx = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(RsError::Io(std::io::Error::other(
                "the signature thread failed",
            ))),
        }
    }
}

impl Drop for SigThread {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
