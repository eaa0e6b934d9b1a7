//! A small rasteriser for annotating frames in place: thick lines, rectangles, filled circles
//! and text in a built-in 3x5 pixel font (scaled), over any pixel layout that implements
//! [`Canvas`]. Packed RGB layouts and 4:2:0 YUV (I420, NV12) are provided.

/// Something pixels can be written to.
pub trait Canvas {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Paints one pixel (coordinates already inside the canvas).
    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]);
}

/// Packed 8-bit RGB family (RGB, BGR, RGBx, BGRx, xRGB, ...): byte offsets of R, G, B in a pixel.
pub struct PackedCanvas<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub bytes_per_pixel: usize,
    pub offsets: [usize; 3],
}

impl Canvas for PackedCanvas<'_> {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let at = y * self.stride + x * self.bytes_per_pixel;
        if at + self.bytes_per_pixel <= self.data.len() {
            for (offset, value) in self.offsets.iter().zip(rgb) {
                self.data[at + offset] = value;
            }
        }
    }
}

/// 4:2:0 YUV, planar (I420: U and V planes) or semi-planar (NV12: one interleaved UV plane).
/// Colours are converted with BT.601 limited range; chroma is written at half resolution.
pub struct YuvCanvas<'a> {
    pub y: &'a mut [u8],
    pub y_stride: usize,
    /// I420: U plane; NV12: the interleaved UV plane.
    pub u: &'a mut [u8],
    pub u_stride: usize,
    /// I420: V plane; NV12: `None`.
    pub v: Option<(&'a mut [u8], usize)>,
    pub width: usize,
    pub height: usize,
}

/// `rgb` as limited-range BT.601 Y, U, V: the colours [`YuvCanvas`] writes.
pub fn rgb_to_yuv(rgb: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (rgb[0] as f32, rgb[1] as f32, rgb[2] as f32);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    [
        y.round().clamp(0.0, 255.0) as u8,
        u.round().clamp(0.0, 255.0) as u8,
        v.round().clamp(0.0, 255.0) as u8,
    ]
}

impl Canvas for YuvCanvas<'_> {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let [yy, u, v] = rgb_to_yuv(rgb);
        if let Some(p) = self.y.get_mut(y * self.y_stride + x) {
            *p = yy;
        }
        let (cx, cy) = (x / 2, y / 2);
        match self.v.as_mut() {
            Some((vp, vs)) => {
                if let Some(p) = self.u.get_mut(cy * self.u_stride + cx) {
                    *p = u;
                }
                if let Some(p) = vp.get_mut(cy * *vs + cx) {
                    *p = v;
                }
            }
            None => {
                let at = cy * self.u_stride + 2 * cx;
                if at + 1 < self.u.len() {
                    self.u[at] = u;
                    self.u[at + 1] = v;
                }
            }
        }
    }
}

/// Paints a `size` x `size` square centred on (x, y), clipped to the canvas.
fn dot(canvas: &mut impl Canvas, x: i64, y: i64, size: i64, rgb: [u8; 3]) {
    let half = size / 2;
    let (w, h) = (canvas.width() as i64, canvas.height() as i64);
    for yy in (y - half).max(0)..(y - half + size).min(h) {
        for xx in (x - half).max(0)..(x - half + size).min(w) {
            canvas.put(xx as usize, yy as usize, rgb);
        }
    }
}

/// A line of the given thickness (Bresenham, squares along the path). Endpoints far outside
/// the canvas are clipped to a margin first so that the walk stays short.
pub fn line(
    canvas: &mut impl Canvas,
    from: (f32, f32),
    to: (f32, f32),
    thickness: usize,
    rgb: [u8; 3],
) {
    if !(from.0.is_finite() && from.1.is_finite() && to.0.is_finite() && to.1.is_finite()) {
        return;
    }
    let margin = 4.0 * (canvas.width().max(canvas.height()) as f32);
    let clamp = |v: f32| v.clamp(-margin, margin).round() as i64;
    let (mut x0, mut y0, x1, y1) = (clamp(from.0), clamp(from.1), clamp(to.0), clamp(to.1));
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        dot(canvas, x0, y0, thickness.max(1) as i64, rgb);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

/// The outline of an `[x1, y1, x2, y2]` box.
pub fn rectangle(canvas: &mut impl Canvas, b: [f32; 4], thickness: usize, rgb: [u8; 3]) {
    line(canvas, (b[0], b[1]), (b[2], b[1]), thickness, rgb);
    line(canvas, (b[2], b[1]), (b[2], b[3]), thickness, rgb);
    line(canvas, (b[2], b[3]), (b[0], b[3]), thickness, rgb);
    line(canvas, (b[0], b[3]), (b[0], b[1]), thickness, rgb);
}

/// A filled box, clipped.
pub fn fill_rectangle(canvas: &mut impl Canvas, x: i64, y: i64, w: i64, h: i64, rgb: [u8; 3]) {
    let (cw, ch) = (canvas.width() as i64, canvas.height() as i64);
    for yy in y.max(0)..(y + h).min(ch) {
        for xx in x.max(0)..(x + w).min(cw) {
            canvas.put(xx as usize, yy as usize, rgb);
        }
    }
}

/// A filled disc.
pub fn disc(canvas: &mut impl Canvas, centre: (f32, f32), radius: f32, rgb: [u8; 3]) {
    if !(centre.0.is_finite() && centre.1.is_finite()) {
        return;
    }
    let r = radius.max(0.5);
    let (cw, ch) = (canvas.width() as i64, canvas.height() as i64);
    let (x0, x1) = (
        ((centre.0 - r).floor() as i64).max(0),
        ((centre.0 + r).ceil() as i64).min(cw - 1),
    );
    let (y0, y1) = (
        ((centre.1 - r).floor() as i64).max(0),
        ((centre.1 + r).ceil() as i64).min(ch - 1),
    );
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f32 - centre.0, y as f32 - centre.1);
            if dx * dx + dy * dy <= r * r {
                canvas.put(x as usize, y as usize, rgb);
            }
        }
    }
}

/// Rows of a 3x5 glyph, 3 bits each (bit 2 = left column). Lower case is drawn as upper case;
/// characters without a glyph are drawn as '?'.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 2, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        ':' => [0, 2, 0, 2, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        '-' => [0, 0, 7, 0, 0],
        '_' => [0, 0, 0, 0, 7],
        '#' => [5, 7, 5, 7, 5],
        '%' => [5, 1, 2, 4, 5],
        '/' => [1, 1, 2, 4, 4],
        '(' => [2, 4, 4, 4, 2],
        ')' => [2, 1, 1, 1, 2],
        _ => [7, 1, 2, 0, 2],
    }
}

/// Pixel size of `text` at `scale` (each font pixel is `scale` x `scale`).
pub fn text_size(text: &str, scale: usize) -> (usize, usize) {
    let n = text.chars().count();
    ((n * 4).saturating_sub(1) * scale, 5 * scale)
}

/// Draws `text` with its top-left corner at (x, y); returns its width in pixels.
pub fn text(
    canvas: &mut impl Canvas,
    x: i64,
    y: i64,
    s: &str,
    scale: usize,
    rgb: [u8; 3],
) -> usize {
    let scale = scale.max(1) as i64;
    for (i, c) in s.chars().enumerate() {
        let rows = glyph(c);
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..3 {
                if bits & (4 >> rx) != 0 {
                    let px = x + (i as i64 * 4 + rx) * scale;
                    let py = y + ry as i64 * scale;
                    fill_rectangle(canvas, px, py, scale, scale, rgb);
                }
            }
        }
    }
    text_size(s, scale as usize).0
}

/// A stable, well separated colour for a track id (golden-ratio hue steps, full saturation).
pub fn track_colour(id: u64) -> [u8; 3] {
    let hue = (id as f64 * 0.618_033_988_75).fract() * 6.0;
    let (sector, f) = (hue.floor() as u32, (hue.fract() * 255.0) as u8);
    let (v, q, t) = (255u8, 255 - f, f);
    match sector {
        0 => [v, t, 40],
        1 => [q, v, 40],
        2 => [40, v, t],
        3 => [40, q, v],
        4 => [t, 40, v],
        _ => [v, 40, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Grid {
        w: usize,
        h: usize,
        px: Vec<[u8; 3]>,
    }

    impl Canvas for Grid {
        fn width(&self) -> usize {
            self.w
        }
        fn height(&self) -> usize {
            self.h
        }
        fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
            self.px[y * self.w + x] = rgb;
        }
    }

    fn grid(w: usize, h: usize) -> Grid {
        Grid {
            w,
            h,
            px: vec![[0; 3]; w * h],
        }
    }

    #[test]
    fn lines_and_rectangles_hit_their_pixels_and_clip() {
        let mut g = grid(10, 10);
        line(&mut g, (0.0, 0.0), (9.0, 9.0), 1, [255, 0, 0]);
        assert!((0..10).all(|i| g.px[i * 10 + i] == [255, 0, 0]));
        assert_eq!(g.px.iter().filter(|p| **p != [0; 3]).count(), 10);
        // Far outside: clipped, no panic.
        line(&mut g, (-1e9, 5.0), (1e9, 5.0), 3, [0, 255, 0]);
        assert!((0..10).all(|x| g.px[5 * 10 + x] == [0, 255, 0]));
        line(&mut g, (f32::NAN, 0.0), (1.0, 1.0), 1, [1, 1, 1]);
        let mut g = grid(10, 10);
        rectangle(&mut g, [2.0, 2.0, 7.0, 7.0], 1, [9, 9, 9]);
        assert_eq!(g.px.iter().filter(|p| **p == [9, 9, 9]).count(), 20);
    }

    #[test]
    fn text_draws_the_glyph_bits() {
        let mut g = grid(20, 10);
        let w = text(&mut g, 0, 0, "1", 1, [7, 7, 7]);
        assert_eq!(w, 3);
        let lit: Vec<usize> = (0..5)
            .map(|y| (0..3).filter(|x| g.px[y * 20 + x] == [7, 7, 7]).count())
            .collect();
        assert_eq!(lit, vec![1, 2, 1, 1, 3]);
        assert_eq!(text_size("ab", 2), (14, 10));
    }

    #[test]
    fn yuv_canvas_writes_luma_and_chroma() {
        let (mut y, mut u, mut v) = (vec![0u8; 16], vec![0u8; 4], vec![0u8; 4]);
        let mut c = YuvCanvas {
            y: &mut y,
            y_stride: 4,
            u: &mut u,
            u_stride: 2,
            v: Some((&mut v, 2)),
            width: 4,
            height: 4,
        };
        c.put(3, 3, [255, 255, 255]);
        assert_eq!((y[15], u[3], v[3]), (235, 128, 128));
        let mut uv = vec![0u8; 8];
        let mut y = vec![0u8; 16];
        let mut c = YuvCanvas {
            y: &mut y,
            y_stride: 4,
            u: &mut uv,
            u_stride: 4,
            v: None,
            width: 4,
            height: 4,
        };
        c.put(2, 0, [255, 0, 0]);
        assert_eq!((y[2], uv[2], uv[3]), (82, 90, 240));
    }

    #[test]
    fn track_colours_are_stable_and_distinct() {
        assert_eq!(track_colour(3), track_colour(3));
        let colours: std::collections::HashSet<[u8; 3]> = (1..=12).map(track_colour).collect();
        assert_eq!(colours.len(), 12);
    }
}
