//! The Figure-3-style plot: training error against iterations and against seconds, both
//! on a log x-axis, one line per method; PNG and SVG, with a bundled font so no system
//! font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

/// One line of the plot: (iteration, seconds, error) points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (iteration, seconds, error).
    pub points: Vec<(f64, f64, f64)>,
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        // The bundled font is valid; if registration failed, text would be missing, not wrong.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws both panels onto a drawing area.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let panels = root.split_evenly((1, 2));
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut y_min, mut y_max, mut i_max, mut t_min, mut t_max) =
        (f64::INFINITY, 0.0f64, 1.0f64, f64::INFINITY, 0.0f64);
    for &(i, t, e) in all {
        y_min = y_min.min(e);
        y_max = y_max.max(e);
        i_max = i_max.max(i);
        if t > 0.0 {
            t_min = t_min.min(t);
        }
        t_max = t_max.max(t);
    }
    if !y_min.is_finite() {
        (y_min, y_max, t_min, t_max) = (0.0, 1.0, 0.01, 1.0);
    }
    let y_range = (y_min * 0.95)..(y_max * 1.05 + 1e-9);
    for (panel, against_seconds) in panels.iter().zip([false, true]) {
        let x_range = if against_seconds { (t_min * 0.9)..(t_max * 1.1 + 1e-9) } else { 1.0..(i_max * 1.1) };
        let x_label = if against_seconds { "seconds" } else { "iterations" };
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x_range.log_scale(), y_range.clone())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("train squared error")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, s) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(i, t, e)| (if against_seconds { t } else { i }, e))
                .filter(|&(x, _)| x > 0.0)
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Writes `stem.png` and `stem.svg`.
pub fn figure(stem: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    register_font();
    let png = stem.with_extension("png");
    draw(BitMapBackend::new(&png, (1200, 500)).into_drawing_area(), title, series)?;
    let svg = stem.with_extension("svg");
    draw(SVGBackend::new(&svg, (1200, 500)).into_drawing_area(), title, series)?;
    Ok(())
}
