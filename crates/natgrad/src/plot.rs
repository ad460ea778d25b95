//! Line plots side by side in panels, each axis linear or logarithmic, as PNG and SVG with a
//! bundled font (no system font library needed): Figure 3 (`figure`) and Figure 1
//! (`bench unlabeled`) are both drawn by [`panels`].

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

/// One line of the Figure-3 plot: (iteration, seconds, error) points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (iteration, seconds, error).
    pub points: Vec<(f64, f64, f64)>,
}

/// One panel: labelled axes, each linear or logarithmic, and one line per series.
pub struct Panel {
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Logarithmic x-axis (non-positive x values are left out).
    pub log_x: bool,
    /// Logarithmic y-axis (non-positive y values are left out).
    pub log_y: bool,
    /// (legend label, points).
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
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

/// A value on an axis: log₁₀ of it on a logarithmic one (`None` when it cannot be shown).
fn to_axis(value: f64, log: bool) -> Option<f64> {
    match log {
        true if value > 0.0 => Some(value.log10()),
        true => None,
        false => value.is_finite().then_some(value),
    }
}

/// An axis tick's text: the value, or 10 to the tick on a logarithmic axis; on a
/// logarithmic axis spanning two decades or more only whole powers of ten are labelled.
fn tick(value: f64, log: bool, span: f64) -> String {
    if log && span >= 2.0 && (value - value.round()).abs() > 1e-9 {
        return String::new();
    }
    let shown = if log { 10f64.powf(value) } else { value };
    if shown == 0.0 || !shown.is_finite() {
        return format!("{shown}");
    }
    if shown.abs() >= 1e4 || shown.abs() < 1e-2 {
        format!("{shown:.1e}")
    } else {
        // Three significant digits at most, without trailing zeros.
        let digits = (2.0 - shown.abs().log10().floor()).clamp(0.0, 4.0) as usize;
        let text = format!("{shown:.digits$}");
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
    }
}

/// The range covering `values`, widened a little (and to width 1 when empty or flat).
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad)..(hi + pad)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    panels: &[Panel],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    // The largest title size up to 22 px that fits the width (long titles would be clipped).
    let width = root.dim_in_pixel().0;
    let fits = |size: u32| {
        let style = TextStyle::from(("sans-serif", size).into_font());
        root.estimate_text_size(title, &style).is_ok_and(|(w, _)| w + 24 <= width)
    };
    let size = (10..=22).rev().find(|&s| fits(s)).unwrap_or(10);
    let root = root.titled(title, ("sans-serif", size)).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let lines: Vec<(&String, Vec<(f64, f64)>)> = panel
            .lines
            .iter()
            .map(|(label, points)| {
                let shown = points
                    .iter()
                    .filter_map(|&(x, y)| Some((to_axis(x, panel.log_x)?, to_axis(y, panel.log_y)?)))
                    .collect();
                (label, shown)
            })
            .collect();
        let all = || lines.iter().flat_map(|(_, p)| p.iter());
        let (x_range, y_range) = (range(all().map(|p| p.0)), range(all().map(|p| p.1)));
        let (x_span, y_span) = (x_range.end - x_range.start, y_range.end - y_range.start);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range, y_range)
            .map_err(err)?;
        let (log_x, log_y) = (panel.log_x, panel.log_y);
        chart
            .configure_mesh()
            .x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&|v| tick(*v, log_x, x_span))
            .y_label_formatter(&|v| tick(*v, log_y, y_span))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, (label, points)) in lines.into_iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(label.clone())
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

/// Writes `stem.png` and `stem.svg` with `panels` side by side under `title`.
pub fn panels(stem: &Path, title: &str, panels: &[Panel]) -> Result<(), String> {
    register_font();
    let width = (600 * panels.len() as u32).max(1000);
    let png = stem.with_extension("png");
    draw(BitMapBackend::new(&png, (width, 500)).into_drawing_area(), title, panels)?;
    let svg = stem.with_extension("svg");
    draw(SVGBackend::new(&svg, (width, 500)).into_drawing_area(), title, panels)?;
    Ok(())
}

/// Figure 3: the training error against iterations and against seconds, both on a
/// logarithmic x-axis, one line per method.
pub fn figure(stem: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    let against = |x_label: &str, pick: fn(&(f64, f64, f64)) -> f64| Panel {
        x_label: x_label.to_string(),
        y_label: "train squared error".to_string(),
        log_x: true,
        log_y: false,
        lines: series
            .iter()
            .map(|s| (s.label.clone(), s.points.iter().map(|p| (pick(p), p.2)).collect()))
            .collect(),
    };
    panels(stem, title, &[against("iterations", |p| p.0), against("seconds", |p| p.1)])
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn ticks_read_as_numbers() {
        assert_eq!(tick(0.0, false, 1.0), "0");
        assert_eq!(tick(2.5, false, 10.0), "2.5");
        assert_eq!(tick(31.623, false, 100.0), "31.6");
        assert_eq!(tick(0.001, false, 1.0), "1.0e-3");
        // Logarithmic: 10^v; only whole powers of ten when the axis spans two decades.
        assert_eq!(tick(2.0, true, 4.0), "100");
        assert_eq!(tick(1.5, true, 4.0), "");
        assert_eq!(tick(0.5, true, 1.0), "3.16");
        assert_eq!(tick(-8.0, true, 1.0), "1.0e-8");
    }
}
