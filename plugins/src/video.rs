//! Viewing mapped GStreamer video frames as the core's [`Image`].

use gst_video::{VideoColorMatrix, VideoColorRange, VideoFormat, prelude::*};
use recognizer_core::pose::{Image, PixelLayout, YuvMatrix};

/// Raw formats the pose elements read directly.
pub const INPUT_FORMATS: &[VideoFormat] = &[
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::I420,
    VideoFormat::Yv12,
    VideoFormat::Nv12,
];

/// The always-present `src` and `sink` templates of an in-place filter with the given caps.
pub fn filter_pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps).unwrap()
    })
    .collect()
}

/// The `format` values of the first structure of `caps`, as written in caps strings.
fn formats_of(caps: &gst::Caps) -> Vec<String> {
    let Some(s) = caps.structure(0) else {
        return Vec::new();
    };
    if let Ok(list) = s.get::<gst::List>("format") {
        list.iter().filter_map(|v| v.get::<String>().ok()).collect()
    } else {
        s.get::<String>("format").into_iter().collect()
    }
}

/// For `BaseTransformImpl::accept_caps`: returns `accepted` (the parent class's answer), and
/// when fixed caps are refused on the sink pad, posts an element error that names the element,
/// what it received and the formats its sink pad takes. Without it, a source that pushes caps
/// the element cannot take (an `appsrc` with GRAY8, say) only reports `not-negotiated`.
/// Unfixed caps are negotiation queries, not data, and are refused silently.
pub fn explain_refused_caps(
    element: &gst::Element,
    direction: gst::PadDirection,
    caps: &gst::Caps,
    accepted: bool,
) -> bool {
    if accepted || direction != gst::PadDirection::Sink || !caps.is_fixed() {
        return accepted;
    }
    let received = match caps.structure(0) {
        Some(s) => match s.get::<String>("format") {
            Ok(format) => format!("{} in format {format}", s.name()),
            Err(_) => s.name().to_string(),
        },
        None => "empty caps".to_string(),
    };
    let template = element
        .pad_template("sink")
        .map(|t| t.caps().clone())
        .unwrap_or_else(gst::Caps::new_empty);
    let formats = formats_of(&template);
    let takes = if formats.is_empty() {
        template.to_string()
    } else {
        format!("video/x-raw in {}", formats.join(", "))
    };
    let factory = element
        .factory()
        .map_or_else(|| "element".to_string(), |f| f.name().to_string());
    gst::element_error!(
        element,
        gst::CoreError::Negotiation,
        (
            "{factory} '{}' cannot take {received}: it takes {takes} (put videoconvert before it)",
            element.name()
        ),
        ["refused caps {caps}"]
    );
    false
}

/// `video/x-raw` of any format: for elements that only read and write metadata.
pub fn any_raw_video() -> gst::Caps {
    gst::Caps::builder("video/x-raw").build()
}

fn matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    let colorimetry = info.colorimetry();
    let full_range = colorimetry.range() == VideoColorRange::Range0_255;
    let (kr, kb) = match colorimetry.matrix() {
        VideoColorMatrix::Bt709 => (0.2126, 0.0722),
        VideoColorMatrix::Bt2020 => (0.2627, 0.0593),
        VideoColorMatrix::Smpte240m => (0.212, 0.087),
        VideoColorMatrix::Fcc => (0.30, 0.11),
        _ => (0.299, 0.114),
    };
    YuvMatrix { kr, kb, full_range }
}

/// The frame as an [`Image`], or `None` for a format outside [`INPUT_FORMATS`].
pub fn image<'a>(frame: &'a gst_video::VideoFrameRef<&gst::BufferRef>) -> Option<Image<'a>> {
    let info = frame.info();
    let finfo = info.format_info();
    let plane = |i: u32| frame.plane_data(i).unwrap_or(&[]);
    let stride = |i: usize| frame.plane_stride().get(i).copied().unwrap_or(0).max(0) as usize;
    let (layout, planes, strides) = match info.format() {
        VideoFormat::I420 => (
            PixelLayout::I420,
            [plane(0), plane(1), plane(2)],
            [stride(0), stride(1), stride(2)],
        ),
        // YV12 stores V before U.
        VideoFormat::Yv12 => (
            PixelLayout::I420,
            [plane(0), plane(2), plane(1)],
            [stride(0), stride(2), stride(1)],
        ),
        VideoFormat::Nv12 => (
            PixelLayout::Nv12,
            [plane(0), plane(1), &[][..]],
            [stride(0), stride(1), 0],
        ),
        f if INPUT_FORMATS.contains(&f) => {
            // Packed RGB family: component offsets within a pixel (R = 0, G = 1, B = 2).
            let offsets = finfo.poffset();
            let layout = PixelLayout::Packed {
                bytes_per_pixel: finfo.pixel_stride()[0] as usize,
                r: offsets[0] as usize,
                g: offsets[1] as usize,
                b: offsets[2] as usize,
            };
            (layout, [plane(0), &[][..], &[][..]], [stride(0), 0, 0])
        }
        _ => return None,
    };
    Some(Image {
        width: info.width() as usize,
        height: info.height() as usize,
        layout,
        planes,
        strides,
        matrix: matrix(info),
    })
}
