//! Charts as PNG images: a drawing on plotters' bitmap backend, encoded as an RGB PNG (zlib
//! stream from flate2, chunks and checksums written here: a PNG of one image is four chunks).

use std::io::Write;
use std::sync::OnceLock;

use flate2::Crc;
use flate2::write::ZlibEncoder;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::{ChartError, ChartOptions, Drawing};

/// The font of chart texts in bitmaps, embedded: no system font is looked up at run time.
/// DejaVu Sans, under the Bitstream Vera licence (`fonts/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// Registers the embedded font under the family name the charts use, once per process.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok())
}

/// Draws `drawing` on a white bitmap of its size and encodes it as PNG.
pub(crate) fn render(
    drawing: &impl Drawing,
    options: &ChartOptions,
) -> Result<Vec<u8>, ChartError> {
    if !font_ready() {
        return Err(ChartError::new(
            &options.id,
            "the embedded font cannot be read",
        ));
    }
    let (width, height) = drawing.size();
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| ChartError::new(&options.id, e))?;
        drawing
            .draw(&root, true)
            .map_err(|e| ChartError::new(&options.id, e))?;
        root.present()
            .map_err(|e| ChartError::new(&options.id, e))?;
    }
    encode_rgb(width, height, &rgb).map_err(|e| ChartError::new(&options.id, e))
}

/// An 8-bit RGB image (rows top to bottom, no padding) as a PNG file.
pub(crate) fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> std::io::Result<Vec<u8>> {
    let row = width as usize * 3;
    if rgb.len() != row * height as usize {
        return Err(std::io::Error::other(
            "pixel buffer does not match the size",
        ));
    }
    // Every row starts with its filter type; 0 (none) keeps the encoder simple, and zlib still
    // packs the large flat areas of a chart well.
    let mut zlib = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for line in rgb.chunks(row.max(1)) {
        zlib.write_all(&[0])?;
        zlib.write_all(line)?;
    }
    let data = zlib.finish()?;

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &data);
    chunk(&mut png, b"IEND", &[]);
    Ok(png)
}

/// Appends a chunk: length, type, data, CRC-32 of type and data.
fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::{Annotation, Bar, Chart, LineChart, LinePoint, StackedBar};
    use super::*;

    /// A decoded PNG: width, height and RGB rows, after checking the signature, every chunk's
    /// CRC and the size of the inflated data.
    fn decode(png: &[u8]) -> (u32, u32, Vec<Vec<u8>>) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let (mut at, mut width, mut height, mut idat) = (8, 0, 0, Vec::new());
        loop {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let stored = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            let mut crc = Crc::new();
            crc.update(kind);
            crc.update(data);
            assert_eq!(
                crc.sum(),
                stored,
                "CRC of {}",
                String::from_utf8_lossy(kind)
            );
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                other => panic!("unexpected chunk {other:?}"),
            }
            at += 12 + len;
        }
        assert_eq!(at + 12, png.len(), "IEND is the last chunk");
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        let stride = 1 + 3 * width as usize;
        assert_eq!(
            raw.len(),
            stride * height as usize,
            "one filtered row per line"
        );
        let rows = raw
            .chunks(stride)
            .map(|r| {
                assert_eq!(r[0], 0, "filter type none");
                r[1..].to_vec()
            })
            .collect();
        (width, height, rows)
    }

    /// Width and height that the SVG of the same chart declares.
    fn svg_size(svg: &str) -> (u32, u32) {
        let attr = |name: &str| -> u32 {
            let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
        };
        (attr("width"), attr("height"))
    }

    /// Pixels darker than mid-grey in columns `from..to` (text is drawn in ink).
    fn dark_pixels(rows: &[Vec<u8>], from: usize, to: usize) -> usize {
        rows.iter()
            .flat_map(|r| r[from * 3..to * 3].chunks(3))
            .filter(|p| p.iter().all(|c| *c < 0x60))
            .count()
    }

    fn options() -> ChartOptions {
        ChartOptions {
            id: "c".into(),
            title: "t".into(),
            description: "d".into(),
        }
    }

    fn charts() -> Vec<(&'static str, Chart)> {
        let bar = |label: &str, value: Option<f64>| Bar {
            label: label.into(),
            value,
            text: value.map_or("riservato".into(), |v| format!("{v}%")),
        };
        vec![
            (
                "bars",
                Chart::Bars {
                    bars: vec![bar("Post-scuola", Some(90.0)), bar("SUAP", None)],
                    max: 100.0,
                },
            ),
            (
                "stacked",
                Chart::Stacked {
                    bars: vec![StackedBar {
                        label: "2017".into(),
                        segments: vec![Some(10.0), Some(20.0), Some(30.0), Some(5.0)],
                        text: "65".into(),
                    }],
                    series: ["Online", "App", "Sportello", "Telefono"]
                        .map(String::from)
                        .to_vec(),
                    max: 65.0,
                },
            ),
            (
                "line",
                Chart::Line(LineChart {
                    points: (0..24)
                        .map(|i| LinePoint {
                            value: (i != 5).then_some(40.0 + i as f64),
                            tick: (i % 12 == 0).then(|| format!("{}", 2016 + i / 12)),
                        })
                        .collect(),
                    max: 100.0,
                    y_labels: vec![(0.0, "0%".into()), (100.0, "100%".into())],
                    target: Some((80.0, "Obiettivo 80%".into())),
                    annotations: vec![Annotation {
                        at: 3,
                        text: "online".into(),
                    }],
                }),
            ),
            (
                "sparkline",
                Chart::Sparkline(vec![Some(1.0), None, Some(3.0), Some(2.0)]),
            ),
        ]
    }

    #[test]
    fn every_chart_type_is_a_png_of_the_svg_s_size() {
        for (name, chart) in charts() {
            let png = chart.png(&options()).unwrap();
            let (width, height, rows) = decode(&png);
            let svg = chart.svg(&options()).unwrap();
            assert_eq!((width, height), svg_size(&svg), "{name}");
            assert_eq!(rows.len(), height as usize, "{name}");
            assert!(
                rows.iter().any(|r| r.iter().any(|c| *c != 0xFF)),
                "{name}: drawn"
            );
        }
    }

    #[test]
    fn texts_are_drawn_with_the_embedded_font() {
        // Bar labels sit in the first 320 columns, left of the bars: ink there is text.
        let (_, chart) = charts().remove(0);
        let (_, _, rows) = decode(&chart.png(&options()).unwrap());
        assert!(dark_pixels(&rows, 0, 300) > 50, "label text in the bitmap");
        // Without labels, the same columns stay blank.
        let blank = Chart::Bars {
            bars: vec![Bar {
                label: String::new(),
                value: Some(50.0),
                text: String::new(),
            }],
            max: 100.0,
        };
        let (_, _, rows) = decode(&blank.png(&options()).unwrap());
        assert_eq!(dark_pixels(&rows, 0, 300), 0);
    }
}
