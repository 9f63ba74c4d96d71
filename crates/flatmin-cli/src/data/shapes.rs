//! A small image folder of coloured shapes (circles, squares, triangles), written as PNG and JPEG
//! files, for trying `flatmin compare` without data of one's own and for its tests
//! (`cargo run --release -p flatmin-cli --example shapes -- DIR`).
//!
//! The class is the shape; colour, size, position and background noise are random, so the task
//! needs the shape, not the colour.

use std::path::Path;

use flatmin::Rng;
use image::{Rgb, RgbImage};

/// The classes, one subfolder each.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

/// True when pixel (x, y) lies inside shape `class` centred at (cx, cy) with half-size `r`.
fn inside(class: usize, x: f64, y: f64, cx: f64, cy: f64, r: f64) -> bool {
    let (dx, dy) = (x - cx, y - cy);
    match class {
        0 => dx * dx + dy * dy <= r * r,
        1 => dx.abs() <= r * 0.85 && dy.abs() <= r * 0.85,
        // Apex up: the half-width grows from 0 at the top to r at the bottom.
        _ => dy >= -r && dy <= r && dx.abs() <= (dy + r) / 2.0,
    }
}

/// Writes `per_class` images of `side`×`side` pixels for each of [`SHAPES`] into
/// `dir/<shape>/`, even-numbered ones as PNG and odd-numbered ones as JPEG, drawn from `seed`.
pub fn write(dir: &Path, per_class: usize, side: u32, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng::seeded(seed);
    let side_f = side as f64;
    for (class, name) in SHAPES.iter().enumerate() {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder)?;
        for i in 0..per_class {
            let r = side_f * (0.2 + 0.15 * rng.uniform());
            let cx = r + (side_f - 2.0 * r) * rng.uniform();
            let cy = r + (side_f - 2.0 * r) * rng.uniform();
            let colour = [0, 1, 2].map(|_| (110.0 + 145.0 * rng.uniform()) as u8);
            let mut image = RgbImage::new(side, side);
            for (x, y, px) in image.enumerate_pixels_mut() {
                let noise = (rng.uniform() * 60.0) as u8;
                *px = if inside(class, x as f64 + 0.5, y as f64 + 0.5, cx, cy, r) {
                    Rgb(colour.map(|c| c.saturating_sub(noise / 2)))
                } else {
                    Rgb([noise; 3])
                };
            }
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            image
                .save(folder.join(format!("{name}-{i:03}.{ext}")))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}
