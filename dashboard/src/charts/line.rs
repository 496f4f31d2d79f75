//! A line over time (e.g. the monthly online share) with a dashed target line and dated
//! annotations such as "online service launched". Gaps in the data (withheld or missing
//! months) break the line; they are never drawn as zero.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    ACCENT, BLUE, ChartError, ChartOptions, DrawResult, FONT_SIZE, GRID, INK, render_svg,
    text_width,
};

/// One point of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePoint {
    pub value: Option<f64>,
    /// A label under the x axis at this point (e.g. the year at each January).
    pub tick: Option<String>,
}

/// A vertical marker at a point, with a short text.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Index of the point.
    pub at: usize,
    pub text: String,
}

/// What a line chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub points: Vec<LinePoint>,
    /// The top of the y axis (100 for percentages).
    pub max: f64,
    /// Grid lines with their labels.
    pub y_labels: Vec<(f64, String)>,
    /// A target value and its label (drawn dashed).
    pub target: Option<(f64, String)>,
    pub annotations: Vec<Annotation>,
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;
const LEFT: i32 = 64;
const RIGHT: i32 = WIDTH as i32 - 170;
const TOP: i32 = 40;
const BOTTOM: i32 = HEIGHT as i32 - 40;

pub fn render_line(chart: &LineChart, options: &ChartOptions) -> Result<String, ChartError> {
    render_svg(&Drawing { chart }, options)
}

/// A line chart, to draw on any backend.
pub(crate) struct Drawing<'a> {
    pub chart: &'a LineChart,
}

impl super::Drawing for Drawing<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _bitmap: bool,
    ) -> DrawResult<DB> {
        let chart = self.chart;
        let n = chart.points.len();
        let x_of = |i: usize| -> i32 {
            if n <= 1 {
                (LEFT + RIGHT) / 2
            } else {
                LEFT + ((RIGHT - LEFT) as f64 * i as f64 / (n - 1) as f64).round() as i32
            }
        };
        let max = if chart.max > 0.0 { chart.max } else { 1.0 };
        let y_of = |v: f64| -> i32 {
            BOTTOM - ((BOTTOM - TOP) as f64 * (v / max).clamp(0.0, 1.0)).round() as i32
        };
        {
            let font = ("sans-serif", FONT_SIZE).into_font().color(&INK);
            let right_aligned = font.pos(Pos::new(HPos::Right, VPos::Center));
            let centred_top = font.pos(Pos::new(HPos::Center, VPos::Top));
            for (value, label) in &chart.y_labels {
                let y = y_of(*value);
                root.draw(&PathElement::new(
                    vec![(LEFT, y), (RIGHT, y)],
                    GRID.stroke_width(1),
                ))?;
                root.draw(&Text::new(
                    label.clone(),
                    (LEFT - 8, y),
                    right_aligned.clone(),
                ))?;
            }
            root.draw(&PathElement::new(
                vec![(LEFT, BOTTOM), (RIGHT, BOTTOM)],
                INK.stroke_width(1),
            ))?;
            for (i, point) in chart.points.iter().enumerate() {
                if let Some(tick) = &point.tick {
                    let x = x_of(i);
                    root.draw(&PathElement::new(
                        vec![(x, BOTTOM), (x, BOTTOM + 5)],
                        INK.stroke_width(1),
                    ))?;
                    root.draw(&Text::new(
                        tick.clone(),
                        (x, BOTTOM + 10),
                        centred_top.clone(),
                    ))?;
                }
            }
            if let Some((target, label)) = &chart.target {
                let y = y_of(*target);
                let mut x = LEFT;
                while x < RIGHT {
                    let end = (x + 8).min(RIGHT);
                    root.draw(&PathElement::new(
                        vec![(x, y), (end, y)],
                        ACCENT.stroke_width(2),
                    ))?;
                    x += 13;
                }
                let style = ("sans-serif", FONT_SIZE)
                    .into_font()
                    .color(&ACCENT)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                root.draw(&Text::new(label.clone(), (RIGHT + 6, y), style))?;
            }
            for annotation in &chart.annotations {
                if annotation.at >= n {
                    continue;
                }
                let x = x_of(annotation.at);
                let mut y = TOP - 8;
                while y < BOTTOM {
                    root.draw(&PathElement::new(
                        vec![(x, y), (x, (y + 4).min(BOTTOM))],
                        ACCENT.stroke_width(2),
                    ))?;
                    y += 8;
                }
                let fits_right = x + 4 + text_width(&annotation.text) < WIDTH as i32 - 4;
                let (anchor, at) = if fits_right {
                    (HPos::Left, x + 4)
                } else {
                    (HPos::Right, x - 4)
                };
                let style = ("sans-serif", FONT_SIZE)
                    .into_font()
                    .color(&ACCENT)
                    .pos(Pos::new(anchor, VPos::Center));
                root.draw(&Text::new(annotation.text.clone(), (at, TOP - 22), style))?;
            }
            // The series: one path per run of consecutive known values, a marker at each value.
            let mut run: Vec<(i32, i32)> = Vec::new();
            let mut runs = Vec::new();
            for (i, point) in chart.points.iter().enumerate() {
                match point.value {
                    Some(v) => run.push((x_of(i), y_of(v))),
                    None => runs.push(std::mem::take(&mut run)),
                }
            }
            runs.push(run);
            for run in runs.iter().filter(|r| r.len() > 1) {
                root.draw(&PathElement::new(run.clone(), BLUE.stroke_width(3)))?;
            }
            for point in runs.iter().flatten() {
                root.draw(&Circle::new(*point, 3, BLUE.filled()))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        let values = [
            Some(40.0),
            Some(45.0),
            None,
            Some(60.0),
            Some(72.5),
            Some(80.0),
        ];
        LineChart {
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| LinePoint {
                    value: *v,
                    tick: (i % 3 == 0).then(|| format!("2017-{:02}", i + 1)),
                })
                .collect(),
            max: 100.0,
            y_labels: vec![
                (0.0, "0%".into()),
                (50.0, "50%".into()),
                (100.0, "100%".into()),
            ],
            target: Some((90.0, "Obiettivo 90%".into())),
            annotations: vec![Annotation {
                at: 3,
                text: "servizio online attivato".into(),
            }],
        }
    }

    fn options() -> ChartOptions {
        ChartOptions {
            id: "monthly".into(),
            title: "Quota online per mese".into(),
            description: "Dal 40% di gennaio all'80% di giugno; obiettivo 90%.".into(),
        }
    }

    #[test]
    fn a_gap_breaks_the_line_instead_of_dropping_to_zero() {
        let svg = render_line(&chart(), &options()).unwrap();
        // Two runs of the series (before and after the gap) in the series colour.
        assert_eq!(
            svg.matches(r##"stroke="#0066CC" stroke-width="3""##)
                .count(),
            2,
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("Obiettivo 90%"));
        assert!(svg.contains("servizio online attivato"));
    }

    #[test]
    fn line_chart_snapshot() {
        insta::assert_snapshot!(render_line(&chart(), &options()).unwrap());
    }
}
