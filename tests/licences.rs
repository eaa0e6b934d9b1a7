//! Licences (issue 15): every model states its licence and the terms of its training data in
//! `models/manifest.json` and has a row in README "Licences"; the plugin's origin and the crates'
//! metadata carry no placeholder URL.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(value: &Value, key: &str, entry: &str) -> String {
    let s = value[key].as_str().unwrap_or_default().trim().to_string();
    assert!(!s.is_empty(), "manifest entry {entry}: no {key}");
    s
}

/// The words of README's "Licences" section.
fn readme_licences() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("\n## Licences\n")
        .expect("README has a Licences section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

#[test]
fn every_model_states_its_licence_and_the_terms_of_its_training_data() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/manifest.json")).unwrap(),
    )
    .unwrap();
    let section = readme_licences();
    let shipped = manifest["models"].as_array().unwrap();
    let shared = manifest["shared_models"].as_array().unwrap();
    for entry in shipped.iter().chain(shared) {
        let path = entry["file"]
            .as_str()
            .or(entry["path"].as_str())
            .expect("a file or path");
        text(entry, "weights_licence", path);
        text(entry, "commercial_use", path);
        let terms = entry["training_data_licences"]
            .as_array()
            .unwrap_or_else(|| panic!("manifest entry {path}: no training_data_licences"));
        for t in terms {
            for key in ["dataset", "source", "terms"] {
                text(t, key, path);
            }
            assert!(
                matches!(t["allows_commercial_use"], Value::Bool(_) | Value::Null),
                "{path}: allows_commercial_use must be true, false or null: {t}"
            );
        }
        // A model learnt from data names that data's terms.
        let trained = entry["training_data"]
            .as_array()
            .is_some_and(|d| !d.is_empty());
        assert!(
            !trained || !terms.is_empty(),
            "{path}: training data without terms"
        );
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        assert!(
            section.contains(name),
            "README \"Licences\" does not mention {name}"
        );
    }
    // Every model file the project ships is in the manifest.
    for file in std::fs::read_dir(root().join("models")).unwrap() {
        let name = file.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".onnx") {
            assert!(
                shipped
                    .iter()
                    .any(|m| m["file"] == format!("models/{name}")),
                "models/{name} is not in models/manifest.json"
            );
        }
    }
}

/// A URL that is a placeholder rather than a real address.
fn placeholder(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    [
        "example.invalid",
        "example.com",
        "example.org",
        "placeholder",
        "your-",
        "todo",
    ]
    .iter()
    .any(|p| s.contains(p))
}

#[test]
fn no_placeholder_url_in_the_plugin_origin_or_the_crates_metadata() {
    recognizer::init();
    let plugin = gst::Registry::get()
        .find_plugin("recognizer")
        .expect("the recognizer plugin is registered");
    let origin = plugin.origin().to_string();
    println!("origin: {origin}");
    assert!(
        !origin.is_empty() && !placeholder(&origin),
        "origin '{origin}'"
    );
    for manifest in [
        "Cargo.toml",
        "core/Cargo.toml",
        "meta/Cargo.toml",
        "plugins/Cargo.toml",
        "service/Cargo.toml",
    ] {
        let toml = std::fs::read_to_string(root().join(manifest)).unwrap();
        for line in toml.lines() {
            let key = line.split('=').next().unwrap_or_default().trim();
            if ["repository", "homepage", "documentation"].contains(&key) {
                assert!(!placeholder(line), "{manifest}: {line}");
            }
        }
    }
    // The schemas' identifiers (what validators and users cite) are no placeholder addresses.
    for schema in ["schemas/event.schema.json", "schemas/frame.schema.json"] {
        let text = std::fs::read_to_string(root().join(schema)).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = doc["$id"].as_str().unwrap_or_default();
        assert!(!id.is_empty() && !placeholder(id), "{schema}: $id {id}");
    }
}
