//! Composed patch sequences against step-by-step patching: the same bytes, the same errors.

use proptest::prelude::*;

use super::*;
use crate::rsync::delta::{delta_of, emit_copy, emit_literal};
use crate::rsync::patch::patch_of;
use crate::rsync::sigmaker::signature_of;
use crate::rsync::{LiteralCap, DELTA_MAGIC, OP_END};

/// Output of the last delta against `basis`, in 4 KiB pieces as the engine writes them: the
/// pieces written and the error that stopped it, if any.
fn last_step(basis: &mut dyn Basis, delta: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut maker = PatchMaker::new(basis);
    let mut written = Vec::new();
    let mut pos = 0;
    loop {
        let mut out = Vec::new();
        match maker.cycle(&delta[pos..], true, &mut out, 4096) {
            Ok((used, done)) => {
                written.extend_from_slice(&out);
                pos += used;
                if done {
                    return (written, None);
                }
            }
            Err(e) => return (written, Some(librsync(e).to_string())),
        }
    }
}

/// duplicity's way: every state but the last written out, then the last delta.
fn stepwise(basis: &[u8], deltas: &[Vec<u8>]) -> Result<(Vec<u8>, Option<String>), String> {
    let mut state = basis.to_vec();
    for d in &deltas[..deltas.len() - 1] {
        state = patch_of(&state, d).map_err(|e| librsync(e).to_string())?;
    }
    Ok(last_step(&mut &state[..], &deltas[deltas.len() - 1]))
}

/// The engine's way: the deltas before the last composed, read in `chunk`-byte pieces.
fn composed(
    basis: &[u8],
    deltas: &[Vec<u8>],
    limits: Limits,
    chunk: usize,
) -> Result<(Vec<u8>, Option<String>), String> {
    let dir = std::env::temp_dir();
    let mut state = Composed::from_snapshot(&dir, None, limits, |w| {
        basis.chunks(chunk.max(1)).try_for_each(|c| w.write(c))
    })
    .map_err(|e| e.to_string())?;
    for d in &deltas[..deltas.len() - 1] {
        let mut at = 0;
        state
            .compose(&mut |buf: &mut [u8]| {
                let n = buf.len().min(chunk).min(d.len() - at);
                buf[..n].copy_from_slice(&d[at..at + n]);
                at += n;
                Ok(n)
            })
            .map_err(|e| e.to_string())?;
        assert!(state.pieces.len() <= limits.max_pieces.max(1));
        state.settle().map_err(|e| e.to_string())?;
    }
    Ok(last_step(&mut state, &deltas[deltas.len() - 1]))
}

/// The engine's way when the last delta is read first: every delta composed, and the final
/// state placed into the snapshot's unnamed file in `near` (else read from the state); when
/// the last delta does not compose, the patcher applies it as in [`composed`].
fn placed(
    basis: &[u8],
    deltas: &[Vec<u8>],
    limits: Limits,
    near: &Path,
) -> Result<(Vec<u8>, Option<String>, bool), String> {
    let dir = std::env::temp_dir();
    let mut state = Composed::from_snapshot(&dir, Some(near), limits, |w| {
        basis.chunks(1000).try_for_each(|c| w.write(c))
    })
    .map_err(|e| e.to_string())?;
    let (last, before) = deltas.split_last().expect("a delta");
    for d in before {
        state.compose_bytes(d).map_err(|e| e.to_string())?;
        state.settle().map_err(|e| e.to_string())?;
    }
    if state.compose_bytes(last).is_err() {
        let (out, err) = last_step(&mut state, last);
        return Ok((out, err, false));
    }
    let len = state.len();
    match state.place().map_err(|e| e.to_string())? {
        Ok(file) => {
            use std::os::unix::fs::MetadataExt;
            let meta = file.metadata().map_err(|e| e.to_string())?;
            assert_eq!(meta.len(), len);
            // dense, as a file written from start to end
            assert!(
                meta.blocks() * 512 >= len,
                "{} blocks for {len} bytes",
                meta.blocks()
            );
            let mut out = Vec::new();
            writer_pipe(&file, len, &mut out)?;
            Ok((out, None, true))
        }
        Err(mut state) => {
            let mut out = Vec::new();
            state
                .pipe(&mut |piece| {
                    out.extend_from_slice(piece);
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            Ok((out, None, false))
        }
    }
}

fn writer_pipe(file: &File, len: u64, out: &mut Vec<u8>) -> Result<(), String> {
    crate::restore::writer::pipe_file(file, len, &mut |piece| {
        out.extend_from_slice(piece);
        Ok(())
    })
    .map_err(|e| e.to_string())
}

/// A random edit of `prev`: pages rewritten, bytes inserted, cut, appended or truncated.
fn edit(prev: &[u8], seed: &[u8]) -> Vec<u8> {
    let mut next = prev.to_vec();
    for w in seed.chunks(4) {
        let w1 = *w.get(1).unwrap_or(&3);
        let (kind, a, b) = (
            w[0] % 5,
            usize::from(w1),
            usize::from(*w.get(2).unwrap_or(&7)),
        );
        let at = if next.is_empty() {
            0
        } else {
            (a * 997 + b * 31) % next.len()
        };
        match kind {
            0 => {
                let end = (at + 64 + b).min(next.len());
                for x in &mut next[at..end] {
                    *x = x.wrapping_add(w1 | 1);
                }
            }
            1 => {
                let fill: Vec<u8> = (0..b + 1).map(|i| (i as u8) ^ w1).collect();
                next.splice(at..at, fill);
            }
            2 => {
                let end = (at + b * 3).min(next.len());
                next.drain(at..end);
            }
            3 => next.extend((0..a * 5).map(|i| (i * 7) as u8)),
            _ => next.truncate(at),
        }
    }
    next
}

/// A hand-made delta: copies anywhere (also past the end), literals, sometimes cut short.
fn crafted(prev_len: usize, seed: &[u8]) -> Vec<u8> {
    let mut d = DELTA_MAGIC.to_be_bytes().to_vec();
    for w in seed.chunks(3) {
        let n = u64::from(*w.get(1).unwrap_or(&1)) * 13 + 1;
        if w[0] % 3 == 0 {
            let data: Vec<u8> = (0..n).map(|i| i as u8 ^ w[0]).collect();
            emit_literal(&mut d, &data);
        } else {
            let pos = (u64::from(w[0]) * 211 + u64::from(*w.get(2).unwrap_or(&0)) * 7)
                % (prev_len as u64 + 40);
            emit_copy(&mut d, pos, n);
        }
    }
    d.push(OP_END);
    if seed.first().is_some_and(|&b| b > 240) {
        d.truncate(d.len() * usize::from(seed[0] - 240) / 16);
    }
    d
}

fn chain(basis: &[u8], edits: &[Vec<u8>], crafted_at: Option<(usize, Vec<u8>)>) -> Vec<Vec<u8>> {
    let mut deltas = Vec::new();
    let mut prev = basis.to_vec();
    for (k, seed) in edits.iter().enumerate() {
        let delta = match &crafted_at {
            Some((at, s)) if *at == k => crafted(prev.len(), s),
            _ => {
                let next = edit(&prev, seed);
                let sig = signature_of(&prev, 64, 8).unwrap();
                let d = delta_of(&sig, &next, LiteralCap::V234).unwrap();
                prev = next;
                d
            }
        };
        deltas.push(delta);
    }
    deltas
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn composed_chains_patch_as_step_by_step(
        basis in proptest::collection::vec(any::<u8>(), 0..6000),
        edits in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..24), 1..9),
        crafted_seed in proptest::option::of((0usize..9, proptest::collection::vec(any::<u8>(), 1..30))),
        small in any::<bool>(),
        chunk in 1usize..5000,
    ) {
        let deltas = chain(&basis, &edits, crafted_seed);
        let limits = if small {
            Limits { in_memory: 100, max_pieces: 3 }
        } else {
            LIMITS
        };
        prop_assert_eq!(composed(&basis, &deltas, limits, chunk), stepwise(&basis, &deltas));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn final_states_placed_in_the_snapshot_file_are_the_patched_files(
        basis in proptest::collection::vec(any::<u8>(), 0..6000),
        zeros in 0usize..3,
        edits in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..24), 1..6),
        crafted_seed in proptest::option::of((0usize..6, proptest::collection::vec(any::<u8>(), 1..30))),
        small in any::<bool>(),
    ) {
        // runs of zeros, which the spool leaves out as holes when they fill a block
        let mut basis = basis;
        for k in 0..zeros {
            let at = basis.len() * k / 3;
            basis.splice(at..at, std::iter::repeat_n(0u8, 70_000 * (k + 1)));
        }
        let deltas = chain(&basis, &edits, crafted_seed);
        let limits = if small {
            Limits { in_memory: 100, max_pieces: 3 }
        } else {
            Limits { in_memory: 1000, max_pieces: MAX_PIECES }
        };
        let near = std::env::temp_dir();
        let want = stepwise(&basis, &deltas);
        let got = placed(&basis, &deltas, limits, &near);
        prop_assert_eq!(got.map(|(out, err, _)| (out, err)), want);
    }
}

#[test]
fn unchanged_and_rewritten_pages_are_placed_in_place() {
    // a database-like file: pages rewritten here and there, the size kept
    let basis: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut next = basis.clone();
    for page in [3usize, 40, 41, 77] {
        next[page * 4096..page * 4096 + 4096].fill(page as u8);
    }
    let sig = signature_of(&basis, 2048, 8).unwrap();
    let delta = delta_of(&sig, &next, LiteralCap::V234).unwrap();
    let near = std::env::temp_dir();
    let limits = Limits {
        in_memory: 1000,
        max_pieces: MAX_PIECES,
    };
    let (out, err, in_place) = placed(&basis, &[delta], limits, &near).unwrap();
    assert_eq!(err, None);
    assert!(out == next, "other bytes");
    assert!(in_place, "the state was not placed in the snapshot's file");
}

#[test]
fn pages_rewritten_in_each_delta_are_settled_into_the_snapshot_file() {
    // a database-like file changed in five incrementals: each delta's pages are written
    // where they belong, and no literal data stays spooled from one delta to the next
    let basis: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let mut states = vec![basis.clone()];
    for day in 0..5usize {
        let mut next = states[day].clone();
        for page in [day * 7 + 3, day * 11 + 20, 60 - day] {
            next[page * 4096..page * 4096 + 4096].fill(day as u8 + 1);
        }
        states.push(next);
    }
    let deltas: Vec<Vec<u8>> = states
        .windows(2)
        .map(|w| {
            let sig = signature_of(&w[0], 2048, 8).unwrap();
            delta_of(&sig, &w[1], LiteralCap::V234).unwrap()
        })
        .collect();
    let limits = Limits {
        in_memory: 1000,
        max_pieces: MAX_PIECES,
    };
    let dir = std::env::temp_dir();
    let mut state = Composed::from_snapshot(&dir, Some(&dir), limits, |w| {
        basis.chunks(1000).try_for_each(|c| w.write(c))
    })
    .unwrap();
    for d in &deltas[..4] {
        state.compose_bytes(d).unwrap();
        assert!(state.pieces.len() > 1);
        state.settle().unwrap();
        assert_eq!(state.pieces.len(), 1, "settled into one piece");
        assert_eq!(state.literals.len, 0, "literal data let go");
    }
    let mut out = Vec::new();
    state
        .pipe(&mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .unwrap();
    assert!(out == states[4], "the fourth state, read back");
    let (out, err, in_place) = placed(&basis, &deltas, limits, &dir).unwrap();
    assert_eq!(err, None);
    assert!(out == states[5], "other bytes");
    assert!(in_place);
    // bytes moved over others (an insertion near the start) are not written in place
    let mut shifted = basis.clone();
    shifted.splice(10..10, [1u8, 2, 3]);
    let sig = signature_of(&basis, 2048, 8).unwrap();
    let delta = delta_of(&sig, &shifted, LiteralCap::V234).unwrap();
    let mut state = Composed::from_snapshot(&dir, Some(&dir), limits, |w| {
        basis.chunks(1000).try_for_each(|c| w.write(c))
    })
    .unwrap();
    state.compose_bytes(&delta).unwrap();
    let pieces = state.pieces.len();
    state.settle().unwrap();
    assert_eq!(state.pieces.len(), pieces, "left composed");
}

#[test]
fn damaged_deltas_fail_as_step_by_step() {
    let basis: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = chain(&basis, &[vec![1, 2, 3, 4]], None).remove(0);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"rs".to_vec(),
        b"abcd\x00".to_vec(),
        good[..good.len() - 1].to_vec(),
        [&DELTA_MAGIC.to_be_bytes()[..], &[0x55]].concat(),
        [&DELTA_MAGIC.to_be_bytes()[..], &[3, b'a']].concat(),
    ];
    for (pos, len) in [(2990, 100), (2990, 11), (3000, 1), (5000, 1)] {
        let mut past_end = DELTA_MAGIC.to_be_bytes().to_vec();
        emit_copy(&mut past_end, pos, len);
        past_end.push(OP_END);
        cases.push(past_end);
    }
    for cut in [5, 9, good.len() / 2] {
        cases.push(good[..cut.min(good.len())].to_vec());
    }
    for bad in cases {
        let deltas = vec![bad.clone(), good.clone()];
        let want = stepwise(&basis, &deltas);
        assert!(want.is_err(), "{bad:?}");
        assert_eq!(composed(&basis, &deltas, LIMITS, 7), want, "{bad:?}");
    }
}

#[test]
fn large_states_spill_to_disk_and_stay_in_few_pieces() {
    let basis: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let edits: Vec<Vec<u8>> = (0..12u8).map(|k| vec![0, k, 9, 1, 3, k, 2, 2]).collect();
    let deltas = chain(&basis, &edits, None);
    let limits = Limits {
        in_memory: 4096,
        max_pieces: 4,
    };
    assert_eq!(
        composed(&basis, &deltas, limits, 1000),
        stepwise(&basis, &deltas)
    );
}

#[test]
fn zeros_spooled_to_disk_are_holes_and_read_back_as_zeros() {
    use std::os::unix::fs::MetadataExt;
    let mut data = vec![0u8; 3 << 20];
    data[100] = 1; // a block with data, then whole blocks of zeros
    data[(1 << 20) + 5..(1 << 20) + 70_000].fill(7); // data across a block boundary
    let tail = vec![0u8; 200_000]; // ends inside a hole
    let mut w = SpoolWriter::new(&std::env::temp_dir(), 1000);
    for piece in data.chunks(10_007).chain(tail.chunks(70_001)) {
        w.write(piece).unwrap();
    }
    data.extend_from_slice(&tail);
    assert_eq!(w.len, data.len() as u64);
    let Spool::Disk(f) = &w.spool else {
        panic!("3 MiB should have left memory")
    };
    let meta = f.metadata().unwrap();
    assert_eq!(meta.len(), data.len() as u64);
    assert!(meta.blocks() * 512 <= 256 << 10, "{} blocks", meta.blocks());
    let mut back = vec![0u8; data.len()];
    let mut pos = 0;
    while pos < back.len() {
        let n = w.spool.read_at(pos as u64, &mut back[pos..]).unwrap();
        assert!(n > 0);
        pos += n;
    }
    assert!(back == data, "the spool reads back other bytes");
}

/// The verify way: every delta composed before the snapshot is read, the snapshot then read
/// once in `chunk`-byte pieces while the final state is compared with `local`. Ok(equal), or
/// the patch error; None when no plan is made.
fn planned(
    basis: &[u8],
    deltas: &[Vec<u8>],
    local: &[u8],
    chunk: usize,
) -> Option<Result<bool, String>> {
    static N: AtomicU64 = AtomicU64::new(0);
    let bytes: Vec<&[u8]> = deltas.iter().map(|d| &d[..]).collect();
    let plan = Plan::new(&std::env::temp_dir(), &bytes, 1000)?;
    let name = std::env::temp_dir().join(format!(
        "dupcore-plan-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&name, local).unwrap();
    let file = File::open(&name).unwrap();
    std::fs::remove_file(&name).unwrap();
    let compared = plan.compare(
        |sink| basis.chunks(chunk.max(1)).try_for_each(sink),
        Some(&file),
    );
    Some(match compared {
        Compared::Data(r) => Ok(r.unwrap()),
        Compared::PatchFailed(e) => Err(e.to_string()),
        Compared::SnapshotFailed(e) => panic!("{e}"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn planned_compares_find_what_step_by_step_patches_make(
        basis in proptest::collection::vec(any::<u8>(), 0..6000),
        edits in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..24), 1..7),
        crafted_seed in proptest::option::of((0usize..7, proptest::collection::vec(any::<u8>(), 1..30))),
        chunk in 1usize..5000,
        flip in any::<proptest::sample::Index>(),
    ) {
        let deltas = chain(&basis, &edits, crafted_seed);
        let want = stepwise(&basis, &deltas);
        let error = match &want {
            Err(e) => Some(e.clone()),
            Ok((_, e)) => e.clone(),
        };
        let out = want.as_ref().map(|w| w.0.clone()).unwrap_or_default();
        match planned(&basis, &deltas, &out, chunk) {
            // no plan: a delta that applies to no snapshot at all
            None => prop_assert!(error.is_some()),
            Some(got) => match error {
                Some(e) => prop_assert_eq!(got, Err(e)),
                None => {
                    prop_assert_eq!(got, Ok(true));
                    let mut other = out.clone();
                    if other.is_empty() {
                        other.push(1);
                    } else {
                        let i = flip.index(other.len());
                        other[i] ^= 0x20;
                    }
                    prop_assert_eq!(planned(&basis, &deltas, &other, chunk), Some(Ok(false)));
                    prop_assert_eq!(planned(&basis, &deltas, &out[..out.len().saturating_sub(1)], chunk),
                        Some(Ok(out.is_empty())));
                }
            },
        }
    }
}
