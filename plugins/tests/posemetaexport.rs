//! `posemetaexport` on synthetic frames carrying `PoseMeta` persons: the GstStructure view that C
//! and Python applications read holds the persons in the frame log's JSON form, is refreshed
//! rather than duplicated, and is absent where there is no pose metadata. It says whether pose
//! ran on the frame and carries the honest per-person fields (predicted, track age, the action's
//! window, every class probability).

mod support;

use recognizer_meta::{
    Action, ClassScore, PersonFlags, PersonRecord, PoseMetaFlags, STRUCTURE_META_NAME,
    STRUCTURE_NAME, TrackState,
};
use support::{frame, harness, messages, person, persons};

const CAPS: &str = "video/x-raw,format=RGB,width=64,height=48,framerate=25/1";
const SIZE: usize = 64 * 48 * 3;

/// `n-persons` and the persons parsed from `json` of the buffer's structure view, if any.
fn structure(buffer: &gst::BufferRef) -> Option<(u32, Vec<PersonRecord>)> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, STRUCTURE_META_NAME).ok()?;
    let s = meta.structure();
    assert_eq!(s.name(), STRUCTURE_NAME);
    let json = s.get::<&str>("json").unwrap();
    Some((
        s.get::<u32>("n-persons").unwrap(),
        serde_json::from_str(json).unwrap(),
    ))
}

/// The structure's `inferred` field, if there is a structure view.
fn inferred(buffer: &gst::BufferRef) -> Option<bool> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, STRUCTURE_META_NAME).ok()?;
    Some(meta.structure().get::<bool>("inferred").unwrap())
}

/// A frame the pose model skipped: `inferred` false, the tracker's person `predicted`.
#[test]
fn skipped_frame_and_predicted_person() {
    let (mut h, _bus) = harness("posemetaexport", &[], CAPS);
    let mut predicted = person([10.0, 5.0, 40.0, 45.0], 0.8, Some(3));
    predicted.flags.insert(PersonFlags::PREDICTED);
    let out = h
        .push_and_pull(frame(SIZE, 0, Some((&[predicted], PoseMetaFlags::empty()))))
        .unwrap();
    assert_eq!(inferred(&out), Some(false));
    let (_, records) = structure(&out).unwrap();
    assert!(records[0].predicted);
}

#[test]
fn structure_view_holds_the_persons() {
    let (mut h, bus) = harness("posemetaexport", &[], CAPS);
    let mut tracked = person([10.0, 5.0, 40.0, 45.0], 0.8, Some(3));
    tracked.set_action(Some(&Action {
        class_id: 1,
        label: "fall".into(),
        score: 0.75,
        window: 48,
        window_end_pts: Some(0),
    }));
    tracked.set_class_scores(&[
        ClassScore::new(0, "normal", 0.25),
        ClassScore::new(1, "fall", 0.75),
    ]);
    let detected = person([1.0, 1.0, 9.0, 20.0], 0.4, None);
    let input = [tracked, detected];
    let out = h
        .push_and_pull(frame(SIZE, 0, Some((&input, PoseMetaFlags::INFERRED))))
        .unwrap();
    assert_eq!(
        persons(&out).as_deref(),
        Some(&input[..]),
        "PoseMeta unchanged"
    );
    let expected: Vec<PersonRecord> = input.iter().map(PersonRecord::from).collect();
    let (n, records) = structure(&out).unwrap();
    assert_eq!((n, &records), (2, &expected));
    assert_eq!(records[0].track_id, Some(3));
    assert_eq!(
        records[0].track_state.as_deref(),
        Some(TrackState::Tracked.as_str())
    );
    assert_eq!(records[0].action.as_ref().unwrap().label, "fall");
    assert_eq!(records[0].action.as_ref().unwrap().window, 48);
    assert_eq!(records[0].track_age, Some(0));
    assert_eq!(records[0].scores.as_ref().unwrap().get("fall"), Some(0.75));
    assert_eq!(
        (records[1].track_id, records[1].action.is_none()),
        (None, true)
    );
    assert_eq!((records[1].track_age, &records[1].scores), (None, &None));
    assert_eq!(inferred(&out), Some(true));

    // Through the element again (a second posemetaexport, or the same buffer later): one view.
    let again = h.push_and_pull(out).unwrap();
    assert_eq!(structure(&again), Some((2, expected)));
    assert_eq!(
        again.iter_meta::<gst::Meta>().count(),
        2,
        "the pose meta and one structure view"
    );
    assert!(messages(&bus, gst::MessageType::Warning).is_empty());
}

#[test]
fn no_view_without_pose_metadata_and_an_empty_one_without_persons() {
    let (mut h, _bus) = harness("posemetaexport", &[], CAPS);
    let out = h.push_and_pull(frame(SIZE, 0, None)).unwrap();
    assert!(structure(&out).is_none());
    let out = h
        .push_and_pull(frame(SIZE, 1, Some((&[], PoseMetaFlags::INFERRED))))
        .unwrap();
    assert_eq!(structure(&out), Some((0, vec![])));
}
