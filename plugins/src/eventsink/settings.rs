//! The element's settings (its properties) and the rule they describe.

use std::path::PathBuf;

use gst::glib;
use recognizer_core::events::{self as core, Rule};

use super::rules::{self, Labels, RuleSpec};

pub const DEFAULT_STREAM: &str = "cam0";
pub const DEFAULT_MAX_FILES: u32 = 5;
pub const DEFAULT_POST_MESSAGES: bool = true;
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";
pub const DEFAULT_MQTT_TOPIC: &str = "recognizer/{stream}/events";
pub const DEFAULT_MQTT_KEEP_ALIVE_S: u32 = 60;
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;
pub const DEFAULT_RETRY_INITIAL_MS: u32 = 1000;
pub const DEFAULT_RETRY_MAX_MS: u32 = 60_000;
pub const DEFAULT_FLUSH_TIMEOUT_MS: u32 = 5000;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstEventSinkLabelMatch")]
pub enum LabelMatch {
    #[default]
    #[enum_value(name = "Exact: the whole label (ASCII case ignored)", nick = "exact")]
    Exact = 0,
    #[enum_value(
        name = "Contains: the rule's label as a substring (fall matches falling)",
        nick = "contains"
    )]
    Contains = 1,
}

impl From<LabelMatch> for core::LabelMatch {
    fn from(m: LabelMatch) -> Self {
        match m {
            LabelMatch::Exact => Self::Exact,
            LabelMatch::Contains => Self::Contains,
        }
    }
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstEventSinkZoneAnchor")]
pub enum ZoneAnchor {
    #[default]
    #[enum_value(
        name = "Bottom centre: middle of the box's bottom edge (the feet)",
        nick = "bottom-centre"
    )]
    BottomCentre = 0,
    #[enum_value(name = "Centre of the box", nick = "centre")]
    Centre = 1,
}

impl From<ZoneAnchor> for core::Anchor {
    fn from(a: ZoneAnchor) -> Self {
        match a {
            ZoneAnchor::BottomCentre => Self::BottomCentre,
            ZoneAnchor::Centre => Self::Centre,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub stream: String,
    // Frame log.
    pub frames_location: Option<PathBuf>,
    pub frames_append: bool,
    pub frames_max_size_bytes: u64,
    pub frames_max_files: u32,
    // Rules.
    pub rules_file: Option<PathBuf>,
    pub labels: Option<String>,
    pub event_type: Option<String>,
    pub label_match: LabelMatch,
    pub min_score: f64,
    pub min_frames: u32,
    pub min_duration_ms: u32,
    pub cooldown_ms: u32,
    pub zone: Option<String>,
    pub zone_anchor: ZoneAnchor,
    pub labels_file: Option<PathBuf>,
    // Local sinks.
    pub location: Option<PathBuf>,
    pub max_size_bytes: u64,
    pub max_files: u32,
    pub stdout: bool,
    pub post_messages: bool,
    // Network sinks.
    pub webhook_url: Option<String>,
    pub webhook_auth_header_name: String,
    pub webhook_auth_header_env: Option<String>,
    pub webhook_auth_header_file: Option<PathBuf>,
    pub mqtt_url: Option<String>,
    pub mqtt_topic: String,
    pub mqtt_client_id: Option<String>,
    pub mqtt_username: Option<String>,
    pub mqtt_password_env: Option<String>,
    pub mqtt_password_file: Option<PathBuf>,
    pub mqtt_keep_alive_s: u32,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_verify: bool,
    // Delivery.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_events: u32,
    pub timeout_ms: u32,
    pub retry_initial_ms: u32,
    pub retry_max_ms: u32,
    pub flush_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream: DEFAULT_STREAM.to_string(),
            frames_location: None,
            frames_append: false,
            frames_max_size_bytes: 0,
            frames_max_files: DEFAULT_MAX_FILES,
            rules_file: None,
            labels: None,
            event_type: None,
            label_match: LabelMatch::Exact,
            min_score: rules::DEFAULT_MIN_SCORE,
            min_frames: rules::DEFAULT_MIN_FRAMES,
            min_duration_ms: rules::DEFAULT_MIN_DURATION_MS,
            cooldown_ms: rules::DEFAULT_COOLDOWN_MS,
            zone: None,
            zone_anchor: ZoneAnchor::BottomCentre,
            labels_file: None,
            location: None,
            max_size_bytes: 0,
            max_files: DEFAULT_MAX_FILES,
            stdout: false,
            post_messages: DEFAULT_POST_MESSAGES,
            webhook_url: None,
            webhook_auth_header_name: DEFAULT_AUTH_HEADER.to_string(),
            webhook_auth_header_env: None,
            webhook_auth_header_file: None,
            mqtt_url: None,
            mqtt_topic: DEFAULT_MQTT_TOPIC.to_string(),
            mqtt_client_id: None,
            mqtt_username: None,
            mqtt_password_env: None,
            mqtt_password_file: None,
            mqtt_keep_alive_s: DEFAULT_MQTT_KEEP_ALIVE_S,
            tls_ca_file: None,
            tls_verify: true,
            spool_dir: None,
            spool_max_events: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retry_initial_ms: DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
        }
    }
}

impl Settings {
    /// The rule of the properties (when `labels` is set), as a rules file would give it.
    fn property_rule(&self) -> Result<Option<RuleSpec>, String> {
        let Some(labels) = &self.labels else {
            if self.zone.is_some() || self.event_type.is_some() {
                return Err(
                    "zone and event-type belong to the rule of the properties, which needs labels"
                        .into(),
                );
            }
            return Ok(None);
        };
        let labels: Vec<String> = labels
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.is_empty() {
            return Err("labels: no label given".into());
        }
        let zone = self
            .zone
            .as_deref()
            .map(|z| rules::parse_zone(z).map_err(|e| format!("zone '{z}': {e}")))
            .transpose()?;
        Ok(Some(RuleSpec {
            kind: self.event_type.clone().unwrap_or_else(|| labels[0].clone()),
            labels: Labels::Many(labels),
            label_match: Some(self.label_match.into()),
            min_score: Some(self.min_score),
            min_frames: Some(self.min_frames),
            min_duration_ms: Some(self.min_duration_ms.into()),
            cooldown_ms: Some(self.cooldown_ms.into()),
            zone_anchor: zone.is_some().then_some(self.zone_anchor.into()),
            zone,
        }))
    }

    /// The rule of the properties followed by those of the rules file, checked against the
    /// classifier's labels when `labels-file` is set.
    pub fn rules(&self) -> Result<Vec<Rule>, String> {
        let mut out = Vec::new();
        if let Some(spec) = self.property_rule()? {
            out.push(spec.into_rule()?);
        }
        if let Some(path) = &self.rules_file {
            out.extend(rules::load_rules(path)?);
        }
        if let Some(file) = &self.labels_file {
            let known = crate::labels::read_labels_file(file, "labels-file")?;
            rules::check_labels(&out, &known, file)?;
        }
        Ok(out)
    }
}
