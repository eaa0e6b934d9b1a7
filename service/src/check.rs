//! `recognizer-serve --check`: everything that can be known without running the cameras.
//!
//! After the file itself (syntax, keys, types, paths: `config::load`), every camera's pipeline
//! is built with all its properties, so a value an element rejects (out of range, unknown
//! choice) is found here, and every rule is loaded by a real `eventsink` (the element that runs
//! it), alone, so its error points at that rule's table in the file.

use std::path::Path;

use gst::prelude::*;

use crate::{
    config::{CameraConfig, Config, PoseSession},
    pipeline, props,
};

/// The errors, one line each (`file:line: key: message`).
pub fn check(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let dir = std::env::temp_dir().join(format!("recognizer-serve-check-{}", std::process::id()));
    for camera in &config.cameras {
        let at = |line: usize, key: &str| format!("{}:{line}: {key}", config.file.display());
        if let Err(e) = pipeline::build(camera, None, None) {
            // Errors of a setting start with its key within the camera ("pose.threads: ...").
            let located = e.split_once(": ").and_then(|(key, message)| {
                let (section, name) = key.split_once('.')?;
                let path = match (section, &camera.pose_group) {
                    ("pose", Some(group)) if PoseSession::has_key(name) => {
                        vec!["pose-groups".to_string(), group.clone(), name.to_string()]
                    }
                    _ => {
                        let mut p = camera_path(camera);
                        p.extend([section.to_string(), name.to_string()]);
                        p
                    }
                };
                let line = config.line_of(&path)?;
                Some(format!(
                    "{}: {message}",
                    at(line, &crate::config::key_path_of(&path))
                ))
            });
            errors
                .push(located.unwrap_or_else(|| format!("{}: {e}", at(camera.line, &camera.key))));
        }
        for (index, rule) in camera.rules.iter().enumerate() {
            let Err(e) = check_rule(camera, &rule.table, &dir) else {
                continue;
            };
            // The element parsed a file of its own: keep its last line (what is wrong), and
            // place an unknown key at its line in this file.
            let message = e.lines().last().unwrap_or_default().trim().to_string();
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split_once('`'))
                .map(|(key, _)| key.to_string());
            let mut path = camera_path(camera);
            path.extend(["rules".to_string(), index.to_string()]);
            let (line, key) = match unknown {
                Some(key) => {
                    path.push(key);
                    let line = config.line_of(&path).unwrap_or(rule.line);
                    (line, crate::config::key_path_of(&path))
                }
                None => (rule.line, rule.key.clone()),
            };
            errors.push(format!("{}: {message}", at(line, &key)));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    dedup_defaults(errors)
}

/// A mistake in `[defaults]` is found once per camera: report each place once.
fn dedup_defaults(errors: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    errors
        .into_iter()
        .filter(|e| {
            // "file:line: key: message" -> (file:line, message)
            let mut parts = e.splitn(3, ": ");
            let place = parts.next().unwrap_or_default().to_string();
            let message = parts.nth(1).unwrap_or_default().to_string();
            seen.insert((place, message))
        })
        .collect()
}

/// `["cameras", "<index>"]` of a camera.
fn camera_path(camera: &CameraConfig) -> Vec<String> {
    let index = camera
        .key
        .trim_start_matches("cameras[")
        .trim_end_matches(']')
        .to_string();
    vec!["cameras".into(), index]
}

/// Loads one rule into an `eventsink` (with the camera's classifier labels, when the file names
/// them) and returns the element's error, if any.
fn check_rule(camera: &CameraConfig, rule: &toml::Table, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join(format!("{}.toml", camera.id));
    std::fs::write(&file, pipeline::rules_text(std::slice::from_ref(rule)))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let sink = gst::ElementFactory::make("eventsink")
        .build()
        .map_err(|_| "the eventsink element is missing".to_string())?;
    pipeline::set(&sink, props::events::RULES_FILE, file.display())?;
    if let Some(labels) = camera.action.as_ref().and_then(|a| a.labels_file.as_ref()) {
        pipeline::set(&sink, props::events::LABELS_FILE, labels)?;
    }
    let bin = gst::Pipeline::new();
    bin.add(&sink).map_err(|e| e.to_string())?;
    let started = bin.set_state(gst::State::Paused);
    let error = bin
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        });
    let _ = bin.set_state(gst::State::Null);
    match (started, error) {
        (_, Some(e)) => Err(e.replace(&file.display().to_string(), "this rule")),
        (Err(_), None) => Err("eventsink refused the rule (no reason given)".into()),
        (Ok(_), None) => Ok(()),
    }
}
