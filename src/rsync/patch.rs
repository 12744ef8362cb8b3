//! Streaming patch application: any valid librsync delta against a seekable basis.

use std::fs::File;
use std::io;

use super::error::{RsError, RsResult};
use super::netint::{get, width_of_index};
use super::{
    DELTA_MAGIC, OP_COPY_N1_N1, OP_COPY_N8_N8, OP_END, OP_LITERAL_INLINE_MAX, OP_LITERAL_N1,
    OP_LITERAL_N8,
};

/// Random-access source of basis bytes for COPY commands.
pub trait Basis {
    /// Reads up to `buf.len()` bytes at `pos`; 0 means `pos` is at or past the end.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl Basis for File {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match FileExt::read_at(self, buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl Basis for &[u8] {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// A delta command, as its header reads (a literal's data follows it in the delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The END command.
    End,
    /// This many literal bytes follow.
    Literal(u64),
    /// Copy `len` bytes of the basis from `pos`.
    Copy {
        /// Basis offset.
        pos: u64,
        /// Byte count.
        len: u64,
    },
}

/// Reads a delta's magic and its command headers, resumably, from pieces of input.
#[derive(Debug, Default)]
pub struct CommandReader {
    magic_read: bool,
    pending: Vec<u8>,
}

impl CommandReader {
    /// A reader at the start of a delta.
    pub fn new() -> Self {
        CommandReader {
            magic_read: false,
            pending: Vec::with_capacity(17),
        }
    }

    /// The next command header from `input`: `(consumed, Some(command))`, or `(consumed,
    /// None)` when more input is needed. `eof` says no delta bytes follow `input`.
    pub fn next(&mut self, input: &[u8], eof: bool) -> RsResult<(usize, Option<Command>)> {
        let mut pos = 0;
        if !self.magic_read {
            let take = (4 - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            pos += take;
            if self.pending.len() < 4 {
                if eof {
                    return Err(RsError::InputEnded(
                        "delta is shorter than its 4-byte magic",
                    ));
                }
                return Ok((pos, None));
            }
            let magic = get(&self.pending) as u32;
            if magic != DELTA_MAGIC {
                return Err(RsError::BadMagic(magic, "not a librsync delta"));
            }
            self.pending.clear();
            self.magic_read = true;
        }
        if self.pending.is_empty() {
            if pos == input.len() {
                if eof {
                    return Err(RsError::InputEnded("delta ends without an END command"));
                }
                return Ok((pos, None));
            }
            let op = input[pos];
            if param_len(op).is_none() {
                return Err(RsError::Corrupt(format!("reserved command byte {op:#04x}")));
            }
            self.pending.push(op);
            pos += 1;
        }
        let need = 1 + param_len(self.pending[0]).unwrap_or(0);
        let take = (need - self.pending.len()).min(input.len() - pos);
        self.pending.extend_from_slice(&input[pos..pos + take]);
        pos += take;
        if self.pending.len() < need {
            if eof {
                return Err(RsError::InputEnded("delta ends inside a command"));
            }
            return Ok((pos, None));
        }
        let command = decode(&self.pending)?;
        self.pending.clear();
        Ok((pos, Some(command)))
    }
}

/// Parameter byte count of a command opcode, or `None` for a reserved opcode.
fn param_len(op: u8) -> Option<usize> {
    match op {
        OP_END..=OP_LITERAL_INLINE_MAX => Some(0),
        OP_LITERAL_N1..=OP_LITERAL_N8 => Some(width_of_index(op - OP_LITERAL_N1)),
        OP_COPY_N1_N1..=OP_COPY_N8_N8 => {
            let k = op - OP_COPY_N1_N1;
            Some(width_of_index(k / 4) + width_of_index(k % 4))
        }
        _ => None,
    }
}

/// Reads a parameter as librsync does: 8-byte fields are signed and may come out negative.
fn signed_param(bytes: &[u8]) -> i128 {
    let v = get(bytes);
    if bytes.len() == 8 {
        i128::from(v as i64)
    } else {
        i128::from(v)
    }
}

/// A whole command header (opcode and parameters) as a command.
fn decode(header: &[u8]) -> RsResult<Command> {
    let op = header[0];
    let p = &header[1..];
    Ok(match op {
        OP_END => Command::End,
        1..=OP_LITERAL_INLINE_MAX => Command::Literal(u64::from(op)),
        OP_LITERAL_N1..=OP_LITERAL_N8 => {
            let len = signed_param(p);
            if len <= 0 {
                return Err(RsError::Corrupt(format!(
                    "literal command with length {len}"
                )));
            }
            Command::Literal(len as u64)
        }
        _ => {
            let k = op - OP_COPY_N1_N1;
            let wp = width_of_index(k / 4);
            let pos = signed_param(&p[..wp]);
            let len = signed_param(&p[wp..]);
            if pos < 0 || len <= 0 {
                return Err(RsError::Corrupt(format!(
                    "copy command with offset {pos} length {len}"
                )));
            }
            Command::Copy {
                pos: pos as u64,
                len: len as u64,
            }
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Literal(u64),
    Copy { pos: u64, left: u64 },
    Done,
}

/// Applies a delta read in pieces, producing output in bounded pieces.
pub struct PatchMaker<B: Basis> {
    basis: B,
    state: State,
    commands: CommandReader,
}

impl<B: Basis> PatchMaker<B> {
    /// Starts applying a delta against `basis`.
    pub fn new(basis: B) -> Self {
        PatchMaker {
            basis,
            state: State::Header,
            commands: CommandReader::new(),
        }
    }

    /// Whether the END command has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes delta bytes from `input` and appends at most `out_limit` bytes to `out`.
    ///
    /// `eof` says no delta bytes follow `input`. Returns `(consumed, done)`; unconsumed input
    /// must be offered again. Bytes after the END command are left unconsumed.
    pub fn cycle(
        &mut self,
        input: &[u8],
        eof: bool,
        out: &mut Vec<u8>,
        out_limit: usize,
    ) -> RsResult<(usize, bool)> {
        let start_len = out.len();
        let mut pos = 0;
        if self.state == State::Done && !input.is_empty() {
            return Err(RsError::Finished("delta input after the END command"));
        }
        loop {
            let room = out_limit - (out.len() - start_len);
            match self.state {
                State::Done => return Ok((pos, true)),
                State::Header => {
                    let (used, command) = self.commands.next(&input[pos..], eof)?;
                    pos += used;
                    self.state = match command {
                        None => return Ok((pos, false)),
                        Some(Command::End) => State::Done,
                        Some(Command::Literal(n)) => State::Literal(n),
                        Some(Command::Copy { pos, len }) => State::Copy { pos, left: len },
                    };
                }
                State::Literal(left) => {
                    if room == 0 {
                        return Ok((pos, false));
                    }
                    let avail = input.len() - pos;
                    if avail == 0 {
                        if eof {
                            return Err(RsError::InputEnded("delta ends inside literal data"));
                        }
                        return Ok((pos, false));
                    }
                    let n = (left.min(avail as u64) as usize).min(room);
                    out.extend_from_slice(&input[pos..pos + n]);
                    pos += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Literal(left)
                    };
                }
                State::Copy { pos: at, left } => {
                    if room == 0 {
                        return Ok((pos, false));
                    }
                    let n = left.min(room as u64) as usize;
                    let old = out.len();
                    out.resize(old + n, 0);
                    let got = match self.basis.read_at(at, &mut out[old..]) {
                        Ok(g) => g,
                        Err(e) => {
                            out.truncate(old);
                            return Err(e.into());
                        }
                    };
                    out.truncate(old + got);
                    if got == 0 {
                        return Err(RsError::InputEnded(COPY_PAST_END));
                    }
                    let left = left - got as u64;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Copy {
                            pos: at + got as u64,
                            left,
                        }
                    };
                }
            }
        }
    }
}

/// Why a copy command fails: it reads past the end of the basis.
pub const COPY_PAST_END: &str = "copy command reads past the end of the basis file";

/// Applies a whole in-memory delta to an in-memory basis.
pub fn patch_of(basis: &[u8], delta: &[u8]) -> RsResult<Vec<u8>> {
    let mut m = PatchMaker::new(basis);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let (used, done) = m.cycle(&delta[pos..], true, &mut out, 1 << 20)?;
        pos += used;
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(cmds: &[u8]) -> Vec<u8> {
        [&[0x72u8, 0x73, 2, 0x36][..], cmds].concat()
    }

    #[test]
    fn every_encoding() {
        let basis = b"0123456789";
        assert_eq!(patch_of(basis, &d(&[2, b'h', b'i', 0])).unwrap(), b"hi");
        assert_eq!(patch_of(basis, &d(&[0x41, 1, b'x', 0])).unwrap(), b"x");
        assert_eq!(
            patch_of(basis, &d(&[0x44, 0, 0, 0, 0, 0, 0, 0, 1, b'y', 0])).unwrap(),
            b"y"
        );
        assert_eq!(patch_of(basis, &d(&[0x45, 2, 3, 0])).unwrap(), b"234");
        assert_eq!(
            patch_of(
                basis,
                &d(&[0x54, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2, 0])
            )
            .unwrap(),
            b"89"
        );
        assert_eq!(
            patch_of(basis, &d(&[0x45, 2, 3, 0, 0xff, 0xff])).unwrap(),
            b"234"
        );
    }

    #[test]
    fn errors() {
        let basis: &[u8] = b"0123456789";
        let code = |delta: &[u8]| patch_of(basis, delta).err().map(|e| e.code());
        assert_eq!(code(b"rs"), Some(103));
        assert_eq!(code(b"abcd\x00"), Some(104));
        assert_eq!(code(&d(&[0x55])), Some(106));
        assert_eq!(code(&d(&[0x41, 0, 0])), Some(106));
        assert_eq!(code(&d(&[0x45, 0, 0, 0])), Some(106));
        assert_eq!(
            code(&d(&[
                0x51, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0
            ])),
            Some(106)
        );
        assert_eq!(code(&d(&[0x45, 10, 1, 0])), Some(103));
        assert_eq!(code(&d(&[0x45, 8, 5, 0])), Some(103));
        assert_eq!(code(&d(&[3, b'a'])), Some(103));
        assert_eq!(code(&d(&[2, b'a', b'b'])), Some(103));
        assert_eq!(code(&d(&[0x4d, 0, 0])), Some(103));
    }

    #[test]
    fn output_is_bounded_per_cycle() {
        let basis = vec![7u8; 1 << 20];
        let delta = d(&[0x4f, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
        let mut m = PatchMaker::new(&basis[..]);
        let mut total = 0;
        let mut pos = 0;
        loop {
            let mut out = Vec::new();
            let (used, done) = m.cycle(&delta[pos..], false, &mut out, 65536).unwrap();
            assert!(out.len() <= 65536);
            total += out.len();
            pos += used;
            if done {
                break;
            }
        }
        assert_eq!(total, 1 << 20);
    }
}
