//! Independent segments of one raw deflate stream, inflated several at once.
//!
//! dupcore's OpenPGP writer starts a new segment every [`SEGMENT`] bytes of compressor input:
//! the chunk before ends byte-aligned, two empty stored blocks follow ([`SEGMENT_BREAK`], which
//! every inflater passes over), and the next chunk is not primed with the window before it. The
//! stream stays one valid deflate stream for gpg; the compressed packet has no room for sizes,
//! so the reader finds the segments by the 9 bytes the break always ends with ([`MARK`]).
//!
//! Those bytes may also occur inside the data (a stored block of incompressible input), so a
//! cut there is only a guess. It is trusted only when the segment before it, inflated on its
//! own from a proven block boundary (the stream's start, or a cut proven before), ends at a
//! block boundary exactly on the cut's last bit: then the next segment starts where the
//! stream's own decoder would be at a block header, and inflating it without history gives the
//! stream's bytes, or fails on a back-reference before its start. Segments are handed out in
//! order, each only once the one before it has proven its end. A segment that cannot be
//! proven is joined with the next one and inflated again (its cut was a guess inside the
//! data); where that does not help (too large, the stream's end, damage), the rest of the
//! stream is inflated serially from there, with the history handed out so far, which reads
//! valid data exactly as one decoder would and reports damage as it would. Streams without breaks (gpg's own) are read
//! serially after a look at their first [`SEGMENT_INPUT_MAX`] bytes.

use std::collections::VecDeque;
use std::io::{self, BufRead, Chain, Cursor, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use super::isal::{inflate_segment, Inflater, SegmentEnd, HISTORY};
use super::{inflate_pool, MARK, SEGMENT};

/// Compressed bytes of a segment inflated on the pool, at most; a longer stretch without a
/// proven break is inflated serially.
const SEGMENT_INPUT_MAX: usize = 2 * SEGMENT;
/// Inflated bytes of a segment, at most (more than a writer's segment ever holds).
const SEGMENT_OUTPUT_MAX: usize = 2 * SEGMENT;

/// One segment on the pool: its input (kept, should the serial inflater need it), whether it
/// is the stream's last, and where its result comes.
struct Queued {
    input: Arc<Vec<u8>>,
    last: bool,
    result: Receiver<Option<(Vec<u8>, SegmentEnd)>>,
}

/// The serial inflater of the rest of the stream: the bytes read already, then the source.
type Serial<R> = Inflater<Chain<Cursor<Vec<u8>>, R>>;

/// The segments in flight and those still to cut.
struct Parallel<R> {
    inner: R,
    queue: VecDeque<Queued>,
    /// Bytes read from `inner` and not yet in a segment.
    pending: Vec<u8>,
    /// Bytes of `pending` already searched for [`MARK`].
    scanned: usize,
    /// `inner` has ended and every byte of it is in a segment.
    cut_all: bool,
    /// No break within [`SEGMENT_INPUT_MAX`] bytes: nothing more goes to the pool.
    stalled: bool,
    /// The stream's final block has been handed out.
    ended: bool,
    /// The current segment's output and the position in it.
    out: Vec<u8>,
    pos: usize,
    /// The last `HISTORY` bytes handed out (for a serial inflate that takes over).
    history: Vec<u8>,
    /// Output buffers handed out already, for the next segments (fresh ones would cost a page
    /// fault per 4 KiB written).
    spare: Vec<Vec<u8>>,
    in_flight: usize,
}

enum State<R> {
    Parallel(Box<Parallel<R>>),
    Serial(Box<Serial<R>>),
    /// Only while switching from one to the other.
    Switching,
}

/// Reads one raw deflate stream from `inner`, inflating its proven segments on the shared
/// inflate pool, at most `in_flight` at once (see the module documentation).
pub struct SegmentedInflater<R: BufRead> {
    state: State<R>,
    proven: u64,
}

impl<R: BufRead> SegmentedInflater<R> {
    /// An inflater of the stream in `inner` with up to `in_flight` segments (at least one) on
    /// the pool at once.
    pub fn new(inner: R, in_flight: usize) -> Self {
        SegmentedInflater {
            state: State::Parallel(Box::new(Parallel {
                inner,
                queue: VecDeque::new(),
                pending: Vec::new(),
                scanned: 0,
                cut_all: false,
                stalled: false,
                ended: false,
                out: Vec::new(),
                pos: 0,
                history: Vec::new(),
                spare: Vec::new(),
                in_flight: in_flight.max(1),
            })),
            proven: 0,
        }
    }

    /// Segments inflated on the pool and handed out so far.
    pub fn proven_segments(&self) -> u64 {
        self.proven
    }

    /// The source, borrowed.
    pub fn get_mut(&mut self) -> &mut R {
        match &mut self.state {
            State::Parallel(p) => &mut p.inner,
            State::Serial(s) => s.get_mut().get_mut().1,
            State::Switching => unreachable!("the state is switched within one call"),
        }
    }

    /// The source.
    pub fn into_inner(self) -> R {
        match self.state {
            State::Parallel(p) => p.inner,
            State::Serial(s) => s.into_inner().into_inner().1,
            State::Switching => unreachable!("the state is switched within one call"),
        }
    }

    /// From here on, the serial inflater reads `head` (input not handed out), the segments
    /// still queued, then the rest.
    fn go_serial(&mut self, head: &[u8]) {
        let State::Parallel(p) = std::mem::replace(&mut self.state, State::Switching) else {
            unreachable!("only the parallel state goes serial");
        };
        let p = *p;
        let mut rest = head.to_vec();
        for q in p.queue {
            rest.extend_from_slice(&q.input);
        }
        rest.extend_from_slice(&p.pending);
        let source = Cursor::new(rest).chain(p.inner);
        self.state = State::Serial(Box::new(Inflater::raw_after(source, &p.history)));
    }
}

impl<R: BufRead> Parallel<R> {
    /// Cuts segments from `inner` and starts them on the pool while fewer than `in_flight`
    /// are there.
    fn dispatch(&mut self) -> io::Result<()> {
        while !self.stalled && !self.cut_all && self.queue.len() < self.in_flight {
            let from = self.scanned.saturating_sub(MARK.len() - 1);
            if let Some(i) = memchr::memmem::find(&self.pending[from..], &MARK) {
                let cut = from + i + MARK.len();
                let rest = self.pending.split_off(cut);
                let input = std::mem::replace(&mut self.pending, rest);
                self.scanned = 0;
                self.start(input, false);
                continue;
            }
            self.scanned = self.pending.len();
            if self.pending.len() >= SEGMENT_INPUT_MAX {
                self.stalled = true;
                break;
            }
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.cut_all = true;
                if !self.pending.is_empty() {
                    let input = std::mem::take(&mut self.pending);
                    self.start(input, true);
                }
                break;
            }
            let n = buf.len().min(SEGMENT_INPUT_MAX);
            self.pending.extend_from_slice(&buf[..n]);
            self.inner.consume(n);
        }
        Ok(())
    }

    fn start(&mut self, input: Vec<u8>, last: bool) {
        let (tx, result) = sync_channel(1);
        let input = Arc::new(input);
        let job = Arc::clone(&input);
        let out = self.spare.pop().unwrap_or_default();
        inflate_pool().spawn(move || {
            let _ = tx.send(inflate_segment(&job, SEGMENT_OUTPUT_MAX, out));
        });
        self.queue.push_back(Queued {
            input,
            last,
            result,
        });
    }

    /// The next segment's output if it proves its end; else the input the serial inflater
    /// must take over from. A segment that does not prove its end is joined with the next one
    /// and inflated again (its cut was a guess inside the data), as long as they fit in
    /// [`SEGMENT_INPUT_MAX`].
    fn next_segment(&mut self) -> io::Result<Next> {
        let Some(front) = self.queue.pop_front() else {
            return Ok(Next::Serial(Arc::default()));
        };
        let mut result = front.result.recv().ok().flatten();
        let (mut input, mut last) = (front.input, front.last);
        loop {
            match result {
                Some((data, SegmentEnd::StreamEnd)) => {
                    // bytes after the final block are not read, as one decoder leaves them
                    self.ended = true;
                    self.accept(data);
                    return Ok(Next::Proven);
                }
                Some((data, SegmentEnd::Boundary)) if !last => {
                    self.accept(data);
                    return Ok(Next::Proven);
                }
                _ => {}
            }
            if self.queue.is_empty() && !last {
                self.dispatch()?;
            }
            let joinable = !last
                && self
                    .queue
                    .front()
                    .is_some_and(|next| input.len() + next.input.len() <= SEGMENT_INPUT_MAX);
            if !joinable {
                return Ok(Next::Serial(input));
            }
            let next = self.queue.pop_front().expect("a segment is queued");
            let mut joined = Arc::unwrap_or_clone(input);
            joined.extend_from_slice(&next.input);
            input = Arc::new(joined);
            last = next.last;
            result = inflate_segment(&input, SEGMENT_OUTPUT_MAX, Vec::new());
        }
    }

    /// Hands out `data`, a proven segment's output.
    fn accept(&mut self, data: Vec<u8>) {
        if data.len() >= HISTORY {
            self.history.clear();
            self.history
                .extend_from_slice(&data[data.len() - HISTORY..]);
        } else {
            self.history.extend_from_slice(&data);
            let over = self.history.len().saturating_sub(HISTORY);
            self.history.drain(..over);
        }
        let used = std::mem::replace(&mut self.out, data);
        if self.spare.len() < self.in_flight {
            self.spare.push(used);
        }
        self.pos = 0;
    }
}

/// What [`Parallel::next_segment`] found.
enum Next {
    /// A segment proved its end; its output is being handed out.
    Proven,
    /// The serial inflater takes over from this input (then the queue and the rest).
    Serial(Arc<Vec<u8>>),
}

impl<R: BufRead> Read for SegmentedInflater<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let p = match &mut self.state {
                State::Serial(s) => return s.read(out),
                State::Parallel(p) => p,
                State::Switching => unreachable!("the state is switched within one call"),
            };
            if p.pos < p.out.len() {
                let n = out.len().min(p.out.len() - p.pos);
                out[..n].copy_from_slice(&p.out[p.pos..p.pos + n]);
                p.pos += n;
                return Ok(n);
            }
            if p.ended || out.is_empty() {
                return Ok(0);
            }
            p.dispatch()?;
            match p.next_segment()? {
                Next::Proven => self.proven += 1,
                Next::Serial(head) => self.go_serial(&head),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::{compress_chunk, Deflate, Primer, CHUNK, SEGMENT_BREAK};

    /// Data that compresses, with stretches of random bytes (stored) holding [`MARK`].
    fn sample(n: usize, seed: u32, marks: bool) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let i = v.len() as u32;
            if (i / 200_000) % 3 == 2 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
                if marks && i % 50_000 == 0 {
                    v.extend_from_slice(&MARK);
                }
            } else {
                v.push(((i / 7) % 251) as u8 ^ (i % 13) as u8);
            }
        }
        v.truncate(n);
        v
    }

    /// `data` deflated as the OpenPGP writer does: primed chunks, a break and an unprimed chunk
    /// every `SEGMENT` bytes when `breaks`, an 8 KiB window.
    fn write(data: &[u8], with: Deflate, breaks: bool) -> Vec<u8> {
        let at = |i: usize| breaks && i > 0 && (i * CHUNK) % SEGMENT == 0;
        chunked(data, with, at, true)
    }

    /// `data` in primed chunks with a break before each chunk `i` that `break_at(i)`, the
    /// chunk after it unprimed if `unprime`.
    fn chunked(
        data: &[u8],
        with: Deflate,
        break_at: impl Fn(usize) -> bool,
        unprime: bool,
    ) -> Vec<u8> {
        let mut primer = Primer::new(13);
        let mut out = Vec::new();
        let mut chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, ch) in chunks.iter().enumerate() {
            if break_at(i) {
                out.extend_from_slice(&SEGMENT_BREAK);
                if unprime {
                    primer = Primer::new(13);
                }
            }
            let dict = primer.next(ch);
            out.extend(compress_chunk(&dict, ch, i + 1 == chunks.len(), with, 13));
        }
        out
    }

    fn read_all(stream: &[u8], in_flight: usize) -> (io::Result<Vec<u8>>, u64) {
        let mut dec =
            SegmentedInflater::new(io::BufReader::with_capacity(70_000, stream), in_flight);
        let mut back = Vec::new();
        let r = dec.read_to_end(&mut back).map(|_| back);
        (r, dec.proven_segments())
    }

    fn serial(stream: &[u8]) -> io::Result<Vec<u8>> {
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut back)
            .map(|_| back)
    }

    #[test]
    fn segments_inflate_in_parallel_to_the_stream() {
        let data = sample(3_000_000, 1, false);
        for name in crate::deflate::PROFILES {
            let with = Deflate::profile(name).expect("a profile");
            let stream = write(&data, with, true);
            assert_eq!(serial(&stream).unwrap(), data, "{with:?}: one valid stream");
            let (back, proven) = read_all(&stream, 3);
            assert_eq!(back.unwrap(), data, "{with:?}");
            assert_eq!(proven as usize, data.len().div_ceil(SEGMENT), "{with:?}");
        }
    }

    #[test]
    fn a_mark_inside_the_data_joins_two_segments() {
        // random stretches (stored blocks) holding MARK: the cuts there are guesses that do
        // not prove, joined with the next segment
        let data = sample(3_000_000, 6, true);
        let stream = write(&data, Deflate::DEFAULT, true);
        assert!(stream.windows(MARK.len()).filter(|w| *w == MARK).count() > 6);
        let (back, proven) = read_all(&stream, 2);
        assert_eq!(back.unwrap(), data);
        assert!(proven >= 3, "{proven}");
    }

    #[test]
    fn a_stream_without_breaks_reads_serially() {
        let data = sample(2_500_000, 2, true);
        let stream = write(&data, Deflate::DEFAULT, false);
        let (back, proven) = read_all(&stream, 3);
        assert_eq!(back.unwrap(), data);
        // the first cut guessed from a MARK inside stored data is not proven
        assert!(proven <= 1, "{proven}");
    }

    #[test]
    fn a_cut_before_a_primed_chunk_is_not_trusted() {
        // breaks written before primed chunks: each segment refers back before its start
        let data = sample(1_500_000, 3, false);
        let stream = chunked(&data, Deflate::DEFAULT, |i| i > 0, false);
        let second = memchr::memmem::find(&stream, &MARK).expect("a break") + MARK.len();
        let whole = inflate_segment(&stream, 4 << 20, Vec::new()).map(|r| r.1);
        assert_eq!(whole, Some(SegmentEnd::StreamEnd));
        assert_eq!(
            inflate_segment(&stream[second..], 4 << 20, Vec::new()),
            None
        );
        let (back, _) = read_all(&stream, 3);
        assert_eq!(back.unwrap(), data);
    }

    #[test]
    fn damage_fails_as_the_serial_reader_fails() {
        let data = sample(2_000_000, 4, true);
        let stream = write(&data, Deflate::DEFAULT, true);
        let cuts = [
            0,
            1,
            9,
            100_000,
            stream.len() / 2,
            stream.len() - 10,
            stream.len() - 1,
        ];
        for cut in cuts {
            let (back, _) = read_all(&stream[..cut], 3);
            assert!(back.is_err(), "cut at {cut} reads as complete");
        }
        for at in [5usize, 150_000, stream.len() / 3, stream.len() - 3] {
            let mut bad = stream.clone();
            bad[at] ^= 0x55;
            let (back, _) = read_all(&bad, 2);
            match (back, serial(&bad)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "flip at {at}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!(
                    "flip at {at}: {:?} against {:?}",
                    a.map(|v| v.len()),
                    b.map(|v| v.len())
                ),
            }
        }
        // bytes after the final block are left alone, as one decoder leaves them
        let mut tail = stream.clone();
        tail.extend_from_slice(&SEGMENT_BREAK);
        tail.extend_from_slice(b"after the end");
        assert_eq!(read_all(&tail, 3).0.unwrap(), data);
    }

    #[test]
    fn one_in_flight_and_tiny_streams_read() {
        let data = sample(1_200_000, 5, false);
        let stream = write(&data, Deflate::DEFAULT, true);
        let (back, proven) = read_all(&stream, 1);
        assert_eq!(back.unwrap(), data);
        assert_eq!(proven, 3);
        for n in [0usize, 1, 100] {
            let stream = write(&data[..n], Deflate::DEFAULT, true);
            assert_eq!(read_all(&stream, 2).0.unwrap(), &data[..n]);
        }
    }

    #[test]
    fn fuzz_found_inputs_read_as_the_serial_reader_reads_them() {
        // a final block whose header ISA-L buffered across two reads: at the stream's end it
        // gave back more input than the last read had given it
        let cases: [&[u8]; 1] = [&[
            43, 178, 178, 48, 186, 205, 43, 81, 0, 1, 200, 207, 75, 85, 40, 229, 1, 108, 0, 0, 43,
            78, 0, 0, 255,
        ]];
        for case in cases {
            let mut serial = Vec::new();
            let serial_ok = Inflater::with_wrapper(case, super::super::isal::Wrapper::Raw)
                .read_to_end(&mut serial)
                .is_ok();
            let (back, _) = read_all(case, 3);
            assert_eq!(back.is_ok(), serial_ok);
        }
    }
}
