//! The public C header `meta/include/recognizer/pose-meta.h` against the Rust layout.
//!
//! Generates a C file with a `static_assert` on every size and offset that [`ffi::c_layout`]
//! computes with `offset_of!`, compiles it with the system C compiler against the header and
//! GStreamer's headers (pkg-config `gstreamer-1.0`) into a shared library, then loads it in this
//! process: the header's `recognizer_pose_meta_api_get_type()` registers the API type before the
//! Rust side does (as a C application that has not loaded the plugin yet), and the header's
//! accessors read a meta written by Rust, field by field. Moving a field on either side fails the
//! compilation. One test, so that the order of registration is the one described.

use std::{
    ffi::{CStr, CString, c_char, c_void},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use glib::translate::IntoGlib;
use recognizer_meta::{
    Action, ClassScore, Keypoint, NUM_KEYPOINTS, Person, PersonFlags, PoseMeta, PoseMetaFlags,
    Track, TrackState, ffi,
};

const C_READER: &str = r#"
GType layout_test_api_type (void) { return recognizer_pose_meta_api_get_type (); }

/* One line per frame and per person, of every field the header exposes. */
void
layout_test_describe (GstBuffer * buffer, char *out, size_t len)
{
  const RecognizerPoseMeta *m = recognizer_buffer_get_pose_meta (buffer);
  GString *s = g_string_new (NULL);
  guint i, k;
  if (m == NULL) {
    g_string_append (s, "no meta");
  } else {
    g_string_append_printf (s, "version=%u inferred=%d n=%u\n", m->version,
        recognizer_pose_meta_is_inferred (m), m->n_persons);
    for (i = 0; i < m->n_persons; i++) {
      const RecognizerPerson *p = recognizer_pose_meta_get_person (m, i);
      const gchar *label = recognizer_person_get_action_label (p);
      g_string_append_printf (s,
          "bbox=%.1f,%.1f,%.1f,%.1f score=%.2f kp16=%.1f,%.1f,%.2f predicted=%d truncated=%d "
          "track=%" G_GUINT64_FORMAT " state=%s age=%u action=%s class=%u p=%.2f window=%u "
          "end=%" G_GUINT64_FORMAT " scores=",
          p->bbox[0], p->bbox[1], p->bbox[2], p->bbox[3], p->score,
          p->keypoints[16].x, p->keypoints[16].y, p->keypoints[16].score,
          recognizer_person_is_predicted (p),
          (p->flags & RECOGNIZER_PERSON_SCORES_TRUNCATED) != 0,
          p->track_id, recognizer_person_get_track_state_name (p), p->track_age,
          label ? label : "none", p->action_class_id, p->action_score, p->action_window,
          p->action_window_end_pts);
      for (k = 0; k < recognizer_person_get_n_scores (p); k++)
        g_string_append_printf (s, "%s%s#%u:%.3f", k ? "," : "",
            g_quark_to_string (p->scores[k].label), p->scores[k].class_id,
            p->scores[k].score);
      g_string_append_printf (s, " fall=%.3f\n",
          recognizer_person_get_class_score (p, "fall", -1.0f));
    }
  }
  g_strlcpy (out, s->str, len);
  g_string_free (s, TRUE);
}
"#;

/// The C source: header, one `static_assert` per layout entry, and the reader above.
fn c_source(layout: &[ffi::LayoutEntry]) -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <assert.h>\n#include <recognizer/pose-meta.h>\n\n",
    );
    for (ty, field, value) in layout {
        let (expr, what) = if *field == "sizeof" {
            (format!("sizeof ({ty})"), format!("sizeof ({ty})"))
        } else {
            // The Rust GstMeta header is named `parent`, the C one `meta`.
            let c_field = if *field == "parent" { "meta" } else { field };
            (
                format!("offsetof ({ty}, {c_field})"),
                format!("offsetof ({ty}, {c_field})"),
            )
        };
        writeln!(
            c,
            "static_assert ({expr} == {value}, \"{what} differs from the Rust layout ({value})\");"
        )
        .unwrap();
    }
    writeln!(
        c,
        "static_assert (RECOGNIZER_POSE_META_VERSION == {}, \"version differs from ffi::VERSION\");",
        ffi::VERSION
    )
    .unwrap();
    writeln!(
        c,
        "static_assert (RECOGNIZER_MAX_CLASS_SCORES == {}, \"RECOGNIZER_MAX_CLASS_SCORES differs from MAX_CLASS_SCORES\");",
        recognizer_meta::MAX_CLASS_SCORES
    )
    .unwrap();
    c.push_str(C_READER);
    c
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("gstreamer-1.0")
        .output()
        .expect("pkg-config not found: install pkgconf and libgstreamer1.0-dev (scripts/setup)");
    assert!(
        out.status.success(),
        "pkg-config gstreamer-1.0 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Compiles `source` against the header into a shared library; panics with the compiler's
/// errors (a failed `static_assert` names the field that moved).
fn compile(source: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let c_file = dir.join("pose_meta_layout.c");
    let lib = dir.join("libpose_meta_layout.so");
    std::fs::write(&c_file, source).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
        ])
        .arg("-I")
        .arg(&include)
        .args(pkg_config(&["--cflags"]))
        .arg(&c_file)
        .arg("-o")
        .arg(&lib)
        .args(pkg_config(&["--libs"]))
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler '{cc}': {e}"));
    assert!(
        out.status.success(),
        "{} does not compile against the header:\n{}",
        c_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

struct Library(*mut c_void);

impl Library {
    fn open(path: &Path) -> Self {
        let c = CString::new(path.to_str().unwrap()).unwrap();
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen {} failed", path.display());
        Self(handle)
    }

    fn symbol(&self, name: &CStr) -> *mut c_void {
        let f = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        assert!(!f.is_null(), "{name:?} missing");
        f
    }
}

fn person(x: f32) -> Person {
    let mut kps = [Keypoint::default(); NUM_KEYPOINTS];
    kps[16] = Keypoint {
        x: x + 5.0,
        y: x + 6.0,
        score: 0.5,
    };
    Person::new([x, x + 1.0, x + 10.0, x + 20.0], 0.75, kps)
}

#[test]
fn header_matches_the_rust_layout_and_reads_a_rust_meta() {
    gst::init().unwrap();
    let layout = ffi::c_layout();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_header");
    let lib = Library::open(&compile(&c_source(&layout), &dir));
    type ApiType = unsafe extern "C" fn() -> glib::ffi::GType;
    type Describe = unsafe extern "C" fn(*mut gst::ffi::GstBuffer, *mut c_char, usize);
    let api_type: ApiType = unsafe { std::mem::transmute(lib.symbol(c"layout_test_api_type")) };
    let describe: Describe = unsafe { std::mem::transmute(lib.symbol(c"layout_test_describe")) };

    // The C side registers the API type first, as an application that has not loaded the plugin.
    assert_eq!(glib::Type::from_name(ffi::API_NAME), None);
    let from_c = unsafe { api_type() };
    assert_ne!(from_c, 0, "the header could not register the API type");
    assert_eq!(unsafe { api_type() }, from_c);
    // The Rust side finds that registration; both keep answering the same type.
    recognizer_meta::register();
    let from_rust = <PoseMeta as gst::meta::MetaAPI>::meta_api();
    assert_eq!(from_rust.into_glib(), from_c);
    for tag in ffi::API_TAGS {
        assert!(
            unsafe {
                gst::ffi::gst_meta_api_type_has_tag(from_c, glib::Quark::from_str(tag).into_glib())
            } != glib::ffi::GFALSE,
            "tag {tag} missing from the C registration"
        );
    }

    // A meta written by Rust, read through the header.
    let mut classified = person(1.0);
    classified.flags.insert(PersonFlags::PREDICTED);
    classified.set_track(Some(Track {
        id: 7,
        state: TrackState::Tracked,
        age: 12,
    }));
    classified.set_action(Some(&Action {
        class_id: 1,
        label: "fall".into(),
        score: 0.75,
        window: 48,
        window_end_pts: Some(1_600_000_000),
    }));
    classified.set_class_scores(&[
        ClassScore::new(0, "normal", 0.25),
        ClassScore::new(1, "fall", 0.75),
    ]);
    let plain = person(100.0);
    let mut buffer = gst::Buffer::with_size(16).unwrap();
    PoseMeta::add(
        buffer.get_mut().unwrap(),
        &[classified, plain],
        PoseMetaFlags::INFERRED,
    );
    let expected = format!(
        "version={} inferred=1 n=2\n\
         bbox=1.0,2.0,11.0,21.0 score=0.75 kp16=6.0,7.0,0.50 predicted=1 truncated=0 track=7 state=tracked age=12 action=fall class=1 p=0.75 window=48 end=1600000000 scores=normal#0:0.250,fall#1:0.750 fall=0.750\n\
         bbox=100.0,101.0,110.0,120.0 score=0.75 kp16=105.0,106.0,0.50 predicted=0 truncated=0 track=0 state=none age=0 action=none class=0 p=0.00 window=0 end={} scores= fall=-1.000\n",
        ffi::VERSION,
        u64::MAX
    );
    let read = |buffer: &gst::Buffer| {
        let mut out = vec![0 as c_char; 4096];
        unsafe { describe(buffer.as_mut_ptr(), out.as_mut_ptr(), out.len()) };
        unsafe { CStr::from_ptr(out.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(read(&buffer), expected);
    // The copy transform carries every field, scores included.
    assert_eq!(read(&buffer.copy_deep().unwrap()), expected);
    // A buffer without the meta reads as such.
    assert_eq!(read(&gst::Buffer::new()), "no meta");
}
