//! Event rules: turn per-frame, per-track action labels into one event per onset.
//!
//! The engine is fed one frame at a time ([`RuleEngine::process`]) with the tracked persons of
//! that frame (track id, action label and score, box) and returns the onsets that the frame
//! confirmed. It is plain Rust without GStreamer types; the `eventsink` element wraps it.
//!
//! # Semantics (per rule and per track)
//!
//! A person *matches* a rule on a frame when all of these hold:
//! - it has a track id (persons without one are ignored: rules need `bytetrack` upstream);
//! - for a rule on the action ([`ScoreSource::Action`], the default): its action label matches one
//!   of the rule's labels ([`LabelMatch::Exact`] compares the whole label,
//!   [`LabelMatch::Contains`] looks for the rule's label as a substring, `fall` matching `falling`
//!   and `fallen`; both ignore ASCII case) and its action score is at least `min_score`;
//! - for a rule on a class probability ([`ScoreSource::Class`]): the probability of a class whose
//!   label matches one of the rule's labels is at least `min_score`, whether or not that class is
//!   the action (the argmax). The run's score is that probability (the highest of the matching
//!   classes) and the onset's label that class;
//! - with a zone: the anchor point of its box ([`Anchor::BottomCentre`], the feet, by default;
//!   or [`Anchor::Centre`]), in coordinates normalised by the frame size (0..1), lies inside the
//!   zone polygon (even-odd rule; a frame of unknown size never matches a zone rule).
//!
//! States of a (rule, track) pair, starting idle:
//! - **idle** -> **pending** on a matching frame; the run's start is that frame's pts.
//! - **pending**: each further matching frame extends the run; any frame on which the track does
//!   not match (other label, low score, outside the zone, or absent) ends the run (back to idle):
//!   the minimum duration counts *consecutive* matching frames. The run becomes an **onset** on the
//!   frame where it has at least `min_frames` matching frames *and* spans at least
//!   `min_duration_ns` from its first to the current frame's pts. That frame emits exactly one
//!   [`Onset`]: `start_pts_ns` = first frame of the run, `end_pts_ns` = the confirming frame,
//!   `score` = the highest score of the run.
//! - **active** (after the onset): matching frames extend the episode (no new event). The episode
//!   ends on the first non-matching frame whose pts is at least `cooldown_ns` after the last
//!   matching frame; only then can a new run (and a new event) begin for that track and rule.
//!   So a label that flickers (matching, not matching, matching ...) with gaps shorter than the
//!   cooldown stays one episode and gives one event; `cooldown_ns = 0` ends the episode on the
//!   first non-matching frame.
//!
//! Time is the frame's presentation timestamp in nanoseconds, as given by the caller; it should
//! not go backwards ([`RuleEngine::reset`] after a seek or flush).

use std::collections::{HashMap, HashSet};

/// How a rule's labels are compared with the action label (ASCII case ignored in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelMatch {
    /// The whole label: `falling` matches `falling` and `Falling`, not `falling down`.
    #[default]
    Exact,
    /// Substring: `fall` matches `falling`, `fallen`, `falling down`.
    Contains,
}

impl LabelMatch {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Contains => "contains",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Self::Exact),
            "contains" => Some(Self::Contains),
            _ => None,
        }
    }

    /// Whether the action `label` matches the rule label `pattern`.
    pub fn matches(self, pattern: &str, label: &str) -> bool {
        match self {
            Self::Exact => label.eq_ignore_ascii_case(pattern),
            Self::Contains => {
                let (l, p) = (label.as_bytes(), pattern.as_bytes());
                p.is_empty() || l.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
            }
        }
    }
}

/// What a rule compares with its labels and `min_score`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScoreSource {
    /// The person's action: its label (the classifier's argmax) and score.
    #[default]
    Action,
    /// The probability of the named classes, whatever the action: an installer's operating point
    /// (`class=fall min-score=0.3` fires on a fall probability of 0.3 although `normal` wins).
    Class,
}

/// The point of a person's box that must lie inside a zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Anchor {
    /// Middle of the box's bottom edge (where the feet are): `((x1+x2)/2, y2)`.
    #[default]
    BottomCentre,
    /// Centre of the box: `((x1+x2)/2, (y1+y2)/2)`.
    Centre,
}

impl Anchor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BottomCentre => "bottom-centre",
            Self::Centre => "centre",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bottom-centre" | "bottom-center" => Some(Self::BottomCentre),
            "centre" | "center" => Some(Self::Centre),
            _ => None,
        }
    }

    /// The anchor point of `bbox` (`[x1, y1, x2, y2]` pixels), normalised by the frame size.
    pub fn point(self, bbox: &[f32; 4], width: u32, height: u32) -> Option<[f32; 2]> {
        if width == 0 || height == 0 {
            return None;
        }
        let x = (bbox[0] + bbox[2]) / 2.0;
        let y = match self {
            Self::BottomCentre => bbox[3],
            Self::Centre => (bbox[1] + bbox[3]) / 2.0,
        };
        Some([x / width as f32, y / height as f32])
    }
}

/// A polygon in normalised frame coordinates (`[0, 0]` top-left, `[1, 1]` bottom-right).
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub polygon: Vec<[f32; 2]>,
    pub anchor: Anchor,
}

impl Zone {
    /// At least three vertices, all finite and within `[0, 1]`.
    pub fn validate(&self) -> Result<(), String> {
        if self.polygon.len() < 3 {
            return Err(format!(
                "a zone needs at least 3 points, got {}",
                self.polygon.len()
            ));
        }
        if let Some(p) = self
            .polygon
            .iter()
            .find(|p| !p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)))
        {
            return Err(format!(
                "zone point [{}, {}] is outside the normalised range 0..1",
                p[0], p[1]
            ));
        }
        Ok(())
    }

    /// Even-odd (ray casting) test of a normalised point. Points exactly on an edge may fall
    /// either way.
    pub fn contains(&self, point: [f32; 2]) -> bool {
        let [x, y] = point;
        let n = self.polygon.len();
        let mut inside = false;
        let mut j = n - 1;
        for i in 0..n {
            let [xi, yi] = self.polygon[i];
            let [xj, yj] = self.polygon[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// One event rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The event type written into each event (`fall`, `fight`, ...).
    pub name: String,
    /// Action labels (or, with [`ScoreSource::Class`], class labels) that trigger the rule (any
    /// of them).
    pub labels: Vec<String>,
    pub label_match: LabelMatch,
    /// Whether the labels and `min_score` apply to the action or to the class probabilities.
    pub source: ScoreSource,
    /// Minimum action score (or class probability), 0..1.
    pub min_score: f32,
    /// Minimum number of consecutive matching frames (at least 1).
    pub min_frames: u32,
    /// Minimum span of the run, first to confirming frame, in nanoseconds.
    pub min_duration_ns: u64,
    /// Quiet time after an episode's last matching frame before the same track can fire again.
    pub cooldown_ns: u64,
    pub zone: Option<Zone>,
}

impl Rule {
    /// A rule with the defaults: exact match, score 0.5, one frame, cooldown 5 s, no zone.
    pub fn new(name: &str, labels: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            label_match: LabelMatch::Exact,
            source: ScoreSource::Action,
            min_score: 0.5,
            min_frames: 1,
            min_duration_ns: 0,
            cooldown_ns: 5_000_000_000,
            zone: None,
        }
    }

    /// Checks the rule on its own; the message names the rule and the problem.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err("a rule needs a non-empty type (event name)".into());
        }
        if self.labels.is_empty() || self.labels.iter().any(|l| l.trim().is_empty()) {
            return Err(format!("rule '{name}': needs at least one non-empty label"));
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(format!(
                "rule '{name}': min-score {} is outside 0..1",
                self.min_score
            ));
        }
        if self.min_frames == 0 {
            return Err(format!("rule '{name}': min-frames must be at least 1"));
        }
        if let Some(zone) = &self.zone {
            zone.validate().map_err(|e| format!("rule '{name}': {e}"))?;
        }
        Ok(())
    }

    pub fn matches_label(&self, label: &str) -> bool {
        self.labels
            .iter()
            .any(|p| self.label_match.matches(p, label))
    }

    /// The rule's labels that match none of `known` (e.g. the classifier's label file).
    pub fn unknown_labels<'a>(&'a self, known: &[String]) -> Vec<&'a str> {
        self.labels
            .iter()
            .filter(|p| !known.iter().any(|k| self.label_match.matches(p, k)))
            .map(|s| s.as_str())
            .collect()
    }

    /// The label and score by which `o` matches the rule on this frame, if it does.
    fn matches<'a>(&self, o: &Observation<'a>, width: u32, height: u32) -> Option<(&'a str, f32)> {
        let hit = match self.source {
            ScoreSource::Action => o
                .label
                .filter(|label| o.score >= self.min_score && self.matches_label(label))
                .map(|label| (label, o.score)),
            ScoreSource::Class => o
                .scores
                .iter()
                .filter(|(label, p)| *p >= self.min_score && self.matches_label(label))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .copied(),
        }?;
        let inside = match &self.zone {
            None => true,
            Some(zone) => zone
                .anchor
                .point(&o.bbox, width, height)
                .is_some_and(|p| zone.contains(p)),
        };
        inside.then_some(hit)
    }
}

/// One person of a frame, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// Position of the person in the frame's list (returned in [`Onset::index`]).
    pub index: usize,
    pub track_id: Option<u64>,
    pub label: Option<&'a str>,
    pub score: f32,
    /// Probability of every class of the latest classification (empty when not classified).
    pub scores: &'a [(&'a str, f32)],
    /// `[x1, y1, x2, y2]` in pixels of the frame.
    pub bbox: [f32; 4],
}

/// An event: a rule's condition held long enough for a track.
#[derive(Clone, Debug, PartialEq)]
pub struct Onset {
    /// Index of the rule in the engine's list.
    pub rule: usize,
    pub track_id: u64,
    pub start_pts_ns: u64,
    pub end_pts_ns: u64,
    /// Highest action score (class probability for a [`ScoreSource::Class`] rule) over the run.
    pub score: f32,
    /// The action label (the matching class for a [`ScoreSource::Class`] rule) on the
    /// confirming frame.
    pub label: String,
    /// Index of the person in the confirming frame ([`Observation::index`]).
    pub index: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Pending { start: u64, frames: u32, best: f32 },
    Active { last_match: u64 },
}

/// The rules and the per-track state they keep.
#[derive(Debug, Default)]
pub struct RuleEngine {
    rules: Vec<Rule>,
    states: HashMap<(usize, u64), State>,
}

impl RuleEngine {
    /// Validates every rule.
    pub fn new(rules: Vec<Rule>) -> Result<Self, String> {
        for rule in &rules {
            rule.validate()?;
        }
        Ok(Self {
            rules,
            states: HashMap::new(),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule has a zone (which needs the frame size).
    pub fn needs_frame_size(&self) -> bool {
        self.rules.iter().any(|r| r.zone.is_some())
    }

    /// Forgets all runs and episodes (after a seek or a flush).
    pub fn reset(&mut self) {
        self.states.clear();
    }

    /// Number of (rule, track) pairs with a run or an episode in progress.
    pub fn active_states(&self) -> usize {
        self.states.len()
    }

    /// Feeds one frame; returns the onsets it confirmed (rule order, then person order).
    pub fn process(
        &mut self,
        pts_ns: u64,
        width: u32,
        height: u32,
        persons: &[Observation],
    ) -> Vec<Onset> {
        let mut onsets = Vec::new();
        let mut matched: HashSet<(usize, u64)> = HashSet::new();
        for (r, rule) in self.rules.iter().enumerate() {
            for o in persons {
                let Some(track) = o.track_id else { continue };
                // One person per track and frame: the first.
                if matched.contains(&(r, track)) {
                    continue;
                }
                let Some((label, score)) = rule.matches(o, width, height) else {
                    continue;
                };
                matched.insert((r, track));
                let state = match self.states.get(&(r, track)).copied() {
                    None => State::Pending {
                        start: pts_ns,
                        frames: 1,
                        best: score,
                    },
                    Some(State::Pending {
                        start,
                        frames,
                        best,
                    }) => State::Pending {
                        start,
                        frames: frames + 1,
                        best: best.max(score),
                    },
                    Some(State::Active { .. }) => State::Active { last_match: pts_ns },
                };
                let state = match state {
                    State::Pending {
                        start,
                        frames,
                        best,
                    } if frames >= rule.min_frames
                        && pts_ns.saturating_sub(start) >= rule.min_duration_ns =>
                    {
                        onsets.push(Onset {
                            rule: r,
                            track_id: track,
                            start_pts_ns: start,
                            end_pts_ns: pts_ns,
                            score: best,
                            label: label.to_string(),
                            index: o.index,
                        });
                        State::Active { last_match: pts_ns }
                    }
                    other => other,
                };
                self.states.insert((r, track), state);
            }
        }
        let rules = &self.rules;
        self.states.retain(|key, state| {
            matched.contains(key)
                || match *state {
                    State::Pending { .. } => false,
                    State::Active { last_match } => {
                        pts_ns.saturating_sub(last_match) < rules[key.0].cooldown_ns
                    }
                }
        });
        onsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const FRAME: u64 = 40 * MS;

    fn person(track: u64, label: &'static str, score: f32) -> Observation<'static> {
        Observation {
            index: 0,
            track_id: Some(track),
            label: Some(label),
            score,
            scores: &[],
            bbox: [100.0, 100.0, 200.0, 400.0],
        }
    }

    /// A rule on the class probability of `fall` fires whatever the argmax, with the usual run,
    /// cooldown and zone logic; the onset names the class and its highest probability.
    #[test]
    fn class_probability_rules_fire_below_the_argmax() {
        const LOW: [(&str, f32); 2] = [("normal", 0.65), ("fall", 0.35)];
        const LOWER: [(&str, f32); 2] = [("normal", 0.8), ("fall", 0.2)];
        const HIGH: [(&str, f32); 2] = [("normal", 0.1), ("fall", 0.9)];
        let p = |scores: &'static [(&'static str, f32)]| Observation {
            scores,
            ..person(1, "normal", scores[0].1)
        };
        let mut rule = Rule::new("fall", &["fall"]);
        rule.source = ScoreSource::Class;
        rule.min_score = 0.3;
        rule.min_frames = 2;
        rule.cooldown_ns = 0;
        // The argmax ("normal") never names a fall: an action rule stays silent.
        let mut action_rule = RuleEngine::new(vec![Rule::new("fall", &["fall"])]).unwrap();
        let mut engine = RuleEngine::new(vec![rule.clone()]).unwrap();
        let frames = [&LOW, &LOWER, &LOW, &LOW, &HIGH, &LOWER, &LOW];
        let mut fired = Vec::new();
        for (i, scores) in frames.iter().enumerate() {
            let t = i as u64 * FRAME;
            assert!(action_rule.process(t, 640, 480, &[p(*scores)]).is_empty());
            for o in engine.process(t, 640, 480, &[p(*scores)]) {
                fired.push((i, o.label.clone(), o.score));
            }
        }
        // Frame 1 breaks the first run; frames 2-3 confirm; the episode (frames 2-4) ends at
        // frame 5 (cooldown 0); frame 6 starts a new run that the stream ends before confirming.
        assert_eq!(fired, vec![(3, "fall".to_string(), 0.35)]);
        // The run's score is the highest probability of the episode's run.
        let mut engine = RuleEngine::new(vec![rule.clone()]).unwrap();
        assert!(engine.process(0, 640, 480, &[p(&HIGH)]).is_empty());
        let onset = engine.process(FRAME, 640, 480, &[p(&LOW)]);
        assert_eq!(onset[0].score, 0.9);
        // Not classified (no scores): no match.
        let mut engine = RuleEngine::new(vec![rule.clone()]).unwrap();
        for i in 0..3 {
            assert!(
                engine
                    .process(i * FRAME, 640, 480, &[person(1, "fall", 1.0)])
                    .is_empty()
            );
        }
        // A zone applies as for action rules.
        rule.min_frames = 1;
        rule.zone = Some(Zone {
            polygon: vec![[0.0, 0.0], [0.1, 0.0], [0.1, 0.1]],
            anchor: Anchor::Centre,
        });
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        assert!(engine.process(0, 640, 480, &[p(&HIGH)]).is_empty());
    }

    /// Runs a label sequence for track 1 (one char per frame: `F` falling 0.9, `l` falling at
    /// score 0.3, `.` standing, ` ` absent) and returns the frame numbers of the onsets.
    fn run(rule: Rule, frames: &str) -> Vec<(usize, Onset)> {
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        let mut out = Vec::new();
        for (i, c) in frames.chars().enumerate() {
            let persons = match c {
                'F' => vec![person(1, "falling", 0.9)],
                'l' => vec![person(1, "falling", 0.3)],
                '.' => vec![person(1, "standing", 0.9)],
                ' ' => vec![],
                _ => unreachable!(),
            };
            for onset in engine.process(i as u64 * FRAME, 640, 480, &persons) {
                out.push((i, onset));
            }
        }
        out
    }

    fn frames_of(onsets: &[(usize, Onset)]) -> Vec<usize> {
        onsets.iter().map(|(i, _)| *i).collect()
    }

    #[test]
    fn one_event_per_onset() {
        let onsets = run(Rule::new("fall", &["falling"]), "...FFFFFFFF...");
        assert_eq!(frames_of(&onsets), vec![3]);
        let o = &onsets[0].1;
        assert_eq!(
            (o.track_id, o.start_pts_ns, o.end_pts_ns, o.label.as_str()),
            (1, 3 * FRAME, 3 * FRAME, "falling")
        );
        assert_eq!(o.score, 0.9);
    }

    #[test]
    fn minimum_frames_counts_consecutive_frames() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.min_frames = 4;
        // Runs of 3 never fire; the run of 5 fires on its 4th frame.
        let onsets = run(rule, "FFF.FFF.FFFFF");
        assert_eq!(frames_of(&onsets), vec![11]);
        assert_eq!(
            (onsets[0].1.start_pts_ns, onsets[0].1.end_pts_ns),
            (8 * FRAME, 11 * FRAME)
        );
    }

    #[test]
    fn minimum_duration_in_time() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.min_duration_ns = 200 * MS; // 5 frame intervals of 40 ms
        let onsets = run(rule, "..FFFFFFFF");
        assert_eq!(frames_of(&onsets), vec![7]);
        assert_eq!(onsets[0].1.end_pts_ns - onsets[0].1.start_pts_ns, 200 * MS);
    }

    #[test]
    fn low_scores_do_not_match() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.min_frames = 2;
        rule.min_score = 0.5;
        assert!(run(rule.clone(), "FlFlFl").is_empty());
        assert_eq!(frames_of(&run(rule, "FlFFl")), vec![3]);
    }

    #[test]
    fn cooldown_is_a_quiet_period_after_the_episode() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.cooldown_ns = 200 * MS; // 5 frames
        // Gap of 4 frames (< cooldown): the same episode; gap of 5 frames: a new one.
        let onsets = run(rule, "FF....FF.....FF");
        assert_eq!(frames_of(&onsets), vec![0, 13]);
    }

    #[test]
    fn flickering_label_gives_one_event() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.cooldown_ns = 1000 * MS;
        let flicker = "F.F.FF..F.F...F.F.F..FF.F".repeat(8); // 200 frames = 8 s of flicker
        let onsets = run(rule.clone(), &flicker);
        assert_eq!(frames_of(&onsets), vec![0]);
        // With an absent track (no person) in between, likewise.
        assert_eq!(frames_of(&run(rule, "F F  F   F    FF")), vec![0]);
    }

    #[test]
    fn zero_cooldown_fires_on_each_fresh_onset() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.cooldown_ns = 0;
        assert_eq!(frames_of(&run(rule, "FFF.F.FF")), vec![0, 4, 6]);
    }

    #[test]
    fn tracks_are_independent() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.min_frames = 2;
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        let mut a = person(1, "falling", 0.9);
        let mut b = person(2, "falling", 0.8);
        b.index = 1;
        assert!(engine.process(0, 640, 480, &[a, b]).is_empty());
        a.label = Some("standing");
        let onsets = engine.process(FRAME, 640, 480, &[a, b]);
        assert_eq!(onsets.len(), 1);
        assert_eq!((onsets[0].track_id, onsets[0].index), (2, 1));
        // Untracked persons never fire.
        let untracked = Observation {
            track_id: None,
            ..person(9, "falling", 1.0)
        };
        assert!(engine.process(2 * FRAME, 640, 480, &[untracked]).is_empty());
    }

    #[test]
    fn label_matching() {
        assert!(LabelMatch::Exact.matches("falling", "Falling"));
        assert!(!LabelMatch::Exact.matches("fall", "falling"));
        assert!(LabelMatch::Contains.matches("fall", "falling"));
        assert!(LabelMatch::Contains.matches("FALL", "fallen"));
        assert!(LabelMatch::Contains.matches("slap", "punching/slapping other person"));
        assert!(!LabelMatch::Contains.matches("fallen", "fall"));
        let mut rule = Rule::new("fall", &["fall"]);
        assert!(run(rule.clone(), "FFF").is_empty());
        rule.label_match = LabelMatch::Contains;
        assert_eq!(frames_of(&run(rule, "FFF")), vec![0]);
    }

    #[test]
    fn several_rules_fire_independently() {
        let mut fall = Rule::new("fall", &["falling"]);
        fall.min_frames = 2;
        let any = Rule {
            label_match: LabelMatch::Contains,
            ..Rule::new("any", &["fall", "stand"])
        };
        let mut engine = RuleEngine::new(vec![fall, any]).unwrap();
        let first = engine.process(0, 640, 480, &[person(1, "standing", 0.9)]);
        assert_eq!(first.iter().map(|o| o.rule).collect::<Vec<_>>(), vec![1]);
        assert!(
            engine
                .process(FRAME, 640, 480, &[person(1, "falling", 0.9)])
                .is_empty()
        );
        let third = engine.process(2 * FRAME, 640, 480, &[person(1, "falling", 0.9)]);
        assert_eq!(third.iter().map(|o| o.rule).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn zone_with_bottom_centre_and_centre_anchors() {
        // Lower half of the frame.
        let zone = Zone {
            polygon: vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
            anchor: Anchor::BottomCentre,
        };
        let mut rule = Rule::new("fall", &["falling"]);
        rule.zone = Some(zone.clone());
        let mut engine = RuleEngine::new(vec![rule.clone()]).unwrap();
        // Box from y=100 to y=200 in a 480-high frame: feet at 0.42, outside.
        let mut p = Observation {
            bbox: [100.0, 100.0, 200.0, 200.0],
            ..person(1, "falling", 0.9)
        };
        assert!(engine.process(0, 640, 480, &[p]).is_empty());
        // Feet at y=300 (0.625): inside, centre at 0.42.
        p.bbox = [100.0, 100.0, 200.0, 300.0];
        assert_eq!(engine.process(FRAME, 640, 480, &[p]).len(), 1);
        rule.zone = Some(Zone {
            anchor: Anchor::Centre,
            ..zone
        });
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        assert!(engine.process(0, 640, 480, &[p]).is_empty());
        p.bbox = [100.0, 200.0, 200.0, 400.0]; // centre 0.625
        assert_eq!(engine.process(FRAME, 640, 480, &[p]).len(), 1);
        // Unknown frame size: a zone cannot be evaluated.
        let mut q = p;
        q.track_id = Some(5);
        assert!(engine.process(2 * FRAME, 0, 0, &[q]).is_empty());
    }

    #[test]
    fn leaving_the_zone_breaks_the_run() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.min_frames = 3;
        rule.zone = Some(Zone {
            polygon: vec![[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
            anchor: Anchor::Centre,
        });
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        let at = |x: f32| Observation {
            bbox: [x - 10.0, 100.0, x + 10.0, 200.0],
            ..person(1, "falling", 0.9)
        };
        let xs = [500.0, 500.0, 100.0, 500.0, 500.0, 500.0];
        let fired: Vec<usize> = xs
            .iter()
            .enumerate()
            .filter(|(i, x)| {
                !engine
                    .process(*i as u64 * FRAME, 640, 480, &[at(**x)])
                    .is_empty()
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(fired, vec![5]);
    }

    #[test]
    fn concave_polygon() {
        // An L shape.
        let zone = Zone {
            polygon: vec![
                [0.0, 0.0],
                [0.5, 0.0],
                [0.5, 0.5],
                [1.0, 0.5],
                [1.0, 1.0],
                [0.0, 1.0],
            ],
            anchor: Anchor::Centre,
        };
        assert!(zone.contains([0.25, 0.25]));
        assert!(zone.contains([0.75, 0.75]));
        assert!(!zone.contains([0.75, 0.25]));
        assert!(!zone.contains([1.5, 0.75]));
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = Rule::new("fall", &["falling"]);
        assert!(ok.validate().is_ok());
        let err = |r: Rule| r.validate().unwrap_err();
        assert!(err(Rule::new("fall", &[])).contains("at least one non-empty label"));
        assert!(err(Rule::new("", &["x"])).contains("non-empty type"));
        assert!(
            err(Rule {
                min_score: 1.5,
                ..ok.clone()
            })
            .contains("min-score 1.5")
        );
        assert!(
            err(Rule {
                min_frames: 0,
                ..ok.clone()
            })
            .contains("min-frames")
        );
        let zone = Zone {
            polygon: vec![[0.0, 0.0], [1.0, 0.0]],
            anchor: Anchor::Centre,
        };
        assert!(
            err(Rule {
                zone: Some(zone),
                ..ok.clone()
            })
            .contains("at least 3 points")
        );
        let zone = Zone {
            polygon: vec![[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]],
            anchor: Anchor::Centre,
        };
        assert!(
            err(Rule {
                zone: Some(zone),
                ..ok.clone()
            })
            .contains("[2, 0]")
        );
        assert!(RuleEngine::new(vec![ok.clone(), Rule::new("x", &[])]).is_err());
    }

    #[test]
    fn unknown_labels_against_a_label_file() {
        let known: Vec<String> = ["falling", "standing up", "punching/slapping other person"]
            .map(String::from)
            .to_vec();
        let rule = Rule::new("fall", &["falling", "fallen"]);
        assert_eq!(rule.unknown_labels(&known), vec!["fallen"]);
        let rule = Rule {
            label_match: LabelMatch::Contains,
            ..Rule::new("fight", &["punch", "kick"])
        };
        assert_eq!(rule.unknown_labels(&known), vec!["kick"]);
    }

    #[test]
    fn stale_episodes_are_freed() {
        let mut rule = Rule::new("fall", &["falling"]);
        rule.cooldown_ns = 100 * MS;
        let mut engine = RuleEngine::new(vec![rule]).unwrap();
        for t in 0..50u64 {
            engine.process(t * FRAME, 640, 480, &[person(t + 1, "falling", 0.9)]);
        }
        // Only the tracks seen within the last cooldown are still held.
        assert!(engine.active_states() <= 4, "{}", engine.active_states());
        engine.reset();
        assert_eq!(engine.active_states(), 0);
    }
}
