//! duplicity's file selection (`selection.Select.Select`) for the selection functions the
//! engine knows: shell globs (`--include`/`--exclude` and filelist lines in globbing mode,
//! case-sensitive), regular expressions (`--include-regexp`/`--exclude-regexp`, and patterns
//! in `--filter-regexp` mode, case-sensitive), literal strings (`--filter-literal` mode,
//! case-sensitive), `--exclude-if-present`, `--exclude-device-files`,
//! `--exclude-other-filesystems` and `--exclude-older-than`. Globs and regular expressions are
//! matched with the very patterns duplicity compiled, translated from Python's syntax; a
//! pattern the translation does not take keeps duplicity's own selection in charge.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use regex::Regex;

use super::source::{FileKind, SourceStat};

/// Python's `re.IGNORECASE`.
const PY_IGNORECASE: u32 = 2;
/// Python's `re.DOTALL`.
const PY_DOTALL: u32 = 16;
/// Python's `re.UNICODE` (set on every `str` pattern).
const PY_UNICODE: u32 = 32;
/// First of the private-use characters that stand for undecodable bytes (Python's lone
/// surrogates of `surrogateescape`) in names matched against patterns.
const BYTE_CHARS: u32 = 0x10_FF00;

/// One selection function.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `select_fn_from_glob`: the glob's regex, the exact-match regex of a glob ending in `/`,
    /// and the regex of its parent directories (`scan`).
    Glob {
        /// 1 include, 0 exclude.
        include: u8,
        /// `glob_comp_re`.
        matches: Regex,
        /// `glob_comp_re_exact` (globs ending in `/`).
        exact: Option<Regex>,
        /// `scan_comp_re`.
        scan: Regex,
    },
    /// `regexp_get_sf`: the path's name searched for the expression.
    Regexp {
        /// 1 include, 0 exclude.
        include: u8,
        /// The compiled expression.
        re: Regex,
    },
    /// `select_fn_from_literal`: the name itself, a path below it, or (include) a parent of it.
    Literal {
        /// 1 include, 0 exclude.
        include: u8,
        /// The literal as the bytes of a file name, without a trailing `/`.
        name: Vec<u8>,
    },
    /// The glob `**`: every path.
    All {
        /// 1 include, 0 exclude.
        include: u8,
    },
    /// `--exclude-if-present NAME`: a directory listing the name is excluded.
    ExcludeIfPresent {
        /// The file name looked for.
        name: Vec<u8>,
    },
    /// `--exclude-device-files`.
    ExcludeDevices,
    /// `--exclude-other-filesystems`: paths whose `st_dev` differs from the root's.
    OtherFilesystems {
        /// 1 include, 0 exclude.
        include: u8,
        /// `st_dev` of the root.
        root_dev: u64,
    },
    /// `--exclude-older-than`: regular files with an mtime before the date.
    OlderThan {
        /// The date, seconds since the epoch.
        date: f64,
    },
}

/// What a path is, for the selection functions.
pub struct Candidate<'a> {
    /// Full name.
    pub name: &'a [u8],
    /// Its attributes (None: vanished).
    pub stat: Option<&'a SourceStat>,
}

/// Result of one function: None (no opinion), 0 exclude, 1 include, 2 scan.
pub type Verdict = Option<u8>;

/// What `Select` logs at debug level while it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// `Selection:     result: … from function: …` (function number, result).
    Result(usize, Verdict),
    /// An `--exclude-if-present` directory that could not be listed (warning, one error).
    PresentUnreadable,
}

/// `os.fsdecode(name)` as a Rust string: undecodable bytes become private-use characters that
/// the translated patterns match wherever Python's lone surrogates would match.
pub fn fs_text(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    out.push(char::from_u32(BYTE_CHARS + u32::from(b)).unwrap_or('\u{FFFD}'));
                }
                rest = &rest[good + bad..];
            }
        }
    }
}

/// Python's `re` pattern `pattern` with `flags` in the `regex` crate's syntax, or None when the
/// pattern uses anything outside the plain subset duplicity's globs produce.
pub fn translate(pattern: &str, flags: u32) -> Option<String> {
    if flags & !(PY_DOTALL | PY_UNICODE) != 0 || flags & PY_IGNORECASE != 0 {
        return None;
    }
    let mut out = String::from(if flags & PY_DOTALL != 0 { "(?s)" } else { "" });
    let chars: Vec<char> = pattern.chars().collect();
    // What the last item was: a quantifier may follow an atom, and only a `?` (lazy) may
    // follow a quantifier (Python 3.11 reads `*+` as possessive, which the crate lacks).
    enum Last {
        Start,
        Atom,
        Quantifier,
        Lazy,
    }
    let mut last = Last::Start;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let quantifier = matches!(c, '*' | '+' | '?' | '{');
        if quantifier {
            match last {
                Last::Atom => {}
                Last::Quantifier if c == '?' => {
                    out.push('?');
                    last = Last::Lazy;
                    continue;
                }
                _ => return None,
            }
        }
        last = if quantifier {
            Last::Quantifier
        } else {
            Last::Atom
        };
        match c {
            '\\' => {
                let e = *chars.get(i)?;
                i += 1;
                match e {
                    'A' => out.push_str(r"\A"),
                    'Z' => out.push_str(r"\z"),
                    _ if e.is_alphanumeric() || e == '_' => return None, // \d, \w, \b, \1 …
                    _ => literal(&mut out, e)?,
                }
            }
            '$' => out.push_str(r"(?:\n?\z)"),
            '^' | '.' | '*' | '+' | '?' | ')' => out.push(c),
            '|' => {
                out.push(c);
                last = Last::Start;
            }
            '(' => {
                if chars.get(i) == Some(&'?') {
                    if chars.get(i + 1) != Some(&':') {
                        return None; // lookarounds, named groups, inline flags, comments
                    }
                    i += 2;
                    out.push_str("(?:");
                } else {
                    out.push('(');
                }
                last = Last::Start;
            }
            '{' => i = repetition(&chars, i, &mut out)?,
            '[' => i = class(&chars, i, &mut out)?,
            '}' => return None,
            _ => literal(&mut out, c)?,
        }
    }
    Some(out)
}

/// A counted repetition `{m}`, `{m,}` or `{m,n}` starting after its `{` at `i`; returns the
/// index after its `}`. Anything else (Python reads some of it as literal text) is not taken.
fn repetition(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    let close = i + chars[i..].iter().position(|&c| c == '}')?;
    let body: String = chars[i..close].iter().collect();
    let (lo, hi) = match body.split_once(',') {
        None => (body.as_str(), Some(body.as_str())),
        Some((lo, "")) => (lo, None),
        Some((lo, hi)) => (lo, Some(hi)),
    };
    let number = |t: &str| -> Option<u32> {
        if t.is_empty() || t.len() > 4 || !t.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let lo = number(lo)?;
    match hi {
        None => out.push_str(&format!("{{{lo},}}")),
        Some(h) => {
            let hi = number(h)?;
            if hi < lo {
                return None;
            }
            out.push_str(&format!("{{{lo},{hi}}}"));
        }
    }
    Some(close + 1)
}

fn literal(out: &mut String, c: char) -> Option<()> {
    if (BYTE_CHARS..BYTE_CHARS + 0x100).contains(&u32::from(c)) {
        return None;
    }
    out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
    Some(())
}

/// A Python character class starting after its `[` at `i`; returns the index after its `]`.
fn class(chars: &[char], mut i: usize, out: &mut String) -> Option<usize> {
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut items: Vec<char> = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        i += 1;
        if c == ']' && !first {
            break;
        }
        first = false;
        let c = if c == '\\' {
            let e = *chars.get(i)?;
            i += 1;
            if e.is_alphanumeric() || e == '_' {
                return None;
            }
            e
        } else {
            c
        };
        items.push(c);
        // a range: item '-' item (a '-' before the closing bracket is literal)
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = chars[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *chars.get(i)?;
                i += 1;
                if hi.is_alphanumeric() || hi == '_' {
                    return None;
                }
            }
            if hi < c {
                return None;
            }
            items.pop();
            for x in [c, hi] {
                if (BYTE_CHARS..BYTE_CHARS + 0x100).contains(&u32::from(x)) {
                    return None;
                }
            }
            out.push_str(&format!(
                "\\x{{{:X}}}-\\x{{{:X}}}",
                u32::from(c),
                u32::from(hi)
            ));
        }
    }
    for c in items {
        literal(out, c)?;
    }
    out.push(']');
    Some(i)
}

/// The regex of a Python pattern and flags, or None.
pub fn compile(pattern: &str, flags: u32) -> Option<Regex> {
    Regex::new(&translate(pattern, flags)?).ok()
}

impl Rule {
    /// This function's verdict on `path` alone (its trace dropped), for the tests.
    #[cfg(test)]
    pub(crate) fn verdict_for_tests(&self, path: &Candidate<'_>) -> Verdict {
        self.verdict(path, &fs_text(path.name), &mut Vec::new())
    }

    fn verdict(&self, path: &Candidate<'_>, text: &str, trace: &mut Vec<Trace>) -> Verdict {
        match self {
            Rule::All { include } => Some(*include),
            Rule::Regexp { include, re } => re.is_match(text).then_some(*include),
            Rule::Literal { include, name } => {
                // `inner` is `outer` itself or lies below it
                let within = |inner: &[u8], outer: &[u8]| {
                    inner.starts_with(outer) && matches!(inner.get(outer.len()), None | Some(&b'/'))
                };
                if within(path.name, name) {
                    Some(*include)
                } else if *include == 1 && within(name, path.name) {
                    Some(2)
                } else {
                    None
                }
            }
            Rule::Glob {
                include,
                matches,
                exact,
                scan,
            } => {
                if matches.is_match(text) {
                    match exact {
                        None => Some(*include),
                        Some(exact) if exact.is_match(text) => {
                            let is_dir = path.stat.is_some_and(|s| s.kind == FileKind::Dir);
                            is_dir.then_some(*include)
                        }
                        Some(_) => Some(*include),
                    }
                } else if *include == 1 && scan.is_match(text) {
                    Some(2)
                } else {
                    None
                }
            }
            Rule::ExcludeIfPresent { name } => {
                if !path.stat.is_some_and(|s| s.kind == FileKind::Dir) {
                    return None;
                }
                match fs::read_dir(OsStr::from_bytes(path.name)) {
                    Ok(entries) => {
                        let mut found = false;
                        for e in entries {
                            match e {
                                Ok(e) if e.file_name().as_bytes() == name.as_slice() => {
                                    found = true;
                                    break;
                                }
                                Ok(_) => {}
                                Err(_) => {
                                    trace.push(Trace::PresentUnreadable);
                                    return None;
                                }
                            }
                        }
                        found.then_some(0)
                    }
                    Err(_) => {
                        trace.push(Trace::PresentUnreadable);
                        None
                    }
                }
            }
            Rule::ExcludeDevices => match path.stat.map(|s| &s.kind) {
                Some(FileKind::Chr(..) | FileKind::Blk(..)) => Some(0),
                _ => None,
            },
            Rule::OtherFilesystems { include, root_dev } => match path.stat {
                Some(s) if s.dev != *root_dev => Some(*include),
                _ => None,
            },
            Rule::OlderThan { date } => match path.stat {
                Some(s) if s.kind == FileKind::Reg && s.mtime_float < *date => Some(0),
                _ => None,
            },
        }
    }
}

/// The selection functions of one backup, in duplicity's order.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// The functions.
    pub rules: Vec<Rule>,
    /// `--files-from` (`Select.files_from`): for each directory's full name, the names listed
    /// in it, sorted; the walk lists these instead of the directories.
    pub files_from: Option<std::collections::HashMap<Vec<u8>, Vec<Vec<u8>>>>,
}

impl Selection {
    /// `Select.Select(path)`: 0, 1 or 2, with what it logs at debug level in `trace`.
    pub fn select(&self, path: &Candidate<'_>, trace: &mut Vec<Trace>, debug: bool) -> u8 {
        if self.rules.is_empty() {
            return 1;
        }
        let text = fs_text(path.name);
        let mut scan_pending = false;
        let mut result: Verdict = None;
        for (n, rule) in self.rules.iter().enumerate() {
            result = rule.verdict(path, &text, trace);
            if debug {
                trace.push(Trace::Result(n, result));
            }
            match result {
                Some(2) => scan_pending = true,
                Some(0 | 1) => break,
                _ => {}
            }
        }
        if scan_pending && result != Some(1) {
            result = Some(2);
        }
        result.unwrap_or(1)
    }
}
