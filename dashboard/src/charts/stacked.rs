//! Stacked horizontal bars: the parts of a whole (requests by channel, satisfied and not)
//! for each period. Every series has its own colour *and* fill pattern, shown in the legend,
//! so that the parts can be told apart without seeing colour.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::bars::{LABEL_WIDTH, ROW, TOP, VALUE_SPACE, WIDTH};
use super::{
    ChartError, ChartOptions, DrawResult, FONT_SIZE, INK, TRACK, render_svg, text_width, xml_escape,
};

/// One bar made of parts, in the order of the chart's series.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBar {
    pub label: String,
    /// One value per series; `None` (withheld or missing) draws nothing, never zero.
    pub segments: Vec<Option<f64>>,
    /// Printed after the bar (a total, or a marker).
    pub text: String,
}

/// Colours of the series, darkest first: the Designers Italia blues and greys, distinct in
/// lightness for colour-blind readers.
const SERIES: [(u8, u8, u8); 7] = [
    (0x00, 0x3D, 0x7A),
    (0x00, 0x66, 0xCC),
    (0x4D, 0x94, 0xDB),
    (0x9D, 0xC3, 0xEB),
    (0x5C, 0x6F, 0x82),
    (0xA3, 0xB1, 0xBF),
    (0xD6, 0xE6, 0xF7),
];

/// The pattern drawn over each series' colour (`None`: plain).
const PATTERNS: [Option<&str>; 7] = [
    None,
    Some(r##"<path d="M0 0V8" stroke="#FFFFFF" stroke-width="3"/>"##),
    None,
    Some(r##"<circle cx="4" cy="4" r="1.6" fill="#1A1A1A"/>"##),
    Some(r##"<path d="M0 4H8" stroke="#FFFFFF" stroke-width="2.5"/>"##),
    Some(r##"<path d="M0 0V8" stroke="#1A1A1A" stroke-width="1.5"/>"##),
    Some(r##"<path d="M0 4H8M4 0V8" stroke="#1A1A1A" stroke-width="1.2"/>"##),
];

const SWATCH: i32 = 14;
const LEGEND_ROW: i32 = 24;

/// Stacked bars of values from 0 to `max`, with a legend naming `series`.
pub fn render_stacked_bars(
    bars: &[StackedBar],
    series: &[String],
    max: f64,
    options: &ChartOptions,
) -> Result<String, ChartError> {
    let svg = render_svg(&Drawing::new(bars, series, max), options)?;
    Ok(with_patterns(&svg, series.len(), &options.id))
}

/// Stacked bars and their legend, laid out, to draw on any backend.
pub(crate) struct Drawing<'a> {
    bars: &'a [StackedBar],
    max: f64,
    /// Series index, name and top-left corner of each legend item.
    legend: Vec<(usize, String, i32, i32)>,
    bars_top: i32,
}

impl<'a> Drawing<'a> {
    pub(crate) fn new(bars: &'a [StackedBar], series: &[String], max: f64) -> Self {
        // Legend items flow left to right and wrap at the chart's width.
        let mut legend = Vec::new();
        let (mut x, mut y) = (8, TOP as i32);
        for (i, name) in series.iter().enumerate() {
            let width = SWATCH + 6 + text_width(name) + 18;
            if x + width > WIDTH as i32 && x > 8 {
                x = 8;
                y += LEGEND_ROW;
            }
            legend.push((i, name.clone(), x, y));
            x += width;
        }
        Drawing {
            bars,
            max,
            legend,
            bars_top: y + LEGEND_ROW + 8,
        }
    }
}

impl super::Drawing for Drawing<'_> {
    fn size(&self) -> (u32, u32) {
        (
            WIDTH,
            self.bars_top as u32 + ROW * self.bars.len().max(1) as u32 + TOP,
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        bitmap: bool,
    ) -> DrawResult<DB> {
        let (bars, max, bars_top) = (self.bars, self.max, self.bars_top);
        let font = ("sans-serif", FONT_SIZE).into_font().color(&INK);
        let left = font.pos(Pos::new(HPos::Left, VPos::Center));
        for (i, name, x, y) in &self.legend {
            let colour = colour(*i);
            let corners = [(*x, *y), (x + SWATCH, y + SWATCH)];
            root.draw(&Rectangle::new(corners, colour.filled()))?;
            if bitmap {
                draw_pattern(root, *i, corners)?;
            }
            root.draw(&Rectangle::new(corners, INK.stroke_width(1)))?;
            root.draw(&Text::new(
                name.clone(),
                (x + SWATCH + 6, y + SWATCH / 2),
                left.clone(),
            ))?;
        }
        let span = WIDTH as i32 - LABEL_WIDTH - VALUE_SPACE;
        for (row, bar) in bars.iter().enumerate() {
            let y0 = bars_top + (ROW * row as u32) as i32;
            let mid = y0 + ROW as i32 / 2;
            root.draw(&Text::new(bar.label.clone(), (8, mid), left.clone()))?;
            root.draw(&Rectangle::new(
                [
                    (LABEL_WIDTH, y0 + 3),
                    (LABEL_WIDTH + span, y0 + ROW as i32 - 3),
                ],
                TRACK.filled(),
            ))?;
            let mut start = 0.0;
            for (i, value) in bar.segments.iter().enumerate() {
                let Some(value) = value.filter(|v| *v > 0.0 && max > 0.0) else {
                    continue;
                };
                let x0 = LABEL_WIDTH + (span as f64 * (start / max).min(1.0)).round() as i32;
                start += value;
                let x1 = LABEL_WIDTH + (span as f64 * (start / max).min(1.0)).round() as i32;
                if x1 > x0 {
                    let corners = [(x0, y0 + 3), (x1, y0 + ROW as i32 - 3)];
                    root.draw(&Rectangle::new(corners, colour(i).filled()))?;
                    if bitmap {
                        draw_pattern(root, i, corners)?;
                    }
                    // A white edge between parts.
                    root.draw(&PathElement::new(
                        vec![(x1, y0 + 3), (x1, y0 + ROW as i32 - 3)],
                        WHITE.stroke_width(1),
                    ))?;
                }
            }
            root.draw(&Text::new(
                bar.text.clone(),
                (LABEL_WIDTH + span + 8, mid),
                left.clone(),
            ))?;
        }
        Ok(())
    }
}

/// The pattern of series `i` drawn as strokes over a filled rectangle (bitmaps), the
/// counterpart of [`PATTERNS`]: diagonal or horizontal lines, dots, a grid.
fn draw_pattern<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    i: usize,
    [(x0, y0), (x1, y1)]: [(i32, i32); 2],
) -> DrawResult<DB> {
    let white = WHITE.stroke_width(2);
    let ink = INK.stroke_width(1);
    match i % SERIES.len() {
        1 => diagonals(root, [(x0, y0), (x1, y1)], white),
        3 => {
            for y in (y0 + 4..y1).step_by(8) {
                for x in (x0 + 4..x1).step_by(8) {
                    root.draw(&Circle::new((x, y), 1, INK.filled()))?;
                }
            }
            Ok(())
        }
        4 => {
            for y in (y0 + 4..y1).step_by(8) {
                root.draw(&PathElement::new(vec![(x0, y), (x1, y)], white))?;
            }
            Ok(())
        }
        5 => diagonals(root, [(x0, y0), (x1, y1)], ink),
        6 => {
            for y in (y0 + 4..y1).step_by(8) {
                root.draw(&PathElement::new(vec![(x0, y), (x1, y)], ink))?;
            }
            for x in (x0 + 4..x1).step_by(8) {
                root.draw(&PathElement::new(vec![(x, y0), (x, y1)], ink))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Lines at 45° every 8 pixels, cut at the rectangle's edges.
fn diagonals<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    [(x0, y0), (x1, y1)]: [(i32, i32); 2],
    style: ShapeStyle,
) -> DrawResult<DB> {
    // Each line is x = y + c; it crosses the rectangle for y in [max(y0, x0 - c), min(y1, x1 - c)].
    for c in ((x0 - y1)..=(x1 - y0)).step_by(8) {
        let top = y0.max(x0 - c);
        let bottom = y1.min(x1 - c);
        if bottom > top {
            root.draw(&PathElement::new(
                vec![(top + c, top), (bottom + c, bottom)],
                style,
            ))?;
        }
    }
    Ok(())
}

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = SERIES[i % SERIES.len()];
    RGBColor(r, g, b)
}

/// Replaces the plain fill of each patterned series with its pattern, defined once in
/// `<defs>` (the legend swatches get the same pattern as the bars).
fn with_patterns(svg: &str, series: usize, id: &str) -> String {
    let mut defs = String::from("<defs>");
    let mut out = svg.to_string();
    for i in 0..series.min(SERIES.len()) {
        let Some(pattern) = PATTERNS[i] else {
            continue;
        };
        let (r, g, b) = SERIES[i];
        let hex = format!("#{r:02X}{g:02X}{b:02X}");
        let pattern_id = xml_escape(&format!("{id}-pattern-{i}"));
        let rotate = if i == 1 || i == 5 {
            r#" patternTransform="rotate(45)""#
        } else {
            ""
        };
        defs.push_str(&format!(
            r#"<pattern id="{pattern_id}" width="8" height="8" patternUnits="userSpaceOnUse"{rotate}><path d="M0 0H8V8H0Z" fill="{hex}"/>{pattern}</pattern>"#
        ));
        out = out.replace(
            &format!(r#"fill="{hex}""#),
            &format!(r#"fill="url(#{pattern_id})""#),
        );
    }
    defs.push_str("</defs>");
    match out.find("</desc>") {
        Some(at) => {
            let at = at + "</desc>".len();
            format!("{}{defs}{}", &out[..at], &out[at..])
        }
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> String {
        let series: Vec<String> = ["Online (sito)", "App", "Sportello", "Telefono"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let bars = vec![
            StackedBar {
                label: "2016".into(),
                segments: vec![Some(40.0), Some(10.0), Some(45.0), Some(5.0)],
                text: "100".into(),
            },
            StackedBar {
                label: "2017".into(),
                segments: vec![Some(60.0), Some(15.0), Some(25.0), None],
                text: "100 + riservato".into(),
            },
        ];
        render_stacked_bars(
            &bars,
            &series,
            100.0,
            &ChartOptions {
                id: "channels".into(),
                title: "Richieste per canale".into(),
                description: "Nel 2017 il 75% delle richieste arriva online o da app.".into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn series_are_told_apart_by_pattern_too() {
        let svg = chart();
        assert!(svg.contains(r#"<pattern id="channels-pattern-1""#));
        assert!(svg.contains(r#"fill="url(#channels-pattern-1)""#));
        let drawing = &svg[svg.find("</defs>").unwrap()..];
        assert!(
            !drawing.contains(r##"fill="#0066CC""##),
            "patterned colours are replaced"
        );
        assert!(svg.find("<defs>") > svg.find("</desc>"));
    }

    #[test]
    fn stacked_bar_chart_snapshot() {
        insta::assert_snapshot!(chart());
    }
}
