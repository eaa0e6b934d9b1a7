//! Logs through `tracing`: JSON lines (or text on a terminal) on standard error, GStreamer's own
//! warnings and errors bridged in with the camera they come from, and every known secret
//! replaced by `***` in whatever is written.
//!
//! Secrets: the service reads only the RTSP passwords itself (the webhook token and MQTT
//! password are read by `eventsink` from the variables and files the configuration names); it
//! still reads those values once so that any log line that would contain them is redacted,
//! whoever wrote it. User info in URIs (`rtsp://user:password@host`) is redacted too.

use std::{
    io::{self, IsTerminal, Write},
    sync::{LazyLock, RwLock},
};

use crate::config::LogFormat;

static SECRETS: LazyLock<RwLock<Vec<String>>> = LazyLock::new(RwLock::default);

/// Adds a value that must never appear in a log line (empty and very short values are ignored:
/// they would redact ordinary text).
pub fn add_secret(value: &str) {
    let value = value.trim();
    if value.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap();
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with the user info of URIs and every registered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = redact_userinfo(text);
    for secret in SECRETS.read().unwrap().iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// `scheme://user:password@host` -> `scheme://***@host`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let authority_end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out.push_str("***");
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// Standard error, each write redacted (the fmt layer writes one whole line per event).
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Installs the global subscriber. `Auto`: text when standard error is a terminal, else JSON.
pub fn init(format: LogFormat, level: tracing::Level) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| RedactingStderr)
        .with_target(true);
    // A second init (tests, or a reload) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_ansi(io::stderr().is_terminal()).try_init()
    };
}

/// Bridges GStreamer's debug log (warnings and errors, or what `GST_DEBUG` asks for) into the
/// service's log, with the camera the object belongs to (its top-level pipeline is named after
/// the camera).
pub fn bridge_gstreamer() {
    if std::env::var_os("GST_DEBUG").is_none() {
        gst::log::set_default_threshold(gst::DebugLevel::Warning);
    }
    gst::log::remove_default_log_function();
    gst::log::add_log_function(|category, level, file, _function, line, object, message| {
        let Some(text) = message.get() else { return };
        let text = redact(text.as_str());
        let (camera, element) = object.map(owner).unwrap_or_default();
        let category = category.name();
        match level {
            gst::DebugLevel::Error => tracing::error!(
                target: "gstreamer", camera, element, category, source = %format!("{file}:{line}"), "{text}"
            ),
            gst::DebugLevel::Warning | gst::DebugLevel::Fixme => tracing::warn!(
                target: "gstreamer", camera, element, category, "{text}"
            ),
            gst::DebugLevel::Info => {
                tracing::info!(target: "gstreamer", camera, element, category, "{text}")
            }
            _ => tracing::debug!(target: "gstreamer", camera, element, category, "{text}"),
        }
    });
}

/// The top-level object's name (the camera id) and the object's own name.
///
/// The log function can be called while GStreamer holds the object's lock, so the names and
/// parents are read without taking it (as GStreamer's own default log function does).
fn owner(object: &gst::log::LoggedObject) -> (String, String) {
    let own = object.to_string();
    unsafe {
        let ptr = object.as_ptr();
        let instance = &(*ptr).g_type_instance;
        if glib::gobject_ffi::g_type_check_instance_is_a(
            instance as *const _ as *mut _,
            gst::Object::static_type().into_glib(),
        ) == glib::ffi::GFALSE
        {
            return (String::new(), own);
        }
        let mut current = ptr as *mut gst::ffi::GstObject;
        for _ in 0..64 {
            let parent = (*current).parent;
            if parent.is_null() {
                break;
            }
            current = parent;
        }
        let name = (*current).name;
        let top = if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        };
        (top, own)
    }
}

use glib::{prelude::StaticType, translate::IntoGlib};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secrets_are_redacted() {
        assert_eq!(
            redact_userinfo(
                "could not open rtsp://admin:hunter22@10.0.0.5:554/live and http://h/x"
            ),
            "could not open rtsp://***@10.0.0.5:554/live and http://h/x"
        );
        assert_eq!(redact_userinfo("no uri here"), "no uri here");
        add_secret("Bearer tok-3141592");
        add_secret("ab");
        assert_eq!(
            redact("header Bearer tok-3141592 sent, ab stays"),
            "header *** sent, ab stays"
        );
    }
}
