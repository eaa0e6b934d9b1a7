use std::sync::{LazyLock, Mutex};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::subclass::prelude::*;
use gst_video::{VideoFormat, prelude::*, subclass::prelude::*};
use recognizer_core::draw::{self, Canvas, PackedCanvas, YuvCanvas};
use recognizer_meta::{Person, PersonFlags, PoseMeta, SKELETON_EDGES};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "poseoverlay",
        gst::DebugColorFlags::empty(),
        Some("Pose drawing"),
    )
});

const DEFAULT_KEYPOINT_THRESHOLD: f32 = 0.3;
const DEFAULT_LINE_WIDTH: u32 = 0;
const DEFAULT_DRAW_BOXES: bool = true;
const DEFAULT_DRAW_SKELETON: bool = true;
const DEFAULT_DRAW_LABELS: bool = true;
const DEFAULT_TEXT_SCALE: u32 = 0;

/// Colour of persons without a track.
const UNTRACKED: [u8; 3] = [200, 200, 200];

#[derive(Debug, Clone, Copy)]
struct Settings {
    keypoint_threshold: f32,
    line_width: u32,
    draw_boxes: bool,
    draw_skeleton: bool,
    draw_labels: bool,
    text_scale: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keypoint_threshold: DEFAULT_KEYPOINT_THRESHOLD,
            line_width: DEFAULT_LINE_WIDTH,
            draw_boxes: DEFAULT_DRAW_BOXES,
            draw_skeleton: DEFAULT_DRAW_SKELETON,
            draw_labels: DEFAULT_DRAW_LABELS,
            text_scale: DEFAULT_TEXT_SCALE,
        }
    }
}

#[derive(Default)]
pub struct PoseOverlay {
    settings: Mutex<Settings>,
}

#[glib::object_subclass]
impl ObjectSubclass for PoseOverlay {
    const NAME: &'static str = "GstPoseOverlay";
    type Type = super::PoseOverlay;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for PoseOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecFloat::builder("keypoint-threshold")
                    .nick("Keypoint threshold")
                    .blurb("Keypoints (and the edges between them) scoring lower are not drawn")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_KEYPOINT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("line-width")
                    .nick("Line width")
                    .blurb("Line width in pixels (0: from the frame size)")
                    .maximum(64)
                    .default_value(DEFAULT_LINE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-boxes")
                    .nick("Draw boxes")
                    .blurb("Draw person boxes")
                    .default_value(DEFAULT_DRAW_BOXES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-skeleton")
                    .nick("Draw skeleton")
                    .blurb("Draw keypoints and skeleton edges")
                    .default_value(DEFAULT_DRAW_SKELETON)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-labels")
                    .nick("Draw labels")
                    .blurb("Draw track ids and action labels")
                    .default_value(DEFAULT_DRAW_LABELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("text-scale")
                    .nick("Text scale")
                    .blurb("Pixels per font pixel of the 3x5 label font (0: from the frame size)")
                    .maximum(32)
                    .default_value(DEFAULT_TEXT_SCALE)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "keypoint-threshold" => s.keypoint_threshold = value.get().unwrap(),
            "line-width" => s.line_width = value.get().unwrap(),
            "draw-boxes" => s.draw_boxes = value.get().unwrap(),
            "draw-skeleton" => s.draw_skeleton = value.get().unwrap(),
            "draw-labels" => s.draw_labels = value.get().unwrap(),
            "text-scale" => s.text_scale = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "keypoint-threshold" => s.keypoint_threshold.to_value(),
            "line-width" => s.line_width.to_value(),
            "draw-boxes" => s.draw_boxes.to_value(),
            "draw-skeleton" => s.draw_skeleton.to_value(),
            "draw-labels" => s.draw_labels.to_value(),
            "text-scale" => s.text_scale.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for PoseOverlay {}

impl ElementImpl for PoseOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pose overlay",
                "Filter/Effect/Video",
                "Draws boxes, skeletons, track ids and action labels of the pose metadata onto the video",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(crate::video::INPUT_FORMATS.iter().copied())
                .build();
            crate::video::filter_pad_templates(&caps)
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PoseOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        gst::info!(
            CAT,
            imp = self,
            "starting with {:?}",
            self.settings.lock().unwrap()
        );
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        gst::info!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        let accepted = self.parent_accept_caps(direction, caps);
        crate::video::explain_refused_caps(self.obj().upcast_ref(), direction, caps, accepted)
    }
}

impl VideoFilterImpl for PoseOverlay {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        gst::debug!(
            CAT,
            imp = self,
            "drawing on {:?} {}x{}",
            in_info.format(),
            in_info.width(),
            in_info.height()
        );
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *self.settings.lock().unwrap();
        let Some(persons) = frame
            .buffer()
            .meta::<PoseMeta>()
            .map(|m| m.persons().to_vec())
        else {
            gst::trace!(CAT, imp = self, "no pose metadata");
            return Ok(gst::FlowSuccess::Ok);
        };
        if persons.is_empty() {
            gst::trace!(CAT, imp = self, "no persons");
            return Ok(gst::FlowSuccess::Ok);
        }
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let format = frame.format();
        let finfo = frame.format_info();
        let strides: Vec<usize> = frame
            .plane_stride()
            .iter()
            .map(|s| (*s).max(0) as usize)
            .collect();
        match format {
            VideoFormat::I420 | VideoFormat::Yv12 | VideoFormat::Nv12 => {
                let [y, p1, p2, _] = frame.planes_data_mut();
                // I420 has U then V planes, YV12 V then U; NV12 one plane of U, V pairs (two
                // plane strides only, so the third is never read for it).
                let (u, u_stride, v) = match format {
                    VideoFormat::I420 => (p1, strides[1], Some((p2, strides[2]))),
                    VideoFormat::Yv12 => (p2, strides[2], Some((p1, strides[1]))),
                    _ => (p1, strides[1], None),
                };
                let mut canvas = YuvCanvas {
                    y,
                    y_stride: strides[0],
                    u,
                    u_stride,
                    v,
                    width,
                    height,
                };
                draw_persons(&mut canvas, &persons, &settings);
            }
            _ => {
                let offsets = finfo.poffset();
                let bytes_per_pixel = finfo.pixel_stride()[0] as usize;
                let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
                let mut canvas = PackedCanvas {
                    data,
                    width,
                    height,
                    stride: strides[0],
                    bytes_per_pixel,
                    offsets: [
                        offsets[0] as usize,
                        offsets[1] as usize,
                        offsets[2] as usize,
                    ],
                };
                draw_persons(&mut canvas, &persons, &settings);
            }
        }
        gst::trace!(CAT, imp = self, "drew {} persons", persons.len());
        Ok(gst::FlowSuccess::Ok)
    }
}

fn draw_persons(canvas: &mut impl Canvas, persons: &[Person], s: &Settings) {
    let short_side = canvas.width().min(canvas.height()).max(1);
    let line = if s.line_width > 0 {
        s.line_width as usize
    } else {
        (short_side / 300).clamp(1, 8)
    };
    let scale = if s.text_scale > 0 {
        s.text_scale as usize
    } else {
        (short_side / 180).clamp(1, 12)
    };
    // Boxes that are not numbers place nothing (their label would land at 0, 0).
    for p in persons
        .iter()
        .filter(|p| p.bbox.iter().all(|v| v.is_finite()))
    {
        let colour = p.track().map_or(UNTRACKED, |t| draw::track_colour(t.id));
        if s.draw_boxes {
            // Predicted persons (the pose model skipped the frame) get a thinner box.
            let width = if p.flags.contains(PersonFlags::PREDICTED) {
                line.div_ceil(2)
            } else {
                line
            };
            draw::rectangle(canvas, p.bbox, width, colour);
        }
        if s.draw_skeleton {
            let visible = |k: usize| p.keypoints[k].score >= s.keypoint_threshold;
            for &(a, b) in SKELETON_EDGES.iter() {
                if visible(a) && visible(b) {
                    let (ka, kb) = (p.keypoints[a], p.keypoints[b]);
                    draw::line(canvas, (ka.x, ka.y), (kb.x, kb.y), line, colour);
                }
            }
            for k in (0..p.keypoints.len()).filter(|k| visible(*k)) {
                let kp = p.keypoints[k];
                draw::disc(
                    canvas,
                    (kp.x, kp.y),
                    line as f32 * 1.5 + 1.0,
                    [255, 255, 255],
                );
            }
        }
        if s.draw_labels {
            let mut label = match p.track() {
                Some(t) => format!("#{}", t.id),
                None => String::new(),
            };
            if let Some(a) = p.action() {
                label = format!("{label} {} {:.0}%", a.label, a.score * 100.0)
                    .trim()
                    .to_string();
            }
            if !label.is_empty() {
                let (tw, th) = draw::text_size(&label, scale);
                let pad = scale as i64;
                // Clamped so that boxes far outside the frame stay far outside it without
                // overflowing the arithmetic below.
                let limit = 4 * canvas.width().max(canvas.height()) as i64;
                let x = (p.bbox[0].round() as i64).clamp(-limit, limit);
                let y = (p.bbox[1].round() as i64).clamp(-limit, limit);
                let y = (y - th as i64 - 2 * pad).max(0);
                draw::fill_rectangle(
                    canvas,
                    x,
                    y,
                    tw as i64 + 2 * pad,
                    th as i64 + 2 * pad,
                    colour,
                );
                draw::text(canvas, x + pad, y + pad, &label, scale, [0, 0, 0]);
            }
        }
    }
}
