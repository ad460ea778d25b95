//! Small random affine deformations of square grey images (rotation, scale, shear, shift;
//! bilinear sampling, zero outside), standing in for NISTP's unlimited supply of deformed
//! characters: every draw is a fresh example, reproducible from its seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Dataset;

/// `image` (`side`×`side`, row-major) under a random affine map: rotation within ±12°,
/// scale 0.9–1.1, shear within ±0.1, shift within ±2 pixels.
pub fn deform(image: &[f32], side: usize, rng: &mut impl Rng) -> Vec<f32> {
    let angle = rng.random_range(-12.0f64..12.0).to_radians();
    let scale = rng.random_range(0.9..1.1);
    let shear = rng.random_range(-0.1..0.1);
    let shift = [rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0)];
    // Forward map A = scale · rotation · shear; each output pixel samples A⁻¹(p − c − t) + c.
    let (sin, cos) = angle.sin_cos();
    let a = [[scale * cos, scale * (cos * shear - sin)], [scale * sin, scale * (sin * shear + cos)]];
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    let inverse = [[a[1][1] / det, -a[0][1] / det], [-a[1][0] / det, a[0][0] / det]];
    let centre = (side as f64 - 1.0) / 2.0;
    let pixel = |y: isize, x: isize| {
        let inside = y >= 0 && x >= 0 && (y as usize) < side && (x as usize) < side;
        if inside { f64::from(image[y as usize * side + x as usize]) } else { 0.0 }
    };
    let mut out = vec![0.0; side * side];
    for (index, value) in out.iter_mut().enumerate() {
        let p = [(index % side) as f64 - centre - shift[0], (index / side) as f64 - centre - shift[1]];
        let x = inverse[0][0] * p[0] + inverse[0][1] * p[1] + centre;
        let y = inverse[1][0] * p[0] + inverse[1][1] * p[1] + centre;
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        let top = pixel(y0, x0) * (1.0 - fx) + pixel(y0, x0 + 1) * fx;
        let bottom = pixel(y0 + 1, x0) * (1.0 - fx) + pixel(y0 + 1, x0 + 1) * fx;
        *value = (top * (1.0 - fy) + bottom * fy) as f32;
    }
    out
}

/// `count` fresh examples: random images of `source` (with their labels), each deformed;
/// the same `seed` gives the same examples. The images must be square and not empty.
pub fn deformed_sample(
    source: &Dataset,
    labels: &[u8],
    count: usize,
    seed: u64,
) -> Result<(Dataset, Vec<u8>), String> {
    let side = (source.width as f64).sqrt().round() as usize;
    if side * side != source.width || source.is_empty() || labels.len() != source.len() {
        return Err(format!(
            "deformations need square images and one label each: {} images of {} values, {} labels",
            source.len(),
            source.width,
            labels.len()
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(count * source.width);
    let mut picked = Vec::with_capacity(count);
    for _ in 0..count {
        let i = rng.random_range(0..source.len());
        data.extend(deform(source.row(i), side, &mut rng));
        picked.push(labels[i]);
    }
    Ok((Dataset { width: source.width, data }, picked))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::{deform, deformed_sample};
    use crate::Dataset;

    #[test]
    fn deformations_move_ink_a_little_and_keep_most_of_it() {
        // A 3×3 bright square in the middle of a 28×28 image.
        let mut image = vec![0.0f32; 784];
        for y in 12..15 {
            for x in 12..15 {
                image[y * 28 + x] = 1.0;
            }
        }
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20 {
            let out = deform(&image, 28, &mut rng);
            let ink: f32 = out.iter().sum();
            assert!((6.0..12.0).contains(&ink), "ink {ink} (was 9)");
            assert!(out.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
            // The square's centre of mass stays within the ±2 px shift (plus the map's slack).
            let (cx, cy) = out.iter().enumerate().fold((0.0, 0.0), |(x, y), (i, v)| {
                (x + (i % 28) as f32 * v / ink, y + (i / 28) as f32 * v / ink)
            });
            assert!((cx - 13.0).abs() < 3.5 && (cy - 13.0).abs() < 3.5, "({cx}, {cy})");
        }
    }

    #[test]
    fn samples_are_reproducible_and_fresh_per_seed() {
        let source = Dataset { width: 4, data: vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0] };
        let labels = [3, 7];
        let (a, la) = deformed_sample(&source, &labels, 5, 9).unwrap();
        let (b, lb) = deformed_sample(&source, &labels, 5, 9).unwrap();
        let (c, _) = deformed_sample(&source, &labels, 5, 10).unwrap();
        let wide = Dataset { width: 3, data: vec![0.0; 6] };
        assert!(deformed_sample(&wide, &labels, 1, 1).unwrap_err().contains("square"));
        assert_eq!((a.len(), &a, &la), (5, &b, &lb));
        assert_ne!(a, c);
        assert!(la.iter().all(|l| labels.contains(l)));
    }
}
