//! The durable on-disk spool of a network sink: one file per undelivered event.
//!
//! `SPOOL-DIR/<sink>/<seq:020>-<event_id>.json` holds the event's JSON line. A file is written
//! to a temporary name, fsynced, renamed into place and the directory fsynced before delivery is
//! attempted; it is removed only once the sink acknowledged the event (HTTP 2xx, MQTT PUBACK).
//! Sequence numbers continue from the highest one found, so the order of the names is the order
//! of generation, across restarts: older (replayed) events go first.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next_seq: AtomicU64,
}

impl Spool {
    /// Opens (creating) the directory; returns the spool and the events already in it, oldest
    /// first. Leftover temporary files of an interrupted write are removed.
    pub fn open(dir: &Path) -> io::Result<(Self, Vec<PathBuf>)> {
        fs::create_dir_all(dir)?;
        let mut existing = Vec::new();
        let mut max_seq = 0u64;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            } else if let Some(seq) = Self::seq_of(name) {
                max_seq = max_seq.max(seq);
                existing.push(path);
            }
        }
        existing.sort();
        Ok((
            Self {
                dir: dir.to_path_buf(),
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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one event durably and returns its file.
    pub fn write(&self, event_id: &str, json: &str) -> io::Result<PathBuf> {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("{seq:020}-{event_id}.json"));
        let tmp = path.with_extension("json.tmp");
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(json.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    /// Removes a delivered event (a missing file is fine).
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Number of event files in the directory now.
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
        let dir =
            std::env::temp_dir().join(format!("recognizer-spool-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (spool, existing) = Spool::open(&dir).unwrap();
        assert!(existing.is_empty());
        let a = spool.write("aaaa", "{\"a\":1}").unwrap();
        let b = spool.write("bbbb", "{\"b\":2}").unwrap();
        fs::write(dir.join("00000000000000000099-cccc.json.tmp"), "partial").unwrap();
        drop(spool);
        let (spool, existing) = Spool::open(&dir).unwrap();
        assert_eq!(existing, vec![a.clone(), b.clone()]);
        let c = spool.write("cccc", "{}").unwrap();
        assert!(c > b, "{c:?} after {b:?}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "{\"a\":1}\n");
        Spool::remove(&a).unwrap();
        Spool::remove(&a).unwrap();
        assert_eq!(Spool::count(&dir), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
