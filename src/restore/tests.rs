//! Engine tests on archives made in memory with the project's own tar writer.

use std::collections::VecDeque;
use std::io::Cursor;

use super::*;
use crate::tar::{footer, tar_block, Number, TarEntry};

struct TestHost {
    volumes: Vec<VecDeque<Vec<u8>>>,
    events: Vec<String>,
}

impl Host for TestHost {
    fn next_volume(&mut self, set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        Ok(self.volumes[set]
            .pop_front()
            .map(|v| Box::new(Cursor::new(v)) as Box<dyn Read + Send>))
    }

    fn event(&mut self, event: Event) {
        self.events.push(match event {
            Event::Writing { path, kind } => {
                format!("write {} {kind}", String::from_utf8_lossy(&path))
            }
            Event::MakingDirectory { path } => {
                format!("mkdir {}", String::from_utf8_lossy(&path))
            }
            Event::DeletingTree { path } => format!("rmtree {}", String::from_utf8_lossy(&path)),
            other => format!("{other:?}"),
        });
    }
}

fn member(name: &str, typeflag: u8, data: &[u8], mtime: i64) -> Vec<u8> {
    let mut e = TarEntry::new(name.as_bytes());
    e.typeflag = typeflag;
    e.mtime = Number::Int(mtime);
    e.mode = if typeflag == b'5' { 0o755 } else { 0o640 };
    tar_block(&e, data).unwrap()
}

fn symlink(name: &str, target: &str) -> Vec<u8> {
    let mut e = TarEntry::new(name.as_bytes());
    e.typeflag = b'2';
    e.linkname = target.as_bytes();
    tar_block(&e, b"").unwrap()
}

fn volume(members: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = members.concat();
    v.extend(footer(v.len() as u64));
    v
}

fn delta(ops: &[&[u8]]) -> Vec<u8> {
    let mut d = crate::rsync::DELTA_MAGIC.to_be_bytes().to_vec();
    for op in ops {
        d.extend_from_slice(op);
    }
    d.push(crate::rsync::OP_END);
    d
}

/// Restores with every file written on the walk's thread, and again with writer threads: both
/// must log the same events, end the same way and leave the same tree. The first is returned.
fn run(
    volumes: Vec<Vec<Vec<u8>>>,
    restrict: Index,
) -> (tempdir::Dir, TestHost, RestoreResult<bool>) {
    let (one, pooled) = run_both(volumes, restrict, |_| {});
    let events = |d: &tempdir::Dir, h: &TestHost| -> Vec<String> {
        let base = d.path.to_string_lossy().into_owned();
        h.events.iter().map(|e| e.replace(&base, "<dir>")).collect()
    };
    let (a, b) = (
        tree(&one.0.path.join("out")),
        tree(&pooled.0.path.join("out")),
    );
    let only = |x: &[String], y: &[String]| -> Vec<String> {
        x.iter().filter(|e| !y.contains(e)).cloned().collect()
    };
    assert!(
        a == b,
        "the same tree with writer threads: only without {:?}, only with {:?}; events {:?}",
        only(&a, &b),
        only(&b, &a),
        events(&one.0, &one.1)
    );
    one
}

type Run = (tempdir::Dir, TestHost, RestoreResult<bool>);

/// The restore without and with writer threads (after `prepare` on each target), checked to
/// log the same events and end the same way.
fn run_both(
    volumes: Vec<Vec<Vec<u8>>>,
    restrict: Index,
    prepare: fn(&std::path::Path),
) -> (Run, Run) {
    let one = run_with(volumes.clone(), restrict.clone(), 0, prepare);
    let pooled = run_with(volumes, restrict, 3, prepare);
    // the two runs' directories, as text and as the bytes of a Debug-printed name
    let plain = |d: &tempdir::Dir, text: &str| -> String {
        let bytes = format!("{:?}", d.path.as_os_str().as_encoded_bytes());
        let bytes = &bytes[1..bytes.len() - 1];
        text.replace(bytes, "<dir bytes>")
            .replace(&*d.path.to_string_lossy(), "<dir>")
    };
    let outcome = |d: &tempdir::Dir, r: &RestoreResult<bool>| plain(d, &format!("{r:?}"));
    let events = |d: &tempdir::Dir, h: &TestHost| -> Vec<String> {
        h.events.iter().map(|e| plain(d, e)).collect()
    };
    assert_eq!(
        outcome(&one.0, &one.2),
        outcome(&pooled.0, &pooled.2),
        "the restore ends the same way with writer threads"
    );
    assert_eq!(
        events(&one.0, &one.1),
        events(&pooled.0, &pooled.1),
        "the same events with writer threads"
    );
    (one, pooled)
}

/// Every path under `root` with its type, mode, mtime and data (or link target).
fn tree(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        let what = if md.file_type().is_symlink() {
            format!("-> {:?}", std::fs::read_link(&p).ok())
        } else if md.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            names.sort();
            todo.extend(names);
            "dir".to_string()
        } else {
            match std::fs::read(&p) {
                Ok(d) => {
                    use md5::Digest;
                    format!("{} bytes {:x}", d.len(), md5::Md5::digest(&d))
                }
                Err(e) => format!("{e}"),
            }
        };
        // a file left as the restore stopped has the time of the run, not of the archive
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mtime = if (md.mtime() - now).abs() < 600 {
            "now".to_string()
        } else {
            md.mtime().to_string()
        };
        out.push(format!("{rel} {:o} {mtime} {what}", md.mode()));
    }
    out.sort();
    out
}

fn run_with(
    volumes: Vec<Vec<Vec<u8>>>,
    restrict: Index,
    writers: usize,
    prepare: fn(&std::path::Path),
) -> Run {
    run_spooled(volumes, restrict, writers, prepare, chain::SPOOL_IN_MEMORY)
}

/// [`run_with`], file data over `spool_in_memory` bytes spooled to disk.
fn run_spooled(
    volumes: Vec<Vec<Vec<u8>>>,
    restrict: Index,
    writers: usize,
    prepare: fn(&std::path::Path),
    spool_in_memory: usize,
) -> Run {
    let dir = tempdir::Dir::new();
    let target = dir.path.join("out");
    prepare(&target);
    let mut host = TestHost {
        volumes: volumes.into_iter().map(VecDeque::from).collect(),
        events: Vec::new(),
    };
    let opts = RestoreOptions {
        spool_in_memory,
        target: target.as_os_str().as_encoded_bytes().to_vec(),
        sets: host.volumes.len(),
        restrict,
        tempdir: dir.path.clone(),
        numeric_owner: true,
        mode: Mode::Restore(WriteOptions {
            restore_ownership: false,
            ignore_errors: false,
            force: false,
            writers,
        }),
    };
    let r = restore(&opts, &mut host);
    (dir, host, r)
}

mod tempdir {
    use std::path::PathBuf;

    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "dupcore-restore-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
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

#[test]
fn full_set_with_a_multivolume_file() {
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let v1 = volume(&[
        member("snapshot/", b'5', b"", 1000),
        member("snapshot/a.txt", b'0', b"hello", 2000),
        member("multivol_snapshot/big/1", b'0', &big[..1000], 3000),
    ]);
    let v2 = volume(&[
        member("multivol_snapshot/big/2", b'0', &big[1000..], 3000),
        symlink("snapshot/link", "a.txt"),
        member("snapshot/sub", b'5', b"", 4000),
        member("snapshot/sub/z", b'0', b"zz", 5000),
    ]);
    let (dir, host, r) = run(vec![vec![v1, v2]], vec![]);
    assert!(r.unwrap());
    let out = dir.path.join("out");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::read(out.join("big")).unwrap(), big);
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap().to_str(),
        Some("a.txt")
    );
    assert_eq!(std::fs::read(out.join("sub/z")).unwrap(), b"zz");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(out.join("sub")).unwrap();
    assert_eq!((md.mtime(), md.mode() & 0o7777), (4000, 0o755));
    assert_eq!(
        std::fs::metadata(out.join("a.txt")).unwrap().mode() & 0o7777,
        0o640
    );
    let writes: Vec<&String> = host
        .events
        .iter()
        .filter(|e| e.starts_with("write"))
        .collect();
    assert_eq!(
        writes,
        [
            "write a.txt reg",
            "write big reg",
            "write link sym",
            "write sub dir",
            "write sub/z reg"
        ]
    );
}

#[test]
fn chain_applies_deltas_and_deletions() {
    let full = volume(&[
        member("snapshot/", b'5', b"", 1000),
        member("snapshot/f", b'0', b"0123456789", 1000),
        member("snapshot/gone", b'0', b"x", 1000),
        member("snapshot/same", b'0', b"s", 1000),
    ]);
    // f: copy 0..4 then "AB" ; then copy 2..6 of that then "!"
    let d1 = delta(&[&[crate::rsync::OP_COPY_N1_N1, 0, 4], &[2, b'A', b'B']]);
    let inc1 = volume(&[
        member("snapshot/", b'5', b"", 1100),
        member("diff/f", b'0', &d1, 1100),
        member("deleted/gone", b'0', b"", 0),
    ]);
    let d2 = delta(&[&[crate::rsync::OP_COPY_N1_N1, 2, 4], &[1, b'!']]);
    let inc2 = volume(&[member("diff/f", b'0', &d2, 1200)]);
    let (dir, _host, r) = run(vec![vec![full], vec![inc1], vec![inc2]], vec![]);
    assert!(r.unwrap());
    let out = dir.path.join("out");
    assert_eq!(std::fs::read(out.join("f")).unwrap(), b"23AB!");
    assert!(!out.join("gone").exists());
    assert_eq!(std::fs::read(out.join("same")).unwrap(), b"s");
}

#[test]
fn restore_path_and_broken_delta() {
    let full = volume(&[
        member("snapshot/", b'5', b"", 1000),
        member("snapshot/d", b'5', b"", 1000),
        member("snapshot/d/f", b'0', b"abc", 1000),
        member("snapshot/d/g", b'0', b"abc", 1000),
        member("snapshot/e", b'0', b"e", 1000),
    ]);
    let inc = volume(&[member("diff/d/g", b'0', b"not a delta", 1000)]);
    let (dir, host, r) = run(vec![vec![full], vec![inc]], vec![b"d".to_vec()]);
    assert!(r.unwrap());
    let out = dir.path.join("out");
    assert_eq!(std::fs::read(out.join("f")).unwrap(), b"abc");
    assert!(!out.join("e").exists());
    assert!(
        host.events
            .iter()
            .any(|e| e.contains("ErrorProcessing") && e.contains("bad magic")),
        "{:?}",
        host.events
    );
}

#[test]
fn damaged_volumes_fail_as_tarfile_does() {
    // an empty or unreadable first header: duplicity's make_tarfile gives an empty archive,
    // and the set ends there (later volumes are not read)
    let later = volume(&[member("snapshot/late", b'0', b"late", 1)]);
    let (d, h, r) = run(vec![vec![Vec::new(), later.clone()]], vec![]);
    assert!(!r.unwrap(), "{:?}", h.events);
    assert!(!d.path.join("out").join("late").exists());
    let mut v = volume(&[member("snapshot/a", b'0', b"hello", 1)]);
    v[0] ^= 0x40;
    let first = volume(&[member("snapshot/", b'5', b"", 1)]);
    let (d, _h, r) = run(vec![vec![first, v, later]], vec![]);
    assert!(r.unwrap());
    assert!(!d.path.join("out").join("late").exists());
    let v = volume(&[member("snapshot/a", b'0', &[7u8; 2000], 1)]);
    let (_d, _h, r) = run(vec![vec![v[..1024].to_vec()]], vec![]);
    assert!(matches!(r, Err(RestoreError::TarRead(m)) if m == "unexpected end of data"));
    let v = volume(&[member("snapshot/../x", b'0', b"x", 1)]);
    let (_d, _h, r) = run(vec![vec![v]], vec![]);
    assert!(matches!(r, Err(RestoreError::PatchDir { .. })));
    // a bad header after the first member ends that volume's archive, as in tarfile
    let mut v = volume(&[
        member("snapshot/", b'5', b"", 1),
        member("snapshot/b", b'0', b"b", 1),
    ]);
    v[512] ^= 0x40;
    let (_d, _h, r) = run(vec![vec![v]], vec![]);
    assert!(r.unwrap());
}

#[test]
fn bytes_repr_matches_python() {
    assert_eq!(py_bytes_repr(b"/t/a b"), "b'/t/a b'");
    assert_eq!(py_bytes_repr(b"it's"), "b\"it's\"");
    assert_eq!(py_bytes_repr(b"\xe9\n"), "b'\\xe9\\n'");
}

#[test]
fn never_writes_through_a_symlink_in_the_archive() {
    let dir = tempdir::Dir::new();
    let outside = dir.path.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let v = volume(&[
        member("snapshot/", b'5', b"", 1000),
        symlink("snapshot/lnk", outside.to_str().unwrap()),
        member("snapshot/lnk/file", b'0', b"escaped", 1000),
        member("snapshot/lnk/sub", b'5', b"", 1000),
        member("snapshot/lnk/sub/deeper", b'0', b"escaped", 1000),
        member("snapshot/ok", b'0', b"fine", 1000),
    ]);
    let (out_dir, host, r) = run(vec![vec![v]], vec![]);
    assert!(r.unwrap());
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "{:?}",
        host.events
    );
    let out = out_dir.path.join("out");
    assert_eq!(std::fs::read(out.join("ok")).unwrap(), b"fine");
    let refused = host
        .events
        .iter()
        .filter(|e| e.contains("is a symbolic link"))
        .count();
    assert!(refused >= 2, "{:?}", host.events);
}

/// A real full backup and incremental (decompressed volumes of duplicity 3.2.1, also the seed
/// of the `restore_volumes` fuzz target):
/// first byte splits the rest into the two volumes.
const SEED: &[u8] = include_bytes!("../../tests/fixtures/restore/full-and-incremental");

fn run_seed(data: &[u8]) -> (tempdir::Dir, TestHost, RestoreResult<bool>) {
    let (&split, rest) = data.split_first().unwrap_or((&0, &[]));
    let at = rest.len() * usize::from(split) / 256;
    run(
        vec![vec![rest[..at].to_vec()], vec![rest[at..].to_vec()]],
        vec![],
    )
}

#[test]
fn seed_restores_a_real_chain() {
    let (dir, _host, r) = run_seed(SEED);
    assert!(r.unwrap());
    let out = dir.path.join("out");
    assert_eq!(
        std::fs::read(out.join("a.txt")).unwrap(),
        b"hello\n".repeat(20)
    );
    let big = std::fs::read(out.join("d/big.bin")).unwrap();
    assert_eq!(big.len(), 256 * 40);
    assert_eq!(&big[5000..5070], b"CHANGED".repeat(10).as_slice());
    assert!(!out.join("d/e/z").exists());
    assert_eq!(std::fs::read(out.join("new")).unwrap(), b"n");
}

/// Mutated chains (flipped bytes, cuts, duplicated and zeroed blocks) restore or fail with an
/// error: never a panic, and nothing appears outside the target.
#[test]
fn mutated_chains_never_panic_or_escape() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    for _round in 0..3000 {
        let mut data = SEED.to_vec();
        for _ in 0..1 + rand(4) {
            match rand(5) {
                0 => {
                    let i = rand(data.len());
                    data[i] ^= 1 << rand(8);
                }
                1 => data.truncate(rand(data.len())),
                2 => {
                    let b = rand(data.len() / 512) * 512;
                    let block = data[b..(b + 512).min(data.len())].to_vec();
                    data.splice(b..b, block);
                }
                3 => {
                    let b = rand(data.len() / 512) * 512;
                    let end = (b + 512).min(data.len());
                    data[b..end].fill(0);
                }
                _ => {
                    let i = rand(data.len());
                    data[i] = [b'0', b'5', b'2', b'x', b'L', 0x80, 0xff][rand(7)];
                }
            }
        }
        let (dir, _host, _r) = run_seed(&data);
        let entries: Vec<_> = std::fs::read_dir(&dir.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            entries.iter().all(|n| n == "out"),
            "written outside the target: {entries:?}"
        );
    }
}

fn many_small_files(dir: &str, names: &[String]) -> Vec<u8> {
    let mut members = vec![
        member("snapshot/", b'5', b"", 1000),
        member(&format!("snapshot/{dir}"), b'5', b"", 2000),
    ];
    for (i, name) in names.iter().enumerate() {
        let data = format!("{name} {i}\n").repeat(i % 7 + 1);
        members.push(member(
            &format!("snapshot/{dir}/{name}"),
            b'0',
            data.as_bytes(),
            3000 + i as i64,
        ));
    }
    members.push(member("snapshot/z", b'0', b"last", 9000));
    volume(&members)
}

#[test]
fn writer_threads_report_a_failed_file_in_its_place() {
    let mut names: Vec<String> = (0..40).map(|i| format!("f{i:03}")).collect();
    names[17] = "n".repeat(300); // ENAMETOOLONG: a warning, and the restore goes on
    let v = many_small_files("m", &names);
    let (_dir, host, r) = run(vec![vec![v]], vec![]);
    assert!(r.unwrap());
    let warned: Vec<_> = host
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.contains("ErrorProcessing"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", host.events);
    assert!(host.events[warned[0].0 - 1].starts_with("write m/nnn"));
}

#[test]
fn writer_threads_stop_where_a_one_thread_restore_stops() {
    let names: Vec<String> = (0..40).map(|i| format!("f{i:03}")).collect();
    let v = many_small_files("m", &names);
    // a directory in the way of file f020: EISDIR, which stops a restore
    let (one, pooled) = run_both(vec![vec![v]], vec![], |out| {
        std::fs::create_dir_all(out.join("m/f020")).unwrap();
    });
    for (_dir, host, r) in [&one, &pooled] {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        assert_eq!(
            host.events.last().map(String::as_str),
            Some("write m/f020 reg")
        );
    }
}

/// A file larger than the writer's hand-over piece, in three volumes.
fn big_file_volumes(big: &[u8]) -> Vec<Vec<u8>> {
    let third = big.len() / 3;
    vec![
        volume(&[
            member("snapshot/", b'5', b"", 1000),
            member("multivol_snapshot/big/1", b'0', &big[..third], 3000),
        ]),
        volume(&[member(
            "multivol_snapshot/big/2",
            b'0',
            &big[third..2 * third],
            3000,
        )]),
        volume(&[
            member("multivol_snapshot/big/3", b'0', &big[2 * third..], 3000),
            member("snapshot/z", b'0', b"zz", 5000),
        ]),
    ]
}

#[test]
fn large_files_written_behind_end_as_on_one_thread() {
    let big: Vec<u8> = (0..3_700_000u32).map(|i| (i % 253) as u8).collect();
    let (dir, _h, r) = run(vec![big_file_volumes(&big)], vec![]);
    assert!(r.unwrap());
    assert_eq!(std::fs::read(dir.path.join("out/big")).unwrap(), big);
    // the last volume cut short: the file holds what could be read, then the same error
    let mut cut = big_file_volumes(&big);
    let last = cut.last_mut().unwrap();
    last.truncate(700_000);
    let (one, pooled) = run_both(vec![cut], vec![], |_| {});
    for (dir, _h, r) in [&one, &pooled] {
        assert!(r.is_err());
        let got = std::fs::read(dir.path.join("out/big")).unwrap();
        assert!(
            got.len() > 2_400_000 && big.starts_with(&got),
            "{}",
            got.len()
        );
    }
}

#[test]
fn a_large_file_that_cannot_be_written_fails_as_on_one_thread() {
    // the target is a device that refuses every write (as /dev/full does: ENOSPC)
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not run: making a device node needs root");
        return;
    }
    let big: Vec<u8> = vec![5u8; 3_000_000];
    let (one, pooled) = run_both(vec![big_file_volumes(&big)], vec![], |out| {
        std::fs::create_dir_all(out).unwrap();
        let node = std::ffi::CString::new(out.join("big").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; char device 1:7 is /dev/full.
        let rc = unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 7)) };
        assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
    });
    for (_dir, _h, r) in [&one, &pooled] {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(e.contains("No space left on device"), "{e}");
    }
}

/// A full set and three incrementals of `files` files of about `size` bytes, each changed in
/// every incremental; the volumes and each file's last state.
fn changed_chain(files: usize, size: usize) -> (Vec<Vec<Vec<u8>>>, Vec<Vec<u8>>) {
    use crate::rsync::delta::delta_of;
    use crate::rsync::sigmaker::signature_of;
    use crate::rsync::LiteralCap;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut states: Vec<Vec<u8>> = (0..files)
        .map(|_| {
            (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        })
        .collect();
    let mut full = vec![member("snapshot/", b'5', b"", 1000)];
    for (f, s) in states.iter().enumerate() {
        full.push(member(&format!("snapshot/f{f}"), b'0', s, 1000));
    }
    let mut sets = vec![vec![volume(&full)]];
    for day in 1..=3usize {
        let mut inc = vec![member("snapshot/", b'5', b"", 1000)];
        for (f, s) in states.iter_mut().enumerate() {
            let mut next = s.clone();
            for k in 0..20 {
                let at = (k * 4099 + day * 577 + f * 13) % next.len();
                next[at] ^= 0x5a;
            }
            if f % 2 == 0 {
                next.extend((0..3000).map(|i| (i * day) as u8));
            } else {
                next.truncate(next.len() - 1000);
            }
            let sig = signature_of(s, 512, 8).unwrap();
            let d = delta_of(&sig, &next, LiteralCap::V234).unwrap();
            inc.push(member(&format!("diff/f{f}"), b'0', &d, 1000 + day as i64));
            *s = next;
        }
        sets.push(vec![volume(&inc)]);
    }
    (sets, states)
}

#[test]
fn composed_files_placed_by_writer_threads_end_as_on_one_thread() {
    let (sets, states) = changed_chain(4, 60_000);
    for spool in [1 << 10, chain::SPOOL_IN_MEMORY] {
        let one = run_spooled(sets.clone(), vec![], 0, |_| {}, spool);
        let pooled = run_spooled(sets.clone(), vec![], 3, |_| {}, spool);
        for (dir, host, r) in [&one, &pooled] {
            assert!(r.as_ref().is_ok_and(|&b| b), "{r:?} {:?}", host.events);
            for (f, want) in states.iter().enumerate() {
                let got = std::fs::read(dir.path.join(format!("out/f{f}"))).unwrap();
                assert!(
                    got == *want,
                    "f{f}: {} bytes, {} wanted",
                    got.len(),
                    want.len()
                );
            }
        }
        assert_eq!(events_of(&one), events_of(&pooled));
        assert_eq!(
            tree(&one.0.path.join("out")),
            tree(&pooled.0.path.join("out"))
        );
    }
}

#[test]
fn a_composed_file_that_cannot_be_written_fails_as_on_one_thread() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not run: making a device node needs root");
        return;
    }
    let (sets, _states) = changed_chain(2, 60_000);
    let (one, pooled) = (
        run_spooled(sets.clone(), vec![], 0, full_f0, 1 << 10),
        run_spooled(sets, vec![], 3, full_f0, 1 << 10),
    );
    for (_dir, _h, r) in [&one, &pooled] {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(e.contains("No space left on device"), "{e}");
    }
    assert_eq!(events_of(&one), events_of(&pooled));
}

/// A run's events, its directory written `<dir>`.
fn events_of((dir, host, _): &Run) -> Vec<String> {
    let base = dir.path.to_string_lossy().into_owned();
    host.events
        .iter()
        .map(|e| e.replace(&base, "<dir>"))
        .collect()
}

/// Makes `f0` under the target a device that refuses every write (as /dev/full does).
fn full_f0(out: &std::path::Path) {
    std::fs::create_dir_all(out).unwrap();
    let node = std::ffi::CString::new(out.join("f0").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; char device 1:7 is /dev/full.
    let rc = unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 7)) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
}
