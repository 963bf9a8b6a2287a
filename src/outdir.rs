//! Output directories that never lose anything: one writer at a time, results staged in a
//! hidden sibling and moved into place only when complete, and only obasim's own results
//! ever replaced.
//!
//! The protocol, for a target `P/NAME`:
//! 1. `P/.NAME.obasim-lock` is locked exclusively (an advisory `flock`, released by the
//!    kernel when the process ends, even by `kill -9`). A second process gets
//!    [`OutputDirError::Busy`]; without an explicit `--out` it moves on to the next free
//!    `NAME-2`, `NAME-3`, ... ([`StagedDir::first_free`]).
//! 2. Under the lock, leftovers of processes that died are cleaned: stale `.NAME.partial-PID`
//!    staging directories (PID not running) are removed, an interrupted replacement
//!    (`.NAME.old-PID` with no `NAME`) is put back.
//! 3. An existing `NAME` is replaced only with `force`, only if it is a directory that obasim
//!    wrote (a `manifest.json` or `shard.json` listing every entry; see [`written_by_obasim`]),
//!    and never if it is the working directory, one of its ancestors, or holds an input of the
//!    command.
//! 4. Results are written into `P/.NAME.partial-PID`, flushed to disk, and exchanged with
//!    `NAME` in one atomic step (`renameat2(RENAME_EXCHANGE)` on Linux), after which the old
//!    results are deleted. Where the file system cannot exchange, the old directory is
//!    renamed to `.NAME.old-PID` first and the next command writing `NAME` restores it if
//!    the process died between the two renames.

use crate::scenario::read_regular_file;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File written first into every staging directory (removed just before it is committed),
/// so that a leftover staging directory is recognised as obasim's own.
pub const STAGING_MARKER: &str = ".obasim-staging";
/// Name of the manifest obasim writes into run, merge, sweep and Slurm directories.
pub const MANIFEST: &str = "manifest.json";
/// Name of the file obasim writes into a shard directory.
pub const SHARD_FILE: &str = "shard.json";

/// What a command writing an output directory reads, and whether it may replace earlier
/// results.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Replace an existing directory of obasim's results (`--force`).
    pub force: bool,
    /// Files and directories the command reads (scenario, data files, shards): the output
    /// may not be, or contain, any of them.
    pub inputs: Vec<PathBuf>,
}

/// Why an output directory cannot be written.
#[derive(Debug)]
pub enum OutputDirError {
    /// It exists and is not empty, and `--force` was not given.
    NotEmpty(PathBuf),
    /// It exists and is not a directory (a file or a symbolic link).
    NotADirectory(PathBuf, &'static str),
    /// Another process is writing it now.
    Busy(PathBuf, String),
    /// It must not be replaced: the working directory, an ancestor of it, or it holds an
    /// input of this command.
    Protected(PathBuf, String),
    /// It exists but is not (only) obasim's results.
    NotOurs(PathBuf, String),
    /// An I/O error on this path.
    Io(PathBuf, io::Error),
}

impl OutputDirError {
    /// Whether the error is the user's to fix (exit code 2) rather than the system's.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, OutputDirError::Io(..))
    }
}

impl std::fmt::Display for OutputDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputDirError::NotEmpty(p) => write!(
                f,
                "output directory `{}` exists and is not empty; use --force to replace it (only if it holds obasim's results), or --out to choose another",
                p.display()
            ),
            OutputDirError::NotADirectory(p, what) => write!(
                f,
                "output `{}` is {what}, not a directory: obasim writes results into a directory of their own; choose another --out (nothing was changed)",
                p.display()
            ),
            OutputDirError::Busy(p, who) => write!(
                f,
                "output directory `{}` is being written by {who} now: wait for it to finish, or choose another --out",
                p.display()
            ),
            OutputDirError::Protected(p, why) => write!(
                f,
                "will not replace `{}`: {why}. Nothing was deleted; choose a new directory with --out",
                p.display()
            ),
            OutputDirError::NotOurs(p, why) => write!(
                f,
                "will not replace `{}` even with --force: {why}. --force replaces only directories of obasim's own results; nothing was deleted. Choose another --out, or move its contents away yourself",
                p.display()
            ),
            OutputDirError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for OutputDirError {}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OutputDirError + '_ {
    move |e| OutputDirError::Io(path.to_path_buf(), e)
}

/// A target resolved to an absolute, symlink-free location.
#[derive(Clone, Debug)]
struct Resolved {
    /// As the user gave it (for messages and the returned path).
    shown: PathBuf,
    /// Canonical parent directory (exists).
    parent: PathBuf,
    /// Final component.
    name: String,
}

impl Resolved {
    fn path(&self) -> PathBuf {
        self.parent.join(&self.name)
    }

    fn sibling(&self, kind: &str, pid: u32) -> PathBuf {
        self.parent.join(format!(".{}.{kind}-{pid}", self.name))
    }

    fn lock_path(&self) -> PathBuf {
        self.parent.join(format!(".{}.obasim-lock", self.name))
    }
}

/// Resolves `target`, creating its parent directories. Refuses files and symbolic links.
fn resolve(target: &Path) -> Result<Resolved, OutputDirError> {
    let shown = target.to_path_buf();
    let no_name = || {
        OutputDirError::Protected(
            shown.clone(),
            "it names no directory of its own (`.`, `..` or `/`)".into(),
        )
    };
    match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(OutputDirError::NotADirectory(shown, "a symbolic link"))
        }
        Ok(m) if !m.is_dir() => Err(OutputDirError::NotADirectory(shown, "a file")),
        Ok(_) => {
            let canonical = fs::canonicalize(target).map_err(io_at(target))?;
            let name = canonical.file_name().ok_or_else(no_name)?;
            let parent = canonical.parent().ok_or_else(no_name)?;
            Ok(Resolved {
                name: name.to_string_lossy().into_owned(),
                parent: parent.to_path_buf(),
                shown,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let abs = std::path::absolute(target).map_err(io_at(target))?;
            let name = abs.file_name().ok_or_else(no_name)?.to_owned();
            let parent = abs.parent().ok_or_else(no_name)?;
            fs::create_dir_all(parent).map_err(io_at(parent))?;
            let parent = fs::canonicalize(parent).map_err(io_at(parent))?;
            Ok(Resolved {
                name: name.to_string_lossy().into_owned(),
                parent,
                shown,
            })
        }
        Err(e) => Err(OutputDirError::Io(shown, e)),
    }
}

/// Refuses a target that is the working directory or an ancestor of it, or holds an input.
fn check_protected(t: &Resolved, inputs: &[PathBuf]) -> Result<(), OutputDirError> {
    let path = t.path();
    if let Ok(cwd) = std::env::current_dir().and_then(fs::canonicalize) {
        if cwd.starts_with(&path) {
            let what = if cwd == path {
                "it is the working directory"
            } else {
                "it holds the working directory"
            };
            return Err(OutputDirError::Protected(t.shown.clone(), what.into()));
        }
    }
    for input in inputs {
        let Ok(canonical) = fs::canonicalize(input) else {
            continue;
        };
        if canonical.starts_with(&path) {
            let what = if canonical == path {
                format!("it is `{}`, which this command reads", input.display())
            } else {
                format!("it holds `{}`, which this command reads", input.display())
            };
            return Err(OutputDirError::Protected(t.shown.clone(), what));
        }
    }
    Ok(())
}

/// What is at a target now.
enum Existing {
    Absent,
    Empty,
    Ours,
    Theirs(String),
}

fn examine(t: &Resolved) -> Result<Existing, OutputDirError> {
    let path = t.path();
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Absent),
        Err(e) => Err(OutputDirError::Io(t.shown.clone(), e)),
        Ok(m) if m.file_type().is_symlink() => Err(OutputDirError::NotADirectory(
            t.shown.clone(),
            "a symbolic link",
        )),
        Ok(m) if !m.is_dir() => Err(OutputDirError::NotADirectory(t.shown.clone(), "a file")),
        Ok(_) => {
            let empty = fs::read_dir(&path)
                .map_err(io_at(&t.shown))?
                .next()
                .is_none();
            if empty {
                return Ok(Existing::Empty);
            }
            Ok(match written_by_obasim(&path) {
                Ok(()) => Existing::Ours,
                Err(why) => Existing::Theirs(why),
            })
        }
    }
}

/// Entries of a directory: (name, is a directory, is a regular file).
fn entries(dir: &Path) -> Result<Vec<(String, bool, bool)>, String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("cannot list it ({e})"))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| format!("cannot list it ({e})"))?;
        let ft = e
            .file_type()
            .map_err(|e| format!("cannot read an entry ({e})"))?;
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            ft.is_dir(),
            ft.is_file(),
        ));
    }
    v.sort();
    Ok(v)
}

fn foreign(name: &str) -> String {
    format!("it holds `{name}`, which obasim did not write")
}

/// Whether `dir` is a directory of obasim's results and nothing else: a shard directory
/// (only `shard.json`), a run, merge, sweep or Slurm directory (a `manifest.json` written by
/// obasim whose `files` list names every other entry; listed subdirectories hold only what
/// obasim puts there: plots, logs, shards, merged results), or a sweep directory written
/// before sweeps had a manifest (`sweep.csv`, `scenario.toml` and sweep plots only).
/// The error says why not, naming an entry obasim did not write.
pub fn written_by_obasim(dir: &Path) -> Result<(), String> {
    let list = entries(dir)?;
    let has_file = |n: &str| list.iter().any(|(name, _, file)| name == n && *file);
    if has_file(SHARD_FILE) {
        return match list.iter().find(|(n, _, _)| n != SHARD_FILE) {
            Some((n, _, _)) => Err(foreign(n)),
            None => Ok(()),
        };
    }
    if has_file(MANIFEST) {
        let files = manifest_files(&dir.join(MANIFEST))?;
        for (name, is_dir, is_file) in &list {
            if name == MANIFEST {
                continue;
            }
            let listed_dir = files.iter().any(|f| f.strip_suffix('/') == Some(name));
            let listed_file = files.iter().any(|f| f == name);
            if *is_dir && listed_dir {
                listed_subdir(&dir.join(name), name)?;
            } else if !(*is_file && listed_file) {
                return Err(foreign(name));
            }
        }
        return Ok(());
    }
    if has_file("sweep.csv") && has_file("scenario.toml") {
        for (name, _, is_file) in &list {
            let plot = name.starts_with("sweep_") && has_extension(name, &["png", "svg"]);
            if !(*is_file && (plot || name == "sweep.csv" || name == "scenario.toml")) {
                return Err(foreign(name));
            }
        }
        return Ok(());
    }
    let shown: Vec<String> = list
        .iter()
        .take(3)
        .map(|(n, _, _)| format!("`{n}`"))
        .collect();
    let more = if list.len() > 3 {
        format!(" and {} more", list.len() - 3)
    } else {
        String::new()
    };
    Err(format!(
        "it holds {}{more}, which obasim did not write (it has no manifest.json or shard.json, which obasim writes into every directory of its results)",
        shown.join(", ")
    ))
}

fn has_extension(name: &str, exts: &[&str]) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| exts.iter().any(|x| e == *x))
}

/// The `files` list of an obasim manifest.
fn manifest_files(path: &Path) -> Result<Vec<String>, String> {
    let text = read_regular_file(path, 16 << 20)
        .map_err(|e| format!("cannot read its manifest.json ({e})"))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| "its manifest.json is not obasim's (not JSON)".to_string())?;
    if !v.get("obasim_version").is_some_and(|x| x.is_string()) {
        return Err("its manifest.json was not written by obasim (no obasim_version)".into());
    }
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or("its manifest.json lists no files")?;
    Ok(files
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect())
}

/// A subdirectory a manifest lists: plots, logs, shards or nested results.
fn listed_subdir(path: &Path, name: &str) -> Result<(), String> {
    let within = |e: String| format!("in `{name}/`: {e}");
    let list = entries(path).map_err(within)?;
    let only_files = |exts: &[&str]| -> Result<(), String> {
        match list
            .iter()
            .find(|(n, _, file)| !(*file && has_extension(n, exts)))
        {
            Some((n, _, _)) => Err(within(foreign(n))),
            None => Ok(()),
        }
    };
    match name {
        "plots" => only_files(&["png", "svg"]),
        "logs" => only_files(&["out"]),
        "shards" => {
            for (n, is_dir, is_file) in &list {
                let p = path.join(n);
                let ok = if n.starts_with('.') {
                    (*is_file && n.ends_with(".obasim-lock")) || (*is_dir && is_leftover(&p))
                } else {
                    *is_dir && written_by_obasim(&p).is_ok()
                };
                if !ok {
                    return Err(within(foreign(n)));
                }
            }
            Ok(())
        }
        _ => {
            if list.is_empty() {
                Ok(())
            } else {
                written_by_obasim(path).map_err(within)
            }
        }
    }
}

/// Whether `path` is a staging or set-aside directory obasim left behind: empty, marked as
/// staging, or a complete set of obasim's results.
fn is_leftover(path: &Path) -> bool {
    match fs::read_dir(path) {
        Ok(mut d) => {
            d.next().is_none()
                || path.join(STAGING_MARKER).is_file()
                || written_by_obasim(path).is_ok()
        }
        Err(_) => false,
    }
}

/// Whether process `pid` is running (on this machine).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The PID in a leftover's name `.NAME.KIND-PID`.
fn leftover_pid(file_name: &str, prefix: &str) -> Option<u32> {
    file_name.strip_prefix(prefix)?.parse().ok()
}

/// An exclusive lock on a target, held while the process writes it.
struct DirLock {
    path: PathBuf,
    file: Option<File>,
}

impl DirLock {
    /// Takes the lock, or `Ok(None)` when another process holds it.
    fn acquire(path: &Path) -> io::Result<Option<DirLock>> {
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
            // The holder before us deletes the file before releasing it: if the path now
            // names another file (or none), this lock protects nothing. Try again.
            if !same_file(&file, path) {
                continue;
            }
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())?;
            return Ok(Some(DirLock {
                path: path.to_path_buf(),
                file: Some(file),
            }));
        }
    }

    /// Who holds the lock at `path`, for messages.
    fn holder(path: &Path) -> String {
        match fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            Some(pid) => format!("another obasim process (PID {pid})"),
            None => "another obasim process".into(),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Delete while still holding it (see `acquire`), then release by closing.
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Renames with `renameat2` flags; `Ok(false)` when the file system or kernel cannot.
#[cfg(target_os = "linux")]
fn rename_with_flags(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let b = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_with_flags(_: &Path, _: &Path, _: u32) -> io::Result<bool> {
    Ok(false)
}

/// `renameat2` flag: fail if the target exists.
const RENAME_NOREPLACE: u32 = 1;
/// `renameat2` flag: swap the two paths atomically.
const RENAME_EXCHANGE: u32 = 2;

/// Deletes a directory of obasim's own (results or staging) so that it stays recognisable
/// as obasim's until it is gone: everything but its marker files first, then those (a
/// process killed half-way leaves a directory the next command still knows to remove).
fn remove_ours(dir: &Path) -> io::Result<()> {
    let markers = [MANIFEST, SHARD_FILE, STAGING_MARKER];
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if markers.iter().any(|m| name == *m) {
            continue;
        }
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(e.path())?;
        } else {
            fs::remove_file(e.path())?;
        }
    }
    fs::remove_dir_all(dir)
}

/// Recreates the tree `from` at `to`, hard-linking its files.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            fs::hard_link(e.path(), &dest).or_else(|_| fs::copy(e.path(), &dest).map(|_| ()))?;
        }
    }
    Ok(())
}

/// Flushes every file and directory under `dir` to disk.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            sync_tree(&p)?;
        } else {
            File::open(&p)?.sync_all()?;
        }
    }
    sync_dir(dir);
    Ok(())
}

/// Flushes a directory's entries (best effort: some file systems refuse).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// An output directory being written: files go into a hidden sibling staging directory,
/// which [`StagedDir::commit`] moves into place. Dropped without commit, the staging
/// directory is removed and the target is left as it was.
pub struct StagedDir {
    target: Resolved,
    staging: PathBuf,
    force: bool,
    committed: bool,
    lock: Option<DirLock>,
}

impl StagedDir {
    /// Prepares to write `target` (an explicit `--out`): takes its lock, cleans up after
    /// processes that died, and checks that it may be written (see the module docs).
    pub fn create(target: &Path, req: &Request) -> Result<StagedDir, OutputDirError> {
        let t = resolve(target)?;
        check_protected(&t, &req.inputs)?;
        let lock_path = t.lock_path();
        let lock = DirLock::acquire(&lock_path)
            .map_err(io_at(&lock_path))?
            .ok_or_else(|| OutputDirError::Busy(t.shown.clone(), DirLock::holder(&lock_path)))?;
        recover(&t)?;
        match examine(&t)? {
            Existing::Absent | Existing::Empty => {}
            Existing::Ours | Existing::Theirs(_) if !req.force => {
                return Err(OutputDirError::NotEmpty(t.shown.clone()))
            }
            Existing::Ours => check_protected(&t, &req.inputs)?,
            Existing::Theirs(why) => return Err(OutputDirError::NotOurs(t.shown.clone(), why)),
        }
        Self::stage(t, req.force, lock)
    }

    /// Prepares to write the first of `base`, `base-2`, `base-3`, ... that does not exist
    /// and that no other process is writing (the default output of `run`).
    pub fn first_free(base: &Path) -> Result<StagedDir, OutputDirError> {
        let name = base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        for k in 1u64.. {
            let candidate = if k == 1 {
                base.to_path_buf()
            } else {
                base.with_file_name(format!("{name}-{k}"))
            };
            if fs::symlink_metadata(&candidate).is_ok() {
                continue;
            }
            let t = resolve(&candidate)?;
            let lock_path = t.lock_path();
            let Some(lock) = DirLock::acquire(&lock_path).map_err(io_at(&lock_path))? else {
                continue;
            };
            recover(&t)?;
            if !matches!(examine(&t)?, Existing::Absent) {
                continue;
            }
            return Self::stage(t, false, lock);
        }
        unreachable!("some name base-k is free")
    }

    /// Prepares to update a finished directory of obasim's results in one step: the staging
    /// directory starts as a copy of `dir` without the entries `redrawn` selects (its files
    /// hard-linked, so they are never rewritten; the manifest copied, so it may be), and
    /// [`StagedDir::commit`] exchanges it with `dir`.
    pub fn update(dir: &Path, redrawn: &dyn Fn(&str) -> bool) -> Result<StagedDir, OutputDirError> {
        let t = resolve(dir)?;
        let lock_path = t.lock_path();
        let lock = DirLock::acquire(&lock_path)
            .map_err(io_at(&lock_path))?
            .ok_or_else(|| OutputDirError::Busy(t.shown.clone(), DirLock::holder(&lock_path)))?;
        recover(&t)?;
        match examine(&t)? {
            Existing::Ours => {}
            Existing::Theirs(why) => return Err(OutputDirError::NotOurs(t.shown.clone(), why)),
            Existing::Absent | Existing::Empty => {
                return Err(OutputDirError::NotOurs(
                    t.shown.clone(),
                    "it holds no results".into(),
                ))
            }
        }
        let staged = Self::stage(t, true, lock)?;
        let from = staged.target.path();
        let copy = |e: fs::DirEntry| -> io::Result<()> {
            let name = e.file_name().to_string_lossy().into_owned();
            if redrawn(&name) {
                return Ok(());
            }
            let to = staged.staging.join(&name);
            if e.file_type()?.is_dir() {
                copy_tree(&e.path(), &to)
            } else if name == MANIFEST {
                fs::copy(e.path(), to).map(|_| ())
            } else {
                fs::hard_link(e.path(), &to).or_else(|_| fs::copy(e.path(), &to).map(|_| ()))
            }
        };
        fs::read_dir(&from)
            .and_then(|rd| rd.into_iter().try_for_each(|e| copy(e?)))
            .map_err(io_at(&from))?;
        Ok(staged)
    }

    fn stage(t: Resolved, force: bool, lock: DirLock) -> Result<StagedDir, OutputDirError> {
        let staging = t.sibling("partial", std::process::id());
        if fs::symlink_metadata(&staging).is_ok() {
            // Left by an earlier process that had our PID (we hold the lock).
            if is_leftover(&staging) {
                remove_ours(&staging).map_err(io_at(&staging))?;
            } else {
                return Err(OutputDirError::NotOurs(
                    staging.clone(),
                    "it is in the way of obasim's staging directory".into(),
                ));
            }
        }
        fs::create_dir(&staging).map_err(io_at(&staging))?;
        let dir = StagedDir {
            target: t,
            staging,
            force,
            committed: false,
            lock: Some(lock),
        };
        fs::write(dir.staging.join(STAGING_MARKER), b"").map_err(io_at(&dir.staging))?;
        Ok(dir)
    }

    /// The directory to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The target, as given.
    pub fn target(&self) -> &Path {
        &self.target.shown
    }

    /// Moves the finished directory into place, replacing the old one (when allowed) in one
    /// atomic exchange where the file system supports it; returns the target as given.
    pub fn commit(mut self) -> Result<PathBuf, OutputDirError> {
        let staging = self.staging.clone();
        fs::remove_file(staging.join(STAGING_MARKER)).map_err(io_at(&staging))?;
        sync_tree(&staging).map_err(io_at(&staging))?;
        let target = self.target.path();
        let replacing = match examine(&self.target)? {
            Existing::Absent => false,
            Existing::Empty => true,
            Existing::Ours if self.force => true,
            Existing::Ours => return Err(OutputDirError::NotEmpty(self.target.shown.clone())),
            Existing::Theirs(why) => {
                return Err(OutputDirError::NotOurs(self.target.shown.clone(), why))
            }
        };
        let shown = self.target.shown.clone();
        if replacing {
            self.replace(&target).map_err(io_at(&shown))?;
        } else if !rename_with_flags(&staging, &target, RENAME_NOREPLACE).map_err(io_at(&shown))? {
            fs::rename(&staging, &target).map_err(io_at(&shown))?;
        }
        self.committed = true;
        sync_dir(&self.target.parent);
        self.lock.take();
        Ok(shown)
    }

    /// Puts the staging directory at `target` in place of the existing one and deletes the
    /// old one (keeping it aside if, by now, it holds something obasim did not write).
    fn replace(&self, target: &Path) -> io::Result<()> {
        let old = if rename_with_flags(&self.staging, target, RENAME_EXCHANGE)? {
            self.staging.clone()
        } else {
            let aside = self.target.sibling("old", std::process::id());
            fs::rename(target, &aside)?;
            fs::rename(&self.staging, target)?;
            aside
        };
        sync_dir(&self.target.parent);
        if is_leftover(&old) {
            remove_ours(&old)
        } else {
            eprintln!(
                "warning: the replaced directory gained files obasim did not write while this command ran; it was kept at {}",
                old.display()
            );
            Ok(())
        }
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_ours(&self.staging);
        }
    }
}

/// Writes one output file (a `compare` table or plot) atomically: into a hidden sibling,
/// flushed, then renamed into place, under the same lock as an output directory. An
/// existing file is replaced only with `force`, and only if `ours` recognises its bytes as
/// something obasim wrote.
pub fn write_file(
    path: &Path,
    bytes: &[u8],
    force: bool,
    ours: &dyn Fn(&[u8]) -> bool,
) -> Result<(), OutputDirError> {
    let shown = path.to_path_buf();
    let abs = std::path::absolute(path).map_err(io_at(path))?;
    let (Some(name), Some(parent)) = (abs.file_name(), abs.parent()) else {
        return Err(OutputDirError::NotADirectory(shown, "not a file name"));
    };
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let t = Resolved {
        parent: fs::canonicalize(parent).map_err(io_at(parent))?,
        name: name.to_string_lossy().into_owned(),
        shown: shown.clone(),
    };
    let lock_path = t.lock_path();
    let _lock = DirLock::acquire(&lock_path)
        .map_err(io_at(&lock_path))?
        .ok_or_else(|| OutputDirError::Busy(shown.clone(), DirLock::holder(&lock_path)))?;
    let target = t.path();
    let exists = match fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(OutputDirError::NotADirectory(shown, "a symbolic link"))
        }
        Ok(m) if m.is_dir() => {
            return Err(OutputDirError::NotOurs(
                shown,
                "it is a directory, and this command writes a file".into(),
            ))
        }
        Ok(_) => true,
        Err(_) => false,
    };
    if exists && !force {
        return Err(OutputDirError::NotEmpty(shown));
    }
    if exists {
        let old = fs::read(&target).map_err(io_at(&shown))?;
        if !ours(&old) {
            return Err(OutputDirError::NotOurs(
                shown,
                "it is not a file obasim wrote for this command".into(),
            ));
        }
    }
    let staging = t.sibling("partial", std::process::id());
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&staging)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if exists || !rename_with_flags(&staging, &target, RENAME_NOREPLACE)? {
            fs::rename(&staging, &target)?;
        }
        sync_dir(&t.parent);
        Ok(())
    };
    let result = write().map_err(io_at(&shown));
    if result.is_err() {
        let _ = fs::remove_file(&staging);
    }
    result
}

/// Cleans up after processes that died while writing `t` (the lock is held): restores an
/// interrupted replacement and removes stale staging directories.
fn recover(t: &Resolved) -> Result<(), OutputDirError> {
    let partial = format!(".{}.partial-", t.name);
    let old = format!(".{}.old-", t.name);
    let Ok(list) = fs::read_dir(&t.parent) else {
        return Ok(());
    };
    let mut leftovers: Vec<(PathBuf, bool)> = Vec::new();
    for e in list.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let pid = leftover_pid(&n, &partial)
            .map(|p| (p, false))
            .or_else(|| leftover_pid(&n, &old).map(|p| (p, true)));
        if let Some((pid, is_old)) = pid {
            if !pid_alive(pid) && e.file_type().is_ok_and(|f| f.is_dir()) {
                leftovers.push((e.path(), is_old));
            }
        }
    }
    leftovers.sort();
    for (path, is_old) in leftovers {
        if !is_leftover(&path) {
            continue;
        }
        if is_old && fs::symlink_metadata(t.path()).is_err() {
            // The process died between setting the old results aside and moving the new
            // ones in: put the old ones back.
            fs::rename(&path, t.path()).map_err(io_at(&path))?;
        } else {
            remove_ours(&path).map_err(io_at(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(dir: &Path, files: &[&str]) {
        fs::create_dir_all(dir).unwrap();
        for f in files {
            if let Some(d) = f.strip_suffix('/') {
                fs::create_dir_all(dir.join(d)).unwrap();
            } else {
                fs::write(dir.join(f), "x").unwrap();
            }
        }
        let manifest = serde_json::json!({ "obasim_version": "0", "files": files });
        fs::write(dir.join(MANIFEST), manifest.to_string()).unwrap();
    }

    #[test]
    fn recognises_only_directories_obasim_wrote_entirely() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("r");
        run_dir(&d, &["summary.csv", "plots/"]);
        fs::write(d.join("plots/a.png"), "x").unwrap();
        assert_eq!(written_by_obasim(&d), Ok(()));
        fs::write(d.join("plots/notes.txt"), "x").unwrap();
        assert!(written_by_obasim(&d).unwrap_err().contains("notes.txt"));
        fs::remove_file(d.join("plots/notes.txt")).unwrap();
        fs::write(d.join("notes.txt"), "mine").unwrap();
        assert!(written_by_obasim(&d).unwrap_err().contains("`notes.txt`"));
        let e = tmp.path().join("e");
        fs::create_dir(&e).unwrap();
        fs::write(e.join("data.csv"), "1").unwrap();
        let why = written_by_obasim(&e).unwrap_err();
        assert!(
            why.contains("`data.csv`") && why.contains("no manifest.json"),
            "{why}"
        );
        let s = tmp.path().join("s");
        fs::create_dir(&s).unwrap();
        fs::write(s.join(SHARD_FILE), "{}").unwrap();
        assert_eq!(written_by_obasim(&s), Ok(()));
        let m = tmp.path().join("m");
        fs::create_dir(&m).unwrap();
        fs::write(m.join(MANIFEST), "{\"files\": []}").unwrap();
        assert!(written_by_obasim(&m)
            .unwrap_err()
            .contains("obasim_version"));
    }

    #[test]
    fn a_lock_excludes_a_second_holder_and_is_gone_after_release() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join(".x.obasim-lock");
        let a = DirLock::acquire(&p).unwrap().expect("free");
        assert!(DirLock::acquire(&p).unwrap().is_none());
        drop(a);
        assert!(!p.exists());
        assert!(DirLock::acquire(&p).unwrap().is_some());
    }

    #[test]
    fn live_and_dead_processes() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(1) || cfg!(not(target_os = "linux")));
        assert!(!pid_alive(u32::MAX));
    }
}
