//! eventsink in a pipeline fed by the test: `appsrc ! eventsink`, frames pushed one by one, the
//! bus read to EOS; waits bounded by a hang guard.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use gst::prelude::*;
use recognizer_meta::{Person, PoseMeta, PoseMetaFlags};

use crate::frames::{FRAME_NS, HEIGHT, WIDTH, falling};

/// Hang guard of every wait in these tests (never a performance limit).
pub const GUARD: Duration = Duration::from_secs(120);

/// Waits until `cond` holds; panics naming `what` after the hang guard.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < GUARD, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `appsrc ! eventsink` with frames pushed by the test.
pub struct Feed {
    pub pipeline: gst::Pipeline,
    pub src: gst_app::AppSrc,
    pub sink: gst::Element,
    frame: u64,
}

impl Feed {
    pub fn new(properties: &str) -> Self {
        let description = format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=25/1 \
             ! eventsink name=sink {properties}"
        );
        let pipeline = recognizer::launch(&description);
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline.by_name("sink").unwrap();
        Self {
            pipeline,
            src,
            sink,
            frame: 0,
        }
    }

    /// Starts the pipeline; `Err` with the error message when the element refuses to start.
    pub fn play(&self) -> Result<(), String> {
        match self.pipeline.set_state(gst::State::Playing) {
            Ok(_) => Ok(()),
            Err(_) => Err(self
                .error()
                .unwrap_or_else(|| "state change failed without an error message".into())),
        }
    }

    fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                return Some(format!(
                    "{} | {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
        }
        None
    }

    /// Pushes one frame (PTS = frame number x 40 ms) carrying `persons`.
    pub fn push(&mut self, persons: &[Person]) {
        let mut buffer = gst::Buffer::with_size(1).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(self.frame * FRAME_NS));
            b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
            PoseMeta::add(b, persons, PoseMetaFlags::default());
        }
        self.frame += 1;
        self.src.push_buffer(buffer).expect("pushing a buffer");
    }

    /// Pushes one frame per track in `tracks`, each with that track alone, falling: one event
    /// a frame under a rule on `falling`.
    pub fn push_falls(&mut self, tracks: std::ops::RangeInclusive<u64>) {
        for track in tracks {
            self.push(&[falling(track)]);
        }
    }

    pub fn events(&self) -> u64 {
        self.sink.property::<u64>("events")
    }

    /// Waits until the element has generated `n` events (the pushed frames are processed).
    pub fn wait_events(&self, n: u64) {
        wait_until(&format!("{n} events generated"), || self.events() >= n);
    }

    /// Ends the stream, waits for EOS and returns the bus messages seen (events and warnings).
    pub fn finish(&self) -> Result<Messages, String> {
        self.src.end_of_stream().unwrap();
        let bus = self.pipeline.bus().unwrap();
        let mut out = Messages::default();
        loop {
            let msg = bus
                .timed_pop(gst::ClockTime::from_seconds(GUARD.as_secs()))
                .expect("EOS within the guard");
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(out),
                gst::MessageView::Error(e) => return Err(e.error().to_string()),
                gst::MessageView::Warning(w) => out.warnings.push(format!(
                    "{} | {}",
                    w.error(),
                    w.debug().map(|d| d.to_string()).unwrap_or_default()
                )),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure().filter(|s| s.name() == "recognizer-event") {
                        out.events.push(s.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    pub fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[derive(Default, Debug)]
pub struct Messages {
    pub events: Vec<gst::Structure>,
    pub warnings: Vec<String>,
}

impl Messages {
    /// The `json` field of every event message, parsed.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .map(|s| serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap())
            .collect()
    }

    pub fn ids(&self) -> HashSet<String> {
        self.events
            .iter()
            .map(|s| s.get::<String>("event-id").unwrap())
            .collect()
    }
}

/// Event ids of the JSON lines in `text` (lines that are not events are skipped).
pub fn ids_in_lines(text: &str) -> Vec<String> {
    text.lines()
        // A line may follow other output (e.g. the test harness's "test name ... ").
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l[l.find('{')?..]).ok())
        .filter_map(|v| v.get("event_id").and_then(|i| i.as_str()).map(String::from))
        .collect()
}
