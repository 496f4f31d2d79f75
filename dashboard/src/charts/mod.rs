//! Server-side charts rendered with plotters as accessible SVG: bars, stacked bars, a line
//! with target and annotations, sparklines.
//!
//! Charts are pure functions of their data and texts (already in the page's language). Each
//! SVG carries `role="img"`, a `<title>` and a `<desc>` stating the main finding. Values are
//! printed beside bars and series are told apart by pattern as well as by colour, so that
//! colour never carries meaning alone. The page puts the same numbers in a table next to the
//! chart and links the CSV.
//!
//! Charts draw with plotters' primitives at fixed pixel positions (no text measuring), which
//! keeps them identical from one machine to the next: the snapshot tests rely on it.
//!
//! Every chart is also drawn as a PNG for reports ([`Chart::png`]): the same drawing on
//! plotters' bitmap backend, with text in DejaVu Sans embedded in the binary (`fonts/`), so
//! that no system font is looked up at run time; patterns are drawn as strokes there.

mod bars;
mod line;
mod png;
mod sparkline;
mod stacked;

pub use bars::{Bar, render_bars};
pub use line::{Annotation, LineChart, LinePoint, render_line};
pub use sparkline::render_sparkline;
pub use stacked::{StackedBar, render_stacked_bars};

use plotters::coord::Shift;
use plotters::prelude::*;

/// What a drawing returns on any backend.
pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart's data, kept beside the figure so that it can be drawn again in another format.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Bars {
        bars: Vec<Bar>,
        max: f64,
    },
    Stacked {
        bars: Vec<StackedBar>,
        series: Vec<String>,
        max: f64,
    },
    Line(LineChart),
    Sparkline(Vec<Option<f64>>),
}

impl Chart {
    /// The chart as accessible SVG (what pages show).
    pub fn svg(&self, options: &ChartOptions) -> Result<String, ChartError> {
        match self {
            Chart::Bars { bars, max } => render_bars(bars, *max, options),
            Chart::Stacked { bars, series, max } => {
                render_stacked_bars(bars, series, *max, options)
            }
            Chart::Line(chart) => render_line(chart, options),
            Chart::Sparkline(values) => render_sparkline(values, options),
        }
    }

    /// The chart as a PNG image, pixel for pixel the size of the SVG.
    pub fn png(&self, options: &ChartOptions) -> Result<Vec<u8>, ChartError> {
        match self {
            Chart::Bars { bars, max } => png::render(&bars::Drawing { bars, max: *max }, options),
            Chart::Stacked { bars, series, max } => {
                png::render(&stacked::Drawing::new(bars, series, *max), options)
            }
            Chart::Line(chart) => png::render(&line::Drawing { chart }, options),
            Chart::Sparkline(values) => png::render(&sparkline::Drawing { values }, options),
        }
    }
}

/// A chart that draws itself on any plotters backend.
pub(crate) trait Drawing {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`; `bitmap` asks for patterns to be drawn as strokes (in SVG they are
    /// `<pattern>` fills added afterwards).
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        bitmap: bool,
    ) -> DrawResult<DB>;
}

/// The civica blue (Bootstrap Italia primary), with contrast ≥ 4.5:1 on white.
pub(crate) const BLUE: RGBColor = RGBColor(0x00, 0x66, 0xCC);
/// Text and axis colour.
pub(crate) const INK: RGBColor = RGBColor(0x1A, 0x1A, 0x1A);
/// Track behind each bar, so that 100% is visible.
pub(crate) const TRACK: RGBColor = RGBColor(0xE6, 0xEC, 0xF2);
/// Grid lines.
pub(crate) const GRID: RGBColor = RGBColor(0xC5, 0xCE, 0xD8);
/// Target lines and annotations: dark enough (≥ 3:1) to be seen as graphics.
pub(crate) const ACCENT: RGBColor = RGBColor(0x99, 0x3D, 0x00);

/// Font of every chart text (the page's CSS gives the family).
pub(crate) const FONT_SIZE: u32 = 14;

/// Texts and identity of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOptions {
    /// Unique within the page: used for the `id`s that tie `<title>` and `<desc>` to the SVG.
    pub id: String,
    pub title: String,
    /// The main finding, in a sentence.
    pub description: String,
}

/// Errors while drawing.
#[derive(Debug, thiserror::Error)]
#[error("drawing chart `{id}`: {message}")]
pub struct ChartError {
    id: String,
    message: String,
}

impl ChartError {
    pub(crate) fn new(id: &str, error: impl std::fmt::Display) -> Self {
        ChartError {
            id: id.to_string(),
            message: error.to_string(),
        }
    }
}

/// Draws `drawing` into an SVG string, then makes it accessible.
pub(crate) fn render_svg(
    drawing: &impl Drawing,
    options: &ChartOptions,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, drawing.size()).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| ChartError::new(&options.id, e))?;
        drawing
            .draw(&root, false)
            .map_err(|e| ChartError::new(&options.id, e))?;
        root.present()
            .map_err(|e| ChartError::new(&options.id, e))?;
    }
    Ok(make_accessible(&svg, options))
}

/// Adds `role="img"`, `aria-labelledby`, `<title>` and `<desc>` to a plotters SVG.
fn make_accessible(svg: &str, options: &ChartOptions) -> String {
    let title_id = format!("{}-title", options.id);
    let desc_id = format!("{}-desc", options.id);
    let Some(start) = svg.find("<svg") else {
        return svg.to_string();
    };
    let Some(end) = svg[start..].find('>').map(|e| start + e) else {
        return svg.to_string();
    };
    let mut out = String::with_capacity(svg.len() + 512);
    out.push_str(&svg[..end]);
    out.push_str(&format!(
        r#" role="img" aria-labelledby="{} {}" preserveAspectRatio="xMinYMin meet""#,
        xml_escape(&title_id),
        xml_escape(&desc_id)
    ));
    out.push('>');
    out.push_str(&format!(
        r#"<title id="{}">{}</title><desc id="{}">{}</desc>"#,
        xml_escape(&title_id),
        xml_escape(&options.title),
        xml_escape(&desc_id),
        xml_escape(&options.description)
    ));
    out.push_str(&svg[end + 1..]);
    out
}

/// Escapes text for XML content and attributes.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A rough width of `text` at [`FONT_SIZE`] in a sans-serif font, for layout decisions
/// (wrapping a legend, choosing a side for a label); generous so that text never collides.
pub(crate) fn text_width(text: &str) -> i32 {
    (text.chars().count() as f64 * FONT_SIZE as f64 * 0.58).ceil() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped() {
        let options = ChartOptions {
            id: "c1".into(),
            title: "Quota <2017> & \"più\"".into(),
            description: "d".into(),
        };
        let svg = render_sparkline(&[], &options).unwrap();
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-labelledby="c1-title c1-desc""#));
        assert!(
            svg.contains("Quota &lt;2017&gt; &amp; &quot;più&quot;"),
            "{svg}"
        );
    }
}
