//! The restore engine for duplicity's `dup_main.restore`: the engine runs on its own thread;
//! Python receives the log events in order, hands over each volume when a backup set needs
//! its next one, and raises what the engine reports.

use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

#[cfg(feature = "openpgp")]
use super::pgp::{share_pgp_reader, SharedPgpReader};
#[cfg(feature = "openpgp")]
use super::source::DirectPgp;
use super::source::{index_tuple, DirectGzip, PyVolume, Slot};
use super::volume::{take_gzip_reader, to_path};
use crate::backup::local_tree::LocalTree;
use crate::restore::chain::SPOOL_IN_MEMORY;
use crate::restore::entry::{Kind, Meta};
use crate::restore::writer::WriteOptions;
use crate::restore::{
    restore, verify_against, Event, Host, LocalSide, Mode, RestoreError, RestoreOptions,
    RestoreResult,
};
use crate::volume::GzipReader;

/// `(root, rules, files_from, copy_links, debug, count_only)` of a verify that walks the
/// local tree.
type LocalArgs<'py> = (
    Vec<u8>,
    Vec<Bound<'py, PyTuple>>,
    super::backup::FilesFrom,
    bool,
    bool,
    bool,
);

/// Events sent to Python in one message, at most.
const BATCH: usize = 512;

enum Message {
    Events(Vec<Event>),
    Need(usize, Vec<Event>),
    Done(RestoreResult<bool>, Vec<Event>),
}

enum Reply {
    Volume(Py<PyAny>),
    Gzip(GzipReader),
    #[cfg(feature = "openpgp")]
    Pgp(SharedPgpReader, Py<PyAny>),
    End,
}

struct ChannelHost {
    tx: SyncSender<Message>,
    rx: Receiver<Reply>,
    batch: Vec<Event>,
    slot: Slot,
    gone: bool,
}

impl Host for ChannelHost {
    fn next_volume(&mut self, set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        let batch = std::mem::take(&mut self.batch);
        if self.gone || self.tx.send(Message::Need(set, batch)).is_err() {
            return Err(RestoreError::Aborted);
        }
        match self.rx.recv() {
            Ok(Reply::Volume(file)) => Ok(Some(Box::new(PyVolume {
                file,
                slot: Arc::clone(&self.slot),
            }))),
            Ok(Reply::Gzip(reader)) => Ok(Some(Box::new(DirectGzip {
                reader,
                slot: Arc::clone(&self.slot),
            }))),
            #[cfg(feature = "openpgp")]
            Ok(Reply::Pgp(reader, file)) => Ok(Some(Box::new(DirectPgp {
                reader,
                file: PyVolume {
                    file,
                    slot: Arc::clone(&self.slot),
                },
            }))),
            Ok(Reply::End) => Ok(None),
            Err(_) => Err(RestoreError::Aborted),
        }
    }

    fn event(&mut self, event: Event) {
        self.batch.push(event);
        if self.batch.len() >= BATCH && !self.gone {
            let batch = std::mem::take(&mut self.batch);
            self.gone = self.tx.send(Message::Events(batch)).is_err();
        }
    }
}

/// The reply handing over `volume`, read through dupcore's `reader` inside it where the
/// engine can read that directly.
fn direct_reply(volume: Py<PyAny>, reader: &Bound<'_, PyAny>) -> Reply {
    if let Some(gz) = take_gzip_reader(reader) {
        return Reply::Gzip(gz);
    }
    #[cfg(feature = "openpgp")]
    if let Some(pgp) = share_pgp_reader(reader) {
        return Reply::Pgp(pgp, volume);
    }
    Reply::Volume(volume)
}

/// A restore in progress on its own thread (see `dupcore.restore`).
#[pyclass(name = "RestoreEngine", module = "dupcore._core")]
struct PyRestoreEngine {
    rx: Option<Mutex<Receiver<Message>>>,
    tx: Option<Sender<Reply>>,
    thread: Option<JoinHandle<()>>,
    slot: Slot,
}

/// The exception to raise for an engine error: the original one for source failures, else
/// `(kind, message, errno, filename, filename2)` for `dupcore.restore` to build.
fn error_object(py: Python<'_>, e: RestoreError, slot: &Slot) -> PyResult<Py<PyAny>> {
    let bytes = |b: Option<Vec<u8>>| b.map(|b| PyBytes::new(py, &b).into_any().unbind());
    let desc = |kind: &str, message: String, errno: Option<i32>, f1, f2| -> PyResult<Py<PyAny>> {
        Ok((kind, message, errno, bytes(f1), bytes(f2))
            .into_pyobject(py)?
            .into_any()
            .unbind())
    };
    match e {
        RestoreError::Source => {
            let stored = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let err = stored.unwrap_or_else(|| PyRuntimeError::new_err("reading a volume failed"));
            Ok(err.into_value(py).into_any())
        }
        RestoreError::TarRead(m) => desc("tarread", m, None, None, None),
        RestoreError::PatchDir { what, name } => {
            desc("patchdir", what.to_string(), None, Some(name), None)
        }
        RestoreError::Path(m) => desc("path", m, None, None, None),
        RestoreError::Librsync(m) => desc("librsync", m, None, None, None),
        RestoreError::Assertion(m) => desc("assertion", m, None, None, None),
        RestoreError::Os {
            errno,
            message,
            filename,
            filename2,
        } => desc("os", message, errno, filename, filename2),
        RestoreError::Aborted => desc("aborted", "restore stopped".into(), None, None, None),
    }
}

/// A chain entry's type name, `(mode, uid, gid, mtime)`, link target and device numbers.
#[allow(clippy::type_complexity)]
fn entry_fields<'py>(
    py: Python<'py>,
    meta: &Meta,
) -> (
    &'static str,
    (i128, i128, i128, i128),
    Option<Bound<'py, PyBytes>>,
    Option<(i128, i128)>,
) {
    let (link, devnums) = match &meta.kind {
        Kind::Sym(t) => (Some(PyBytes::new(py, t)), None),
        Kind::Chr(a, m) | Kind::Blk(a, m) => (None, Some((*a, *m))),
        _ => (None, None),
    };
    (
        meta.kind.name(),
        (meta.mode, meta.uid, meta.gid, meta.mtime),
        link,
        devnums,
    )
}

fn event_object(py: Python<'_>, event: Event, slot: &Slot) -> PyResult<Py<PyAny>> {
    let b = |v: &[u8]| PyBytes::new(py, v);
    let obj = match event {
        Event::Writing { path, kind } => ("writing", b(&path), kind).into_pyobject(py)?.into_any(),
        Event::ErrorProcessing { error, filename } => (
            "error_processing",
            error_object(py, error, slot)?,
            b(&filename),
        )
            .into_pyobject(py)?
            .into_any(),
        Event::ErrorPatching { error, filename } => (
            "error_patching",
            error_object(py, error, slot)?,
            b(&filename),
        )
            .into_pyobject(py)?
            .into_any(),
        Event::Skipping { path } => ("skipping", b(&path)).into_pyobject(py)?.into_any(),
        Event::IgnoredError { error } => ("ignored_error", error_object(py, error, slot)?)
            .into_pyobject(py)?
            .into_any(),
        Event::NegativeMtime { name } => ("negative_mtime", b(&name)).into_pyobject(py)?.into_any(),
        Event::OldIndex { old, new } => {
            ("old_index", index_tuple(py, &old)?, index_tuple(py, &new)?)
                .into_pyobject(py)?
                .into_any()
        }
        Event::MakingDirectory { path } => {
            ("making_directory", b(&path)).into_pyobject(py)?.into_any()
        }
        Event::DeletingTree { path } => ("deleting_tree", b(&path)).into_pyobject(py)?.into_any(),
        Event::Entry {
            index,
            meta,
            data_equal,
        } => {
            let (kind, attrs, link, devnums) = entry_fields(py, &meta);
            (
                "entry",
                index_tuple(py, &index)?,
                kind,
                attrs,
                link,
                devnums,
                data_equal,
            )
                .into_pyobject(py)?
                .into_any()
        }
        Event::Local(e) => match e.downcast::<crate::backup::Event>() {
            Ok(e) => ("local", super::backup::event_object(py, *e)?)
                .into_pyobject(py)?
                .into_any(),
            Err(_) => {
                return Err(PyRuntimeError::new_err(
                    "a local walk's line of unknown type",
                ))
            }
        },
        Event::Pair {
            index,
            backup,
            local,
        } => {
            let backup = match backup {
                Some((meta, data_equal)) => {
                    let (kind, attrs, link, devnums) = entry_fields(py, &meta);
                    (kind, attrs, link, devnums, data_equal)
                        .into_pyobject(py)?
                        .into_any()
                        .unbind()
                }
                None => py.None(),
            };
            ("pair", index_tuple(py, &index)?, backup, local)
                .into_pyobject(py)?
                .into_any()
        }
        Event::Same(n) => ("same", n).into_pyobject(py)?.into_any(),
    };
    Ok(obj.unbind())
}

#[pymethods]
impl PyRestoreEngine {
    /// Starts restoring `sets` backup sets into `target`; `restrict` is the
    /// `--path-to-restore` index (a list of bytes components). With `verify` (the
    /// `--compare-data` flag) nothing is written: entries come back as `"entry"` events.
    /// `writers` threads write small regular files (0: all on the engine's thread). With
    /// `local`, `(root, rules, files_from, copy_links, debug, count_only)`, verify walks the local tree
    /// itself: `"local"` (a walk's log line), `"pair"` (a pair that may differ) and, at the
    /// end, `"same"` (the number of equal pairs) events instead of `"entry"` events.
    #[new]
    /// `spool_memory` bytes of a file's snapshot stay in memory while its deltas are applied.
    #[pyo3(signature = (target, sets, restrict, tempdir, numeric_owner, restore_ownership, ignore_errors, force, verify=None, writers=0, local=None, spool_memory=SPOOL_IN_MEMORY))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        target: &Bound<'_, PyAny>,
        sets: usize,
        restrict: Vec<Vec<u8>>,
        tempdir: &Bound<'_, PyAny>,
        numeric_owner: bool,
        restore_ownership: bool,
        ignore_errors: bool,
        force: bool,
        verify: Option<bool>,
        writers: usize,
        local: Option<LocalArgs<'_>>,
        spool_memory: usize,
    ) -> PyResult<Self> {
        let local = match local {
            Some((root, rules, files_from, copy_links, debug, count_only)) => Some(LocalSide {
                walk: Box::new(LocalTree::new(
                    root,
                    super::backup::selection_of(&rules, files_from)?,
                    copy_links,
                    debug,
                )),
                count_only,
            }),
            None => None,
        };
        let target = to_path(target)?.into_os_string().into_encoded_bytes();
        let tempdir: PathBuf = to_path(tempdir)?;
        let opts = RestoreOptions {
            target,
            sets,
            restrict,
            tempdir,
            numeric_owner,
            spool_in_memory: spool_memory,
            mode: match verify {
                None => Mode::Restore(WriteOptions {
                    restore_ownership,
                    ignore_errors,
                    force,
                    writers,
                }),
                Some(compare_data) => Mode::Verify { compare_data },
            },
        };
        let (msg_tx, msg_rx) = sync_channel(2);
        let (reply_tx, reply_rx) = channel();
        let slot: Slot = Arc::new(Mutex::new(None));
        let mut host = ChannelHost {
            tx: msg_tx,
            rx: reply_rx,
            batch: Vec::new(),
            slot: Arc::clone(&slot),
            gone: false,
        };
        let thread = std::thread::Builder::new()
            .name("dupcore-restore".into())
            .spawn(move || {
                let result = match local {
                    Some(local) => verify_against(&opts, &mut host, local),
                    None => restore(&opts, &mut host),
                };
                let batch = std::mem::take(&mut host.batch);
                let _ = host.tx.send(Message::Done(result, batch));
            })
            .map_err(|e| super::errors::os_error(&e))?;
        Ok(PyRestoreEngine {
            rx: Some(Mutex::new(msg_rx)),
            tx: Some(reply_tx),
            thread: Some(thread),
            slot,
        })
    }

    /// Waits for the engine: `(what, payload, events)` with `what` one of `"events"`,
    /// `"need"` (payload: the backup set wanting its next volume), `"done"` (payload: whether
    /// anything was restored) or `"error"` (payload: the exception or its description).
    fn next(&mut self, py: Python<'_>) -> PyResult<(String, Py<PyAny>, Vec<Py<PyAny>>)> {
        let rx = self
            .rx
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the restore has ended"))?;
        let msg = loop {
            let got = py.detach(|| {
                rx.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .recv_timeout(Duration::from_millis(200))
            });
            match got {
                Ok(m) => break m,
                Err(RecvTimeoutError::Timeout) => py.check_signals()?,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("the restore engine stopped"))
                }
            }
        };
        let events = |batch: Vec<Event>| -> PyResult<Vec<Py<PyAny>>> {
            batch
                .into_iter()
                .map(|e| event_object(py, e, &self.slot))
                .collect()
        };
        Ok(match msg {
            Message::Events(batch) => ("events".into(), py.None(), events(batch)?),
            Message::Need(set, batch) => (
                "need".into(),
                set.into_pyobject(py)?.into_any().unbind(),
                events(batch)?,
            ),
            Message::Done(Ok(wrote), batch) => (
                "done".into(),
                pyo3::types::PyBool::new(py, wrote)
                    .to_owned()
                    .into_any()
                    .unbind(),
                events(batch)?,
            ),
            Message::Done(Err(e), batch) => {
                let batch = events(batch)?;
                ("error".into(), error_object(py, e, &self.slot)?, batch)
            }
        })
    }

    /// Answers `"need"`: the volume's file object, or None when the set has no more.
    /// `reader`, dupcore's reader inside that file object, is read by the engine directly,
    /// without the GIL: a `GzipReader` is taken over; a `PgpReader` is shared, and `volume`
    /// reads it again for the exception when it fails.
    #[pyo3(signature = (volume, reader=None))]
    fn give(
        &mut self,
        py: Python<'_>,
        volume: Option<Py<PyAny>>,
        reader: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the restore has ended"))?;
        let reply = match (volume, reader) {
            (None, _) => Reply::End,
            (Some(v), None) => Reply::Volume(v),
            (Some(v), Some(r)) => direct_reply(v, r.bind(py)),
        };
        tx.send(reply)
            .map_err(|_| PyRuntimeError::new_err("the restore engine stopped"))
    }

    /// Stops the engine (if still running) and waits for its thread.
    fn close(&mut self, py: Python<'_>) {
        self.tx = None;
        self.rx = None;
        if let Some(t) = self.thread.take() {
            py.detach(|| {
                let _ = t.join();
            });
        }
    }
}

/// Lets readers opened from now on spill decoded data ahead into `dir` (at most `budget` bytes
/// in all); `None` turns spilling off (see `readahead`).
#[pyfunction]
#[pyo3(signature = (dir, budget=0))]
fn set_restore_spill(dir: Option<std::path::PathBuf>, budget: u64) {
    crate::readahead::set_spill(dir.map(|d| crate::readahead::Spill::new(d, budget)));
}

/// Writes large restored files with direct I/O where the file system allows it (`on`), or
/// through the page cache only (see `restore::direct`).
#[pyfunction]
fn set_restore_direct(on: bool) {
    crate::restore::direct::set_direct_io(on);
}

/// Registers the restore engine class, its spill and its direct I/O settings.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRestoreEngine>()?;
    m.add_function(wrap_pyfunction!(set_restore_spill, m)?)?;
    m.add_function(wrap_pyfunction!(set_restore_direct, m)?)
}
