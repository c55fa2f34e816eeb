//! LOLWUT [VERSION v] [...]: Redis's computer-art easter egg. Without a VERSION (Redis
//! 7.0 defaults to its own major version, 7) and for any version other than 5, the reply is
//! the version line only, as in Redis 7.0. VERSION 5 draws Georg Nees' "Schotter" (1968):
//! a grid of squares that grow more disordered row by row, plotted with Braille characters
//! (2×4 dots per character). ferrokv draws it with its own random numbers, so the picture
//! differs from Redis's on every call, as Redis's own does. VERSION 6 (Redis's 8-bit
//! landscape) is answered with the version line only.

use crate::ctx::{int_arg, is, Ctx};
use crate::error::CmdResult;
use ferrokv_config::REDIS_VERSION;

/// A Braille dot canvas: `width` × `height` pixels, 2 × 4 per character.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<bool>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, pixels: vec![false; width * height] }
    }

    fn set(&mut self, x: i64, y: i64) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = true;
        }
    }

    /// A line by Bresenham's algorithm.
    fn line(&mut self, (mut x0, mut y0): (i64, i64), (x1, y1): (i64, i64)) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            self.set(x0, y0);
            if x0 == x1 && y0 == y1 {
                return;
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

    /// The canvas as Braille characters, one text line per four pixel rows.
    fn render(&self) -> String {
        // Braille dot bits by (column, row) inside a 2×4 cell (Unicode's numbering).
        const BITS: [[u32; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        let mut out = String::new();
        for cy in 0..self.height.div_ceil(4) {
            for cx in 0..self.width.div_ceil(2) {
                let mut bits = 0;
                for (dx, column) in BITS.iter().enumerate() {
                    for (dy, bit) in column.iter().enumerate() {
                        let (x, y) = (cx * 2 + dx, cy * 4 + dy);
                        if x < self.width && y < self.height && self.pixels[y * self.width + x] {
                            bits |= bit;
                        }
                    }
                }
                out.push(char::from_u32(0x2800 + bits).unwrap_or(' '));
            }
            out.push('\n');
        }
        out
    }
}

/// Schotter: `per_row` × `per_col` squares on a canvas `cols` characters wide; row r is
/// rotated and displaced at random by up to r / per_col of the maximum.
fn schotter(cols: usize, per_row: usize, per_col: usize) -> String {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = ((width - padding * 2) / per_row).max(1);
    let height = side * per_col + padding * 2;
    let mut canvas = Canvas::new(width, height);
    let half = side as f64 / 2.0;
    for row in 0..per_col {
        let disorder = row as f64 / per_col as f64;
        for col in 0..per_row {
            let jitter = |scale: f64| (fastrand::f64() * 2.0 - 1.0) * disorder * scale;
            let angle = jitter(std::f64::consts::FRAC_PI_4);
            let cx = (padding + col * side) as f64 + half + jitter(half / 2.0);
            let cy = (padding + row * side) as f64 + half + jitter(half / 2.0);
            let corners: Vec<(i64, i64)> = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
                .iter()
                .map(|&(dx, dy): &(f64, f64)| {
                    let (x, y) = (dx * half, dy * half);
                    let (sin, cos) = angle.sin_cos();
                    ((cx + x * cos - y * sin).round() as i64, (cy + x * sin + y * cos).round() as i64)
                })
                .collect();
            for i in 0..4 {
                canvas.line(corners[i], corners[(i + 1) % 4]);
            }
        }
    }
    canvas.render()
}

pub fn lolwut(c: &mut Ctx) -> CmdResult {
    let mut version = REDIS_VERSION.split('.').next().and_then(|m| m.parse::<i64>().ok()).unwrap_or(7);
    let mut first_arg = 1;
    if c.argc() >= 3 && is(c.arg(1), "version") {
        version = int_arg(c.arg(2))?;
        first_arg = 3;
    }
    let mut text = String::new();
    if version == 5 {
        let mut params = [66i64, 8, 12];
        for (i, p) in params.iter_mut().enumerate() {
            if first_arg + i < c.argc() {
                *p = int_arg(c.arg(first_arg + i))?;
            }
        }
        let cols = params[0].clamp(1, 1000) as usize;
        let per_row = params[1].clamp(1, 200) as usize;
        let per_col = params[2].clamp(1, 200) as usize;
        text = schotter(cols, per_row, per_col);
        text.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. ");
    }
    text.push_str(&format!("Redis ver. {REDIS_VERSION}\n"));
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schotter_has_the_canvas_size_of_its_arguments() {
        let art = schotter(10, 1, 2);
        let lines: Vec<&str> = art.lines().collect();
        // 20 dots wide, a 16-dot square per row and column plus 2 dots of padding: 36 dots
        // high, 9 lines of Braille.
        assert_eq!(lines.len(), 9);
        assert!(lines.iter().all(|l| l.chars().count() == 10));
        assert!(art.chars().any(|ch| ch != '\u{2800}' && ch != '\n'), "something is drawn");
    }

    #[test]
    fn tiny_canvases_do_not_panic() {
        for cols in 1..4 {
            for per in 1..5 {
                let _ = schotter(cols, per, per);
            }
        }
    }
}
