//! Numeric fields as CPython's tarfile writes them: octal ustar fields, the PAX range test,
//! round-half-even for floats and Python's `str()` of ints and floats.

use super::error::TarError;

/// A Python number stored in a TarInfo field (duplicity uses ints; floats are handled too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A Python `int` that fits in 64 bits.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl Number {
    /// `str(value)` as Python prints it.
    pub fn py_str(&self) -> String {
        match *self {
            Number::Int(v) => v.to_string(),
            Number::Float(f) => py_float_repr(f),
        }
    }
}

/// Python's `round(float)`: nearest integer, ties to even.
pub fn round_half_even(f: f64) -> f64 {
    let r = f.round();
    if (r - f).abs() == 0.5 && r % 2.0 != 0.0 {
        r - f.signum()
    } else {
        r
    }
}

/// Python's `repr(float)` (shortest round-trip digits, exponent form outside 1e-4 ≤ |x| < 1e16).
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4 < decpt && decpt <= 16) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push_str(&format!("e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-decpt) as usize));
        out.push_str(&digits);
    } else if decpt as usize >= digits.len() {
        out.push_str(&digits);
        out.push_str(&"0".repeat(decpt as usize - digits.len()));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

/// Exclusive upper bound of an octal field of `len` bytes (`8 ** (len - 1)`).
pub fn octal_limit(len: usize) -> u64 {
    1u64 << (3 * (len as u32 - 1))
}

/// Writes `"%0*o\0" % (len - 1, n)` into `dst`; `n` must be below [`octal_limit`].
pub fn write_octal(dst: &mut [u8], mut n: u64) {
    let Some((nul, digits)) = dst.split_last_mut() else {
        return;
    };
    *nul = 0;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n & 7) as u8;
        n >>= 3;
    }
}

/// A size/uid/gid/mtime field under PAX rules: the ustar value and, if needed, the PAX text.
pub fn pax_number(
    value: Number,
    len: usize,
    field: &'static str,
) -> Result<(u64, Option<String>), TarError> {
    let limit = octal_limit(len);
    match value {
        Number::Int(v) if v >= 0 && (v as u64) < limit => Ok((v as u64, None)),
        Number::Int(v) => Ok((0, Some(v.to_string()))),
        Number::Float(f) if !f.is_finite() => Err(TarError::NotFinite(field)),
        Number::Float(f) => {
            let r = round_half_even(f);
            let ustar = if r >= 0.0 && r < limit as f64 {
                r as u64
            } else {
                0
            };
            Ok((ustar, Some(py_float_repr(f))))
        }
    }
}

/// A devmajor/devminor field of a device entry: `int(value)`, which must fit the field.
pub fn device_number(value: Number, len: usize, field: &'static str) -> Result<u64, TarError> {
    let limit = octal_limit(len);
    match value {
        Number::Int(v) if v >= 0 && (v as u64) < limit => Ok(v as u64),
        Number::Float(f) if !f.is_finite() => Err(TarError::NotFinite(field)),
        Number::Float(f) if f.trunc() >= 0.0 && f.trunc() < limit as f64 => Ok(f.trunc() as u64),
        _ => Err(TarError::Overflow(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (1700000000.25, "1700000000.25"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn rounding_is_half_even() {
        for (f, want) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-2.5, -2.0),
            (-0.5, -0.0),
            (2.6, 3.0),
        ] {
            assert_eq!(round_half_even(f), want, "{f}");
        }
    }

    #[test]
    fn octal_fields() {
        let mut f = [0xFFu8; 8];
        write_octal(&mut f, 0o644);
        assert_eq!(&f, b"0000644\0");
        assert_eq!(
            pax_number(Number::Int(1 << 21), 8, "uid").unwrap(),
            (0, Some("2097152".into()))
        );
        assert_eq!(
            pax_number(Number::Int(-1), 12, "mtime").unwrap(),
            (0, Some("-1".into()))
        );
        assert_eq!(
            pax_number(Number::Float(7.5), 12, "mtime").unwrap(),
            (8, Some("7.5".into()))
        );
        assert!(device_number(Number::Int(1 << 21), 8, "devmajor").is_err());
        assert_eq!(device_number(Number::Float(-0.5), 8, "devmajor"), Ok(0));
    }
}
