//! [`StateDirectory`]: the per-application state directory, one sub-directory per task,
//! each guarded by an exclusive file lock.
//!
//! Layout: `<state dir>/<application id>/<task id>/` holding `.lock`, `.checkpoint` and
//! `rocksdb/<store>/`. The lock is an OS file lock (`flock` on Unix, through `fs4`) on
//! `.lock`, held for as long as the returned [`TaskDirLock`] lives, so no two stream
//! threads or instances work on one task's state at the same time, whether in one process
//! or in several.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fs4::{FileExt, TryLockError};

use crate::checkpoint::OffsetCheckpoint;
use crate::error::{Result, StoreError};

/// Name of the lock file inside a task directory.
pub const LOCK_FILE_NAME: &str = ".lock";

type Held = Arc<Mutex<HashSet<String>>>;

fn lock_held(held: &Held) -> MutexGuard<'_, HashSet<String>> {
    // The set stays consistent even if a holder panicked.
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Rejects names that are not a single plain path component.
fn validate_component(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "{what} `{name}` must be ASCII letters, digits, `_`, `-` or `.`, not starting with `.`"
        )))
    }
}

/// The state directory of one application. Clones share which task directories this
/// instance has locked.
#[derive(Debug, Clone)]
pub struct StateDirectory {
    app_dir: PathBuf,
    held: Held,
}

impl StateDirectory {
    /// Uses (creating it if needed) `<state_dir>/<application_id>`.
    pub fn new(state_dir: impl AsRef<Path>, application_id: &str) -> Result<Self> {
        validate_component("application id", application_id)?;
        let app_dir = state_dir.as_ref().join(application_id);
        fs::create_dir_all(&app_dir).map_err(|e| StoreError::io(&app_dir, e))?;
        Ok(StateDirectory {
            app_dir,
            held: Held::default(),
        })
    }

    /// `<state dir>/<application id>`.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// The directory of `task_id` (such as `0_1`), created if needed. Does not lock it.
    pub fn task_dir(&self, task_id: &str) -> Result<PathBuf> {
        validate_component("task id", task_id)?;
        let dir = self.app_dir.join(task_id);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(dir)
    }

    /// Ids of the task directories present, sorted.
    pub fn task_ids(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.app_dir).map_err(|e| StoreError::io(&self.app_dir, e))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.app_dir, e))?;
            let is_dir = entry
                .file_type()
                .map_err(|e| StoreError::io(entry.path(), e))?
                .is_dir();
            if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                if validate_component("task id", name).is_ok() {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Takes the exclusive lock of the task directory (creating it if needed).
    ///
    /// Fails with [`StoreError::LockAlreadyHeld`] if this state directory (or a clone)
    /// already holds it, and with [`StoreError::DirectoryLocked`] if another handle, in
    /// this process or another, does.
    pub fn lock(&self, task_id: &str) -> Result<TaskDirLock> {
        let dir = self.task_dir(task_id)?;
        if !lock_held(&self.held).insert(task_id.to_owned()) {
            return Err(StoreError::LockAlreadyHeld { path: dir });
        }
        match try_lock_file(&dir) {
            Ok(file) => {
                tracing::debug!(task = task_id, dir = %dir.display(), "locked task directory");
                Ok(TaskDirLock {
                    task_id: task_id.to_owned(),
                    dir,
                    file,
                    held: self.held.clone(),
                })
            }
            Err(e) => {
                lock_held(&self.held).remove(task_id);
                Err(e)
            }
        }
    }

    /// Removes every task directory nobody holds the lock of, returning their ids. Held
    /// directories are skipped, not waited for.
    pub fn cleanup(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for task_id in self.task_ids()? {
            if lock_held(&self.held).contains(&task_id) {
                continue;
            }
            let dir = self.app_dir.join(&task_id);
            match try_lock_file(&dir) {
                Ok(file) => {
                    // Deleted while locked, so no one can start using it half-way.
                    fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
                    drop(file);
                    tracing::info!(task = %task_id, dir = %dir.display(), "removed unused task directory");
                    removed.push(task_id);
                }
                Err(StoreError::DirectoryLocked { .. }) => {
                    tracing::debug!(task = %task_id, "task directory in use, not cleaned");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Deletes all state of a task (stores and checkpoint), keeping the directory and its
    /// lock file, as done when local state cannot be trusted (for example after a crash
    /// under exactly-once). Works while this state directory holds the lock; otherwise
    /// takes it for the duration, failing with [`StoreError::DirectoryLocked`] if another
    /// handle holds it.
    pub fn wipe(&self, task_id: &str) -> Result<()> {
        let dir = self.task_dir(task_id)?;
        let _temporary = if lock_held(&self.held).contains(task_id) {
            None
        } else {
            Some(self.lock(task_id)?)
        };
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            if entry.file_name() == LOCK_FILE_NAME {
                continue;
            }
            let path = entry.path();
            let is_dir = entry
                .file_type()
                .map_err(|e| StoreError::io(&path, e))?
                .is_dir();
            let removed = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| StoreError::io(&path, e))?;
        }
        tracing::info!(task = task_id, dir = %dir.display(), "wiped task state");
        Ok(())
    }
}

/// Opens the lock file of `dir` and takes its exclusive lock without waiting.
fn try_lock_file(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::DirectoryLocked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

/// The exclusive lock of one task directory; released when dropped.
#[derive(Debug)]
pub struct TaskDirLock {
    task_id: String,
    dir: PathBuf,
    file: File,
    held: Held,
}

impl TaskDirLock {
    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The locked task directory, where the task's stores are opened.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The task's `.checkpoint` file.
    pub fn checkpoint(&self) -> OffsetCheckpoint {
        OffsetCheckpoint::in_dir(&self.dir)
    }
}

impl Drop for TaskDirLock {
    fn drop(&mut self) {
        if let Err(e) = FileExt::unlock(&self.file) {
            tracing::warn!(task = %self.task_id, error = %e, "could not release task directory lock");
        }
        lock_held(&self.held).remove(&self.task_id);
        tracing::debug!(task = %self.task_id, "unlocked task directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir() -> (tempfile::TempDir, StateDirectory) {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDirectory::new(root.path(), "my-app").unwrap();
        (root, dir)
    }

    #[test]
    fn task_dirs_live_under_the_application_dir() {
        let (root, dir) = state_dir();
        let task = dir.task_dir("0_1").unwrap();
        assert_eq!(task, root.path().join("my-app").join("0_1"));
        assert!(task.is_dir());
        dir.task_dir("1_0").unwrap();
        assert_eq!(dir.task_ids().unwrap(), vec!["0_1", "1_0"]);
        for bad in ["", "..", ".hidden", "a/b", "a b"] {
            assert!(matches!(
                dir.task_dir(bad),
                Err(StoreError::InvalidArgument(_))
            ));
        }
        assert!(StateDirectory::new(root.path(), "../escape").is_err());
    }

    #[test]
    fn locking_twice_from_one_state_directory_fails_clearly() {
        let (_root, dir) = state_dir();
        let lock = dir.lock("0_0").unwrap();
        assert_eq!(lock.task_id(), "0_0");
        assert!(matches!(
            dir.lock("0_0"),
            Err(StoreError::LockAlreadyHeld { .. })
        ));
        assert!(matches!(
            dir.clone().lock("0_0"),
            Err(StoreError::LockAlreadyHeld { .. })
        ));
        drop(lock);
        let _again = dir.lock("0_0").unwrap();
    }

    #[test]
    fn two_handles_in_one_process_exclude_each_other() {
        let (root, first) = state_dir();
        let second = StateDirectory::new(root.path(), "my-app").unwrap();
        let lock = first.lock("0_0").unwrap();
        assert!(matches!(
            second.lock("0_0"),
            Err(StoreError::DirectoryLocked { .. })
        ));
        let _other_task = second.lock("0_1").unwrap();
        drop(lock);
        let _now_second = second.lock("0_0").unwrap();
        assert!(matches!(
            first.lock("0_0"),
            Err(StoreError::DirectoryLocked { .. })
        ));
    }

    /// `flock(1)` (util-linux) is on every Linux system: the check never skips there.
    #[cfg(target_os = "linux")]
    #[test]
    fn another_process_cannot_take_the_lock() {
        use std::process::Command;

        let version = Command::new("flock")
            .arg("--version")
            .output()
            .expect("`flock` (util-linux) runs on every Linux system");
        assert!(version.status.success(), "{version:?}");
        let (_root, dir) = state_dir();
        let lock = dir.lock("0_0").unwrap();
        let lock_file = lock.dir().join(LOCK_FILE_NAME);
        let other = Command::new("flock")
            .args(["--nonblock", "--conflict-exit-code", "75"])
            .arg(&lock_file)
            .arg("true")
            .status()
            .unwrap();
        assert_eq!(other.code(), Some(75));
        drop(lock);
        let other = Command::new("flock")
            .arg("--nonblock")
            .arg(&lock_file)
            .arg("true")
            .status()
            .unwrap();
        assert!(other.success());
    }

    #[test]
    fn cleanup_removes_only_unlocked_task_dirs() {
        let (root, dir) = state_dir();
        let other_handle = StateDirectory::new(root.path(), "my-app").unwrap();
        let _mine = dir.lock("0_0").unwrap();
        let _theirs = other_handle.lock("0_1").unwrap();
        let idle = dir.task_dir("0_2").unwrap();
        fs::write(idle.join("data"), b"x").unwrap();
        dir.task_dir("1_0").unwrap();

        assert_eq!(dir.cleanup().unwrap(), vec!["0_2", "1_0"]);
        assert_eq!(dir.task_ids().unwrap(), vec!["0_0", "0_1"]);
        assert!(!idle.exists());
    }

    #[test]
    fn wipe_keeps_the_directory_and_its_lock() {
        let (root, dir) = state_dir();
        let lock = dir.lock("0_0").unwrap();
        fs::create_dir_all(lock.dir().join("rocksdb").join("store")).unwrap();
        lock.checkpoint()
            .write(
                &[(crate::TopicPartition::new("t", 0), 5)]
                    .into_iter()
                    .collect(),
            )
            .unwrap();
        dir.wipe("0_0").unwrap();
        let left: Vec<_> = fs::read_dir(lock.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(LOCK_FILE_NAME)]);
        assert!(lock.checkpoint().read().unwrap().is_empty());

        // Without the lock, wipe takes it; when someone else holds it, wipe refuses.
        drop(lock);
        dir.wipe("0_0").unwrap();
        let other_handle = StateDirectory::new(root.path(), "my-app").unwrap();
        let _theirs = other_handle.lock("0_0").unwrap();
        assert!(matches!(
            dir.wipe("0_0"),
            Err(StoreError::DirectoryLocked { .. })
        ));
    }
}
