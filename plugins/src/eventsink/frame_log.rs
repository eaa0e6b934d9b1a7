//! The frame log (`frames-location`): the per-frame metadata as JSON Lines, one object per
//! frame in the form of `recognizer_meta::FrameRecord`, independent of the event rules.

use std::{io, path::Path, sync::LazyLock};

use recognizer_meta::FrameRecord;

use super::jsonl::{JsonLinesFile, Notice, Options};

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "eventsink-frames",
        gst::DebugColorFlags::empty(),
        Some("eventsink: frame log"),
    )
});

pub struct FrameLog {
    file: JsonLinesFile,
}

impl FrameLog {
    /// Opens the log: appended to or truncated, rotated by size; lines are buffered. Returns
    /// the size of a partial last line that was cut off (see `jsonl`).
    pub fn open(
        path: &Path,
        append: bool,
        max_size_bytes: u64,
        max_files: u32,
    ) -> io::Result<(Self, u64)> {
        let options = Options {
            append,
            max_size_bytes,
            max_files,
            durable: false,
        };
        let (file, cut) = JsonLinesFile::open(path, options)?;
        gst::info!(
            CAT,
            "writing frames to {} ({})",
            path.display(),
            if append { "appending" } else { "truncated" }
        );
        Ok((Self { file }, cut))
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Logs one frame: its persons and whether pose ran on it (no persons and `inferred: null`
    /// when the buffer carries no pose metadata).
    pub fn write(
        &mut self,
        stream: &str,
        frame: u64,
        buffer: &gst::BufferRef,
        width: u32,
        height: u32,
    ) -> io::Result<Option<Notice>> {
        let record = FrameRecord::from_buffer(stream, frame, buffer, width, height);
        gst::trace!(
            CAT,
            "frame {frame}: {} persons, inferred {:?}",
            record.persons.len(),
            record.inferred
        );
        self.file.write_line(&record.to_json_line())
    }

    /// Writes what is buffered (at EOS and when stopping).
    pub fn flush(&mut self) -> io::Result<Option<Notice>> {
        self.file.flush()
    }
}
