//! The events file: JSON Lines, appended, fsynced after each event, rotated by size.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

pub struct EventsFile {
    path: PathBuf,
    file: File,
    size: u64,
    /// Rotate before a write that would pass this size (0: never).
    max_size: u64,
    /// Rotated files kept: `path.1` (newest) .. `path.N`.
    max_files: u32,
}

impl EventsFile {
    /// Opens `path` for appending (created if missing).
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let _ = fs::remove_file(self.rotated(self.max_files));
        for n in (1..self.max_files).rev() {
            match fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, self.rotated(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Appends one line and fsyncs it.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.size += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir =
            std::env::temp_dir().join(format!("recognizer-jsonl-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let mut f = EventsFile::open(&path, 25, 2).unwrap();
        for i in 0..7 {
            f.write_line(&format!("{{\"n\":{i}}}")).unwrap(); // 8 bytes a line with the newline
        }
        drop(f);
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "{\"n\":6}\n");
        assert_eq!(
            read(dir.join("events.jsonl.1")),
            "{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n"
        );
        assert_eq!(
            read(dir.join("events.jsonl.2")),
            "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
        );
        assert!(!dir.join("events.jsonl.3").exists());
        // Reopening appends.
        let mut f = EventsFile::open(&path, 0, 2).unwrap();
        f.write_line("x").unwrap();
        assert_eq!(read(path), "{\"n\":6}\nx\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
