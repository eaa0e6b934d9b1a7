//! The event record (`schemas/event.schema.json`), its bus message form and its wall-clock time.

use std::time::{SystemTime, UNIX_EPOCH};

use recognizer_core::events::Onset;
use recognizer_meta::Person;
use serde::{Deserialize, Serialize};

/// Name of the element messages posted for each event.
pub const MESSAGE_NAME: &str = "recognizer-event";

/// One event, as written to every sink (one line of JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// UUID v4, generated once; the same in every sink and on every retry.
    pub event_id: String,
    /// The rule's name (event type), e.g. `fall`.
    #[serde(rename = "type")]
    pub kind: String,
    pub stream: String,
    pub track_id: u64,
    /// The action label that triggered the rule, on the confirming frame (the class, for a rule
    /// on a class probability).
    pub label: String,
    /// The classifier's class id of that label.
    pub class_id: u32,
    /// Highest action score (class probability) over the onset run.
    pub score: f32,
    /// PTS of the first frame of the run (ns).
    pub start_pts_ns: u64,
    /// PTS of the frame that confirmed the onset (ns).
    pub end_pts_ns: u64,
    /// When the event was generated, RFC 3339 UTC with milliseconds.
    pub wallclock: String,
    /// `[x1, y1, x2, y2]` of the person on the confirming frame, pixels.
    pub bbox: [f32; 4],
    /// COCO-17 `[x, y, score]`, pixels, on the confirming frame.
    pub keypoints: Vec<[f32; 3]>,
    /// Frame size the coordinates refer to (0 when unknown).
    pub width: u32,
    pub height: u32,
}

impl EventRecord {
    /// The event of a rule's onset (`kind`: the rule's name) confirmed on `person`, with a new
    /// id.
    pub fn new(
        onset: Onset,
        kind: String,
        stream: &str,
        person: &Person,
        width: u32,
        height: u32,
        wallclock: &str,
    ) -> Self {
        Self {
            event_id: new_event_id(),
            kind,
            stream: stream.to_string(),
            track_id: onset.track_id,
            // The class the onset names: the action's, or the class of a class-probability rule.
            class_id: person
                .class_scores()
                .iter()
                .find(|s| s.label() == onset.label)
                .map(|s| s.class_id)
                .or_else(|| person.action().map(|a| a.class_id))
                .unwrap_or(0),
            label: onset.label,
            score: onset.score,
            start_pts_ns: onset.start_pts_ns,
            end_pts_ns: onset.end_pts_ns,
            wallclock: wallclock.to_string(),
            bbox: person.bbox,
            keypoints: person
                .keypoints
                .iter()
                .map(|k| [k.x, k.y, k.score])
                .collect(),
            width,
            height,
        }
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("event records always serialise")
    }

    /// The element message posted for the event; `json` is its line.
    pub fn bus_message(&self, json: &str) -> gst::Structure {
        gst::Structure::builder(MESSAGE_NAME)
            .field("event-id", &self.event_id)
            .field("type", &self.kind)
            .field("stream", &self.stream)
            .field("track-id", self.track_id)
            .field("label", &self.label)
            .field("class-id", self.class_id)
            .field("score", self.score as f64)
            .field("start-pts", self.start_pts_ns)
            .field("end-pts", self.end_pts_ns)
            .field("wallclock", &self.wallclock)
            .field("bbox", gst::Array::new(self.bbox.iter().map(|v| *v as f64)))
            .field("json", json)
            .build()
    }
}

/// A new random event id (UUID v4, lower-case hyphenated).
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 in UTC with milliseconds: `2026-11-26T09:18:24.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59.000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(4_107_542_400)),
            "2100-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn event_ids_are_uuid_v4() {
        let id = new_event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, new_event_id());
    }
}
