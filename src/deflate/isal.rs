//! ISA-L's igzip as a chunk engine: raw deflate of one chunk, primed with the previous window
//! and ending byte-aligned (sync flush) or final. `isal-sys` builds ISA-L and binds its C API;
//! its safe companion crate (`isal-rs`) offers whole streams only, without the dictionary and
//! sync flush that parallel chunks need, so this file keeps the few FFI calls behind one safe
//! function.

use isal_sys::igzip_lib as ffi;

/// Work buffer ISA-L asks for at `level` (its `ISAL_DEF_LVLx_DEFAULT`).
fn level_buf_size(level: u32) -> usize {
    (match level {
        1 => ffi::ISAL_DEF_LVL1_DEFAULT,
        2 => ffi::ISAL_DEF_LVL2_DEFAULT,
        _ => ffi::ISAL_DEF_LVL3_DEFAULT,
    }) as usize
}

/// Whether the stream has taken all input and emitted everything it buffered: after a sync
/// flush it waits for a new block header, after the final block it has ended.
fn settled(s: &ffi::isal_zstream) -> bool {
    s.avail_in == 0
        && (s.internal_state.state == ffi::isal_zstate_state_ZSTATE_NEW_HDR
            || s.internal_state.state == ffi::isal_zstate_state_ZSTATE_END)
}

/// Raw-deflates `data` at ISA-L `level` (1–3) with a `1 << window_bits` window primed with
/// `dict`; sync-flushes, or finishes the stream if `last`.
pub(super) fn compress_chunk(
    dict: &[u8],
    data: &[u8],
    last: bool,
    level: u32,
    window_bits: u8,
) -> Vec<u8> {
    let in_len = u32::try_from(data.len()).expect("deflate chunks are far below 4 GiB");
    let dict = &dict[dict.len().saturating_sub(1 << window_bits)..];
    LEVEL_BUF.with(|cell| {
        let mut level_buf = cell.borrow_mut();
        let size = level_buf_size(level);
        if level_buf.len() < size {
            level_buf.resize(size, 0);
        }
        run(
            dict,
            data,
            last,
            level,
            window_bits,
            &mut level_buf[..size],
            in_len,
        )
    })
}

std::thread_local! {
    /// ISA-L's work buffer, kept per compression thread instead of allocated per chunk
    /// (isal_deflate_init marks it uninitialised, so ISA-L sets it up for each stream).
    static LEVEL_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn run(
    dict: &[u8],
    data: &[u8],
    last: bool,
    level: u32,
    window_bits: u8,
    level_buf: &mut [u8],
    in_len: u32,
) -> Vec<u8> {
    let mut out = vec![0u8; data.len() + data.len() / 16 + 1024];
    // SAFETY: the stream is zeroed and then initialised by isal_deflate_init, as ISA-L
    // documents; every pointer it is given (level_buf, dict, data, out) outlives the calls
    // below, and next_out/avail_out always describe the unwritten tail of `out`.
    unsafe {
        let mut s: Box<ffi::isal_zstream> = Box::new(std::mem::zeroed());
        ffi::isal_deflate_init(&mut *s);
        s.level = level;
        s.level_buf = level_buf.as_mut_ptr();
        s.level_buf_size = level_buf.len() as u32;
        s.gzip_flag = ffi::IGZIP_DEFLATE as u16;
        s.hist_bits = u16::from(window_bits);
        if !dict.is_empty() {
            let rc =
                ffi::isal_deflate_set_dict(&mut *s, dict.as_ptr().cast_mut(), dict.len() as u32);
            assert_eq!(rc, 0, "ISA-L refused a dictionary on a fresh stream");
        }
        s.end_of_stream = u16::from(last);
        s.flush = if last { ffi::NO_FLUSH } else { ffi::SYNC_FLUSH } as u16;
        s.next_in = data.as_ptr().cast_mut();
        s.avail_in = in_len;
        s.next_out = out.as_mut_ptr();
        s.avail_out = out.len() as u32;
        loop {
            let before = (s.avail_in, s.avail_out, s.internal_state.state);
            let rc = ffi::isal_deflate(&mut *s);
            assert_eq!(
                rc, 0,
                "ISA-L deflate rejected its parameters (level {level})"
            );
            if settled(&s) {
                break;
            }
            // never spin: a call that moved nothing with room left would repeat forever
            assert!(
                (s.avail_in, s.avail_out, s.internal_state.state) != before || s.avail_out == 0,
                "ISA-L deflate made no progress"
            );
            if s.avail_out == 0 {
                let used = out.len();
                out.resize(used * 2, 0);
                s.next_out = out.as_mut_ptr().add(used);
                s.avail_out = (out.len() - used) as u32;
            }
        }
        let written = out.len() - s.avail_out as usize;
        out.truncate(written);
    }
    out
}

#[cfg(not(target_arch = "aarch64"))]
/// Bytes of history a deflate stream may refer back to.
pub(super) const HISTORY: usize = ffi::ISAL_DEF_HIST_SIZE as usize;

#[cfg(not(target_arch = "aarch64"))]
/// Where a piece of a raw deflate stream, inflated on its own by [`inflate_segment`], ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// At a block boundary on the piece's last bit, the stream going on.
    Boundary,
    /// With the stream's final block (what follows it is not looked at).
    StreamEnd,
}

#[cfg(not(target_arch = "aarch64"))]
/// `input`, a piece of one raw deflate stream starting at a block boundary, inflated without
/// any history before it. None unless it inflates cleanly to at most `cap` bytes and ends as
/// a [`SegmentEnd`] says: a back-reference before its start (ISA-L's invalid lookback), an
/// end inside a block or with bits of the next header read, anything unclear, is None.
/// The output goes to `out`'s allocation (its contents dropped), reused from segment to segment.
pub fn inflate_segment(
    input: &[u8],
    cap: usize,
    mut out: Vec<u8>,
) -> Option<(Vec<u8>, SegmentEnd)> {
    let avail_in = u32::try_from(input.len()).ok()?;
    let room = u32::try_from(cap.checked_add(1)?).ok()?;
    // not zeroed: ISA-L only writes to it, and only what it wrote is kept (`set_len` below)
    out.clear();
    out.reserve(room as usize);
    let mut state = inflate_state(Wrapper::Raw);
    state.next_in = input.as_ptr().cast_mut();
    state.avail_in = avail_in;
    state.next_out = out.as_mut_ptr();
    state.avail_out = room;
    // SAFETY: next_in/avail_in describe `input` and next_out/avail_out `out`, both live for
    // the call; ISA-L reads and writes only within them.
    let rc = unsafe { ffi::isal_inflate(&mut *state) };
    state.next_in = std::ptr::null_mut();
    state.next_out = std::ptr::null_mut();
    if rc != ffi::ISAL_DECOMP_OK as i32 || state.avail_out == 0 {
        return None;
    }
    // SAFETY: ISA-L wrote the first `room - avail_out` bytes of `out`'s allocation.
    unsafe { out.set_len((room - state.avail_out) as usize) };
    let s = &*state;
    let drained = s.tmp_out_valid == s.tmp_out_processed
        && s.write_overflow_len == 0
        && s.copy_overflow_length == 0;
    let end = if s.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH {
        SegmentEnd::StreamEnd
    } else if s.block_state == ffi::isal_block_state_ISAL_BLOCK_NEW_HDR
        && s.avail_in == 0
        && s.read_in_length == 0
        && s.tmp_in_size == 0
        && s.bfinal == 0
    {
        SegmentEnd::Boundary
    } else {
        return None;
    };
    drained.then_some((out, end))
}

/// The frame around the deflate data an [`Inflater`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrapper {
    /// gzip members one after another, each with its CRC-32 and length checked.
    Gzip,
    /// One raw deflate stream (RFC 1951): OpenPGP's ZIP packets.
    Raw,
}

impl Wrapper {
    fn flag(self) -> u32 {
        match self {
            Wrapper::Gzip => ffi::ISAL_GZIP,
            Wrapper::Raw => ffi::ISAL_DEFLATE,
        }
    }
}

/// A fresh ISA-L inflate state for `wrapper`-framed data.
fn inflate_state(wrapper: Wrapper) -> Box<ffi::inflate_state> {
    // SAFETY: a zeroed inflate_state is what isal_inflate_init expects to initialise.
    let mut state: Box<ffi::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: `state` is a valid, exclusively borrowed inflate_state.
    unsafe { ffi::isal_inflate_init(&mut *state) };
    state.crc_flag = wrapper.flag();
    state
}

/// What an ISA-L inflate return code means, for a person.
fn inflate_error(rc: i32) -> String {
    let what = match rc {
        ffi::ISAL_INVALID_BLOCK => "an invalid deflate block",
        ffi::ISAL_INVALID_SYMBOL => "an invalid deflate code",
        ffi::ISAL_INVALID_LOOKBACK => "a back-reference before the start of the data",
        ffi::ISAL_INVALID_WRAPPER => "an invalid header",
        ffi::ISAL_INCORRECT_CHECKSUM => "a checksum that does not match",
        _ => "an inflate error",
    };
    format!("damaged compressed data: {what} (ISA-L code {rc})")
}

/// Inflate by ISA-L of a (multi-member) gzip stream, checking each member's CRC-32 and length,
/// or of one raw deflate stream. (Not zlib streams: ISA-L's Adler-32 check refused valid
/// streams on aarch64.) A single stream ends at its last block and leaves what
/// follows it unread in `inner`. Any problem (damaged or truncated data, a header ISA-L does
/// not take) is one `io::Error` of kind `InvalidData` or `UnexpectedEof`: callers that must
/// classify damage exactly as Python's `gzip` does read the stream again with flate2 from
/// there (`volume::reader`).
pub struct Inflater<R> {
    inner: R,
    state: Box<ffi::inflate_state>,
    wrapper: Wrapper,
}

/// The gzip reader of volumes.
pub type GzDecoder<R> = Inflater<R>;

impl<R: std::io::BufRead> Inflater<R> {
    /// A decoder reading gzip members from `inner`.
    pub fn new(inner: R) -> Self {
        Self::with_wrapper(inner, Wrapper::Gzip)
    }

    /// A decoder reading `wrapper`-framed deflate data from `inner`.
    pub fn with_wrapper(inner: R, wrapper: Wrapper) -> Self {
        Inflater {
            inner,
            state: inflate_state(wrapper),
            wrapper,
        }
    }

    #[cfg(not(target_arch = "aarch64"))]
    /// A decoder of a raw deflate stream that goes on from a block boundary of another one,
    /// `history` being that stream's output so far (its last 32 KiB are used).
    pub fn raw_after(inner: R, history: &[u8]) -> Self {
        let mut dec = Self::with_wrapper(inner, Wrapper::Raw);
        let dict = &history[history.len().saturating_sub(HISTORY)..];
        if !dict.is_empty() {
            // SAFETY: the state was just initialised and has not inflated anything, as
            // isal_inflate_set_dict requires; it copies the (at most 32 KiB) dictionary.
            let rc = unsafe {
                ffi::isal_inflate_set_dict(
                    &mut *dec.state,
                    dict.as_ptr().cast_mut(),
                    dict.len() as u32,
                )
            };
            assert_eq!(
                rc,
                ffi::ISAL_DECOMP_OK as i32,
                "ISA-L takes a 32 KiB dictionary on a fresh state"
            );
        }
        dec
    }

    /// The reader given to `new`.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The reader given to `new`, borrowed.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn member_done(&self) -> bool {
        self.state.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH
    }
}

impl<R: std::io::BufRead> std::io::Read for Inflater<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        if out.is_empty() {
            return Ok(0);
        }
        let room = u32::try_from(out.len()).unwrap_or(u32::MAX);
        loop {
            if self.member_done() {
                // a single stream ends here; another gzip member follows unless the input ends
                if self.wrapper != Wrapper::Gzip || self.inner.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                // SAFETY: `state` was initialised by isal_inflate_init.
                unsafe { ffi::isal_inflate_reset(&mut *self.state) };
                self.state.crc_flag = ffi::ISAL_GZIP;
            }
            let input = self.inner.fill_buf()?;
            let at_end = input.is_empty();
            let given = u32::try_from(input.len()).unwrap_or(u32::MAX);
            self.state.next_in = input.as_ptr().cast_mut();
            self.state.avail_in = given;
            self.state.next_out = out.as_mut_ptr();
            self.state.avail_out = room;
            // SAFETY: next_in/avail_in describe the reader's buffer and next_out/avail_out the
            // caller's slice, both live for this call; ISA-L reads and writes only within them.
            let rc = unsafe { ffi::isal_inflate(&mut *self.state) };
            let produced = (room - self.state.avail_out) as usize;
            let consumed = match given.checked_sub(self.state.avail_in) {
                Some(n) => n as usize,
                // At a stream's end ISA-L gives back the bytes it loaded past it, and they
                // can include bytes taken in an earlier call (a block header split between
                // two reads), which this reader has consumed already: after a raw stream they
                // are never read; a gzip member's successor would be lost, so that is an error
                // (the volume reader then reads the file again with flate2).
                None if self.wrapper == Wrapper::Raw && self.member_done() => given as usize,
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidData,
                        "ISA-L gave back input taken in an earlier call",
                    ))
                }
            };
            self.state.next_in = std::ptr::null_mut();
            self.state.next_out = std::ptr::null_mut();
            self.inner.consume(consumed);
            if rc != ffi::ISAL_DECOMP_OK as i32 {
                return Err(Error::new(ErrorKind::InvalidData, inflate_error(rc)));
            }
            if produced > 0 {
                return Ok(produced);
            }
            if self.member_done() {
                continue;
            }
            if at_end {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "compressed data ended before its end-of-stream marker",
                ));
            }
            if consumed == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidData,
                    "ISA-L inflate made no progress",
                ));
            }
        }
    }
}
