//! Sparklines: a small line of a KPI's yearly values beside its headline figure, without
//! axes or text. The value itself and the series are in the page next to it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{BLUE, ChartError, ChartOptions, DrawResult, GRID, render_svg};

const WIDTH: u32 = 140;
const HEIGHT: u32 = 36;
const PAD: i32 = 4;

/// A sparkline of `values` (gaps for withheld or missing values), scaled between their own
/// minimum and maximum; the last known value is marked.
pub fn render_sparkline(
    values: &[Option<f64>],
    options: &ChartOptions,
) -> Result<String, ChartError> {
    render_svg(&Drawing { values }, options)
}

/// The values of a sparkline, to draw on any backend.
pub(crate) struct Drawing<'a> {
    pub values: &'a [Option<f64>],
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
        let values = self.values;
        let known: Vec<f64> = values.iter().flatten().copied().collect();
        let low = known.iter().copied().fold(f64::INFINITY, f64::min);
        let high = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let n = values.len();
        let x_of = |i: usize| -> i32 {
            if n <= 1 {
                WIDTH as i32 / 2
            } else {
                PAD + ((WIDTH as i32 - 2 * PAD) as f64 * i as f64 / (n - 1) as f64).round() as i32
            }
        };
        let y_of = |v: f64| -> i32 {
            let span = high - low;
            let t = if span > 0.0 { (v - low) / span } else { 0.5 };
            HEIGHT as i32 - PAD - ((HEIGHT as i32 - 2 * PAD) as f64 * t).round() as i32
        };
        {
            root.draw(&PathElement::new(
                vec![
                    (PAD, HEIGHT as i32 - PAD),
                    (WIDTH as i32 - PAD, HEIGHT as i32 - PAD),
                ],
                GRID.stroke_width(1),
            ))?;
            let mut runs: Vec<Vec<(i32, i32)>> = vec![Vec::new()];
            for (i, value) in values.iter().enumerate() {
                match value {
                    Some(v) => {
                        if let Some(run) = runs.last_mut() {
                            run.push((x_of(i), y_of(*v)));
                        }
                    }
                    None => runs.push(Vec::new()),
                }
            }
            for run in runs.iter().filter(|r| r.len() > 1) {
                root.draw(&PathElement::new(run.clone(), BLUE.stroke_width(2)))?;
            }
            if let Some(last) = runs.iter().flatten().last() {
                root.draw(&Circle::new(*last, 3, BLUE.filled()))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_snapshot() {
        let svg = render_sparkline(
            &[Some(52.0), Some(61.5), None, Some(83.0)],
            &ChartOptions {
                id: "spark-online".into(),
                title: "Quota online, 2015–2018".into(),
                description: "Da 52,0% nel 2015 a 83,0% nel 2018.".into(),
            },
        )
        .unwrap();
        insta::assert_snapshot!(svg);
    }
}
