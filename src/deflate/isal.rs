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
    let mut level_buf = vec![0u8; level_buf_size(level)];
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
            let rc = ffi::isal_deflate(&mut *s);
            assert_eq!(
                rc, 0,
                "ISA-L deflate rejected its parameters (level {level})"
            );
            if settled(&s) {
                break;
            }
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
