//! A GstStructure view of the pose metadata, for applications that cannot link Rust code
//! (C, Python with PyGObject). It is a `GstCustomMeta` named [`STRUCTURE_META_NAME`] whose
//! structure `recognizer/pose` holds `n-persons` (uint), `inferred` (boolean: the pose model ran
//! on this frame; the persons of a skipped frame are the tracker's predictions) and `json`
//! (string: the `persons` array of the frame's JSON form, see [`crate::FrameRecord`]). Python:
//!
//! ```python
//! meta = buffer.get_custom_meta("RecognizerPoseStructure")
//! persons = json.loads(meta.get_structure().get_string("json"))
//! ```
//!
//! It is a snapshot: attach it (element `posemetaexport`) after the elements that fill the
//! metadata and after any resizing (it is tagged `video` + `size` without a scale transform, so
//! `videoscale` drops it rather than keep stale coordinates).

use crate::{FrameRecord, PoseMeta};

/// Name of the custom meta.
pub const STRUCTURE_META_NAME: &str = "RecognizerPoseStructure";
/// Name of its structure.
pub const STRUCTURE_NAME: &str = "recognizer/pose";

fn register_structure_meta() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another copy of this crate (application and plugin) may have registered it already.
        if !gst::meta::CustomMeta::is_registered(STRUCTURE_META_NAME) {
            gst::meta::CustomMeta::register(STRUCTURE_META_NAME, &["video", "size"]);
        }
    });
}

/// Adds (or refreshes) the structure view of the buffer's [`PoseMeta`]; returns the number of
/// persons exported, or `None` when the buffer carries no pose metadata.
pub fn export_structure(buffer: &mut gst::BufferRef) -> Option<usize> {
    buffer.meta::<PoseMeta>()?;
    let record = FrameRecord::from_buffer("", 0, buffer, 0, 0);
    let (records, inferred) = (record.persons, record.inferred == Some(true));
    let json = serde_json::to_string(&records).expect("person records always serialise");
    register_structure_meta();
    let mut meta = match gst::meta::CustomMeta::from_mut_buffer(buffer, STRUCTURE_META_NAME) {
        Ok(existing) => existing,
        Err(_) => gst::meta::CustomMeta::add(buffer, STRUCTURE_META_NAME).ok()?,
    };
    let s = meta.mut_structure();
    s.set_name(STRUCTURE_NAME);
    s.set("n-persons", records.len() as u32);
    s.set("inferred", inferred);
    s.set("json", json);
    Some(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypoint, NUM_KEYPOINTS, Person, PoseMetaFlags, Track, TrackState};

    #[test]
    fn structure_holds_the_persons_json() {
        gst::init().unwrap();
        let mut p = Person::new(
            [1.0, 2.0, 3.0, 4.0],
            0.5,
            [Keypoint::default(); NUM_KEYPOINTS],
        );
        p.set_track(Some(Track {
            id: 9,
            state: TrackState::New,
            age: 0,
        }));
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        assert_eq!(export_structure(b), None);
        PoseMeta::add(b, &[p], PoseMetaFlags::INFERRED);
        assert_eq!(export_structure(b), Some(1));
        assert_eq!(export_structure(b), Some(1));
        let meta = gst::meta::CustomMeta::from_buffer(b, STRUCTURE_META_NAME).unwrap();
        let s = meta.structure();
        assert_eq!(s.name(), STRUCTURE_NAME);
        assert_eq!(s.get::<u32>("n-persons").unwrap(), 1);
        assert!(s.get::<bool>("inferred").unwrap());
        let v: serde_json::Value = serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap();
        assert_eq!(v[0]["track_id"], 9);
        assert_eq!(v[0]["track_state"], "new");
        assert_eq!(v[0]["track_age"], 0);
        assert_eq!(v[0]["predicted"], false);
        assert_eq!(
            b.iter_meta::<gst::Meta>().count(),
            2,
            "the pose meta and one structure view"
        );
    }
}
