use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;
use crate::tar::{footer, tar_block, Number, TarEntry};

fn tree() -> (tempdir::Dir, Vec<u8>) {
    let dir = tempdir::Dir::new();
    let root = dir.path.clone();
    fs::create_dir(root.join("b")).unwrap();
    fs::write(root.join("b/x"), b"xx").unwrap();
    fs::write(root.join("a"), b"a").unwrap();
    fs::write(root.join("a.b"), b"ab").unwrap();
    symlink("a", root.join("c")).unwrap();
    let base = root.as_os_str().as_encoded_bytes().to_vec();
    (dir, base)
}

mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);

    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new() -> Self {
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("dupcore-backup-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn walk_all(base: &[u8]) -> (Vec<Index>, Vec<Event>) {
    let mut w = walk::Walker::new(base.to_vec(), false, true);
    use super::Source as _;
    let mut events = Vec::new();
    let mut out = Vec::new();
    while let Some(f) = w.next(&mut events).unwrap() {
        out.push(f.index);
    }
    (out, events)
}

fn idx(parts: &[&str]) -> Index {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn walk_is_depth_first_in_byte_order() {
    let (_d, base) = tree();
    let (found, events) = walk_all(&base);
    let want: Vec<Index> = vec![
        idx(&[]),
        idx(&["a"]),
        idx(&["a.b"]),
        idx(&["b"]),
        idx(&["b", "x"]),
        idx(&["c"]),
    ];
    assert_eq!(found, want);
    // root: Selecting; every other path: Examining, no functions, Selecting
    assert_eq!(events.len(), 1 + 3 * 5);
    assert!(matches!(&events[1], Event::Examining(n) if n.ends_with(b"/a")));
}

#[test]
fn missing_base_warns_and_yields_nothing() {
    let (found, events) = walk_all(b"/nonexistent/dupcore/base");
    assert!(found.is_empty());
    assert!(matches!(&events[..], [Event::BaseMissing(_)]));
}

#[test]
fn sockets_are_skipped_with_their_line() {
    let (_d, base) = tree();
    let sock =
        std::path::Path::new(std::ffi::OsStr::new(std::str::from_utf8(&base).unwrap())).join("s");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (found, events) = walk_all(&base);
    assert!(!found.contains(&idx(&["s"])));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::SkippingSocket(n) if n.ends_with(b"/s"))));
}

fn sig_member(name: &str, typeflag: u8, mode: i64, mtime: i64, data: &[u8]) -> Vec<u8> {
    let mut e = TarEntry::new(name.as_bytes());
    e.typeflag = typeflag;
    e.mode = mode;
    e.mtime = Number::Int(mtime);
    tar_block(&e, data).unwrap()
}

fn sigtar(members: &[Vec<u8>]) -> Box<dyn Read + Send> {
    let mut out: Vec<u8> = members.concat();
    let f = footer(out.len() as u64);
    out.extend_from_slice(&f);
    Box::new(Cursor::new(out))
}

#[test]
fn newest_signature_wins_and_deleted_entries_stay_in_the_stream() {
    let full = sigtar(&[
        sig_member("snapshot/", b'5', 0o755, 10, b""),
        sig_member("signature/a", b'0', 0o644, 10, b"old"),
        sig_member("signature/b", b'0', 0o644, 10, b"bbb"),
    ]);
    let inc = sigtar(&[
        sig_member("signature/a", b'0', 0o644, 20, b"new"),
        sig_member("deleted/b", b'0', 0, 0, b""),
        sig_member("snapshot/c", b'6', 0o600, 20, b""),
    ]);
    let mut chain = sigchain::SigChain::new(vec![full, inc], true);
    let mut events = Vec::new();
    let mut seen = Vec::new();
    while let Some((e, tar)) = chain.next(&mut events).unwrap() {
        let data = match e.sigtype {
            sigchain::SigType::Signature => chain.read_data(tar, e.size).unwrap(),
            _ => Vec::new(),
        };
        seen.push((e.index, e.sigtype, data));
    }
    use sigchain::SigType::*;
    assert_eq!(
        seen,
        vec![
            (idx(&[]), Snapshot, vec![]),
            (idx(&["a"]), Signature, b"new".to_vec()),
            (idx(&["b"]), Deleted, vec![]),
            (idx(&["c"]), Snapshot, vec![]),
        ]
    );
}

#[test]
fn bad_signature_names_stop_the_scan() {
    let bad = sigtar(&[sig_member("bogus/a", b'0', 0o644, 1, b"")]);
    let mut chain = sigchain::SigChain::new(vec![bad], true);
    let err = chain.next(&mut Vec::new()).unwrap_err();
    assert!(matches!(err, BackupError::BadSigName(n) if n == b"bogus/a"));
}

#[test]
fn scan_reports_new_changed_and_deleted_and_counts_the_rest() {
    let (d, base) = tree();
    let meta = |p: &str| fs::symlink_metadata(d.path.join(p)).unwrap();
    use std::os::unix::fs::MetadataExt;
    let member = |name: &str, p: &str, typeflag: u8| {
        let m = meta(p);
        let mut e = TarEntry::new(name.as_bytes());
        e.typeflag = typeflag;
        e.mode = i64::from(m.mode() & 0o7777);
        e.uid = Number::Int(i64::from(m.uid()));
        e.gid = Number::Int(i64::from(m.gid()));
        e.mtime = Number::Int(m.mtime());
        e.linkname = if typeflag == b'2' { b"a" } else { b"" };
        tar_block(&e, if typeflag == b'0' { b"sig" } else { b"" }).unwrap()
    };
    let mut a_changed = TarEntry::new(b"signature/a");
    a_changed.mode = i64::from(meta("a").mode() & 0o7777);
    a_changed.uid = Number::Int(i64::from(meta("a").uid()));
    a_changed.gid = Number::Int(i64::from(meta("a").gid()));
    a_changed.mtime = Number::Int(1);
    let sigs = sigtar(&[
        member("snapshot/", "", b'5'),
        tar_block(&a_changed, b"sig-a").unwrap(),
        member("snapshot/b", "b", b'5'),
        member("signature/b/x", "b/x", b'0'),
        member("snapshot/c", "c", b'2'),
        member("signature/gone", "a", b'0'),
    ]);
    fs::set_permissions(d.path.join("b"), fs::Permissions::from_mode(0o755)).unwrap();
    let mut scan = Scanner::new(
        ScanOptions {
            root: base,
            copy_links: false,
            numeric_owner: true,
            debug: false,
            selection: Default::default(),
        },
        vec![sigs],
    );
    let mut events = Vec::new();
    while scan.fill(&mut events, 100).unwrap() {}
    let pairs: Vec<(Index, bool, Option<Vec<u8>>)> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::Pair { index, new, sig } => Some((index, new, sig.and_then(|s| s.1))),
            _ => None,
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (idx(&["a"]), true, Some(b"sig-a".to_vec())),
            (idx(&["a.b"]), true, None),
            (idx(&["gone"]), false, None),
        ]
    );
    let u = scan.take_unchanged();
    assert_eq!(u.files, 4, "root, b, b/x and c are unchanged");
}

#[test]
fn python_patterns_translate_to_the_same_language() {
    use select::{compile, fs_text, translate};
    // duplicity's regexes for `--include /r/**/est/f00*` (re.S | re.U)
    let m = compile(r"^/r/.*/est/f00[^/]*($|/)", 48).unwrap();
    assert!(m.is_match("/r/a/b/est/f001"));
    assert!(m.is_match("/r/a/est/f00x/inner"));
    assert!(m.is_match("/r/a/est/f00x\n"));
    assert!(!m.is_match("/r/a/est/f1"));
    // Python's `$` also matches before a final newline
    let d = compile(r"^/r/x($)", 48).unwrap();
    assert!(d.is_match("/r/x") && d.is_match("/r/x\n") && !d.is_match("/r/xy"));
    // classes: a literal ']' first, ranges, negation, '[' and '&&' literal inside
    let c = compile(r"^[]a-c[&&]x$", 48).unwrap();
    for ok in ["]x", "bx", "[x", "&x"] {
        assert!(c.is_match(ok), "{ok}");
    }
    assert!(!c.is_match("dx"));
    let n = compile(r"^[^/]$", 48).unwrap();
    assert!(n.is_match(&fs_text(b"\xff")) && !n.is_match("/"));
    // escaped punctuation is literal; anything Python-specific is refused
    assert!(compile(r"^a\.b\ c$", 48).unwrap().is_match("a.b c"));
    for refused in [
        r"\d",
        r"\w",
        r"\b",
        r"(?P<x>a)",
        r"(?=a)",
        r"(?i)a",
        r"a*+",
        r"a{,2}",
        r"a{2,1}",
        r"a{x}",
        r"{1}",
        r"a}",
        r"a*??",
    ] {
        assert!(translate(refused, 48).is_none(), "{refused}");
    }
    // what user regular expressions use: counted repetitions, non-capturing groups, lazy
    // quantifiers, \A and \Z (the very end, unlike `$`)
    let r = compile(r"\A/h/(?:a|b){2,3}x+?\.tmp\Z", 32).unwrap();
    assert!(r.is_match("/h/abx.tmp") && r.is_match("/h/abbxx.tmp"));
    assert!(!r.is_match("/h/ax.tmp") && !r.is_match("/h/abx.tmp\n"));
    assert!(compile(r"a{2}$", 32).unwrap().is_match("zaa\n"));
    assert!(
        translate("a", 48 | 2).is_none(),
        "IGNORECASE stays with duplicity"
    );
}

#[test]
fn literal_strings_select_the_path_below_it_and_scan_above_it() {
    use select::{Candidate, Rule};
    let rule = |include: u8| Rule::Literal {
        include,
        name: b"/r/a b/c\xff".to_vec(),
    };
    let verdict = |r: &Rule, name: &[u8]| r.verdict_for_tests(&Candidate { name, stat: None });
    let inc = rule(1);
    assert_eq!(verdict(&inc, b"/r/a b/c\xff"), Some(1));
    assert_eq!(verdict(&inc, b"/r/a b/c\xff/d"), Some(1));
    assert_eq!(verdict(&inc, b"/r/a b/c\xffd"), None);
    assert_eq!(verdict(&inc, b"/r/a b"), Some(2));
    assert_eq!(verdict(&inc, b"/r/a"), None);
    let exc = rule(0);
    assert_eq!(verdict(&exc, b"/r/a b"), None);
    assert_eq!(verdict(&exc, b"/r/a b/c\xff/d"), Some(0));
}

#[test]
fn scanned_directories_come_just_before_what_is_selected_inside() {
    use select::{compile, Rule, Selection};
    let (_d, base) = tree();
    let b = String::from_utf8(base.clone()).unwrap();
    // --include <base>/b/x --exclude **  (duplicity's regexes for them)
    let include = Rule::Glob {
        include: 1,
        matches: compile(&format!("^{}/b/x($|/)", regex::escape(&b)), 48).unwrap(),
        exact: None,
        scan: compile(&format!("^({0}|{0}/b|{0}/b/x)$", regex::escape(&b)), 48).unwrap(),
    };
    let selection = Selection {
        rules: vec![include, Rule::All { include: 0 }],
        files_from: None,
    };
    let mut w = walk::Walker::new(base.clone(), false, false).with_selection(selection);
    use super::Source as _;
    let mut events = Vec::new();
    let mut out = Vec::new();
    while let Some(f) = w.next(&mut events).unwrap() {
        out.push(f.index);
    }
    assert_eq!(out, vec![idx(&[]), idx(&["b"]), idx(&["b", "x"])]);
    assert!(matches!(&events[..], [Event::SelectingScanned(n)] if n.ends_with(b"/b")));
}
