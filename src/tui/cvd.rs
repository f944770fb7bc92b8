//! Colour-vision deficiencies and colour distances: what the class palette is chosen by.
//!
//! A colour is simulated as a viewer with protanopia, deuteranopia or tritanopia sees it with the
//! matrices of Machado, Oliveira and Fernandes (2009), "A physiologically-based model for
//! simulation of color vision deficiency", IEEE TVCG 15(6), Table 1 at severity 1.0, applied to
//! linear RGB. Distances are CIE76 (Euclidean in CIELAB, D65 white): about 2.3 is a just
//! noticeable difference, and two class colours under about 10 are hard to tell apart in a
//! scatter of small dots.

/// How a viewer sees colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vision {
    /// Normal trichromatic vision.
    Normal,
    /// No long-wavelength (red) cones.
    Protanopia,
    /// No medium-wavelength (green) cones: the most common deficiency.
    Deuteranopia,
    /// No short-wavelength (blue) cones.
    Tritanopia,
}

impl Vision {
    /// Every vision the palette is measured under.
    pub const ALL: [Vision; 4] = [
        Vision::Normal,
        Vision::Protanopia,
        Vision::Deuteranopia,
        Vision::Tritanopia,
    ];

    /// Machado et al. (2009), Table 1, severity 1.0 (linear RGB to linear RGB).
    fn matrix(self) -> Option<[[f64; 3]; 3]> {
        match self {
            Vision::Normal => None,
            Vision::Protanopia => Some([
                [0.152_286, 1.052_583, -0.204_868],
                [0.114_503, 0.786_281, 0.099_216],
                [-0.003_882, -0.048_116, 1.051_998],
            ]),
            Vision::Deuteranopia => Some([
                [0.367_322, 0.860_646, -0.227_968],
                [0.280_085, 0.672_501, 0.047_413],
                [-0.011_820, 0.042_940, 0.968_881],
            ]),
            Vision::Tritanopia => Some([
                [1.255_528, -0.076_749, -0.178_779],
                [-0.078_411, 0.930_809, 0.147_602],
                [0.004_733, 0.691_367, 0.303_900],
            ]),
        }
    }
}

/// sRGB's transfer function undone: a byte to linear light in [0, 1].
fn linear(c: u8) -> f64 {
    let v = f64::from(c) / 255.0;
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear RGB of an sRGB colour as `vision` sees it (clamped to the gamut, as Machado et al. do).
pub fn simulate((r, g, b): (u8, u8, u8), vision: Vision) -> [f64; 3] {
    let rgb = [linear(r), linear(g), linear(b)];
    match vision.matrix() {
        None => rgb,
        Some(m) => {
            m.map(|row| (row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2]).clamp(0.0, 1.0))
        }
    }
}

/// CIELAB (D65) of a linear RGB colour (sRGB primaries).
pub fn lab([r, g, b]: [f64; 3]) -> [f64; 3] {
    // sRGB to XYZ (IEC 61966-2-1), divided by the D65 white point.
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175_0 * b;
    let z = (0.019_333_9 * r + 0.119_192_0 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f64| {
        if t > 216.0 / 24_389.0 {
            t.cbrt()
        } else {
            (24_389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE76 distance between two sRGB colours as `vision` sees them.
pub fn distance(a: (u8, u8, u8), b: (u8, u8, u8), vision: Vision) -> f64 {
    let (la, lb) = (lab(simulate(a, vision)), lab(simulate(b, vision)));
    la.iter()
        .zip(lb)
        .map(|(p, q)| (p - q).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The closest pair of `palette` under `vision`: (distance, i, j) with i < j.
pub fn worst_pair(palette: &[(u8, u8, u8)], vision: Vision) -> (f64, usize, usize) {
    let mut worst = (f64::INFINITY, 0, 0);
    for i in 0..palette.len() {
        for j in i + 1..palette.len() {
            let d = distance(palette[i], palette[j], vision);
            if d < worst.0 {
                worst = (d, i, j);
            }
        }
    }
    worst
}

/// The smallest pair distance of `palette` over all four visions.
pub fn worst_over_visions(palette: &[(u8, u8, u8)]) -> f64 {
    Vision::ALL
        .iter()
        .map(|&v| worst_pair(palette, v).0)
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_of_white_black_and_red() {
        let w = lab(simulate((255, 255, 255), Vision::Normal));
        assert!((w[0] - 100.0).abs() < 0.01 && w[1].abs() < 0.01 && w[2].abs() < 0.01);
        assert!(lab(simulate((0, 0, 0), Vision::Normal))[0].abs() < 1e-9);
        // sRGB red is L* 53.24, a* 80.09, b* 67.20.
        let r = lab(simulate((255, 0, 0), Vision::Normal));
        assert!((r[0] - 53.24).abs() < 0.05, "{r:?}");
        assert!((r[1] - 80.09).abs() < 0.1, "{r:?}");
        assert!((r[2] - 67.20).abs() < 0.1, "{r:?}");
    }

    #[test]
    fn deficiencies_merge_their_confusion_pairs() {
        // Red and green, far apart for normal vision, come close without red or green cones;
        // blue and green come closer without blue cones than for normal vision.
        // (Distances 72.3 normal, 8.8 protanopia, 10.7 deuteranopia, 81.4 tritanopia.)
        let (red, olive) = ((0xCC, 0x44, 0x00), (0x66, 0x77, 0x00));
        let normal = distance(red, olive, Vision::Normal);
        assert!(distance(red, olive, Vision::Deuteranopia) < normal / 5.0);
        assert!(distance(red, olive, Vision::Protanopia) < normal / 5.0);
        assert!(distance(red, olive, Vision::Tritanopia) > normal);
        let (blue, teal) = ((0x30, 0x60, 0xE0), (0x20, 0xA0, 0x90));
        assert!(
            distance(blue, teal, Vision::Tritanopia) < distance(blue, teal, Vision::Normal) / 2.0
        );
        // Greys are unchanged by every simulation (each matrix row sums to 1).
        for v in Vision::ALL {
            let g = simulate((0x80, 0x80, 0x80), v);
            assert!(
                (g[0] - g[1]).abs() < 1e-3 && (g[1] - g[2]).abs() < 1e-3,
                "{v:?}"
            );
        }
    }
}
