//! MD4 of many equal-length blocks at once: eight blocks per AVX2 lane set.
//!
//! Signatures and delta look-ahead hash thousands of independent blocks of the same length.
//! No maintained crate offers multi-buffer MD4, so this module runs the RFC 1320 rounds on eight
//! blocks in parallel SIMD lanes when the CPU has AVX2, and falls back to the `md4` crate
//! (through [`super::strong::md4`]) otherwise. Results are checked against that crate in tests.

use super::strong::md4;

/// Blocks hashed together by the widest SIMD path: callers group blocks by this many.
pub const LANES: usize = 16;

/// MD4 of `count` blocks of `len` bytes, block `i` being `data[i * stride..i * stride + len]`.
///
/// Digests are appended to `out` in block order.
pub fn md4_strided(data: &[u8], stride: usize, len: usize, count: usize, out: &mut Vec<[u8; 16]>) {
    assert!(
        count == 0 || (count - 1) * stride + len <= data.len(),
        "blocks exceed the buffer"
    );
    out.reserve(count);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        // Gather offsets are 32-bit: sixteen blocks must lie within 2 GiB of the first.
        #[cfg(dupcore_avx512)]
        let reach = 15usize.saturating_mul(stride).saturating_add(len);
        #[cfg(dupcore_avx512)]
        if count >= 16 && reach < i32::MAX as usize && uses_avx512() {
            while i + 16 <= count {
                let mut group = [[0u8; 16]; 16];
                // SAFETY: AVX-512F is available (checked above), the sixteen blocks lie inside
                // `data` (asserted above) and within 2 GiB of the first one.
                unsafe { avx512::md4_x16(data, i * stride, stride, len, &mut group) };
                out.extend_from_slice(&group);
                i += 16;
            }
        }
        if count - i >= 8 && uses_avx2() {
            while i + 8 <= count {
                let mut group = [[0u8; 16]; 8];
                // SAFETY: AVX2 is available (checked above) and the eight blocks lie inside
                // `data` (asserted above).
                unsafe { avx2::md4_x8(data, i * stride, stride, len, &mut group) };
                out.extend_from_slice(&group);
                i += 8;
            }
        }
    }
    while i < count {
        out.push(md4(&data[i * stride..i * stride + len]));
        i += 1;
    }
}

/// Whether [`md4_strided`] runs sixteen AVX-512 lanes on this CPU.
pub fn uses_avx512() -> bool {
    #[cfg(all(target_arch = "x86_64", dupcore_avx512))]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(all(target_arch = "x86_64", dupcore_avx512)))]
    {
        false
    }
}

/// Whether [`md4_strided`] runs eight AVX2 lanes on this CPU (else the portable code).
pub fn uses_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The MD4 padding of `N` blocks of `len` bytes (block `j` at `start + j * stride` of `data`):
/// each block's last partial chunk, 0x80, zeros and the bit length, in one or two 64-byte
/// chunks (the count is returned).
#[cfg(target_arch = "x86_64")]
fn padded_tails<const N: usize>(
    data: &[u8],
    start: usize,
    stride: usize,
    len: usize,
) -> ([[u8; 128]; N], usize) {
    let full = len / 64 * 64;
    let rest = len - full;
    let chunks = if rest < 56 { 1 } else { 2 };
    let mut tails = [[0u8; 128]; N];
    for (j, t) in tails.iter_mut().enumerate() {
        let at = start + j * stride + full;
        t[..rest].copy_from_slice(&data[at..at + rest]);
        t[rest] = 0x80;
        let end = chunks * 64;
        t[end - 8..end].copy_from_slice(&((len as u64).wrapping_mul(8)).to_le_bytes());
    }
    (tails, chunks)
}

/// The digests of `N` lanes from the final state words (`words[i][j]`: word i of lane j).
#[cfg(target_arch = "x86_64")]
fn lane_digests<const N: usize>(words: &[[u32; N]; 4], out: &mut [[u8; 16]; N]) {
    for (j, digest) in out.iter_mut().enumerate() {
        for (i, w) in words.iter().enumerate() {
            digest[4 * i..4 * i + 4].copy_from_slice(&w[j].to_le_bytes());
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    const S1: [i32; 4] = [3, 7, 11, 19];
    const S2: [i32; 4] = [3, 5, 9, 13];
    const S3: [i32; 4] = [3, 9, 11, 15];
    const O2: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    const O3: [usize; 16] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn rotl(x: __m256i, s: i32) -> __m256i {
        _mm256_or_si256(
            _mm256_sll_epi32(x, _mm_cvtsi32_si128(s)),
            _mm256_srl_epi32(x, _mm_cvtsi32_si128(32 - s)),
        )
    }

    /// One 64-byte chunk for eight lanes; `w[k]` holds message word k of every lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn compress(state: &mut [__m256i; 4], w: &[__m256i; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        let k2 = _mm256_set1_epi32(0x5A82_7999);
        let k3 = _mm256_set1_epi32(0x6ED9_EBA1u32 as i32);
        for i in 0..16 {
            let f = _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d));
            let t = rotl(_mm256_add_epi32(_mm256_add_epi32(a, f), w[i]), S1[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let g = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(b, c), _mm256_and_si256(b, d)),
                _mm256_and_si256(c, d),
            );
            let sum = _mm256_add_epi32(_mm256_add_epi32(a, g), _mm256_add_epi32(w[O2[i]], k2));
            let t = rotl(sum, S2[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let h = _mm256_xor_si256(_mm256_xor_si256(b, c), d);
            let sum = _mm256_add_epi32(_mm256_add_epi32(a, h), _mm256_add_epi32(w[O3[i]], k3));
            let t = rotl(sum, S3[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        state[0] = _mm256_add_epi32(state[0], a);
        state[1] = _mm256_add_epi32(state[1], b);
        state[2] = _mm256_add_epi32(state[2], c);
        state[3] = _mm256_add_epi32(state[3], d);
    }

    /// Loads the 16 words of one 64-byte chunk of each of the eight `chunks` into lane-major
    /// vectors (x86 is little-endian, as MD4's words are).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(chunks: [&[u8]; 8]) -> [__m256i; 16] {
        let p: [*const i32; 8] = std::array::from_fn(|j| {
            assert!(chunks[j].len() >= 64, "an MD4 chunk is 64 bytes");
            chunks[j].as_ptr() as *const i32
        });
        let mut w = [_mm256_setzero_si256(); 16];
        for (k, slot) in w.iter_mut().enumerate() {
            // SAFETY: k < 16, so each read lies within the 64 bytes asserted above.
            *slot = _mm256_set_epi32(
                p[7].add(k).read_unaligned(),
                p[6].add(k).read_unaligned(),
                p[5].add(k).read_unaligned(),
                p[4].add(k).read_unaligned(),
                p[3].add(k).read_unaligned(),
                p[2].add(k).read_unaligned(),
                p[1].add(k).read_unaligned(),
                p[0].add(k).read_unaligned(),
            );
        }
        w
    }

    /// MD4 of the eight `len`-byte blocks starting at `start + j * stride`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn md4_x8(
        data: &[u8],
        start: usize,
        stride: usize,
        len: usize,
        out: &mut [[u8; 16]; 8],
    ) {
        let mut state = [
            _mm256_set1_epi32(0x6745_2301),
            _mm256_set1_epi32(0xEFCD_AB89u32 as i32),
            _mm256_set1_epi32(0x98BA_DCFEu32 as i32),
            _mm256_set1_epi32(0x1032_5476),
        ];
        let block = |j: usize| &data[start + j * stride..start + j * stride + len];
        let full = len / 64;
        for c in 0..full {
            let chunks: [&[u8]; 8] = std::array::from_fn(|j| &block(j)[c * 64..c * 64 + 64]);
            compress(&mut state, &load(chunks));
        }
        // Padding: 0x80, zeros to 56 mod 64, the bit length little-endian; one or two chunks.
        let (tails, tail_chunks) = super::padded_tails::<8>(data, start, stride, len);
        for c in 0..tail_chunks {
            let chunks: [&[u8]; 8] = std::array::from_fn(|j| &tails[j][c * 64..c * 64 + 64]);
            compress(&mut state, &load(chunks));
        }
        let mut words = [[0u32; 8]; 4];
        for (i, v) in state.iter().enumerate() {
            _mm256_storeu_si256(words[i].as_mut_ptr() as *mut __m256i, *v);
        }
        super::lane_digests(&words, out);
    }
}

/// The MD4 rounds on sixteen lanes: native rotates and one ternary-logic instruction for
/// each round function. Built by compilers from Rust 1.89 on (see `build.rs`), which is newer
/// than the crate's minimum, hence the lint exception.
#[cfg(all(target_arch = "x86_64", dupcore_avx512))]
#[allow(clippy::incompatible_msrv)]
mod avx512 {
    use std::arch::x86_64::*;

    const S1: [u32; 4] = [3, 7, 11, 19];
    const S2: [u32; 4] = [3, 5, 9, 13];
    const S3: [u32; 4] = [3, 9, 11, 15];
    const O2: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    const O3: [usize; 16] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
    /// `_mm512_ternarylogic_epi32` tables with b, c, d as operands: F = b ? c : d,
    /// G = majority, H = parity.
    const F: i32 = 0xCA;
    const G: i32 = 0xE8;
    const H: i32 = 0x96;

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn step(a: __m512i, f: __m512i, w: __m512i, s: u32) -> __m512i {
        let sum = _mm512_add_epi32(_mm512_add_epi32(a, f), w);
        _mm512_rolv_epi32(sum, _mm512_set1_epi32(s as i32))
    }

    /// One 64-byte chunk for sixteen lanes; `w[k]` holds message word k of every lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress(state: &mut [__m512i; 4], w: &[__m512i; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        let k2 = _mm512_set1_epi32(0x5A82_7999);
        let k3 = _mm512_set1_epi32(0x6ED9_EBA1u32 as i32);
        for i in 0..16 {
            let f = _mm512_ternarylogic_epi32::<F>(b, c, d);
            let t = step(a, f, w[i], S1[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let g = _mm512_ternarylogic_epi32::<G>(b, c, d);
            let t = step(a, g, _mm512_add_epi32(w[O2[i]], k2), S2[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let h = _mm512_ternarylogic_epi32::<H>(b, c, d);
            let t = step(a, h, _mm512_add_epi32(w[O3[i]], k3), S3[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        state[0] = _mm512_add_epi32(state[0], a);
        state[1] = _mm512_add_epi32(state[1], b);
        state[2] = _mm512_add_epi32(state[2], c);
        state[3] = _mm512_add_epi32(state[3], d);
    }

    /// Loads the 16 words of the 64-byte chunks at `base + lanes[j]` into lane-major vectors.
    ///
    /// # Safety
    /// Each `base + lanes[j]` must start 64 readable bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(base: *const u8, lanes: __m512i) -> [__m512i; 16] {
        let mut w = [_mm512_setzero_si512(); 16];
        for (k, slot) in w.iter_mut().enumerate() {
            // SAFETY: word k < 16 of each lane's chunk lies within its 64 bytes.
            *slot = unsafe { _mm512_i32gather_epi32::<1>(lanes, base.add(4 * k) as *const i32) };
        }
        w
    }

    /// MD4 of the sixteen `len`-byte blocks starting at `start + j * stride`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the blocks must lie inside `data`, and the last one must
    /// end less than 2 GiB after the first one starts.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn md4_x16(
        data: &[u8],
        start: usize,
        stride: usize,
        len: usize,
        out: &mut [[u8; 16]; 16],
    ) {
        assert!(
            start + 15 * stride + len <= data.len(),
            "blocks exceed the buffer"
        );
        let mut state = [
            _mm512_set1_epi32(0x6745_2301),
            _mm512_set1_epi32(0xEFCD_AB89u32 as i32),
            _mm512_set1_epi32(0x98BA_DCFEu32 as i32),
            _mm512_set1_epi32(0x1032_5476),
        ];
        let lanes: [i32; 16] = std::array::from_fn(|j| (j * stride) as i32);
        let lanes = _mm512_loadu_si512(lanes.as_ptr() as *const _);
        let first = data[start..].as_ptr();
        let full = len / 64;
        for c in 0..full {
            // SAFETY: chunk c of every block lies inside `data` (asserted above).
            compress(&mut state, &unsafe { load(first.add(c * 64), lanes) });
        }
        // Padding: 0x80, zeros to 56 mod 64, the bit length little-endian; one or two chunks.
        let (tails, tail_chunks) = super::padded_tails::<16>(data, start, stride, len);
        let tail_lanes: [i32; 16] = std::array::from_fn(|j| (j * 128) as i32);
        let tail_lanes = _mm512_loadu_si512(tail_lanes.as_ptr() as *const _);
        for c in 0..tail_chunks {
            // SAFETY: chunk c < 2 of each 128-byte tail lies inside `tails`.
            let w = unsafe { load(tails.as_ptr().cast::<u8>().add(c * 64), tail_lanes) };
            compress(&mut state, &w);
        }
        let mut words = [[0u32; 16]; 4];
        for (i, v) in state.iter().enumerate() {
            _mm512_storeu_si512(words[i].as_mut_ptr() as *mut _, *v);
        }
        super::lane_digests(&words, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_md4_crate_for_every_length_class() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 19) as u8)
            .collect();
        for &len in &[
            0usize, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 512, 700, 2048, 4095,
        ] {
            // 37: two groups of sixteen and five alone; 27: sixteen, eight and three.
            for (&stride, count) in [len.max(1), len + 3, len + 64].iter().zip([37, 27, 37]) {
                if (count - 1) * stride + len > data.len() {
                    continue;
                }
                let mut got = Vec::new();
                md4_strided(&data, stride, len, count, &mut got);
                let want: Vec<[u8; 16]> = (0..count)
                    .map(|i| md4(&data[i * stride..i * stride + len]))
                    .collect();
                assert_eq!(got, want, "len {len} stride {stride}");
            }
        }
    }
}
