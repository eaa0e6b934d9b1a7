//! Letterbox cost per frame for each input layout (1080p to a 640x640 model input).
//! `cargo bench -p recognizer-core --bench letterbox`

use std::time::Instant;

use recognizer_core::pose::{
    ChannelOrder, Image, Letterbox, PixelLayout, YuvMatrix, fill_input_tensor,
};

fn main() {
    let (w, h) = (1920usize, 1080usize);
    let packed: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
    let luma: Vec<u8> = (0..w * h).map(|i| (i * 3 % 253) as u8).collect();
    let chroma: Vec<u8> = (0..w * h / 4).map(|i| (i * 5 % 241) as u8).collect();
    let uv: Vec<u8> = (0..w * h / 2).map(|i| (i * 11 % 239) as u8).collect();
    let lb = Letterbox::new(w, h, 640, 640);
    let mut tensor = vec![0.0f32; 3 * 640 * 640];
    let cases = [
        (
            "BGR",
            Image {
                width: w,
                height: h,
                layout: PixelLayout::Packed {
                    bytes_per_pixel: 3,
                    r: 2,
                    g: 1,
                    b: 0,
                },
                planes: [&packed[..w * h * 3], &[], &[]],
                strides: [w * 3, 0, 0],
                matrix: YuvMatrix::BT601_LIMITED,
            },
        ),
        (
            "BGRx",
            Image {
                width: w,
                height: h,
                layout: PixelLayout::Packed {
                    bytes_per_pixel: 4,
                    r: 2,
                    g: 1,
                    b: 0,
                },
                planes: [&packed, &[], &[]],
                strides: [w * 4, 0, 0],
                matrix: YuvMatrix::BT601_LIMITED,
            },
        ),
        (
            "I420",
            Image {
                width: w,
                height: h,
                layout: PixelLayout::I420,
                planes: [&luma, &chroma, &chroma],
                strides: [w, w / 2, w / 2],
                matrix: YuvMatrix::BT709_LIMITED,
            },
        ),
        (
            "NV12",
            Image {
                width: w,
                height: h,
                layout: PixelLayout::Nv12,
                planes: [&luma, &uv, &[]],
                strides: [w, w, 0],
                matrix: YuvMatrix::BT709_LIMITED,
            },
        ),
    ];
    for (name, image) in cases {
        let rounds = 50;
        fill_input_tensor(&image, &lb, ChannelOrder::Bgr, 1.0, &mut tensor).unwrap();
        let start = Instant::now();
        for _ in 0..rounds {
            fill_input_tensor(&image, &lb, ChannelOrder::Bgr, 1.0, &mut tensor).unwrap();
            std::hint::black_box(&tensor);
        }
        println!(
            "{name}: {:.2} ms per 1920x1080 frame",
            start.elapsed().as_secs_f64() * 1e3 / rounds as f64
        );
    }
}
