//! Server-side charts rendered with plotters as accessible SVG.
//!
//! Charts are pure functions of their data. Each SVG carries `role="img"`, a `<title>` and a
//! `<desc>` stating the main finding; values are printed beside the bars so that colour never
//! carries meaning alone. The page puts the same numbers in a table next to the chart.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The civica blue (Bootstrap Italia primary), with contrast ≥ 4.5:1 on white.
const BLUE: RGBColor = RGBColor(0x00, 0x66, 0xCC);
/// Text and axis colour.
const INK: RGBColor = RGBColor(0x1A, 0x1A, 0x1A);
/// Track behind each bar, so that 100% is visible.
const TRACK: RGBColor = RGBColor(0xE6, 0xEC, 0xF2);

/// One labelled bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    /// Percentage 0–100; `None` is shown as "n.d." (no data), never as zero.
    pub value: Option<f64>,
}

/// Texts and identity of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOptions {
    /// Unique within the page: used for the `id`s that tie `<title>` and `<desc>` to the SVG.
    pub id: String,
    pub title: String,
    pub description: String,
}

/// Errors while drawing.
#[derive(Debug, thiserror::Error)]
#[error("drawing chart `{id}`: {message}")]
pub struct ChartError {
    id: String,
    message: String,
}

const WIDTH: u32 = 760;
const ROW: u32 = 26;
const TOP: u32 = 16;
const LABEL_WIDTH: i32 = 290;
const VALUE_SPACE: i32 = 70;

/// A horizontal bar chart of percentages, one bar per label, in the given order.
pub fn render_percent_bars(bars: &[Bar], options: &ChartOptions) -> Result<String, ChartError> {
    let height = TOP * 2 + ROW * bars.len().max(1) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        draw_bars(&root, bars).map_err(|e| ChartError {
            id: options.id.clone(),
            message: e.to_string(),
        })?;
        root.present().map_err(|e| ChartError {
            id: options.id.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(make_accessible(&svg, options))
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bars: &[Bar],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let font = ("sans-serif", 14).into_font().color(&INK);
    let left_font = font.pos(Pos::new(HPos::Left, VPos::Center));
    let span = WIDTH as i32 - LABEL_WIDTH - VALUE_SPACE;
    for (i, bar) in bars.iter().enumerate() {
        let y0 = (TOP + ROW * i as u32) as i32;
        let mid = y0 + ROW as i32 / 2;
        root.draw(&Text::new(bar.label.clone(), (8, mid), left_font.clone()))?;
        root.draw(&Rectangle::new(
            [
                (LABEL_WIDTH, y0 + 4),
                (LABEL_WIDTH + span, y0 + ROW as i32 - 4),
            ],
            TRACK.filled(),
        ))?;
        let text = match bar.value {
            Some(v) => {
                let w = (span as f64 * v.clamp(0.0, 100.0) / 100.0).round() as i32;
                root.draw(&Rectangle::new(
                    [
                        (LABEL_WIDTH, y0 + 4),
                        (LABEL_WIDTH + w, y0 + ROW as i32 - 4),
                    ],
                    BLUE.filled(),
                ))?;
                percent_it(v)
            }
            None => "n.d.".to_string(),
        };
        root.draw(&Text::new(
            text,
            (LABEL_WIDTH + span + 8, mid),
            left_font.clone(),
        ))?;
    }
    // The axis line at 0%.
    root.draw(&PathElement::new(
        vec![
            (LABEL_WIDTH, TOP as i32),
            (LABEL_WIDTH, (TOP + ROW * bars.len() as u32) as i32),
        ],
        INK.stroke_width(1),
    ))?;
    Ok(())
}

/// A percentage in Italian notation with one decimal: `83,0%`.
pub fn percent_it(value: f64) -> String {
    format!("{value:.1}%").replace('.', ",")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ChartOptions {
        ChartOptions {
            id: "c1".into(),
            title: "Quota online <2017>".into(),
            description: "Il servizio più digitale è post scuola".into(),
        }
    }

    #[test]
    fn svg_is_labelled_for_screen_readers() {
        let bars = vec![
            Bar {
                label: "post scuola".into(),
                value: Some(90.0),
            },
            Bar {
                label: "suap".into(),
                value: None,
            },
        ];
        let svg = render_percent_bars(&bars, &options()).unwrap();
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-labelledby="c1-title c1-desc""#));
        assert!(svg.contains(r#"<title id="c1-title">Quota online &lt;2017&gt;</title>"#));
        assert!(svg.contains("90,0%"), "value printed beside the bar");
        assert!(svg.contains("n.d."), "missing value shown as such");
        assert!(svg.contains("post scuola"));
    }

    #[test]
    fn percentages_use_the_italian_decimal_comma() {
        assert_eq!(percent_it(83.04), "83,0%");
        assert_eq!(percent_it(38.2), "38,2%");
    }
}
