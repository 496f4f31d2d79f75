//! Horizontal bars: one labelled bar per item, its value printed at the end of the track.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{BLUE, ChartError, ChartOptions, DrawResult, FONT_SIZE, INK, TRACK, render_svg};

/// One labelled bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    /// `None` draws no bar: the value is withheld or missing, never zero.
    pub value: Option<f64>,
    /// What is printed beside the bar: the formatted value, or the marker of a withheld or
    /// missing value.
    pub text: String,
}

pub(crate) const WIDTH: u32 = 800;
pub(crate) const ROW: u32 = 26;
pub(crate) const TOP: u32 = 16;
pub(crate) const LABEL_WIDTH: i32 = 320;
pub(crate) const VALUE_SPACE: i32 = 140;

/// Bars of values from 0 to `max` (100 for percentages), in the given order.
pub fn render_bars(bars: &[Bar], max: f64, options: &ChartOptions) -> Result<String, ChartError> {
    render_svg(&Drawing { bars, max }, options)
}

/// The bars of a chart, to draw on any backend.
pub(crate) struct Drawing<'a> {
    pub bars: &'a [Bar],
    pub max: f64,
}

impl super::Drawing for Drawing<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, TOP * 2 + ROW * self.bars.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _bitmap: bool,
    ) -> DrawResult<DB> {
        let (bars, max) = (self.bars, self.max);
        let font = ("sans-serif", FONT_SIZE).into_font().color(&INK);
        let left = font.pos(Pos::new(HPos::Left, VPos::Center));
        let span = WIDTH as i32 - LABEL_WIDTH - VALUE_SPACE;
        for (i, bar) in bars.iter().enumerate() {
            let y0 = (TOP + ROW * i as u32) as i32;
            let mid = y0 + ROW as i32 / 2;
            root.draw(&Text::new(bar.label.clone(), (8, mid), left.clone()))?;
            root.draw(&Rectangle::new(
                [
                    (LABEL_WIDTH, y0 + 4),
                    (LABEL_WIDTH + span, y0 + ROW as i32 - 4),
                ],
                TRACK.filled(),
            ))?;
            if let Some(value) = bar.value.filter(|_| max > 0.0) {
                let w = (span as f64 * (value / max).clamp(0.0, 1.0)).round() as i32;
                root.draw(&Rectangle::new(
                    [
                        (LABEL_WIDTH, y0 + 4),
                        (LABEL_WIDTH + w, y0 + ROW as i32 - 4),
                    ],
                    BLUE.filled(),
                ))?;
            }
            root.draw(&Text::new(
                bar.text.clone(),
                (LABEL_WIDTH + span + 8, mid),
                left.clone(),
            ))?;
        }
        // The axis line at zero.
        root.draw(&PathElement::new(
            vec![
                (LABEL_WIDTH, TOP as i32),
                (LABEL_WIDTH, (TOP + ROW * bars.len() as u32) as i32),
            ],
            INK.stroke_width(1),
        ))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ChartOptions {
        ChartOptions {
            id: "online-share".into(),
            title: "Quota di richieste online per servizio, 2017".into(),
            description: "Il servizio più digitale è il post-scuola (90,0%).".into(),
        }
    }

    fn bars() -> Vec<Bar> {
        vec![
            Bar {
                label: "Post-scuola".into(),
                value: Some(90.0),
                text: "90,0%".into(),
            },
            Bar {
                label: "Iscrizione alla scuola dell'infanzia".into(),
                value: Some(83.0),
                text: "83,0%".into(),
            },
            Bar {
                label: "Pratiche SUAP (attività produttive)".into(),
                value: None,
                text: "riservato".into(),
            },
        ]
    }

    #[test]
    fn withheld_values_draw_no_bar_and_say_so() {
        let svg = render_bars(&bars(), 100.0, &options()).unwrap();
        assert!(svg.contains("riservato"));
        // Three tracks, two bars, and the background.
        assert_eq!(svg.matches("<rect").count(), 1 + 3 + 2, "{svg}");
        assert!(
            svg.contains("Iscrizione alla scuola dell&apos;infanzia")
                || svg.contains("dell'infanzia")
        );
    }

    #[test]
    fn bar_chart_snapshot() {
        insta::assert_snapshot!(render_bars(&bars(), 100.0, &options()).unwrap());
    }
}
