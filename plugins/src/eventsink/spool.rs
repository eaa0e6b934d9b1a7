//! The durable on-disk spool of a network sink: one file per undelivered event.
//!
//! `SPOOL-DIR/<sink>/<seq:020>-<event_id>.json` holds the event's JSON line. A file is written
//! to a temporary name, fsynced, renamed into place and the directory fsynced before delivery is
//! attempted; it is removed only once the sink acknowledged the event (HTTP 2xx, MQTT PUBACK).
//! Sequence numbers continue from the highest one found, so the order of the names is the order
//! of generation, across restarts: older (replayed) events go first.
//!
//! What can never be delivered is moved, under the same name, to
//! `SPOOL-DIR/dead-letter/<sink>/`: nothing is deleted without an acknowledgement.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

/// Folder of the events that cannot be delivered, beside the sinks' folders.
pub const DEAD_LETTER: &str = "dead-letter";

#[derive(Debug)]
pub struct Spool {
    name: &'static str,
    dir: PathBuf,
    dead_letter: PathBuf,
    next_seq: AtomicU64,
}

impl Spool {
    /// Opens (creating) `root/name`; returns the spool and the events already in it, oldest
    /// first. Leftover temporary files of an interrupted write are removed.
    pub fn open(root: &Path, name: &'static str) -> io::Result<(Self, Vec<PathBuf>)> {
        let dir = root.join(name);
        fs::create_dir_all(&dir)?;
        let mut existing = Vec::new();
        let mut max_seq = 0u64;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file_name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            } else if let Some(seq) = Self::seq_of(file_name) {
                max_seq = max_seq.max(seq);
                existing.push(path);
            }
        }
        existing.sort();
        Ok((
            Self {
                name,
                dir,
                dead_letter: root.join(DEAD_LETTER).join(name),
                next_seq: AtomicU64::new(max_seq + 1),
            },
            existing,
        ))
    }

    fn seq_of(name: &str) -> Option<u64> {
        let stem = name.strip_suffix(".json")?;
        let (seq, _id) = stem.split_once('-')?;
        (seq.len() == 20).then(|| seq.parse().ok()).flatten()
    }

    /// The sink's name (`webhook`, `mqtt`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dead_letter_dir(&self) -> &Path {
        &self.dead_letter
    }

    /// Writes one event durably and returns its file.
    pub fn write(&self, event_id: &str, json: &str) -> io::Result<PathBuf> {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("{seq:020}-{event_id}.json"));
        let tmp = path.with_extension("json.tmp");
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(json.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map(|_| path)
    }

    /// Removes a delivered event (a missing file is fine).
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves an event that cannot be delivered to the dead-letter folder; returns its new path.
    pub fn dead_letter(&self, path: &Path) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dead_letter)?;
        let target = self
            .dead_letter
            .join(path.file_name().unwrap_or(path.as_os_str()));
        fs::rename(path, &target)?;
        File::open(&self.dead_letter)?.sync_all()?;
        Ok(target)
    }

    /// Number of event files in a directory now.
    pub fn count(dir: &Path) -> usize {
        fs::read_dir(dir)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_str().and_then(Self::seq_of).is_some())
                    .count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_survives_reopening() {
        let root =
            std::env::temp_dir().join(format!("recognizer-spool-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("webhook");
        let (spool, existing) = Spool::open(&root, "webhook").unwrap();
        assert!(existing.is_empty());
        let a = spool.write("aaaa", "{\"a\":1}").unwrap();
        let b = spool.write("bbbb", "{\"b\":2}").unwrap();
        fs::write(dir.join("00000000000000000099-cccc.json.tmp"), "partial").unwrap();
        drop(spool);
        let (spool, existing) = Spool::open(&root, "webhook").unwrap();
        assert_eq!(existing, vec![a.clone(), b.clone()]);
        let c = spool.write("cccc", "{}").unwrap();
        assert!(c > b, "{c:?} after {b:?}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "{\"a\":1}\n");
        Spool::remove(&a).unwrap();
        Spool::remove(&a).unwrap();
        assert_eq!(Spool::count(&dir), 2);
        let moved = spool.dead_letter(&b).unwrap();
        assert_eq!(
            moved,
            root.join("dead-letter/webhook")
                .join(b.file_name().unwrap())
        );
        assert_eq!(fs::read_to_string(moved).unwrap(), "{\"b\":2}\n");
        assert_eq!(Spool::count(&dir), 1);
        fs::remove_dir_all(&root).unwrap();
    }
}
