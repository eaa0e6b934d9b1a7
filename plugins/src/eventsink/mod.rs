//! `eventsink`: the end of a Recognizer pipeline. It writes the per-frame metadata as JSON Lines
//! (`frames-location`), one object per frame in the form of `recognizer_meta::FrameRecord`:
//!
//! ```text
//! {"stream":"cam0","frame":12,"pts_ns":400000000,"width":1920,"height":1080,"persons":[...]}
//! ```
//!
//! ```text
//! gst-launch-1.0 ... ! rtmopose model=pose.onnx ! eventsink stream=cam0 frames-location=frames.jsonl
//! ```

use gst::glib;
use gst::prelude::*;

mod config;
mod delivery;
mod imp;
mod jsonl;
mod net;
mod record;
mod spool;

glib::wrapper! {
    pub struct EventSink(ObjectSubclass<imp::EventSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "eventsink", gst::Rank::NONE, EventSink::static_type())
}
