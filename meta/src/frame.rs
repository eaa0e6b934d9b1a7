//! The JSON form of a frame's metadata: one object per frame, as `eventsink` writes its frame
//! log (JSON Lines) and `posemetaexport` its `json` field (the `persons` array alone):
//!
//! ```json
//! {"stream":"cam0","frame":12,"pts_ns":400000000,"width":1920,"height":1080,"persons":[
//!   {"bbox":[x1,y1,x2,y2],"score":0.93,"keypoints":[[x,y,score], ...17],
//!    "track_id":3,"track_state":"tracked","action":{"label":"fall","class_id":1,"score":0.91}}]}
//! ```
//!
//! Coordinates are pixels of the frame the metadata is attached to; keypoints are in COCO-17
//! order ([`crate::KEYPOINT_NAMES`]); `track_id`, `track_state` and `action` are `null` when
//! absent. The README's "Reading the metadata" section documents the same for users.

use serde::{Deserialize, Serialize};

use crate::{NUM_KEYPOINTS, Person};

/// The action recognised for a person (`stgcnclassify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub label: String,
    /// Index of the label among the classifier's classes.
    pub class_id: u32,
    /// Probability of the class, 0 to 1.
    pub score: f32,
}

/// One person of a frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f32; 4],
    /// Detection score, 0 to 1.
    pub score: f32,
    /// 17 `[x, y, score]` rows in COCO-17 order.
    pub keypoints: Vec<[f32; 3]>,
    /// Per-stream track id from 1 (`bytetrack`), `None` without a track.
    pub track_id: Option<u64>,
    /// `new`, `tracked` or `lost`.
    pub track_state: Option<String>,
    pub action: Option<ActionRecord>,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// The `stream` name of the `eventsink` that wrote it.
    pub stream: String,
    /// Frame number from 0 in that stream.
    pub frame: u64,
    /// Presentation timestamp in nanoseconds, `None` when the buffer had none.
    pub pts_ns: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub persons: Vec<PersonRecord>,
}

impl From<&Person> for PersonRecord {
    fn from(p: &Person) -> Self {
        let track = p.track();
        Self {
            bbox: p.bbox,
            score: p.score,
            keypoints: p.keypoint_rows().to_vec(),
            track_id: track.map(|t| t.id),
            track_state: track.map(|t| t.state.as_str().to_string()),
            action: p.action().map(|a| ActionRecord {
                label: a.label,
                class_id: a.class_id,
                score: a.score,
            }),
        }
    }
}

impl PersonRecord {
    /// The box, score and keypoints as a [`Person`] (track and action are not restored).
    pub fn to_person(&self) -> Option<Person> {
        let rows: &[[f32; 3]; NUM_KEYPOINTS] = self.keypoints.as_slice().try_into().ok()?;
        Some(Person::from_rows(self.bbox, self.score, rows))
    }
}

impl FrameRecord {
    pub fn new(
        stream: &str,
        frame: u64,
        pts_ns: Option<u64>,
        width: u32,
        height: u32,
        persons: &[Person],
    ) -> Self {
        Self {
            stream: stream.to_string(),
            frame,
            pts_ns,
            width,
            height,
            persons: persons.iter().map(PersonRecord::from).collect(),
        }
    }

    /// One line of JSON, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("frame records always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypoint, Track, TrackState};

    #[test]
    fn json_has_the_documented_fields_and_nulls() {
        let mut p = Person::new(
            [1.0, 2.0, 3.0, 4.0],
            0.5,
            [Keypoint {
                x: 1.0,
                y: 2.0,
                score: 0.25,
            }; NUM_KEYPOINTS],
        );
        let line = FrameRecord::new("cam0", 12, Some(400_000_000), 1920, 1080, &[p]).to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["stream"], "cam0");
        assert_eq!(v["frame"], 12);
        assert_eq!(v["pts_ns"], 400_000_000u64);
        assert_eq!(v["persons"][0]["keypoints"].as_array().unwrap().len(), 17);
        assert!(v["persons"][0]["track_id"].is_null());
        assert!(v["persons"][0]["action"].is_null());
        p.set_track(Some(Track {
            id: 3,
            state: TrackState::Tracked,
            age: 4,
        }));
        let line = FrameRecord::new("cam0", 13, None, 1920, 1080, &[p]).to_json_line();
        let back: FrameRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.persons[0].track_id, Some(3));
        assert_eq!(back.persons[0].track_state.as_deref(), Some("tracked"));
        assert_eq!(
            back.persons[0].to_person().unwrap().bbox,
            [1.0, 2.0, 3.0, 4.0]
        );
    }
}
