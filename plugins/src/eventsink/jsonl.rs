//! A JSON Lines file that only ever holds whole lines: the events file and the frame log.
//!
//! - Appended (or truncated at open, for a frame log without `frames-append`), rotated by size
//!   (`path.1` newest .. `path.N`).
//! - A write that fails (a full disk) is cut back to the last whole line, so the file never
//!   ends in a partial line that the next run would glue a good line onto; a partial last line
//!   found at open (a crash in the middle of a write) is cut off and reported.
//! - Before each write the file at `path` is checked to still be the one open: when it was
//!   removed or renamed (by hand or by a log rotation), a new file is opened at `path`; when
//!   its directory is gone, the write is an error. Lines never go into an unlinked file.
//! - `durable`: each line is written and fsynced at once (events); otherwise lines are
//!   buffered and written in blocks (frame log), and by `flush`.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Buffered lines are written once they pass this size.
const BUFFER_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Keep what the file holds (else truncate it at open).
    pub append: bool,
    /// Rotate before a write that would pass this size (0: never).
    pub max_size_bytes: u64,
    /// Rotated files kept.
    pub max_files: u32,
    /// Write and fsync each line at once.
    pub durable: bool,
}

/// Something the caller should report (as a warning).
#[derive(Debug, PartialEq)]
pub enum Notice {
    /// The file at the path was not the open one any more; a new one was opened.
    Reopened,
}

pub struct JsonLinesFile {
    path: PathBuf,
    file: File,
    /// Device and inode of the open file.
    identity: (u64, u64),
    /// Bytes in the file (whole lines).
    size: u64,
    buffer: Vec<u8>,
    options: Options,
}

fn identity(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Cuts a partial last line off `file`; returns how many bytes were removed.
fn cut_partial_line(file: &mut File, size: u64) -> io::Result<u64> {
    let mut end = size;
    let mut chunk = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < size {
                file.set_len(keep)?;
            }
            return Ok(size - keep);
        }
        end = start;
    }
    file.set_len(0)?;
    Ok(size)
}

impl JsonLinesFile {
    /// Opens `path` (created if missing); returns the file and the size of a partial last line
    /// that was cut off (0 when the file ended in a whole line).
    pub fn open(path: &Path, options: Options) -> io::Result<(Self, u64)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut size = file.metadata()?.len();
        if !options.append && size > 0 {
            file.set_len(0)?;
            size = 0;
        }
        let cut = cut_partial_line(&mut file, size)?;
        let identity = identity(&file.metadata()?);
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                identity,
                size: size - cut,
                buffer: Vec::new(),
                options: Options {
                    max_files: options.max_files.max(1),
                    ..options
                },
            },
            cut,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)?;
        let meta = self.file.metadata()?;
        self.identity = identity(&meta);
        self.size = meta.len();
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let _ = fs::remove_file(self.rotated(self.options.max_files));
        for n in (1..self.options.max_files).rev() {
            match fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, self.rotated(1))?;
        self.reopen()?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Makes sure that `path` is still the open file (see the module's doc).
    fn check_path(&mut self) -> io::Result<Option<Notice>> {
        match fs::metadata(&self.path) {
            Ok(m) if identity(&m) == self.identity => Ok(None),
            Ok(_) | Err(_) => match self.reopen() {
                Ok(()) => Ok(Some(Notice::Reopened)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                    e.kind(),
                    "the file and its directory were removed while writing",
                )),
                Err(e) => Err(e),
            },
        }
    }

    /// Writes the buffered lines; on failure the file is cut back to its last whole line and
    /// the lines stay buffered.
    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.buffer).and_then(|_| {
            if self.options.durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Appends one line (without its newline).
    pub fn write_line(&mut self, line: &str) -> io::Result<Option<Notice>> {
        let notice = self.check_path()?;
        let len = line.len() as u64 + 1;
        let total = self.size + self.buffer.len() as u64;
        if self.options.max_size_bytes > 0 && total > 0 && total + len > self.options.max_size_bytes
        {
            self.write_buffer()?;
            self.rotate()?;
        }
        self.buffer.extend_from_slice(line.as_bytes());
        self.buffer.push(b'\n');
        if self.options.durable || self.buffer.len() >= BUFFER_BYTES {
            self.write_buffer()?;
        }
        Ok(notice)
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> io::Result<Option<Notice>> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let notice = self.check_path()?;
        self.write_buffer()?;
        Ok(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recognizer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const EVENTS: Options = Options {
        append: true,
        max_size_bytes: 25,
        max_files: 2,
        durable: true,
    };

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = test_dir("jsonl-rotation");
        let path = dir.join("events.jsonl");
        let mut f = JsonLinesFile::open(&path, EVENTS).unwrap().0;
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
        let no_rotation = Options {
            max_size_bytes: 0,
            ..EVENTS
        };
        let mut f = JsonLinesFile::open(&path, no_rotation).unwrap().0;
        f.write_line("x").unwrap();
        assert_eq!(read(path.clone()), "{\"n\":6}\nx\n");
        // Without append, the file starts empty.
        let truncate = Options {
            append: false,
            durable: false,
            ..no_rotation
        };
        let mut f = JsonLinesFile::open(&path, truncate).unwrap().0;
        f.write_line("y").unwrap();
        assert_eq!(read(path.clone()), "");
        f.flush().unwrap();
        assert_eq!(read(path), "y\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_partial_last_line_is_cut_off_at_open() {
        let dir = test_dir("jsonl-partial");
        let path = dir.join("events.jsonl");
        fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let (mut f, cut) = JsonLinesFile::open(&path, EVENTS).unwrap();
        assert_eq!(cut, 5);
        f.write_line("{\"c\":3}").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"c\":3}\n");
        fs::write(&path, "no newline at all").unwrap();
        assert_eq!(JsonLinesFile::open(&path, EVENTS).unwrap().1, 17);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_removed_file_is_reopened_and_a_removed_directory_is_an_error() {
        let dir = test_dir("jsonl-removed");
        let path = dir.join("frames.jsonl");
        let options = Options {
            max_size_bytes: 0,
            durable: false,
            ..EVENTS
        };
        let mut f = JsonLinesFile::open(&path, options).unwrap().0;
        assert_eq!(f.write_line("1").unwrap(), None);
        f.flush().unwrap();
        fs::remove_file(&path).unwrap();
        assert_eq!(f.write_line("2").unwrap(), Some(Notice::Reopened));
        f.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "2\n");
        fs::remove_dir_all(&dir).unwrap();
        let err = f.write_line("3").unwrap_err();
        assert!(err.to_string().contains("removed"), "{err}");
    }
}
