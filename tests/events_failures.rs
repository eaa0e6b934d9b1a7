//! eventsink's local sinks when the system fails them: a full disk under the events file, the
//! events directory or file removed while running, standard output closed by its reader.

#[path = "support/events_feed.rs"]
mod feed;
#[path = "support/events_frames.rs"]
mod frames;
#[path = "support/events_spool.rs"]
mod spool;
#[path = "support/events.rs"]
mod support;

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use feed::*;
use frames::*;
use spool::*;
use support::*;

/// Every line of a JSON Lines file parsed; panics naming the line that is not JSON.
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a partial line",
        path.display()
    );
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: line '{l}' is not JSON: {e}", path.display()))
        })
        .collect()
}

/// A tmpfs of 64 KiB mounted for one test (the test runs as root), unmounted at the end.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }

    /// Fills the disk and frees `room` bytes again.
    fn fill_leaving(&self, room: u64) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn events_file_stays_valid_after_a_full_disk() {
    let dir = temp_dir("events-disk-full");
    let disk = SmallDisk::mount(&dir.join("small"));
    let location = disk.0.join("events.jsonl");
    let spool = dir.join("spool");
    // The webhook is down: every event also waits in the spool, on another disk.
    let down = format!("http://127.0.0.1:{}/events", free_port());
    let props = format!(
        "labels=falling location={} webhook-url={down} spool-dir={} retry-initial-ms=1000 flush-timeout-ms=0",
        location.display(),
        spool.display()
    );
    let filler = disk.fill_leaving(3 * 4096 + 100);
    let mut feed = Feed::new(&props);
    feed.play().unwrap();
    // About 1.5 KB an event: the disk is full after some 8.
    feed.push_falls(1..=40);
    let error = feed.finish().expect_err("a full disk is an element error");
    println!("{error}");
    assert!(error.contains(&location.display().to_string()), "{error}");
    let generated = feed.events();
    feed.stop();
    let written = json_lines(&location);
    assert!(
        !written.is_empty() && (written.len() as u64) < generated,
        "{} of {generated} events written",
        written.len()
    );
    assert_eq!(
        spool_files(&spool.join("webhook")) as u64,
        generated,
        "every event generated is in the spool, also the one the file could not take"
    );

    // Space is freed; the next run appends good events after the good ones.
    std::fs::remove_file(&filler).unwrap();
    let mut feed = Feed::new(&props);
    feed.play().unwrap();
    feed.push_falls(101..=103);
    let messages = feed.finish().unwrap();
    feed.stop();
    let after = json_lines(&location);
    assert_eq!(after.len(), written.len() + 3);
    assert_eq!(after[..written.len()], written[..]);
    assert_eq!(after[written.len()..], messages.json()[..]);
    let validator = schema();
    for event in &after {
        assert_valid(&validator, event);
    }
}

#[test]
fn events_directory_removed_while_running_is_an_error() {
    let dir = temp_dir("events-dir-removed");
    let events_dir = dir.join("events");
    std::fs::create_dir(&events_dir).unwrap();
    let location = events_dir.join("events.jsonl");
    let mut feed = Feed::new(&format!("labels=falling location={}", location.display()));
    feed.play().unwrap();
    feed.push_falls(1..=2);
    feed.wait_events(2);
    std::fs::remove_dir_all(&events_dir).unwrap();
    feed.push_falls(3..=4);
    let error = feed
        .finish()
        .expect_err("events must not go into a removed directory");
    println!("{error}");
    assert!(
        error.contains(&location.display().to_string()) && error.contains("removed"),
        "{error}"
    );
}

#[test]
fn events_file_removed_while_running_is_reopened() {
    let dir = temp_dir("events-file-removed");
    let location = dir.join("events.jsonl");
    let mut feed = Feed::new(&format!("labels=falling location={}", location.display()));
    feed.play().unwrap();
    feed.push_falls(1..=2);
    feed.wait_events(2);
    // As a log rotation by renaming does.
    std::fs::rename(&location, dir.join("events.jsonl.old")).unwrap();
    feed.push_falls(3..=5);
    let messages = feed.finish().unwrap();
    feed.stop();
    assert_eq!(messages.ids().len(), 5);
    let json = messages.json();
    assert_eq!(json_lines(&dir.join("events.jsonl.old")), json[..2]);
    assert_eq!(json_lines(&location), json[2..]);
    assert!(
        messages
            .warnings
            .iter()
            .any(|w| w.contains("reopened") && w.contains("events.jsonl")),
        "{:?}",
        messages.warnings
    );
}

/// Child process of the tests below.
#[test]
fn child_process() {
    if std::env::var("EVENTSINK_TEST_CHILD").as_deref() != Ok("stdout-closed") {
        return;
    }
    // As in a C program such as gst-launch-1.0 (Rust programs ignore SIGPIPE).
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let dir = PathBuf::from(std::env::var("CHILD_DIR").unwrap());
    let mut feed = Feed::new(&format!(
        "labels=falling stdout=true location={}",
        dir.join("events.jsonl").display()
    ));
    feed.play().unwrap();
    feed.push(&[falling(1)]);
    wait_until("the reader to go away", || dir.join("closed").exists());
    feed.push_falls(2..=4);
    let result = match feed.finish() {
        Ok(m) => format!("ok {}\n{}", m.events.len(), m.warnings.join("\n")),
        Err(e) => format!("error {e}"),
    };
    feed.stop();
    std::fs::write(dir.join("result"), result).unwrap();
    // Before the test harness writes to the closed standard output.
    std::process::exit(0);
}

#[test]
fn stdout_closed_by_its_reader() {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir("events-stdout-closed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EVENTSINK_TEST_CHILD", "stdout-closed")
        .env("CHILD_DIR", &*dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read up to the first event, then close the pipe.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while ids_in_lines(&line).is_empty() {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "no event printed");
    }
    drop(reader);
    std::fs::write(dir.join("closed"), "").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        None,
        "the process was killed by signal {:?}",
        status.signal()
    );
    assert!(status.success(), "{status}");
    let result = std::fs::read_to_string(dir.join("result")).unwrap();
    println!("{result}");
    assert!(result.starts_with("ok 4"), "{result}");
    assert!(
        result.contains("stdout") && result.contains("closed"),
        "a warning says that standard output is closed: {result}"
    );
    assert_eq!(json_lines(&dir.join("events.jsonl")).len(), 4);
}
