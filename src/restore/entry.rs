//! Difftar members as duplicity's `patchdir.difftar2path_iter` sees them: the path index and
//! diff type from the member name (`snapshot/`, `diff/`, `deleted/`, `multivol_*/…/N`), the
//! file type, mode, owner and mtime as `ROPath.init_from_tarinfo` sets them, and multi-volume
//! files joined into one data stream.

use std::collections::HashMap;
use std::ffi::CString;

use super::error::{RestoreError, RestoreResult};
use super::tarstream::{Member, SetStream};
use super::{Event, Host};

/// A path below the backup root, one component per element (`()` is the root).
pub type Index = Vec<Vec<u8>>;

/// What a member says about its path in this backup set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffType {
    /// The whole file (or a non-regular entry).
    Snapshot,
    /// A librsync delta against the previous state.
    Diff,
    /// The path is gone.
    Deleted,
}

/// File type and its type-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    Reg,
    /// Directory.
    Dir,
    /// Symbolic link and its target.
    Sym(Vec<u8>),
    /// Named pipe.
    Fifo,
    /// Character device (major, minor).
    Chr(i128, i128),
    /// Block device (major, minor).
    Blk(i128, i128),
    /// Deleted: the path does not exist at this point.
    Missing,
}

impl Kind {
    /// duplicity's type name (`ROPath.type`).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Reg => "reg",
            Kind::Dir => "dir",
            Kind::Sym(_) => "sym",
            Kind::Fifo => "fifo",
            Kind::Chr(..) => "chr",
            Kind::Blk(..) => "blk",
            Kind::Missing => "None",
        }
    }
}

/// The attributes duplicity restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Type.
    pub kind: Kind,
    /// Mode bits as stored.
    pub mode: i128,
    /// Owner, by name where the name is known here (unless `--numeric-owner`).
    pub uid: i128,
    /// Group, likewise.
    pub gid: i128,
    /// Modification time (negative times read as 0).
    pub mtime: i128,
}

/// One path of one backup set.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path index.
    pub index: Index,
    /// Snapshot, diff or deleted.
    pub difftype: DiffType,
    /// Whether the data continues in further `multivol_*` members.
    pub multivol: bool,
    /// Data size of its member (of the first part, for a multi-volume file).
    pub size: u64,
    /// Attributes.
    pub meta: Meta,
}

/// Index, diff type and multivol flag of a member name (`get_index_from_tarinfo`).
pub fn parse_name(member: &Member) -> RestoreResult<(Index, DiffType, bool)> {
    let mut tiname = member.name.clone();
    if member.is_dir() && !tiname.ends_with(b"/") {
        tiname.push(b'/');
    }
    let unrecognized = || RestoreError::PatchDir {
        what: "Unrecognized diff entry {}",
        name: tiname.clone(),
    };
    let prefixes: [&[u8]; 5] = [
        b"snapshot/",
        b"diff/",
        b"deleted/",
        b"multivol_diff/",
        b"multivol_snapshot/",
    ];
    let prefix = prefixes
        .iter()
        .find(|p| tiname.starts_with(p))
        .ok_or_else(unrecognized)?;
    let (name, difftype, multivol): (&[u8], DiffType, bool) = if prefix.starts_with(b"multivol") {
        let head_len = prefix.len() - 1; // "multivol_snapshot", the slash is matched below
        let rest = &tiname[head_len..];
        // (?s)^multivol_(diff|snapshot)/?(.*)/[0-9]+$
        let slash = rest
            .iter()
            .rposition(|&b| b == b'/')
            .ok_or_else(unrecognized)?;
        let digits = &rest[slash + 1..];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(unrecognized());
        }
        let mut middle = &rest[..slash];
        if middle.first() == Some(&b'/') {
            middle = &middle[1..];
        }
        let difftype = if *prefix == b"multivol_diff/" {
            DiffType::Diff
        } else {
            DiffType::Snapshot
        };
        (middle, difftype, true)
    } else {
        let mut name = &tiname[prefix.len()..];
        if name.ends_with(b"/") {
            name = &name[..name.len() - 1];
        }
        let difftype = match *prefix {
            b"snapshot/" => DiffType::Snapshot,
            b"diff/" => DiffType::Diff,
            _ => DiffType::Deleted,
        };
        (name, difftype, false)
    };
    let index: Index = if name == b"." || name.is_empty() {
        Vec::new()
    } else {
        name.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()
    };
    if index.iter().any(|c| c == b"..") {
        return Err(RestoreError::PatchDir {
            what: "Tar entry {} contains '..'.  Security violation",
            name: tiname,
        });
    }
    Ok((index, difftype, multivol))
}

/// User and group ids by name, looked up once each (`cached_ops.getpwnam`/`getgrnam`).
#[derive(Default)]
pub struct Owners {
    /// `--numeric-owner`: keep the stored ids.
    pub numeric: bool,
    users: HashMap<Vec<u8>, Option<u32>>,
    groups: HashMap<Vec<u8>, Option<u32>>,
}

impl Owners {
    /// Resolver; `numeric` is duplicity's `--numeric-owner`.
    pub fn new(numeric: bool) -> Self {
        Owners {
            numeric,
            ..Default::default()
        }
    }

    fn user(&mut self, name: &[u8]) -> Option<u32> {
        if let Some(v) = self.users.get(name) {
            return *v;
        }
        let found = lookup(name, true);
        self.users.insert(name.to_vec(), found);
        found
    }

    fn group(&mut self, name: &[u8]) -> Option<u32> {
        if let Some(v) = self.groups.get(name) {
            return *v;
        }
        let found = lookup(name, false);
        self.groups.insert(name.to_vec(), found);
        found
    }
}

/// `getpwnam_r`/`getgrnam_r`: the id of a user or group name, None when unknown.
fn lookup(name: &[u8], user: bool) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    loop {
        let rc;
        let mut id = None;
        // SAFETY: the structs and the buffer outlive the calls, whose results are only read
        // when the call reports success and a non-null result pointer.
        unsafe {
            if user {
                let mut pw: libc::passwd = std::mem::zeroed();
                let mut result: *mut libc::passwd = std::ptr::null_mut();
                rc = libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                );
                if rc == 0 && !result.is_null() {
                    id = Some(pw.pw_uid);
                }
            } else {
                let mut gr: libc::group = std::mem::zeroed();
                let mut result: *mut libc::group = std::ptr::null_mut();
                rc = libc::getgrnam_r(
                    cname.as_ptr(),
                    &mut gr,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                );
                if rc == 0 && !result.is_null() {
                    id = Some(gr.gr_gid);
                }
            }
        }
        if rc == libc::ERANGE && buf.len() < (1 << 22) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return id;
    }
}

/// `ROPath.init_from_tarinfo`: type, mode, owner and mtime of a member.
pub fn meta_of(member: &Member, owners: &mut Owners, host: &mut dyn Host) -> RestoreResult<Meta> {
    let kind = match member.typeflag {
        b'0' | 0 => Kind::Reg,
        b'1' => return Err(RestoreError::Path("Hard links not supported yet".into())),
        b'2' => Kind::Sym(member.linkname.clone()),
        b'3' => Kind::Chr(member.devmajor, member.devminor),
        b'4' => Kind::Blk(member.devmajor, member.devminor),
        b'5' => Kind::Dir,
        b'6' => Kind::Fifo,
        other => {
            return Err(RestoreError::Path(format!(
                "Unknown tarinfo type {}",
                super::py_bytes_repr(&[other])
            )))
        }
    };
    let uid = match owners.numeric || member.uname.is_empty() {
        true => member.uid,
        false => owners.user(&member.uname).map_or(member.uid, i128::from),
    };
    let gid = match owners.numeric || member.gname.is_empty() {
        true => member.gid,
        false => owners.group(&member.gname).map_or(member.gid, i128::from),
    };
    let mut mtime = member.mtime;
    if mtime < 0 {
        host.event(Event::NegativeMtime {
            name: member.name.clone(),
        });
        mtime = 0;
    }
    Ok(Meta {
        kind,
        mode: member.mode,
        uid,
        gid,
        mtime,
    })
}

/// The entries of one backup set, limited to a restore path, with multi-volume files joined.
pub struct EntryStream {
    members: SetStream,
    restrict: Index,
    /// A member read past the end of a multi-volume file, for the next entry.
    pending: Option<Member>,
    /// The index of the multi-volume file whose data is being read.
    multivol: Option<Index>,
}

impl EntryStream {
    /// Entries of backup set `set` under `restrict` (indices relative to it).
    pub fn new(set: usize, restrict: Index) -> Self {
        EntryStream {
            members: SetStream::new(set),
            restrict,
            pending: None,
            multivol: None,
        }
    }

    /// The next entry; the data of the previous one not read is skipped.
    pub fn next_entry(
        &mut self,
        owners: &mut Owners,
        host: &mut dyn Host,
    ) -> RestoreResult<Option<Entry>> {
        loop {
            // Multivol_Filelike.close(): the rest of an unread multi-volume file is skipped.
            while self.multivol.is_some() {
                self.advance_multivol(host)?;
            }
            let member = match self.pending.take() {
                Some(m) => m,
                None => match self.members.next_member(host)? {
                    Some(m) => m,
                    None => return Ok(None),
                },
            };
            let (index, difftype, multivol) = parse_name(&member)?;
            let mut meta = meta_of(&member, owners, host)?;
            if difftype == DiffType::Deleted {
                meta.kind = Kind::Missing;
            }
            let joined = multivol && meta.kind == Kind::Reg;
            if joined {
                self.multivol = Some(index.clone());
            }
            if !index.starts_with(&self.restrict) {
                continue; // filter_path_iter: outside the restore path
            }
            let index = index[self.restrict.len()..].to_vec();
            return Ok(Some(Entry {
                index,
                difftype,
                multivol: joined,
                size: member.size,
                meta,
            }));
        }
    }

    /// At the end of a multi-volume part: moves to the next part of the same file, or ends the
    /// file (keeping the member read for the next entry). True when another part follows.
    fn advance_multivol(&mut self, host: &mut dyn Host) -> RestoreResult<bool> {
        let Some(current) = self.multivol.take() else {
            return Ok(false);
        };
        let Some(member) = self.members.next_member(host)? else {
            return Ok(false);
        };
        let (index, _difftype, multivol) = parse_name(&member)?;
        if multivol && index == current {
            self.multivol = Some(current);
            Ok(true)
        } else {
            self.pending = Some(member);
            Ok(false)
        }
    }

    /// Data of the current entry (all parts of a multi-volume file); 0 at its end.
    pub fn read_data(&mut self, host: &mut dyn Host, out: &mut [u8]) -> RestoreResult<usize> {
        loop {
            let n = self.members.read_data(out)?;
            if n > 0 || out.is_empty() || self.multivol.is_none() {
                return Ok(n);
            }
            if !self.advance_multivol(host)? {
                return Ok(0);
            }
        }
    }

    /// As [`EntryStream::read_data`], but None (nothing read) where the data goes on in a
    /// volume the host has not given yet.
    pub fn read_data_here(
        &mut self,
        host: &mut dyn Host,
        out: &mut [u8],
    ) -> RestoreResult<Option<usize>> {
        loop {
            let n = self.members.read_data(out)?;
            if n > 0 || out.is_empty() || self.multivol.is_none() {
                return Ok(Some(n));
            }
            if !self.members.member_here() {
                return Ok(None);
            }
            if !self.advance_multivol(host)? {
                return Ok(Some(0));
            }
        }
    }

    /// Hands all data of the current entry to `sink`, piece by piece.
    pub fn pipe_data(
        &mut self,
        host: &mut dyn Host,
        sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
    ) -> RestoreResult<()> {
        loop {
            self.members.pipe_data(sink)?;
            if self.multivol.is_none() || !self.advance_multivol(host)? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &[u8], typeflag: u8) -> Member {
        Member {
            name: name.to_vec(),
            typeflag,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            linkname: vec![],
            uname: vec![],
            gname: vec![],
            devmajor: 0,
            devminor: 0,
        }
    }

    #[test]
    fn names_as_duplicity_reads_them() {
        let p = |n: &[u8], t| parse_name(&member(n, t)).map_err(|e| e.to_string());
        assert_eq!(
            p(b"snapshot", b'5'),
            Ok((vec![], DiffType::Snapshot, false))
        );
        assert_eq!(
            p(b"snapshot/.", b'5'),
            Ok((vec![], DiffType::Snapshot, false))
        );
        assert_eq!(
            p(b"diff/a/b", b'0'),
            Ok((vec![b"a".to_vec(), b"b".to_vec()], DiffType::Diff, false))
        );
        assert_eq!(
            p(b"deleted/x", b'0'),
            Ok((vec![b"x".to_vec()], DiffType::Deleted, false))
        );
        assert_eq!(
            p(b"multivol_snapshot/big/file/12", b'0'),
            Ok((
                vec![b"big".to_vec(), b"file".to_vec()],
                DiffType::Snapshot,
                true
            ))
        );
        assert_eq!(
            p(b"multivol_diff/12", b'0'),
            Ok((vec![], DiffType::Diff, true))
        );
        assert!(p(b"multivol_diff/a/x1", b'0').is_err());
        assert!(p(b"other/a", b'0').is_err());
        let e = p(b"snapshot/a/../b", b'0').unwrap_err();
        assert!(e.contains("Security violation"), "{e}");
    }
}
