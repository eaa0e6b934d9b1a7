//! The JSON form of a frame's metadata: one object per frame, as `eventsink` writes its frame
//! log (JSON Lines) and `posemetaexport` its `json` field (the `persons` array alone):
//!
//! ```json
//! {"stream":"cam0","frame":12,"pts_ns":400000000,"width":1920,"height":1080,"inferred":true,
//!  "persons":[
//!   {"bbox":[x1,y1,x2,y2],"score":0.93,"keypoints":[[x,y,score], ...17],"predicted":false,
//!    "track_id":3,"track_state":"tracked","track_age":40,
//!    "action":{"label":"fall","class_id":1,"score":0.91,"window":48,"window_end_pts_ns":400000000},
//!    "scores":{"normal":0.09,"fall":0.91}}]}
//! ```
//!
//! Coordinates are pixels of the frame the metadata is attached to; keypoints are in COCO-17
//! order ([`crate::KEYPOINT_NAMES`]); `track_id`, `track_state`, `track_age`, `action` and
//! `scores` are `null` when absent. `inferred` is `true` when the pose model ran on the frame,
//! `false` when it skipped it (persons then are the tracker's predictions, `predicted: true`),
//! and `null` when the buffer carried no pose metadata at all (it never passed `rtmopose`, or an
//! element such as `videoflip` dropped the meta): `"persons": []` means nobody only when
//! `inferred` is `true`. The keys added in layout version 2 (`inferred`, `predicted`,
//! `track_age`, `window`, `window_end_pts_ns`, `scores`) are optional when reading, so older logs
//! still parse. The JSON Schema is `schemas/frame.schema.json`; the README's "Reading the
//! metadata" section documents the same for users.

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};

use crate::{NUM_KEYPOINTS, Person, PersonFlags, PoseMeta, PoseMetaFlags};

/// The action recognised for a person (`stgcnclassify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub label: String,
    /// Index of the label among the classifier's classes.
    pub class_id: u32,
    /// Probability of the class, 0 to 1.
    pub score: f32,
    /// Frames in the classified window (0 in logs written before it was recorded).
    #[serde(default)]
    pub window: u32,
    /// Timestamp of the window's last frame in nanoseconds, `None` when unknown.
    #[serde(default)]
    pub window_end_pts_ns: Option<u64>,
}

/// Every class probability of a classification, as a JSON object `{"label": p, ...}` in the
/// classifier's class order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoresRecord(pub Vec<(String, f32)>);

impl ScoresRecord {
    /// The probability of `label`, if present.
    pub fn get(&self, label: &str) -> Option<f32> {
        self.0.iter().find(|(l, _)| l == label).map(|(_, p)| *p)
    }
}

impl Serialize for ScoresRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (label, p) in &self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ScoresRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScoresVisitor;
        impl<'de> Visitor<'de> for ScoresVisitor {
            type Value = ScoresRecord;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of class label to probability")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut scores = Vec::new();
                while let Some(entry) = map.next_entry::<String, f32>()? {
                    scores.push(entry);
                }
                Ok(ScoresRecord(scores))
            }
        }
        deserializer.deserialize_map(ScoresVisitor)
    }
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
    /// Box and keypoints were predicted by the tracker on a frame the pose model skipped.
    #[serde(default)]
    pub predicted: bool,
    /// Per-stream track id from 1 (`bytetrack`), `None` without a track.
    pub track_id: Option<u64>,
    /// `new`, `tracked` or `lost`.
    pub track_state: Option<String>,
    /// Frames since the track started, `None` without a track.
    #[serde(default)]
    pub track_age: Option<u32>,
    pub action: Option<ActionRecord>,
    /// Every class probability of the latest classification (`stgcnclassify`), also when the
    /// action was dropped by its `score-threshold`; `None` when not classified.
    #[serde(default)]
    pub scores: Option<ScoresRecord>,
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
    /// Whether the pose model ran on this frame; `None` when the buffer carried no pose
    /// metadata (it never passed `rtmopose`, or an element dropped the meta).
    #[serde(default)]
    pub inferred: Option<bool>,
    pub persons: Vec<PersonRecord>,
}

impl From<&Person> for PersonRecord {
    fn from(p: &Person) -> Self {
        let track = p.track();
        Self {
            bbox: p.bbox,
            score: p.score,
            keypoints: p.keypoint_rows().to_vec(),
            predicted: p.flags.contains(PersonFlags::PREDICTED),
            track_id: track.map(|t| t.id),
            track_state: track.map(|t| t.state.as_str().to_string()),
            track_age: track.map(|t| t.age),
            action: p.action().map(|a| ActionRecord {
                label: a.label,
                class_id: a.class_id,
                score: a.score,
                window: a.window,
                window_end_pts_ns: a.window_end_pts,
            }),
            scores: (!p.class_scores().is_empty()).then(|| {
                ScoresRecord(
                    p.class_scores()
                        .iter()
                        .map(|s| (s.label().to_string(), s.score))
                        .collect(),
                )
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
    /// A frame with these persons; `inferred` is `None` (set it, or use [`Self::from_buffer`]).
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
            inferred: None,
            persons: persons.iter().map(PersonRecord::from).collect(),
        }
    }

    /// The frame record of a buffer: its [`PoseMeta`]'s persons and INFERRED flag, or no
    /// persons and `inferred: None` without the meta.
    pub fn from_buffer(
        stream: &str,
        frame: u64,
        buffer: &gst::BufferRef,
        width: u32,
        height: u32,
    ) -> Self {
        let pts_ns = buffer.pts().map(|t| t.nseconds());
        match buffer.meta::<PoseMeta>() {
            Some(meta) => Self {
                inferred: Some(meta.frame_flags().contains(PoseMetaFlags::INFERRED)),
                ..Self::new(stream, frame, pts_ns, width, height, meta.persons())
            },
            None => Self::new(stream, frame, pts_ns, width, height, &[]),
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
    use crate::{Action, ClassScore, Keypoint, Track, TrackState};

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
        assert!(v["persons"][0]["track_age"].is_null());
        assert!(v["persons"][0]["action"].is_null());
        assert!(v["persons"][0]["scores"].is_null());
        assert_eq!(v["persons"][0]["predicted"], false);
        assert!(v["inferred"].is_null());
        p.set_track(Some(Track {
            id: 3,
            state: TrackState::Tracked,
            age: 4,
        }));
        let line = FrameRecord::new("cam0", 13, None, 1920, 1080, &[p]).to_json_line();
        let back: FrameRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.persons[0].track_id, Some(3));
        assert_eq!(back.persons[0].track_state.as_deref(), Some("tracked"));
        assert_eq!(back.persons[0].track_age, Some(4));
        assert_eq!(
            back.persons[0].to_person().unwrap().bbox,
            [1.0, 2.0, 3.0, 4.0]
        );
    }

    #[test]
    fn frame_flags_predicted_window_and_scores_in_class_order() {
        gst::init().unwrap();
        let mut p = Person::new([0.0; 4], 0.5, [Keypoint::default(); NUM_KEYPOINTS]);
        p.flags.insert(PersonFlags::PREDICTED);
        p.set_action(Some(&Action {
            class_id: 0,
            label: "walk".into(),
            score: 0.6,
            window: 30,
            window_end_pts: Some(7),
        }));
        // Not in alphabetical order: the JSON object keeps the class order.
        p.set_class_scores(&[
            ClassScore::new(0, "walk", 0.6),
            ClassScore::new(1, "fall", 0.3),
            ClassScore::new(2, "aaa", 0.1),
        ]);
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(40));
        let record = FrameRecord::from_buffer("cam", 1, b, 64, 48);
        assert_eq!((record.inferred, record.pts_ns), (None, Some(40)));
        assert!(record.persons.is_empty());
        PoseMeta::add(b, &[p], PoseMetaFlags::empty());
        let line = FrameRecord::from_buffer("cam", 1, b, 64, 48).to_json_line();
        assert!(
            line.contains(r#""scores":{"walk":0.6,"fall":0.3,"aaa":0.1}"#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["inferred"], false);
        assert_eq!(v["persons"][0]["predicted"], true);
        assert_eq!(v["persons"][0]["action"]["window"], 30);
        assert_eq!(v["persons"][0]["action"]["window_end_pts_ns"], 7);
        let back: FrameRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back.persons[0].scores.as_ref().unwrap().get("fall"),
            Some(0.3)
        );
        b.meta_mut::<PoseMeta>()
            .unwrap()
            .set_frame_flags(PoseMetaFlags::INFERRED);
        assert_eq!(
            FrameRecord::from_buffer("cam", 1, b, 64, 48).inferred,
            Some(true)
        );
    }

    #[test]
    fn logs_without_the_version_2_keys_still_parse() {
        let old = r#"{"stream":"c","frame":0,"pts_ns":null,"width":2,"height":2,"persons":[
            {"bbox":[0,0,1,1],"score":0.5,"keypoints":[],"track_id":1,"track_state":"new",
             "action":{"label":"fall","class_id":1,"score":0.9}}]}"#;
        let back: FrameRecord = serde_json::from_str(old).unwrap();
        assert_eq!(back.inferred, None);
        assert!(!back.persons[0].predicted);
        assert_eq!(back.persons[0].scores, None);
        assert_eq!(back.persons[0].action.as_ref().unwrap().window, 0);
    }
}
