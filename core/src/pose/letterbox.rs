//! Letterboxing a video frame into a pose model's input tensor.
//!
//! The frame is resized with its aspect ratio kept, pasted at the top-left corner of the model's
//! input, and the rest is padded with grey (114), as both the RTMO export (mmpose/mmdeploy, rtmlib)
//! and Ultralytics' YOLO-pose expect. Resizing is bilinear with the same sample positions as
//! OpenCV's `cv2.resize(..., INTER_LINEAR)`, which the Python reference pipelines use, so that
//! both sides see nearly the same pixels. Colour conversion from YUV happens on the fly, after
//! interpolation (the conversion is affine, so interpolating first is exact up to clamping).

/// Geometry of a top-left letterbox from a `src` frame into a `dst` model input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub src_width: usize,
    pub src_height: usize,
    pub dst_width: usize,
    pub dst_height: usize,
    /// Model pixels per source pixel.
    pub scale: f32,
    /// Size of the resized frame inside the model input.
    pub resized_width: usize,
    pub resized_height: usize,
}

impl Letterbox {
    pub fn new(src_width: usize, src_height: usize, dst_width: usize, dst_height: usize) -> Self {
        assert!(src_width > 0 && src_height > 0 && dst_width > 0 && dst_height > 0);
        let scale =
            (dst_width as f32 / src_width as f32).min(dst_height as f32 / src_height as f32);
        let resized_width = ((src_width as f32 * scale).round() as usize).clamp(1, dst_width);
        let resized_height = ((src_height as f32 * scale).round() as usize).clamp(1, dst_height);
        Self {
            src_width,
            src_height,
            dst_width,
            dst_height,
            scale,
            resized_width,
            resized_height,
        }
    }

    /// Maps a point in model-input pixels back to source pixels.
    #[inline]
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        (x / self.scale, y / self.scale)
    }

    /// Maps a box in model-input pixels back to source pixels, clipped to the frame.
    pub fn box_to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let (w, h) = (self.src_width as f32, self.src_height as f32);
        let (x1, y1) = self.to_source(b[0], b[1]);
        let (x2, y2) = self.to_source(b[2], b[3]);
        [
            x1.clamp(0.0, w),
            y1.clamp(0.0, h),
            x2.clamp(0.0, w),
            y2.clamp(0.0, h),
        ]
    }
}

/// How the pixels of a frame are laid out in memory (8 bits per sample).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    /// Packed RGB family: bytes per pixel and the byte offsets of R, G and B in a pixel
    /// (RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR).
    Packed {
        bytes_per_pixel: usize,
        r: usize,
        g: usize,
        b: usize,
    },
    /// Planar 4:2:0: Y, U, V planes (I420; YV12 with the U and V planes swapped by the caller).
    I420,
    /// Semi-planar 4:2:0: a Y plane and an interleaved UV plane.
    Nv12,
}

/// YUV to RGB matrix: luma coefficients of red and blue, and whether samples use the full range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvMatrix {
    pub kr: f32,
    pub kb: f32,
    pub full_range: bool,
}

impl YuvMatrix {
    pub const BT601_LIMITED: Self = Self {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    pub const BT601_FULL: Self = Self {
        kr: 0.299,
        kb: 0.114,
        full_range: true,
    };
    pub const BT709_LIMITED: Self = Self {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };
    pub const BT2020_LIMITED: Self = Self {
        kr: 0.2627,
        kb: 0.0593,
        full_range: false,
    };

    /// Converts rows of interpolated Y, U, V samples in place to R, G, B in 0..=255.
    fn rows_to_rgb(&self, y: &mut [f32], u: &mut [f32], v: &mut [f32]) {
        let (y_scale, y_offset, c_scale) = if self.full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        let kg = 1.0 - self.kr - self.kb;
        let (cr_r, cb_b) = (2.0 * (1.0 - self.kr), 2.0 * (1.0 - self.kb));
        for ((y, u), v) in y.iter_mut().zip(u.iter_mut()).zip(v.iter_mut()) {
            let luma = (*y - y_offset) * y_scale;
            let cb = (*u - 128.0) * c_scale;
            let cr = (*v - 128.0) * c_scale;
            let r = luma + cr_r * cr;
            let b = luma + cb_b * cb;
            let g = (luma - self.kr * r - self.kb * b) / kg;
            *y = r.clamp(0.0, 255.0);
            *u = g.clamp(0.0, 255.0);
            *v = b.clamp(0.0, 255.0);
        }
    }
}

/// A borrowed 8-bit frame.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    pub layout: PixelLayout,
    /// Plane data; unused planes may be empty.
    pub planes: [&'a [u8]; 3],
    /// Bytes per row of each plane.
    pub strides: [usize; 3],
    /// Used for the YUV layouts only.
    pub matrix: YuvMatrix,
}

/// Why a frame cannot be letterboxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    PlaneTooSmall {
        plane: usize,
        needed: usize,
        got: usize,
    },
    TensorSize {
        needed: usize,
        got: usize,
    },
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PlaneTooSmall { plane, needed, got } => {
                write!(
                    f,
                    "plane {plane} holds {got} bytes, the frame's size and stride need {needed}"
                )
            }
            Self::TensorSize { needed, got } => {
                write!(f, "input tensor holds {got} floats, {needed} needed")
            }
        }
    }
}

impl std::error::Error for ImageError {}

impl Image<'_> {
    fn check(&self) -> Result<(), ImageError> {
        let need = |plane: usize, rows: usize, row_bytes: usize| -> Result<(), ImageError> {
            let needed = (rows - 1) * self.strides[plane] + row_bytes;
            let got = self.planes[plane].len();
            if got < needed || self.strides[plane] < row_bytes {
                return Err(ImageError::PlaneTooSmall { plane, needed, got });
            }
            Ok(())
        };
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        match self.layout {
            PixelLayout::Packed {
                bytes_per_pixel, ..
            } => need(0, self.height, self.width * bytes_per_pixel),
            PixelLayout::I420 => {
                need(0, self.height, self.width)?;
                need(1, ch, cw)?;
                need(2, ch, cw)
            }
            PixelLayout::Nv12 => {
                need(0, self.height, self.width)?;
                need(1, ch, cw * 2)
            }
        }
    }
}

/// Channel order of the model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// One axis of a bilinear resize: for each destination index, the two source indices and the
/// weight of the second, with OpenCV's INTER_LINEAR sample positions and border clamping.
struct Axis {
    i0: Vec<usize>,
    i1: Vec<usize>,
    w1: Vec<f32>,
}

impl Axis {
    fn new(src: usize, dst: usize) -> Self {
        let ratio = src as f64 / dst as f64;
        let mut axis = Axis {
            i0: Vec::with_capacity(dst),
            i1: Vec::with_capacity(dst),
            w1: Vec::with_capacity(dst),
        };
        for d in 0..dst {
            let f = (d as f64 + 0.5) * ratio - 0.5;
            let mut s = f.floor();
            let mut w = f - s;
            if s < 0.0 {
                s = 0.0;
                w = 0.0;
            }
            let mut s = s as usize;
            if s >= src - 1 {
                s = src - 1;
                w = 0.0;
            }
            axis.i0.push(s);
            axis.i1.push((s + 1).min(src - 1));
            axis.w1.push(w as f32);
        }
        axis
    }

    /// The same sample positions in a plane subsampled by 2 (4:2:0 chroma, centred siting).
    fn subsampled(src: usize, dst: usize) -> Self {
        let csrc = src.div_ceil(2);
        let ratio = src as f64 / dst as f64;
        let mut axis = Axis {
            i0: Vec::with_capacity(dst),
            i1: Vec::with_capacity(dst),
            w1: Vec::with_capacity(dst),
        };
        for d in 0..dst {
            let f = ((d as f64 + 0.5) * ratio) / 2.0 - 0.5;
            let s = f.floor().max(0.0);
            let w = if f < 0.0 { 0.0 } else { f - s };
            let s = (s as usize).min(csrc - 1);
            axis.i0.push(s);
            axis.i1.push((s + 1).min(csrc - 1));
            axis.w1.push(if s + 1 >= csrc { 0.0 } else { w as f32 });
        }
        axis
    }
}

#[inline]
fn lerp2(p00: u8, p01: u8, p10: u8, p11: u8, wx: f32, wy: f32) -> f32 {
    let top = p00 as f32 + (p01 as f32 - p00 as f32) * wx;
    let bottom = p10 as f32 + (p11 as f32 - p10 as f32) * wx;
    top + (bottom - top) * wy
}

/// Writes the letterboxed frame into `tensor`, a `[3, dst_height, dst_width]` planar float
/// buffer, in the given channel order, each value multiplied by `value_scale` (1.0 for raw
/// 0-255 input, 1/255 for 0-1 input); the padding is `114 * value_scale`.
pub fn fill_input_tensor(
    image: &Image<'_>,
    letterbox: &Letterbox,
    order: ChannelOrder,
    value_scale: f32,
    tensor: &mut [f32],
) -> Result<(), ImageError> {
    image.check()?;
    let (dw, dh) = (letterbox.dst_width, letterbox.dst_height);
    let plane = dw * dh;
    if tensor.len() != 3 * plane {
        return Err(ImageError::TensorSize {
            needed: 3 * plane,
            got: tensor.len(),
        });
    }
    let (rw, rh) = (letterbox.resized_width, letterbox.resized_height);
    let pad = 114.0 * value_scale;
    // Model channel c takes source channel `src_channel[c]` (0 = R, 1 = G, 2 = B).
    let src_channel = match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let (t0, rest) = tensor.split_at_mut(plane);
    let (t1, t2) = rest.split_at_mut(plane);
    let mut outs = [t0, t1, t2];
    for out in outs.iter_mut() {
        for y in 0..dh {
            let row = &mut out[y * dw..(y + 1) * dw];
            if y >= rh {
                row.fill(pad);
            } else {
                row[rw..].fill(pad);
            }
        }
    }

    let xs = Axis::new(image.width, rw);
    let ys = Axis::new(image.height, rh);
    // Row by row: gather the interpolated samples into three rows of source channels, then
    // convert/scale them into the model planes in a loop the compiler vectorises.
    let mut rows = [vec![0.0f32; rw], vec![0.0f32; rw], vec![0.0f32; rw]];
    let yuv = matches!(image.layout, PixelLayout::I420 | PixelLayout::Nv12);
    let (cxs, cys) = if yuv {
        (
            Axis::subsampled(image.width, rw),
            Axis::subsampled(image.height, rh),
        )
    } else {
        (
            Axis {
                i0: Vec::new(),
                i1: Vec::new(),
                w1: Vec::new(),
            },
            Axis {
                i0: Vec::new(),
                i1: Vec::new(),
                w1: Vec::new(),
            },
        )
    };
    for dy in 0..rh {
        let wy = ys.w1[dy];
        let [r0, r1, r2] = &mut rows;
        match image.layout {
            PixelLayout::Packed {
                bytes_per_pixel: bpp,
                r,
                g,
                b,
            } => {
                let (data, stride) = (image.planes[0], image.strides[0]);
                let top = &data[ys.i0[dy] * stride..];
                let bottom = &data[ys.i1[dy] * stride..];
                for dx in 0..rw {
                    let (x0, x1, wx) = (xs.i0[dx] * bpp, xs.i1[dx] * bpp, xs.w1[dx]);
                    r0[dx] = lerp2(
                        top[x0 + r],
                        top[x1 + r],
                        bottom[x0 + r],
                        bottom[x1 + r],
                        wx,
                        wy,
                    );
                    r1[dx] = lerp2(
                        top[x0 + g],
                        top[x1 + g],
                        bottom[x0 + g],
                        bottom[x1 + g],
                        wx,
                        wy,
                    );
                    r2[dx] = lerp2(
                        top[x0 + b],
                        top[x1 + b],
                        bottom[x0 + b],
                        bottom[x1 + b],
                        wx,
                        wy,
                    );
                }
            }
            PixelLayout::I420 | PixelLayout::Nv12 => {
                let (ydata, ystride) = (image.planes[0], image.strides[0]);
                let top = &ydata[ys.i0[dy] * ystride..];
                let bottom = &ydata[ys.i1[dy] * ystride..];
                for (dx, value) in r0[..rw].iter_mut().enumerate() {
                    let (x0, x1) = (xs.i0[dx], xs.i1[dx]);
                    *value = lerp2(top[x0], top[x1], bottom[x0], bottom[x1], xs.w1[dx], wy);
                }
                let cwy = cys.w1[dy];
                if image.layout == PixelLayout::I420 {
                    let (up, us, vp, vs) = (
                        image.planes[1],
                        image.strides[1],
                        image.planes[2],
                        image.strides[2],
                    );
                    let (u_top, u_bottom) = (&up[cys.i0[dy] * us..], &up[cys.i1[dy] * us..]);
                    let (v_top, v_bottom) = (&vp[cys.i0[dy] * vs..], &vp[cys.i1[dy] * vs..]);
                    for dx in 0..rw {
                        let (x0, x1, wx) = (cxs.i0[dx], cxs.i1[dx], cxs.w1[dx]);
                        r1[dx] = lerp2(u_top[x0], u_top[x1], u_bottom[x0], u_bottom[x1], wx, cwy);
                        r2[dx] = lerp2(v_top[x0], v_top[x1], v_bottom[x0], v_bottom[x1], wx, cwy);
                    }
                } else {
                    let (uv, s) = (image.planes[1], image.strides[1]);
                    let (top, bottom) = (&uv[cys.i0[dy] * s..], &uv[cys.i1[dy] * s..]);
                    for dx in 0..rw {
                        let (x0, x1, wx) = (2 * cxs.i0[dx], 2 * cxs.i1[dx], cxs.w1[dx]);
                        r1[dx] = lerp2(top[x0], top[x1], bottom[x0], bottom[x1], wx, cwy);
                        r2[dx] = lerp2(
                            top[x0 + 1],
                            top[x1 + 1],
                            bottom[x0 + 1],
                            bottom[x1 + 1],
                            wx,
                            cwy,
                        );
                    }
                }
                image.matrix.rows_to_rgb(r0, r1, r2);
            }
        }
        let at = dy * dw;
        for (c, out) in outs.iter_mut().enumerate() {
            let src = &rows[src_channel[c]];
            for (o, v) in out[at..at + rw].iter_mut().zip(src) {
                *o = v * value_scale;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed_rgb(width: usize, height: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut data = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        data
    }

    #[test]
    fn geometry_keeps_aspect_and_maps_back() {
        let lb = Letterbox::new(1920, 1080, 640, 640);
        assert_eq!((lb.resized_width, lb.resized_height), (640, 360));
        assert!((lb.scale - 1.0 / 3.0).abs() < 1e-7);
        let (x, y) = lb.to_source(320.0, 180.0);
        assert!((x - 960.0).abs() < 1e-3 && (y - 540.0).abs() < 1e-3);
        let portrait = Letterbox::new(1088, 1920, 640, 640);
        assert_eq!(
            (portrait.resized_width, portrait.resized_height),
            (363, 640)
        );
        let clipped = lb.box_to_source([-5.0, 10.0, 700.0, 400.0]);
        for (got, want) in clipped.iter().zip([0.0, 30.0, 1920.0, 1080.0]) {
            assert!((got - want).abs() < 1e-3, "{clipped:?}");
        }
    }

    #[test]
    fn pads_with_114_and_orders_channels() {
        // A 4x2 frame with distinct R, G, B values, upscaled into an 8x8 input (4 rows of padding).
        let data = packed_rgb(4, 2, |_, _| [10, 20, 30]);
        let image = Image {
            width: 4,
            height: 2,
            layout: PixelLayout::Packed {
                bytes_per_pixel: 3,
                r: 0,
                g: 1,
                b: 2,
            },
            planes: [&data, &[], &[]],
            strides: [12, 0, 0],
            matrix: YuvMatrix::BT601_LIMITED,
        };
        let lb = Letterbox::new(4, 2, 8, 8);
        let mut t = vec![0.0; 3 * 64];
        fill_input_tensor(&image, &lb, ChannelOrder::Bgr, 1.0, &mut t).unwrap();
        // Top-left is the image: B first.
        assert_eq!((t[0], t[64], t[128]), (30.0, 20.0, 10.0));
        // Row 4 and below is padding.
        assert!(t[4 * 8..64].iter().all(|&v| v == 114.0));
        fill_input_tensor(&image, &lb, ChannelOrder::Rgb, 1.0 / 255.0, &mut t).unwrap();
        assert!((t[0] - 10.0 / 255.0).abs() < 1e-6);
        assert!((t[63] - 114.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn bilinear_matches_opencv_sample_positions() {
        // Horizontal ramp 0, 10, 20, ... downscaled by 2: OpenCV samples at source x = 2d + 0.5.
        let data = packed_rgb(8, 1, |x, _| [(x * 10) as u8; 3]);
        let image = Image {
            width: 8,
            height: 1,
            layout: PixelLayout::Packed {
                bytes_per_pixel: 3,
                r: 0,
                g: 1,
                b: 2,
            },
            planes: [&data, &[], &[]],
            strides: [24, 0, 0],
            matrix: YuvMatrix::BT601_LIMITED,
        };
        let lb = Letterbox::new(8, 1, 4, 4);
        let mut t = vec![0.0; 3 * 16];
        fill_input_tensor(&image, &lb, ChannelOrder::Rgb, 1.0, &mut t).unwrap();
        assert_eq!(&t[0..4], &[5.0, 25.0, 45.0, 65.0]);
    }

    #[test]
    fn yuv_layouts_convert_to_the_same_colour() {
        // Limited-range BT.601 grey-blue: Y=100, U=160, V=110.
        let (w, h) = (4, 4);
        let y = vec![100u8; w * h];
        let u = vec![160u8; 4];
        let v = vec![110u8; 4];
        let uv: Vec<u8> = (0..4).flat_map(|_| [160u8, 110u8]).collect();
        let i420 = Image {
            width: w,
            height: h,
            layout: PixelLayout::I420,
            planes: [&y, &u, &v],
            strides: [4, 2, 2],
            matrix: YuvMatrix::BT601_LIMITED,
        };
        let nv12 = Image {
            layout: PixelLayout::Nv12,
            planes: [&y, &uv, &[]],
            strides: [4, 4, 0],
            ..i420
        };
        let lb = Letterbox::new(w, h, 4, 4);
        let mut a = vec![0.0; 48];
        let mut b = vec![0.0; 48];
        fill_input_tensor(&i420, &lb, ChannelOrder::Rgb, 1.0, &mut a).unwrap();
        fill_input_tensor(&nv12, &lb, ChannelOrder::Rgb, 1.0, &mut b).unwrap();
        assert_eq!(a, b);
        // Reference values from the BT.601 limited-range equations.
        let yy = (100.0 - 16.0) * 255.0 / 219.0;
        let cb: f32 = (160.0 - 128.0) * 255.0 / 224.0;
        let cr: f32 = (110.0 - 128.0) * 255.0 / 224.0;
        let r = yy + 1.402 * cr;
        let bl = yy + 1.772 * cb;
        assert!((a[0] - r).abs() < 0.01, "{} vs {r}", a[0]);
        assert!((a[32] - bl).abs() < 0.01, "{} vs {bl}", a[32]);
    }

    #[test]
    fn short_planes_are_an_error_not_a_panic() {
        let data = vec![0u8; 10];
        let image = Image {
            width: 4,
            height: 4,
            layout: PixelLayout::Packed {
                bytes_per_pixel: 3,
                r: 0,
                g: 1,
                b: 2,
            },
            planes: [&data, &[], &[]],
            strides: [12, 0, 0],
            matrix: YuvMatrix::BT601_LIMITED,
        };
        let lb = Letterbox::new(4, 4, 8, 8);
        let mut t = vec![0.0; 3 * 64];
        assert!(matches!(
            fill_input_tensor(&image, &lb, ChannelOrder::Rgb, 1.0, &mut t),
            Err(ImageError::PlaneTooSmall { .. })
        ));
        let mut small = vec![0.0; 5];
        let ok = vec![0u8; 48];
        let image = Image {
            planes: [&ok, &[], &[]],
            ..image
        };
        assert!(matches!(
            fill_input_tensor(&image, &lb, ChannelOrder::Rgb, 1.0, &mut small),
            Err(ImageError::TensorSize { .. })
        ));
    }
}
