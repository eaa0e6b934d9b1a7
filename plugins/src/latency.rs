//! The processing latency an element adds in live pipelines, for the elements that hold a
//! frame back while a model runs (`rtmopose`, `stgcnclassify`): reported in latency queries so
//! that `sync=true` sinks do not drop their frames as late.

use std::{sync::Mutex, time::Duration};

use gst::prelude::*;

pub struct ProcessingLatency(Mutex<gst::ClockTime>);

impl Default for ProcessingLatency {
    fn default() -> Self {
        Self(Mutex::new(gst::ClockTime::ZERO))
    }
}

impl ProcessingLatency {
    /// Until a frame has been timed, twice the model's warm-up call (its set-up costs
    /// included) bounds the latency.
    pub fn start_from_warm_up(&self, warm_up: Duration) {
        *self.0.lock().unwrap() = gst::ClockTime::from_nseconds(warm_up.as_nanos() as u64 * 2);
    }

    /// Raises the latency when a frame took longer than it allows (a quarter more than the
    /// slowest frame so far, so that jitter fits in), and tells the pipeline to ask again.
    pub fn raise(&self, element: &gst::Element, cat: gst::DebugCategory, took: Duration) {
        let needed = gst::ClockTime::from_nseconds(took.as_nanos() as u64 * 5 / 4);
        let mut latency = self.0.lock().unwrap();
        if needed > *latency {
            *latency = needed;
            drop(latency);
            gst::debug!(cat, obj = element, "processing latency now {needed}");
            let _ = element.post_message(gst::message::Latency::builder().src(element).build());
        }
    }

    /// Answers a latency query with upstream's answer (`live`, `min`, `max`) plus this
    /// element's latency on live pipelines.
    pub fn answer(
        &self,
        element: &gst::Element,
        cat: gst::DebugCategory,
        query: &mut gst::query::Latency,
        (live, min, max): (bool, gst::ClockTime, Option<gst::ClockTime>),
    ) {
        let ours = *self.0.lock().unwrap();
        gst::debug!(
            cat,
            obj = element,
            "latency: upstream {min}-{max:?}, ours {ours}"
        );
        if live {
            query.set(true, min + ours, max.map(|m| m + ours));
        } else {
            query.set(false, min, max);
        }
    }
}
