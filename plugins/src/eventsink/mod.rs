//! `eventsink`: the end of a Recognizer pipeline.
//!
//! - Events: rules (`recognizer_core::events`; from properties and/or a TOML/JSON rules file)
//!   turn the action labels of tracked persons into one event per onset
//!   (`record::EventRecord`, `schemas/event.schema.json`), delivered to any combination of a
//!   JSON Lines file (fsync per event, size rotation), stdout, `recognizer-event` bus messages,
//!   an HTTP(S) webhook and MQTT (QoS 1). The network sinks go through a durable spool
//!   (`spool-dir`) and a worker thread each (`delivery`): at-least-once, retried with backoff,
//!   replayed at start; what can never be delivered moves to `SPOOL-DIR/dead-letter/` (see
//!   README, "eventsink events").
//! - Frame log (`frames-location`, module `frame_log`): the per-frame metadata as JSON Lines,
//!   one object per frame in the form of `recognizer_meta::FrameRecord`:
//!
//! ```text
//! {"stream":"cam0","frame":12,"pts_ns":400000000,"width":1920,"height":1080,"persons":[...]}
//! ```
//!
//! ```text
//! gst-launch-1.0 ... ! rtmopose model-file=pose.onnx ! eventsink stream=cam0 frames-location=frames.jsonl
//! gst-launch-1.0 ... ! stgcnclassify ... ! eventsink labels=falling event-type=fall min-frames=5 \
//!     location=events.jsonl mqtt-url=mqtt://127.0.0.1 spool-dir=/var/spool/recognizer/cam0
//! ```

use gst::glib;
use gst::prelude::*;

mod delivery;
mod frame_log;
mod imp;
mod jsonl;
mod mqtt;
mod network;
mod record;
mod rules;
mod settings;
mod spool;
mod stdout;
mod tls;
mod webhook;

glib::wrapper! {
    pub struct EventSink(ObjectSubclass<imp::EventSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // gst-inspect-1.0 lists the values of the enum properties.
    settings::LabelMatch::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    settings::ZoneAnchor::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "eventsink",
        gst::Rank::NONE,
        EventSink::static_type(),
    )
}
