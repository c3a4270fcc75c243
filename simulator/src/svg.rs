//! A small, dependency-free SVG line chart: titled axes with "nice" ticks (numbers, percentages,
//! durations, SI-suffixed counts; linear or logarithmic x), solid or dashed lines with optional
//! point markers, and a legend. Used for per-queue usage over time and for throughput against
//! cluster size.

use std::fmt::Write as _;

use crate::scenario::format_duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AxisFormat {
    #[default]
    Number,
    /// 0.25 → 25%.
    Percent,
    /// Milliseconds → 1m30s.
    Duration,
    /// 12000 → 12k, 2500000 → 2.5M.
    Si,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: String,
    pub dashed: bool,
    pub width: f64,
    pub markers: bool,
    pub in_legend: bool,
}

impl Series {
    pub fn line(name: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.to_owned(),
            points,
            color: palette(0).to_owned(),
            dashed: false,
            width: 1.8,
            markers: false,
            in_legend: true,
        }
    }
    pub fn color(mut self, color: &str) -> Self {
        self.color = color.to_owned();
        self
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }
    pub fn no_legend(mut self) -> Self {
        self.in_legend = false;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub subtitle: Option<String>,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub x_format: AxisFormat,
    pub y_format: AxisFormat,
    pub x_log: bool,
    /// Lower end of the y axis (default: the data's minimum, or 0 if that is positive).
    pub y_min: Option<f64>,
    /// The y axis reaches at least this high.
    pub y_max: Option<f64>,
    pub width: u32,
    pub height: u32,
}

impl Default for Chart {
    fn default() -> Self {
        Self {
            title: String::new(),
            subtitle: None,
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            x_format: AxisFormat::Number,
            y_format: AxisFormat::Number,
            x_log: false,
            y_min: None,
            y_max: None,
            width: 1000,
            height: 560,
        }
    }
}

/// Tableau-like colours that stay apart on white; cycled.
pub fn palette(i: usize) -> &'static str {
    const COLORS: [&str; 12] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
        "#1b9e77", "#7570b3",
    ];
    COLORS[i % COLORS.len()]
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn trim_number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

fn format_value(v: f64, format: AxisFormat, step: f64) -> String {
    let decimals = if step >= 1.0 || step == 0.0 { 0 } else { (-step.log10()).ceil() as usize };
    match format {
        AxisFormat::Number => trim_number(v, decimals),
        AxisFormat::Percent => {
            let d = if step * 100.0 >= 1.0 { 0 } else { (-(step * 100.0).log10()).ceil() as usize };
            format!("{}%", trim_number(v * 100.0, d))
        }
        AxisFormat::Duration => format_duration(v.max(0.0).round() as u64),
        AxisFormat::Si => {
            let (div, suffix) = match v.abs() {
                a if a >= 1e9 => (1e9, "G"),
                a if a >= 1e6 => (1e6, "M"),
                a if a >= 1e3 => (1e3, "k"),
                _ => (1.0, ""),
            };
            format!("{}{suffix}", trim_number(v / div, 2))
        }
    }
}

/// A "nice" step (1, 2, 2.5, 5 × 10^k) giving about `count` intervals over `range`.
fn nice_step(range: f64, count: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Steps on clock units for duration axes (1s, 5s, 30s, 1m, 10m, 1h, …).
fn duration_step(range_ms: f64, count: f64) -> f64 {
    const UNITS: [f64; 22] = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3,
        600e3, 900e3, 1800e3, 3600e3,
    ];
    let raw = range_ms / count;
    UNITS.iter().copied().find(|u| *u >= raw).unwrap_or_else(|| (raw / 3600e3).ceil() * 3600e3)
}

fn linear_ticks(min: f64, max: f64, format: AxisFormat) -> (f64, f64, Vec<f64>, f64) {
    let step = if format == AxisFormat::Duration { duration_step(max - min, 6.0) } else { nice_step(max - min, 6.0) };
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let hi = if hi <= lo { lo + step } else { hi };
    let n = ((hi - lo) / step).round() as usize;
    ((lo), hi, (0..=n).map(|i| lo + step * i as f64).collect(), step)
}

fn log_ticks(min: f64, max: f64) -> (f64, f64, Vec<f64>) {
    let lo = 10f64.powf(min.max(1e-9).log10().floor());
    let hi = 10f64.powf(max.max(lo * 10.0).log10().ceil());
    let mut ticks = Vec::new();
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    (lo, hi, ticks)
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let (w, h) = (f64::from(chart.width), f64::from(chart.height));
    let legend: Vec<&Series> = chart.series.iter().filter(|s| s.in_legend).collect();
    let legend_width = if legend.is_empty() {
        20.0
    } else {
        let longest = legend.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as f64;
        (longest * 7.0 + 50.0).clamp(120.0, 300.0)
    };
    let (left, right, top, bottom) = (78.0, legend_width, if chart.subtitle.is_some() { 64.0 } else { 46.0 }, 56.0);
    let (pw, ph) = (w - left - right, h - top - bottom);

    let points = chart.series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x_min, mut x_max, mut y_min, mut y_max) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if !x_min.is_finite() {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    let y_min = chart.y_min.unwrap_or(if y_min > 0.0 { 0.0 } else { y_min });
    let y_max = chart.y_max.map_or(y_max, |m| m.max(y_max));
    let (x_lo, x_hi, x_ticks, x_step) = if chart.x_log {
        let (lo, hi, ticks) = log_ticks(x_min, x_max);
        (lo, hi, ticks, 1.0)
    } else {
        // The x axis spans the data exactly (time series start and end where the run did),
        // with ticks on nice values inside it.
        let (_, _, ticks, step) = linear_ticks(x_min, x_max, chart.x_format);
        let hi = if x_max > x_min { x_max } else { x_min + step };
        let inside = ticks.into_iter().filter(|t| *t >= x_min - 1e-9 && *t <= hi + 1e-9).collect();
        (x_min, hi, inside, step)
    };
    let (y_lo, y_hi, y_ticks, y_step) = linear_ticks(y_min, y_max, chart.y_format);
    let sx = |x: f64| {
        let f = if chart.x_log {
            (x.max(1e-9).log10() - x_lo.log10()) / (x_hi.log10() - x_lo.log10())
        } else {
            (x - x_lo) / (x_hi - x_lo)
        };
        left + f * pw
    };
    let sy = |y: f64| top + ph - (y - y_lo) / (y_hi - y_lo) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{left}" y="22" font-size="16" font-weight="bold">{}</text>"#, escape(&chart.title));
    if let Some(sub) = &chart.subtitle {
        let _ = writeln!(s, r##"<text x="{left}" y="42" fill="#555">{}</text>"##, escape(sub));
    }
    // Grid and ticks.
    for y in &y_ticks {
        let py = sy(*y);
        let _ =
            writeln!(s, r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/>"##, left + pw);
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            left - 6.0,
            py + 4.0,
            escape(&format_value(*y, chart.y_format, y_step))
        );
    }
    for x in &x_ticks {
        let px = sx(*x);
        let _ = writeln!(s, r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}" stroke="#f0f0f0"/>"##, top + ph);
        let _ = writeln!(
            s,
            r##"<text x="{px:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            top + ph + 18.0,
            escape(&format_value(*x, chart.x_format, x_step))
        );
    }
    let _ = writeln!(s, r##"<rect x="{left}" y="{top}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#999"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
        left + pw / 2.0,
        h - 14.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
        top + ph / 2.0,
        escape(&chart.y_label)
    );
    // Lines.
    let _ = writeln!(s, r#"<g fill="none" stroke-linejoin="round" stroke-linecap="round">"#);
    for series in &chart.series {
        let pts: Vec<String> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" stroke="{}" stroke-width="{}"{dash}><title>{}</title></polyline>"#,
            pts.join(" "),
            series.color,
            series.width,
            escape(&series.name)
        );
        if series.markers {
            for (x, y) in series.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {}</title></circle>"#,
                    sx(*x),
                    sy(*y),
                    series.color,
                    escape(&format_value(*x, chart.x_format, x_step)),
                    escape(&format_value(*y, chart.y_format, y_step / 100.0))
                );
            }
        }
    }
    let _ = writeln!(s, "</g>");
    // Legend.
    let lx = left + pw + 16.0;
    for (i, series) in legend.iter().enumerate() {
        let ly = top + 8.0 + 18.0 * i as f64;
        if ly > h - 10.0 {
            break;
        }
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="{}"{dash}/>"#,
            lx + 22.0,
            series.color,
            series.width.max(2.0)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
            lx + 28.0,
            ly + 4.0,
            escape(&series.name)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_labels_readable() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(1.0, 4.0), 0.25);
        assert_eq!(duration_step(600_000.0, 6.0), 120_000.0);
        assert_eq!(format_value(0.25, AxisFormat::Percent, 0.25), "25%");
        assert_eq!(format_value(2_500_000.0, AxisFormat::Si, 1.0), "2.5M");
        assert_eq!(format_value(90_000.0, AxisFormat::Duration, 1.0), "1m30s");
        let (lo, hi, ticks) = log_ticks(1000.0, 50_000.0);
        assert_eq!((lo, hi), (1000.0, 100_000.0));
        assert!(ticks.contains(&10_000.0) && ticks.contains(&50_000.0));
    }

    #[test]
    fn renders_a_well_formed_document() {
        let chart = Chart {
            title: "a <b> & c".into(),
            series: vec![
                Series::line("q1", vec![(0.0, 0.1), (1000.0, 0.5)]).markers(),
                Series::line("g1", vec![(0.0, 0.3), (1000.0, 0.3)]).dashed().no_legend(),
            ],
            x_format: AxisFormat::Duration,
            y_format: AxisFormat::Percent,
            ..Chart::default()
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("stroke-dasharray"));
    }
}
