use std::{
    fs::File,
    io::{BufWriter, Write},
    path::PathBuf,
    sync::{LazyLock, Mutex},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::{prelude::*, subclass::prelude::*};
use recognizer_meta::{FrameRecord, PoseMeta};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("eventsink", gst::DebugColorFlags::empty(), Some("Recognizer events and frame log"))
});

const DEFAULT_STREAM: &str = "cam0";

#[derive(Debug, Clone)]
struct Settings {
    stream: String,
    frames_location: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { stream: DEFAULT_STREAM.to_string(), frames_location: None }
    }
}

struct State {
    frames: Option<BufWriter<File>>,
    width: u32,
    height: u32,
    frame_count: u64,
}

#[derive(Default)]
pub struct EventSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for EventSink {
    const NAME: &'static str = "GstEventSink";
    type Type = super::EventSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for EventSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("stream")
                    .nick("Stream")
                    .blurb("Name of the stream (camera), written into every record")
                    .default_value(Some(DEFAULT_STREAM))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("frames-location")
                    .nick("Frames location")
                    .blurb("File to write the per-frame metadata to, one JSON object per line (none: no frame log)")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "stream" => {
                settings.stream = value.get::<Option<String>>().unwrap().unwrap_or_else(|| DEFAULT_STREAM.to_string())
            }
            "frames-location" => {
                settings.frames_location = value.get::<Option<String>>().unwrap().filter(|s| !s.is_empty()).map(PathBuf::from)
            }
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "stream" => settings.stream.to_value(),
            "frames-location" => settings.frames_location.as_ref().map(|p| p.display().to_string()).to_value(),
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A metadata sink consumes as fast as data arrives, like fakesink.
        self.obj().set_sync(false);
    }
}

impl GstObjectImpl for EventSink {}

impl ElementImpl for EventSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Recognizer event sink",
                "Sink/Metadata",
                "Writes per-frame pose, track and action metadata as JSON Lines",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &gst::Caps::new_any()).unwrap()]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for EventSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let frames = match &settings.frames_location {
            None => None,
            Some(path) => {
                let file = File::create(path).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        ("Could not open frames-location '{}' for writing: {}", path.display(), e)
                    )
                })?;
                gst::debug!(CAT, imp = self, "writing frames to {}", path.display());
                Some(BufWriter::new(file))
            }
        };
        *self.state.lock().unwrap() = Some(State { frames, width: 0, height: 0, frame_count: 0 });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(mut state) = self.state.lock().unwrap().take()
            && let Some(mut frames) = state.frames.take()
        {
            frames
                .flush()
                .map_err(|e| gst::error_msg!(gst::ResourceError::Write, ("Could not write the frame log: {}", e)))?;
        }
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        if let Some(s) = caps.structure(0) {
            state.width = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
            state.height = s.get::<i32>("height").unwrap_or(0).max(0) as u32;
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stream = self.settings.lock().unwrap().stream.clone();
        let mut state = self.state.lock().unwrap();
        let Some(state) = state.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let frame = state.frame_count;
        state.frame_count += 1;
        if let Some(frames) = state.frames.as_mut() {
            let persons = buffer.meta::<PoseMeta>().map(|m| m.persons().to_vec()).unwrap_or_default();
            let record =
                FrameRecord::new(&stream, frame, buffer.pts().map(|t| t.nseconds()), state.width, state.height, &persons);
            let written = frames.write_all(record.to_json_line().as_bytes()).and_then(|_| frames.write_all(b"\n"));
            if let Err(e) = written {
                gst::element_imp_error!(self, gst::ResourceError::Write, ("Could not write the frame log: {}", e));
                return Err(gst::FlowError::Error);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        // The frame log is complete on disk at EOS, not only when the pipeline stops.
        if let gst::EventView::Eos(_) = event.view()
            && let Some(state) = self.state.lock().unwrap().as_mut()
            && let Some(frames) = state.frames.as_mut()
            && let Err(e) = frames.flush()
        {
            gst::element_imp_error!(self, gst::ResourceError::Write, ("Could not write the frame log: {}", e));
        }
        self.parent_event(event)
    }
}
