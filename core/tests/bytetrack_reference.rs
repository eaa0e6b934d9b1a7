//! Equivalence of the Rust ByteTrack with the official code path (Python reference in
//! `tools/bytetrack_reference/`): every fixture in `tests/fixtures/bytetrack/*.json` (inputs and
//! the reference's per-frame outputs) is replayed through `ByteTracker`; ids and their order,
//! the detection each track was updated with, and the lost list must be identical, boxes within
//! 1e-3 px. `BYTETRACK_FIXTURE_DIR` overrides the folder.

use std::path::{Path, PathBuf};

use recognizer_core::bytetrack::{ByteTrackConfig, ByteTracker, Detection, TrackState};
use serde_json::Value;

const BOX_TOL: f64 = 1e-3;
const SCORE_TOL: f64 = 1e-6;

fn fixture_dir() -> PathBuf {
    match std::env::var_os("BYTETRACK_FIXTURE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bytetrack"),
    }
}

fn config_of(seq: &Value) -> ByteTrackConfig {
    let mut cfg = ByteTrackConfig::default();
    if let Some(fr) = seq.get("frame_rate").and_then(Value::as_f64) {
        cfg.frame_rate = fr;
    }
    if let Some(c) = seq.get("config") {
        if let Some(v) = c.get("track_thresh").and_then(Value::as_f64) {
            cfg.track_thresh = v;
        }
        if let Some(v) = c.get("track_buffer").and_then(Value::as_u64) {
            cfg.track_buffer = v as u32;
        }
        if let Some(v) = c.get("match_thresh").and_then(Value::as_f64) {
            cfg.match_thresh = v;
        }
        if let Some(v) = c.get("mot20").and_then(Value::as_bool) {
            cfg.mot20 = v;
        }
    }
    cfg
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[derive(Default)]
struct Stats {
    sequences: usize,
    frames: usize,
    predict_frames: usize,
    track_outputs: usize,
    max_box_diff: f64,
    max_score_diff: f64,
}

/// Replays one sequence; returns the first mismatch, if any.
fn check_sequence(name: &str, seq: &Value, stats: &mut Stats) -> Result<(), String> {
    let cfg = config_of(seq);
    let frames = seq["frames"].as_array().ok_or("no frames")?;
    let expected = seq["expected"].as_array().ok_or("no expected")?;
    let expected_lost = seq.get("expected_lost").and_then(Value::as_array);
    if frames.len() != expected.len() {
        return Err(format!(
            "{} frames but {} expected rows",
            frames.len(),
            expected.len()
        ));
    }
    let mut tracker = ByteTracker::new(cfg);
    for (fi, (frame, exp)) in frames.iter().zip(expected).enumerate() {
        let got = if frame.is_null() {
            stats.predict_frames += 1;
            tracker.predict_only()
        } else {
            let dets: Vec<Detection> = frame
                .as_array()
                .ok_or("frame is neither a list nor null")?
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    let v = f64s(d);
                    Detection::new([v[0], v[1], v[2], v[3]], v[4], k)
                })
                .collect();
            tracker.update(&dets)
        };
        let exp = exp.as_array().ok_or("expected row is not a list")?;
        let got_ids: Vec<u64> = got.iter().map(|t| t.id).collect();
        let exp_ids: Vec<u64> = exp.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        if got_ids != exp_ids {
            return Err(format!(
                "{name} frame {fi}: ids {got_ids:?}, reference {exp_ids:?}"
            ));
        }
        for (g, e) in got.iter().zip(exp) {
            let eb = f64s(&e["tlbr"]);
            for k in 0..4 {
                let d = (g.tlbr[k] - eb[k]).abs();
                stats.max_box_diff = stats.max_box_diff.max(d);
                if d.is_nan() || d > BOX_TOL {
                    return Err(format!(
                        "{name} frame {fi} id {}: tlbr {:?}, reference {:?}",
                        g.id, g.tlbr, eb
                    ));
                }
            }
            let ds = (g.score - e["score"].as_f64().unwrap()).abs();
            stats.max_score_diff = stats.max_score_diff.max(ds);
            if ds.is_nan() || ds > SCORE_TOL {
                return Err(format!(
                    "{name} frame {fi} id {}: score {} vs {}",
                    g.id, g.score, e["score"]
                ));
            }
            let edet = e.get("det").and_then(Value::as_u64).map(|v| v as usize);
            if g.det_index != edet {
                return Err(format!(
                    "{name} frame {fi} id {}: detection {:?}, reference {:?}",
                    g.id, g.det_index, edet
                ));
            }
            if g.state != TrackState::Tracked || !g.is_activated {
                return Err(format!(
                    "{name} frame {fi} id {}: output state {:?}",
                    g.id, g.state
                ));
            }
        }
        if let Some(lost) = expected_lost {
            let got_lost: Vec<u64> = tracker.lost_tracks().iter().map(|t| t.id).collect();
            let exp_lost: Vec<u64> = lost[fi]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            if got_lost != exp_lost {
                return Err(format!(
                    "{name} frame {fi}: lost {got_lost:?}, reference {exp_lost:?}"
                ));
            }
        }
        stats.frames += 1;
        stats.track_outputs += got.len();
    }
    stats.sequences += 1;
    Ok(())
}

#[test]
fn bytetrack_matches_reference_fixtures() {
    let dir = fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixture folder {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let seq: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
        let name = seq
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| path.file_stem().unwrap().to_string_lossy().into_owned());
        let before = stats.frames;
        match check_sequence(&name, &seq, &mut stats) {
            Ok(()) => println!("{name}: {} frames identical", stats.frames - before),
            Err(e) => {
                println!("{name}: MISMATCH {e}");
                failures.push(e);
            }
        }
    }
    println!(
        "bytetrack reference: {} sequences, {} frames compared ({} predict-only), {} track outputs, \
         max box diff {:.3e} px, max score diff {:.3e}",
        stats.sequences,
        stats.frames,
        stats.predict_frames,
        stats.track_outputs,
        stats.max_box_diff,
        stats.max_score_diff
    );
    assert!(
        failures.is_empty(),
        "{} sequence(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if std::env::var_os("BYTETRACK_FIXTURE_DIR").is_none() {
        // The committed set: issue 3 asks for at least 5 sequences and 1,000 frames.
        assert!(
            stats.sequences >= 5,
            "only {} fixture sequences in {}",
            stats.sequences,
            dir.display()
        );
        assert!(stats.frames >= 1000, "only {} fixture frames", stats.frames);
    }
}

/// `linear_assignment` / `lapjv` against `lap.lapjv` (lapx) on the cases in
/// `tests/fixtures/bytetrack/assignment/lapjv_cases.json` (made by
/// `tools/bytetrack_reference/make_lapjv_cases.py`): identical row -> column maps required.
/// Also with ties (several optima), the same optimum must be picked.
#[test]
fn assignment_matches_lapx() {
    use recognizer_core::bytetrack::assignment::{lapjv, linear_assignment};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bytetrack/assignment/lapjv_cases.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut per_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (k, c) in doc["cases"].as_array().unwrap().iter().enumerate() {
        let kind = c["kind"].as_str().unwrap().to_owned();
        let rows = c["rows"].as_u64().unwrap() as usize;
        let cols = c["cols"].as_u64().unwrap() as usize;
        let cost = f64s(&c["cost"]);
        let want_x: Vec<i64> = c["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let (got_x, total_got, total_want) = match c["cost_limit"].as_f64() {
            Some(limit) => {
                let a = linear_assignment(rows, cols, &cost, limit);
                let mut x = vec![-1i64; rows];
                for &(i, j) in &a.matches {
                    x[i] = j as i64;
                }
                // lapjv's objective: matched costs + limit/2 per unmatched row and column.
                let objective = |x: &[i64]| {
                    let matched = x.iter().filter(|&&j| j >= 0).count();
                    let sum: f64 = x
                        .iter()
                        .enumerate()
                        .filter(|(_, j)| **j >= 0)
                        .map(|(i, &j)| cost[i * cols + j as usize])
                        .sum();
                    sum + limit / 2.0 * ((rows - matched) + (cols - matched)) as f64
                };
                (x.clone(), objective(&x), objective(&want_x))
            }
            None => {
                let (x, _) = lapjv(rows, &cost);
                let x: Vec<i64> = x.iter().map(|&j| j as i64).collect();
                let total = |x: &[i64]| -> f64 {
                    x.iter()
                        .enumerate()
                        .map(|(i, &j)| cost[i * cols + j as usize])
                        .sum()
                };
                (x.clone(), total(&x), total(&want_x))
            }
        };
        assert!(
            (total_got - total_want).abs() < 1e-9,
            "case {k} ({kind}): objective {total_got} vs lap {total_want}"
        );
        let same = got_x == want_x;
        // With distinct costs the optimum is unique; with ties the JV phases and lapx's
        // transposition (rows > cols) pick the same optimum as lap as well.
        assert!(same, "case {k} ({kind}): {got_x:?} vs lap {want_x:?}");
        let e = per_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += same as usize;
    }
    for (kind, (n, same)) in &per_kind {
        println!("lapjv vs lap ({kind}): {same}/{n} identical, all optimal");
    }
}
