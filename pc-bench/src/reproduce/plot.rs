//! Line figures as SVG and PNG with plotters. PNG text is drawn with the DejaVu Sans font
//! embedded in the binary (`pc-bench/assets/fonts`, Bitstream Vera licence), so figures
//! look the same on every machine whatever fonts it has.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Colours of successive series (Tableau 10), so "layer 1" has the same colour everywhere.
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(0, 0, 0),
];

/// Palette index of black, for marks.
pub const BLACK_INDEX: usize = 8;

/// Where zeros are drawn on logarithmic y axes (they have no place there otherwise).
pub const LOG_ZERO: f64 = 1e-17;

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points; non-finite points are skipped (a gap ends the line there).
    pub points: Vec<(f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// Draw a cross at each point instead of a line (for marks such as divergence).
    pub marks: bool,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            color,
            dashed: false,
            marks: false,
        }
    }

    /// A dashed line.
    pub fn dashed(label: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            dashed: true,
            ..Series::line(label, color, points)
        }
    }

    /// Crosses at the points.
    pub fn marks(label: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            marks: true,
            ..Series::line(label, color, points)
        }
    }
}

/// One chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Caption above the chart.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// Lines.
    pub series: Vec<Series>,
    /// Legend in the lower right corner instead of the upper right.
    pub legend_below: bool,
}

impl Panel {
    /// A linear-axes panel.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_log: false,
            y_log: false,
            series: Vec::new(),
            legend_below: false,
        }
    }

    /// With a logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.x_log = true;
        self
    }

    /// With a logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.y_log = true;
        self
    }

    /// With the legend in the lower right corner.
    pub fn legend_below(mut self) -> Self {
        self.legend_below = true;
        self
    }

    /// With one more series.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
}

/// A figure: panels on a grid of `columns` columns, with a title.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Title across the top.
    pub title: String,
    /// Panels, row by row.
    pub panels: Vec<Panel>,
    /// Columns of the grid.
    pub columns: usize,
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Writes `stem.svg` and `stem.png` in `dir`.
pub fn write_figure(figure: &Figure, dir: &Path, stem: &str) -> PlotResult {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is compiled in and valid; failure would only cost the PNG's text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let size = (560 * columns as u32, 400 * rows as u32 + 50);
    let svg = dir.join(format!("{stem}.svg"));
    draw(SVGBackend::new(&svg, size).into_drawing_area(), figure)?;
    let png = dir.join(format!("{stem}.png"));
    draw(BitMapBackend::new(&png, size).into_drawing_area(), figure)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(&figure.title, (FAMILY, 24))?;
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let areas = root.split_evenly((rows, columns));
    for (panel, area) in figure.panels.iter().zip(areas) {
        draw_panel(&area, panel)?;
    }
    root.present()?;
    Ok(())
}

/// Axis range of the finite values, padded; positive values only on log axes.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return if log { (0.1, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        if high <= low {
            return (low / 2.0, high * 2.0);
        }
        let ratio = (high / low).powf(0.03);
        (low / ratio, high * ratio)
    } else {
        if high <= low {
            return (low - 0.5, high + 0.5);
        }
        let pad = 0.04 * (high - low);
        (low - pad, high + pad)
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let xs = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    let x_range = range(xs, panel.x_log);
    let y_range = range(ys, panel.y_log);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FAMILY, 17))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(62);
    // The four axis combinations have different coordinate types.
    match (panel.x_log, panel.y_log) {
        (false, false) => {
            let chart = builder.build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
            finish(chart, panel)
        }
        (true, false) => {
            let x = (x_range.0..x_range.1)
                .log_scale()
                .with_key_points(log_keys(x_range));
            let chart = builder.build_cartesian_2d(x, y_range.0..y_range.1)?;
            finish(chart, panel)
        }
        (false, true) => {
            let chart = builder
                .build_cartesian_2d(x_range.0..x_range.1, (y_range.0..y_range.1).log_scale())?;
            finish(chart, panel)
        }
        (true, true) => {
            let x = (x_range.0..x_range.1)
                .log_scale()
                .with_key_points(log_keys(x_range));
            let chart = builder.build_cartesian_2d(x, (y_range.0..y_range.1).log_scale())?;
            finish(chart, panel)
        }
    }
}

/// Tick positions 1, 2, 5, 10, 20, 50, ... inside `range`.
fn log_keys(range: (f64, f64)) -> Vec<f64> {
    let mut keys = Vec::new();
    let mut decade = 10f64.powi(range.0.max(1e-300).log10().floor() as i32);
    while decade <= range.1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if v >= range.0 && v <= range.1 {
                keys.push(v);
            }
        }
        decade *= 10.0;
    }
    keys
}

/// A short tick label: plain decimals for moderate values, scientific otherwise.
fn tick(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{value:.0e}");
        text.strip_suffix("e0").map_or(text.clone(), str::to_string)
    } else {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    }
}

fn finish<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    panel: &Panel,
) -> PlotResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    let usable = |p: &&(f64, f64)| {
        p.0.is_finite()
            && p.1.is_finite()
            && (!panel.x_log || p.0 > 0.0)
            && (!panel.y_log || p.1 > 0.0)
    };
    for series in &panel.series {
        let color = PALETTE[series.color % PALETTE.len()];
        let style = ShapeStyle::from(&color).stroke_width(2);
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .map(|&(x, y)| {
                if panel.y_log && y == 0.0 {
                    (x, LOG_ZERO)
                } else {
                    (x, y)
                }
            })
            .collect();
        let points: Vec<(f64, f64)> = points.iter().filter(usable).copied().collect();
        if points.is_empty() {
            continue;
        }
        let drawn = if series.marks {
            chart.draw_series(points.iter().map(|&p| Cross::new(p, 7, style)))?
        } else if series.dashed {
            chart.draw_series(DashedLineSeries::new(points, 7, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        drawn.label(series.label.as_str()).legend(move |(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 18, y)],
                ShapeStyle::from(&color).stroke_width(2),
            )
        });
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(if panel.legend_below {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .draw()?;
    Ok(())
}
