//! Event rules from the element's properties and from a rules file (TOML or JSON), built by one
//! builder ([`RuleSpec::into_rule`]) whichever way they come.
//!
//! Rules file: a list `rules`, one table (object) per rule, with the property names as keys
//! (`snake_case` accepted too); unknown keys are errors.
//!
//! ```toml
//! [[rules]]
//! type = "fall"                 # event type (required)
//! labels = ["falling"]          # or a single string: action labels (or `class`)
//! label-match = "contains"      # "exact" (default) or "contains"
//! min-score = 0.6               # default 0.5
//! min-frames = 5                # default 1
//! min-duration-ms = 0           # default 0
//! cooldown-ms = 10000           # default 5000
//! zone = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]   # optional, normalised
//! zone-anchor = "bottom-centre" # or "centre"
//! ```
//!
//! A rule names either `labels` (it fires on the action, the classifier's argmax, scoring at least
//! `min-score`) or `class` (a class label or a list: it fires when that class's probability
//! reaches `min-score`, whether or not it is the argmax; `stgcnclassify` keeps every class's
//! probability):
//!
//! ```toml
//! [[rules]]
//! type = "fall"
//! class = "fall"                # fires on a fall probability >= 0.3
//! min-score = 0.3
//! min-frames = 3
//! ```
//!
//! JSON: `{"rules": [{"type": "fall", "labels": ["falling"], "min-frames": 5}]}`.

use std::path::Path;

use recognizer_core::events::{Anchor, LabelMatch, Rule, ScoreSource, Zone};
use serde::{Deserialize, Deserializer, de::Error as _};

pub const DEFAULT_MIN_SCORE: f64 = 0.5;
pub const DEFAULT_MIN_FRAMES: u32 = 1;
pub const DEFAULT_MIN_DURATION_MS: u32 = 0;
pub const DEFAULT_COOLDOWN_MS: u32 = 5000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Labels {
    One(String),
    Many(Vec<String>),
}

fn label_match<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LabelMatch>, D::Error> {
    let s = String::deserialize(d)?;
    LabelMatch::parse(&s)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("label-match '{s}' is not one of exact, contains")))
}

fn zone_anchor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Anchor>, D::Error> {
    let s = String::deserialize(d)?;
    Anchor::parse(&s).map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "zone-anchor '{s}' is not one of bottom-centre, centre"
        ))
    })
}

/// One rule as given by a rules file or by the element's properties; unset values take the
/// defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleSpec {
    #[serde(rename = "type")]
    pub kind: String,
    /// Action labels (the argmax); exactly one of `labels` and `class`.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Class labels whose probability is compared with `min-score`.
    #[serde(default)]
    pub class: Option<Labels>,
    #[serde(default, alias = "label_match", deserialize_with = "label_match")]
    pub label_match: Option<LabelMatch>,
    #[serde(default, alias = "min_score")]
    pub min_score: Option<f64>,
    #[serde(default, alias = "min_frames")]
    pub min_frames: Option<u32>,
    #[serde(default, alias = "min_duration_ms")]
    pub min_duration_ms: Option<u64>,
    #[serde(default, alias = "cooldown_ms")]
    pub cooldown_ms: Option<u64>,
    #[serde(default)]
    pub zone: Option<Vec<[f32; 2]>>,
    #[serde(default, alias = "zone_anchor", deserialize_with = "zone_anchor")]
    pub zone_anchor: Option<Anchor>,
}

impl RuleSpec {
    /// The rule, with defaults filled in and checked; errors name the rule.
    pub fn into_rule(self) -> Result<Rule, String> {
        if self.zone.is_none() && self.zone_anchor.is_some() {
            return Err(format!("rule '{}': zone-anchor without a zone", self.kind));
        }
        let (labels, source) = match (self.labels, self.class) {
            (Some(labels), None) => (labels, ScoreSource::Action),
            (None, Some(classes)) => (classes, ScoreSource::Class),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "rule '{}': labels and class both given: give either labels (action labels) or class (class probabilities), not both",
                    self.kind
                ));
            }
            (None, None) => {
                return Err(format!(
                    "rule '{}': needs labels (action labels) or class (a class whose probability reaches min-score)",
                    self.kind
                ));
            }
        };
        let rule = Rule {
            name: self.kind,
            labels: match labels {
                Labels::One(s) => vec![s],
                Labels::Many(v) => v,
            },
            label_match: self.label_match.unwrap_or_default(),
            source,
            min_score: self.min_score.unwrap_or(DEFAULT_MIN_SCORE) as f32,
            min_frames: self.min_frames.unwrap_or(DEFAULT_MIN_FRAMES),
            min_duration_ns: self
                .min_duration_ms
                .unwrap_or(DEFAULT_MIN_DURATION_MS as u64)
                * 1_000_000,
            cooldown_ns: self.cooldown_ms.unwrap_or(DEFAULT_COOLDOWN_MS as u64) * 1_000_000,
            zone: self.zone.map(|polygon| Zone {
                polygon,
                anchor: self.zone_anchor.unwrap_or_default(),
            }),
        };
        rule.validate()?;
        Ok(rule)
    }
}

/// Parses a rules file's text. The format is TOML, or JSON when the file name ends in `.json`
/// or the text starts with `{`.
pub fn parse_rules(text: &str, json: bool) -> Result<Vec<Rule>, String> {
    let file: RulesFile = if json || text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?
    } else {
        toml::from_str(text).map_err(|e| format!("invalid TOML: {}", e.to_string().trim_end()))?
    };
    if file.rules.is_empty() {
        return Err("no rules (expected a list 'rules' with at least one rule)".into());
    }
    file.rules.into_iter().map(RuleSpec::into_rule).collect()
}

/// Reads and parses a rules file; the error names the file.
pub fn load_rules(path: &Path) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Could not read rules-file '{}': {e}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse_rules(&text, json).map_err(|e| format!("Bad rules-file '{}': {e}", path.display()))
}

/// Parses a zone property: points `x,y` separated by spaces or `;`, normalised coordinates.
pub fn parse_zone(text: &str) -> Result<Vec<[f32; 2]>, String> {
    text.split(|c: char| c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|p| {
            let mut it = p.split(',').map(|v| v.trim().parse::<f32>());
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(x)), Some(Ok(y)), None) => Ok([x, y]),
                _ => Err(format!("zone point '{p}' is not 'x,y'")),
            }
        })
        .collect()
}

/// Every label of every rule must match at least one label of the classifier's label file.
pub fn check_labels(rules: &[Rule], known: &[String], file: &Path) -> Result<(), String> {
    for rule in rules {
        let unknown = rule.unknown_labels(known);
        if !unknown.is_empty() {
            return Err(format!(
                "rule '{}': unknown label{} {}: no {} match among the {} labels of labels-file '{}'",
                rule.name,
                if unknown.len() > 1 { "s" } else { "" },
                unknown
                    .iter()
                    .map(|l| format!("'{l}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rule.label_match.as_str(),
                known.len(),
                file.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_rules_with_defaults_and_zone() {
        let rules = parse_rules(
            r#"
            [[rules]]
            type = "fall"
            labels = "falling"
            min-frames = 5
            cooldown-ms = 10000

            [[rules]]
            type = "fight"
            labels = ["punch", "kick"]
            label_match = "contains"
            min-score = 0.7
            min-duration-ms = 500
            zone = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
            zone-anchor = "centre"
            "#,
            false,
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].labels, vec!["falling"]);
        assert_eq!(
            (
                rules[0].min_frames,
                rules[0].cooldown_ns,
                rules[0].min_score
            ),
            (5, 10_000_000_000, 0.5)
        );
        assert_eq!(rules[0].label_match, LabelMatch::Exact);
        assert_eq!(rules[1].label_match, LabelMatch::Contains);
        assert_eq!(
            (rules[1].min_duration_ns, rules[1].min_score),
            (500_000_000, 0.7)
        );
        assert_eq!(rules[1].zone.as_ref().unwrap().anchor, Anchor::Centre);
        assert_eq!(rules[1].zone.as_ref().unwrap().polygon.len(), 4);
    }

    #[test]
    fn json_rules() {
        let rules = parse_rules(
            r#"{"rules": [{"type": "fall", "labels": ["falling"], "min-frames": 3}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(rules[0].min_frames, 3);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |text: &str| parse_rules(text, false).unwrap_err();
        assert!(
            err("[[rules]]\ntype = \"fall\"\nlabels = [\"falling\"]\nmin-scor = 0.5\n")
                .contains("min-scor")
        );
        assert!(err("[[rules]]\ntype = \"fall\"\n").contains("needs labels"));
        assert!(err("[[rules]\n").contains("invalid TOML"));
        assert!(err("rules = []").contains("no rules"));
        assert!(
            err("[[rules]]\ntype = \"fall\"\nlabels = \"x\"\nlabel-match = \"regex\"\n")
                .contains("label-match 'regex'")
        );
        assert!(
            err("[[rules]]\ntype = \"fall\"\nlabels = \"x\"\nzone-anchor = \"centre\"\n")
                .contains("zone-anchor without a zone")
        );
        assert!(
            err("[[rules]]\ntype = \"fall\"\nlabels = \"x\"\nzone = [[0.0, 0.0], [1.0, 1.0]]\n")
                .contains("at least 3 points")
        );
        assert!(
            parse_rules("{\"rules\": [{\"type\": 1}]}", true)
                .unwrap_err()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn class_probability_rules() {
        let rules = parse_rules(
            r#"
            [[rules]]
            type = "fall"
            class = "fall"
            min-score = 0.3

            [[rules]]
            type = "sport"
            class = ["golf", "tennis"]
            label-match = "contains"
            "#,
            false,
        )
        .unwrap();
        assert_eq!(
            (rules[0].source, rules[0].labels.clone(), rules[0].min_score),
            (ScoreSource::Class, vec!["fall".to_string()], 0.3)
        );
        assert_eq!(rules[1].labels, vec!["golf", "tennis"]);
        assert_eq!(rules[1].label_match, LabelMatch::Contains);
        let json = parse_rules(
            r#"{"rules": [{"type": "fall", "class": "fall", "min_score": 0.25}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            (json[0].source, json[0].min_score),
            (ScoreSource::Class, 0.25)
        );
        let both = parse_rules(
            "[[rules]]\ntype = \"fall\"\nlabels = \"fall\"\nclass = \"fall\"\n",
            false,
        )
        .unwrap_err();
        assert!(
            both.contains("not both") && both.contains("rule 'fall'"),
            "{both}"
        );
        // Label-file checks apply to class labels too.
        let known = vec!["normal".to_string(), "fall".to_string()];
        let mut rule = Rule::new("fall", &["fell"]);
        rule.source = ScoreSource::Class;
        assert!(
            check_labels(&[rule], &known, Path::new("l.txt"))
                .unwrap_err()
                .contains("'fell'")
        );
    }

    #[test]
    fn zone_property() {
        assert_eq!(
            parse_zone("0,0.5 1,0.5; 1,1 0,1").unwrap(),
            vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
        );
        assert!(parse_zone("0,0.5 1").unwrap_err().contains("'1'"));
    }

    #[test]
    fn unknown_labels_are_named() {
        let known = vec!["falling".to_string(), "standing up".to_string()];
        let rules = vec![Rule::new("fall", &["falling", "fallen"])];
        let err = check_labels(&rules, &known, Path::new("labels.txt")).unwrap_err();
        assert!(
            err.contains("'fallen'") && err.contains("labels.txt") && err.contains("rule 'fall'"),
            "{err}"
        );
    }
}
