//! Output files: every path checked before any work, then all written, then all renamed into
//! place, each whole or not at all.
//!
//! A regular file (or a path not there yet) is written to a temporary file beside it (random name,
//! created exclusively, the destination's permissions), then renamed over it. A symlink is
//! followed: its target is replaced and the link kept. A device or FIFO (`/dev/null`, a named
//! pipe) is written in place, and `-` is stdout. No output may be one of the run's inputs or
//! another output. Temporary files still open when SIGINT, SIGTERM, SIGHUP or SIGQUIT arrives are
//! removed before the process exits.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Cursor, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::bail;
use tempfile::NamedTempFile;

/// The prefix of every temporary file layerscope creates (tests look for it).
pub const TEMP_PREFIX: &str = ".layerscope-";

/// A writer an output is filled through: a file, or memory for stdout and devices. Seekable
/// because a zip archive (`.npz`) needs it.
pub trait Sink: Write + Seek {}
impl<T: Write + Seek> Sink for T {}

/// Stdout was closed by its reader (`| head`): the run ends quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct BrokenPipe;

/// Temporary files not yet renamed into place: removed by the signal handler.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remove the temporary files of this process when SIGINT, SIGTERM, SIGHUP or SIGQUIT arrives,
/// then exit with 128 + the signal's number. A signal that arrives while outputs are being
/// renamed into place waits until all of them are.
pub fn remove_temporary_files_on_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // The registry stays locked until the exit: no new temporary file, no rename.
                let _locked = remove_live_temporary_files(None);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Remove every temporary file not yet renamed into place (those in folder `under` only, when
/// given); the registry is returned locked.
fn remove_live_temporary_files(under: Option<&Path>) -> MutexGuard<'static, Vec<PathBuf>> {
    let files = live();
    for path in files.iter() {
        if under.is_none_or(|dir| path.starts_with(dir)) {
            let _ = std::fs::remove_file(path);
        }
    }
    files
}

/// A temporary file registered for removal on a signal.
struct LiveTemp(Option<NamedTempFile>);

impl LiveTemp {
    fn new(dir: &Path, permissions: Option<&Permissions>) -> io::Result<LiveTemp> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX).suffix(".tmp").rand_bytes(8);
        #[cfg(unix)]
        let default = {
            use std::os::unix::fs::PermissionsExt;
            // As `File::create` would: 0666 less the umask (applied by the kernel).
            Permissions::from_mode(0o666)
        };
        #[cfg(unix)]
        builder.permissions(default);
        // Created and registered under the registry's lock: a signal's clean-up sees it.
        let mut files = live();
        let file = builder.tempfile_in(dir)?;
        files.push(file.path().to_path_buf());
        drop(files);
        let mut temp = LiveTemp(Some(file));
        if let Some(p) = permissions {
            // The destination's own mode (the umask may have cleared bits of it above).
            temp.file().set_permissions(p.clone())?;
        }
        Ok(temp)
    }

    fn file(&mut self) -> &mut File {
        self.0
            .as_mut()
            .expect("an open temporary file")
            .as_file_mut()
    }
}

impl Drop for LiveTemp {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            let path = file.path().to_path_buf();
            drop(file); // removes it
            live().retain(|p| *p != path);
        }
    }
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    /// `-`.
    Stdout,
    /// A device or FIFO, written in place.
    InPlace(PathBuf),
    /// A regular file (or a new one), replaced by a rename; the symlinks on the way resolved.
    Replace {
        real: PathBuf,
        permissions: Option<Permissions>,
    },
}

/// One output of a run, checked.
#[derive(Debug, Clone)]
pub struct Output {
    flag: String,
    user: PathBuf,
    dest: Dest,
}

impl Output {
    /// The path as the user wrote it.
    pub fn path(&self) -> &Path {
        &self.user
    }

    /// Is this stdout (`-`)?
    pub fn is_stdout(&self) -> bool {
        self.dest == Dest::Stdout
    }
}

/// The checked outputs of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    outputs: Vec<Output>,
}

/// One output written whole and not yet in place.
pub struct Staged {
    output: Output,
    body: Body,
}

enum Body {
    Temp(LiveTemp),
    Bytes(Vec<u8>),
}

/// Device and inode of an existing file (symlinks followed).
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// Follow the symlinks of `path` to the file it names (which may not exist yet).
fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = if target.is_absolute() {
                    target
                } else {
                    parent_dir(&p).join(target)
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The name a file not there yet will have, for comparing outputs with each other.
fn future_name(real: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(parent_dir(real)).unwrap_or_else(|_| parent_dir(real));
    dir.join(real.file_name().unwrap_or_default())
}

impl Plan {
    /// Check every output before any work: the folder exists and a file can be created in it
    /// (a temporary file is created and removed), the path is not a folder, and no output is one
    /// of `inputs` (compared by device and inode) or another output. `outputs` and `inputs` are
    /// `(flag, path)` pairs; the flag names the path in messages.
    pub fn new(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> anyhow::Result<Plan> {
        let mut planned: Vec<Output> = Vec::new();
        for &(flag, path) in outputs {
            let dest = Self::check(flag, path)?;
            let output = Output {
                flag: flag.to_owned(),
                user: path.to_path_buf(),
                dest,
            };
            for &(in_flag, input) in inputs {
                if let (Some(a), Some(b)) = (identity(path), identity(input))
                    && a == b
                    && !matches!(output.dest, Dest::InPlace(_) | Dest::Stdout)
                {
                    bail!(
                        "{flag} {}: this is the input {in_flag} {}: choose another name \
                         (layerscope never overwrites its own input)",
                        path.display(),
                        input.display()
                    );
                }
            }
            for other in &planned {
                if output.same_file(other) {
                    bail!(
                        "{flag} {} and {} {} are the same file: expected a separate file for each",
                        path.display(),
                        other.flag,
                        other.user.display()
                    );
                }
            }
            planned.push(output);
        }
        Ok(Plan { outputs: planned })
    }

    fn check(flag: &str, path: &Path) -> anyhow::Result<Dest> {
        if path.as_os_str() == "-" {
            return Ok(Dest::Stdout);
        }
        let shown = path.display();
        let real = resolve_symlinks(path)
            .map_err(|e| anyhow::anyhow!("{flag} {shown}: cannot follow the link: {e}"))?;
        match std::fs::metadata(&real) {
            Ok(m) if m.is_dir() => {
                bail!("{flag} {shown}: cannot write: it is a folder, expected a file name")
            }
            Ok(m) if !m.is_file() => return Ok(Dest::InPlace(real)),
            _ => {}
        }
        let dir = parent_dir(&real);
        if !dir.is_dir() {
            bail!(
                "{flag} {shown}: cannot write: the folder {} does not exist",
                dir.display()
            );
        }
        let permissions = std::fs::metadata(&real).ok().map(|m| m.permissions());
        // The probe: the same kind of temporary file the output will be written to.
        LiveTemp::new(&dir, permissions.as_ref()).map_err(|e| {
            anyhow::anyhow!("{flag} {shown}: cannot write in {}: {e}", dir.display())
        })?;
        Ok(Dest::Replace { real, permissions })
    }

    /// The `i`-th output, in the order given to `new`.
    pub fn output(&self, i: usize) -> &Output {
        &self.outputs[i]
    }

    /// Write the `i`-th output whole through `fill`, not yet in place: into a temporary file (or
    /// memory, for stdout and devices). The temporary file is removed on error.
    pub fn stage(
        &self,
        i: usize,
        fill: impl FnOnce(&mut dyn Sink) -> io::Result<()>,
    ) -> anyhow::Result<Staged> {
        let output = self.outputs[i].clone();
        let cannot = |e: io::Error| {
            anyhow::anyhow!(
                "{} {}: cannot write: {e}",
                output.flag,
                output.user.display()
            )
        };
        let body = match &output.dest {
            Dest::Stdout | Dest::InPlace(_) => {
                let mut bytes = Cursor::new(Vec::new());
                fill(&mut bytes).map_err(cannot)?;
                Body::Bytes(bytes.into_inner())
            }
            Dest::Replace { real, permissions } => {
                let mut temp =
                    LiveTemp::new(&parent_dir(real), permissions.as_ref()).map_err(cannot)?;
                let mut w = BufWriter::new(temp.file());
                fill(&mut w).map_err(cannot)?;
                w.flush().map_err(cannot)?;
                drop(w);
                temp.file().sync_all().map_err(cannot)?;
                Body::Temp(temp)
            }
        };
        Ok(Staged { output, body })
    }

    /// Put every staged output in place: stdout and devices first (they cannot be undone), then
    /// the renames, during which a signal waits.
    pub fn commit(staged: Vec<Staged>) -> anyhow::Result<()> {
        let mut renames = Vec::new();
        for s in staged {
            match (s.body, &s.output.dest) {
                (Body::Bytes(bytes), Dest::Stdout) => write_stdout(&bytes)?,
                (Body::Bytes(bytes), Dest::InPlace(real)) => {
                    File::options()
                        .write(true)
                        .open(real)
                        .and_then(|mut f| f.write_all(&bytes))
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "{} {}: cannot write: {e}",
                                s.output.flag,
                                s.output.user.display()
                            )
                        })?;
                }
                (Body::Temp(temp), Dest::Replace { real, .. }) => {
                    renames.push((temp, real.clone(), s.output));
                }
                _ => unreachable!("staged by its destination"),
            }
        }
        // Out of the registry's care one by one, under its lock: a signal now waits for the end.
        let moves: Vec<(NamedTempFile, PathBuf, Output)> = renames
            .into_iter()
            .map(|(mut temp, real, output)| {
                let file = temp.0.take().expect("an open temporary file");
                (file, real, output)
            })
            .collect();
        let mut files = live();
        let mut failure = None;
        for (file, real, output) in moves {
            let path = file.path().to_path_buf();
            if failure.is_none() {
                if let Err(e) = file.persist(&real) {
                    drop(e.file); // removes it
                    failure = Some(anyhow::anyhow!(
                        "{} {}: cannot move the new file into place: {}",
                        output.flag,
                        output.user.display(),
                        e.error
                    ));
                }
            } else {
                drop(file); // removes it
            }
            files.retain(|p| *p != path);
        }
        drop(files);
        failure.map_or(Ok(()), Err)
    }
}

impl Output {
    fn same_file(&self, other: &Output) -> bool {
        match (&self.dest, &other.dest) {
            (Dest::Stdout, Dest::Stdout) => true,
            (Dest::Replace { real: a, .. }, Dest::Replace { real: b, .. }) => {
                match (identity(a), identity(b)) {
                    (Some(x), Some(y)) => x == y,
                    _ => future_name(a) == future_name(b),
                }
            }
            _ => false,
        }
    }
}

/// Write to stdout and flush; a closed pipe is [`BrokenPipe`], any other error a message.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
        Err(e) => bail!("stdout: cannot write: {e}"),
    }
}

/// Write `path` whole or not at all through `fill` (one output, no inputs to compare).
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Sink) -> io::Result<()>,
) -> anyhow::Result<()> {
    let plan = Plan::new(&[("", path)], &[])?;
    let staged = plan.stage(0, fill)?;
    Plan::commit(vec![staged])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn whole_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomic(&path, |w| w.write_all(b"a,b\n1,2\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        let failed = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        let message = failed.unwrap_err().to_string();
        assert!(
            message.contains("out.csv: cannot write: disk full"),
            "{message}"
        );
        assert!(!message.contains(TEMP_PREFIX), "{message}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        assert_eq!(names(dir.path()), ["out.csv"], "no temporary file left");
        assert!(live().iter().all(|p| !p.starts_with(dir.path())));
        let missing = dir.path().join("no/such/dir/out.csv");
        assert!(
            write_atomic(&missing, |_| Ok(()))
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_target_replaced_link_kept_and_mode_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.csv");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("target.csv", &link).unwrap();
        write_atomic(&link, |w| w.write_all(b"new")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["link.csv", "target.csv"]);
    }

    #[test]
    fn outputs_may_not_be_inputs_or_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.npz");
        std::fs::write(&a, "model").unwrap();
        let e = Plan::new(&[("--out", &a)], &[("--model", &a)]).unwrap_err();
        assert!(e.to_string().contains("is the input --model"), "{e}");
        let b = dir.path().join("b.csv");
        let also_b = dir.path().join(".").join("b.csv");
        let e = Plan::new(&[("--save", &b), ("--metrics", &also_b)], &[]).unwrap_err();
        assert!(e.to_string().contains("are the same file"), "{e}");
        assert_eq!(names(dir.path()), ["a.npz"], "the probes left nothing");
    }

    #[test]
    fn the_signal_clean_up_removes_a_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npz");
        let plan = Plan::new(&[("--save", &path)], &[]).unwrap();
        let staged = plan.stage(0, |w| w.write_all(b"model")).unwrap();
        assert_eq!(names(dir.path()).len(), 1, "the staged temporary file");
        drop(remove_live_temporary_files(Some(dir.path())));
        assert!(names(dir.path()).is_empty(), "removed");
        drop(staged);
        assert!(live().iter().all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn a_long_legal_name_fits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x".repeat(254));
        write_atomic(&path, |w| w.write_all(b"ok")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ok");
    }
}
