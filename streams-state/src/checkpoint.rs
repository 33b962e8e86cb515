//! [`OffsetCheckpoint`]: the `.checkpoint` file of a task directory, recording up to which
//! changelog offset each store's local state is known to be complete.
//!
//! The format is Kafka's, so a state directory can be inspected with the same tools:
//!
//! ```text
//! 0                                  <- version
//! 2                                  <- number of entries
//! app-counts-changelog 0 1042        <- topic partition offset
//! app-sessions-changelog 0 17
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::topic_partition::TopicPartition;

/// Name of the checkpoint file inside a task directory.
pub const CHECKPOINT_FILE_NAME: &str = ".checkpoint";

const VERSION: i32 = 0;

/// Reads and atomically writes one checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCheckpoint {
    path: PathBuf,
}

impl OffsetCheckpoint {
    /// The checkpoint file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OffsetCheckpoint { path: path.into() }
    }

    /// The `.checkpoint` file of a task directory.
    pub fn in_dir(task_dir: &Path) -> Self {
        OffsetCheckpoint::new(task_dir.join(CHECKPOINT_FILE_NAME))
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    /// Replaces the file with `offsets`: writes a temporary file, syncs it and renames it
    /// over the old one, so a crash leaves either the old or the new checkpoint. An empty
    /// map deletes the file instead, as Kafka does. Negative offsets are rejected.
    pub fn write(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        if let Some((tp, offset)) = offsets.iter().find(|(_, o)| **o < 0) {
            return Err(StoreError::InvalidArgument(format!(
                "cannot checkpoint negative offset {offset} for {tp}"
            )));
        }
        if offsets.is_empty() {
            return self.delete();
        }
        let mut text = format!("{VERSION}\n{}\n", offsets.len());
        for (tp, offset) in offsets {
            if tp.topic.is_empty() || tp.topic.contains(char::is_whitespace) {
                return Err(StoreError::InvalidArgument(format!(
                    "topic name `{}` cannot be written to a checkpoint",
                    tp.topic
                )));
            }
            text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
        }

        let temp = self.temp_path();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StoreError::io(path, e)
        };
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(text.as_bytes()).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        drop(file);
        fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        // Make the rename itself durable; not every platform can sync a directory.
        if let Some(dir) = self.path.parent() {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        tracing::trace!(path = %self.path.display(), entries = offsets.len(), "wrote checkpoint");
        Ok(())
    }

    /// The offsets in the file; empty when there is no file. Entries with negative offsets
    /// are skipped with a warning; anything else unexpected is
    /// [`StoreError::CorruptCheckpoint`].
    pub fn read(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(self.corrupt("file is not valid UTF-8"))
            }
            Err(e) => return Err(StoreError::io(&self.path, e)),
        };
        self.parse(&text)
    }

    /// Removes the file if it exists.
    pub fn delete(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::CorruptCheckpoint {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn parse(&self, text: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut lines = text.lines();
        let version = lines.next().ok_or_else(|| self.corrupt("empty file"))?;
        match version.trim().parse::<i32>() {
            Ok(VERSION) => {}
            Ok(other) => return Err(self.corrupt(format!("unknown version {other}"))),
            Err(_) => return Err(self.corrupt(format!("bad version line `{version}`"))),
        }
        let count_line = lines
            .next()
            .ok_or_else(|| self.corrupt("missing entry count"))?;
        let expected: usize = count_line
            .trim()
            .parse()
            .map_err(|_| self.corrupt(format!("bad entry count `{count_line}`")))?;

        let mut offsets = BTreeMap::new();
        let mut found = 0;
        for line in lines.by_ref().take(expected) {
            found += 1;
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [topic, partition, offset] = fields[..] else {
                return Err(self.corrupt(format!("malformed line `{line}`")));
            };
            let partition: i32 = partition
                .parse()
                .map_err(|_| self.corrupt(format!("bad partition in `{line}`")))?;
            let offset: i64 = offset
                .parse()
                .map_err(|_| self.corrupt(format!("bad offset in `{line}`")))?;
            let tp = TopicPartition::new(topic, partition);
            if offset < 0 {
                tracing::warn!(path = %self.path.display(), %tp, offset, "ignoring negative checkpointed offset");
                continue;
            }
            offsets.insert(tp, offset);
        }
        if found != expected {
            return Err(self.corrupt(format!(
                "expected {expected} entries but found only {found}"
            )));
        }
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(self.corrupt(format!("more than the {expected} entries announced")));
        }
        Ok(offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        entries
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(*t, *p), *o))
            .collect()
    }

    #[test]
    fn round_trips_in_kafka_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = OffsetCheckpoint::in_dir(dir.path());
        assert_eq!(checkpoint.path(), dir.path().join(".checkpoint"));
        assert!(checkpoint.read().unwrap().is_empty());

        let written = offsets(&[("app-b-changelog", 1, 7), ("app-a-changelog", 0, 1042)]);
        checkpoint.write(&written).unwrap();
        assert_eq!(checkpoint.read().unwrap(), written);
        assert_eq!(
            fs::read_to_string(checkpoint.path()).unwrap(),
            "0\n2\napp-a-changelog 0 1042\napp-b-changelog 1 7\n"
        );
        assert!(!checkpoint.temp_path().exists());

        // Overwriting replaces every entry.
        let next = offsets(&[("app-a-changelog", 0, 2000)]);
        checkpoint.write(&next).unwrap();
        assert_eq!(checkpoint.read().unwrap(), next);
    }

    #[test]
    fn reads_files_written_by_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = OffsetCheckpoint::in_dir(dir.path());
        fs::write(checkpoint.path(), "0\n2\ntopic-x 3 15\ntopic-y 0 -1\n").unwrap();
        assert_eq!(checkpoint.read().unwrap(), offsets(&[("topic-x", 3, 15)]));
    }

    #[test]
    fn empty_map_deletes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = OffsetCheckpoint::in_dir(dir.path());
        checkpoint.write(&offsets(&[("t", 0, 1)])).unwrap();
        checkpoint.write(&BTreeMap::new()).unwrap();
        assert!(!checkpoint.path().exists());
        checkpoint.delete().unwrap();
    }

    #[test]
    fn rejects_negative_offsets_and_unwritable_topics() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = OffsetCheckpoint::in_dir(dir.path());
        assert!(matches!(
            checkpoint.write(&offsets(&[("t", 0, -1)])),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            checkpoint.write(&offsets(&[("a b", 0, 1)])),
            Err(StoreError::InvalidArgument(_))
        ));
    }

    #[test]
    fn corrupt_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = OffsetCheckpoint::in_dir(dir.path());
        for text in [
            "",
            "1\n0\n",
            "zero\n0\n",
            "0\n",
            "0\nmany\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt 0\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0 y\n",
            "0\n1\nt 0 1\nu 0 2\n",
        ] {
            fs::write(checkpoint.path(), text).unwrap();
            assert!(
                matches!(checkpoint.read(), Err(StoreError::CorruptCheckpoint { .. })),
                "accepted {text:?}"
            );
        }
        fs::write(checkpoint.path(), [0xFF, 0xFE, b'\n']).unwrap();
        assert!(matches!(
            checkpoint.read(),
            Err(StoreError::CorruptCheckpoint { .. })
        ));
    }
}
