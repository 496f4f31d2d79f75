//! What a file looks like before it can be parsed: its content hash, text encoding, format
//! (CSV or JSON Lines), delimiter, an Excel `sep=` line, and the decimal mark.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::profile::Profile;

/// Text encodings civica reads. Latin-1 files are read as Windows-1252, its superset for
/// every printable character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    Windows1252,
}

/// Physical format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Csv,
    JsonLines,
}

/// Decimal mark of amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecimalMark {
    /// `1.234,50`, as in Italian exports.
    Comma,
    /// `1234.50`.
    Dot,
}

/// Everything needed to parse one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialect {
    pub format: Format,
    pub encoding: Encoding,
    /// Field delimiter (CSV only).
    pub delimiter: u8,
    /// The file starts with Excel's `sep=X` line.
    pub sep_line: bool,
    pub decimal: DecimalMark,
}

/// The result of reading a file once from end to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    /// SHA-256 of the bytes, hex: identifies a file already ingested.
    pub sha256: String,
    pub bytes: u64,
    /// Line ends (`\n`) in the file: an upper bound of its rows, to size buffers.
    pub lines: u64,
    /// Whether every byte sequence is valid UTF-8 (after an optional BOM).
    pub valid_utf8: bool,
    pub utf8_bom: bool,
    /// The first bytes (up to 64 KiB), for sniffing.
    pub head: Vec<u8>,
}

const HEAD_BYTES: usize = 64 * 1024;

/// Reads `path` once: hash, UTF-8 validity, BOM and the first bytes.
pub fn scan_file(path: &Path) -> Result<FileScan> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut bytes = 0u64;
    let mut valid_utf8 = true;
    let mut lines = 0u64;
    // Bytes of a UTF-8 sequence cut by the end of the previous buffer.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        bytes += n as u64;
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
        }
        lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        if valid_utf8 {
            let joined;
            let data: &[u8] = if carry.is_empty() {
                chunk
            } else {
                carry.extend_from_slice(chunk);
                joined = std::mem::take(&mut carry);
                &joined
            };
            match std::str::from_utf8(data) {
                Ok(_) => {}
                // An incomplete sequence at the end: keep it for the next chunk.
                Err(e) if e.error_len().is_none() => carry = data[e.valid_up_to()..].to_vec(),
                Err(_) => valid_utf8 = false,
            }
        }
    }
    if !carry.is_empty() {
        valid_utf8 = false;
    }
    let utf8_bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
    Ok(FileScan {
        sha256: hex::encode(hasher.finalize()),
        lines,
        bytes,
        valid_utf8,
        utf8_bom,
        head,
    })
}

impl Dialect {
    /// Works out the dialect from the scan, letting the profile override each part.
    pub fn detect(path: &Path, scan: &FileScan, profile: &Profile) -> Result<Dialect> {
        let settings = &profile.source;
        let encoding = match settings.encoding.to_lowercase().as_str() {
            "utf-8" | "utf8" => Encoding::Utf8,
            "windows-1252" | "cp1252" | "iso-8859-1" | "latin-1" | "latin1" => {
                Encoding::Windows1252
            }
            _ if scan.utf8_bom || scan.valid_utf8 => Encoding::Utf8,
            _ => Encoding::Windows1252,
        };
        let head = decode(&scan.head, encoding);
        let head = head.trim_start_matches('\u{feff}');
        let first_line = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let format = if ["jsonl", "ndjson"].contains(&extension.as_str())
            || first_line.trim_start().starts_with('{')
        {
            Format::JsonLines
        } else {
            Format::Csv
        };
        let sep_directive = first_line
            .trim()
            .strip_prefix("sep=")
            .and_then(|d| d.bytes().next());
        let delimiter = profile
            .delimiter()
            .or(sep_directive)
            .unwrap_or_else(|| sniff_delimiter(first_line));
        let decimal = match settings.decimal.as_str() {
            "," => DecimalMark::Comma,
            "." => DecimalMark::Dot,
            // Where `;` separates fields, the comma is the decimal mark (Excel in Italy).
            _ if delimiter == b';' => DecimalMark::Comma,
            _ => DecimalMark::Dot,
        };
        Ok(Dialect {
            format,
            encoding,
            delimiter,
            sep_line: sep_directive.is_some(),
            decimal,
        })
    }

    /// A reader of the file's text as UTF-8 (BOM removed).
    pub fn open(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let encoding = match self.encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        };
        let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .bom_override(true)
            .build(BufReader::with_capacity(1 << 20, file));
        Ok(Box::new(LineEnds::new(BufReader::with_capacity(
            1 << 20,
            decoder,
        ))))
    }
}

/// Turns CRLF and lone CR (classic Mac OS) line ends into LF, so that line numbers count
/// Windows, Unix and old Mac files alike (the CSV parser ends a record at a lone CR without
/// counting a line, and miscounts lines ended by CRLF) and blocks can be cut at line ends.
struct LineEnds<R> {
    inner: R,
    /// A `\r` held back from the end of the previous read.
    held_cr: bool,
    /// A byte already converted that a one-byte read could not take.
    pending: Option<u8>,
}

impl<R: Read> LineEnds<R> {
    fn new(inner: R) -> Self {
        LineEnds {
            inner,
            held_cr: false,
            pending: None,
        }
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.pending.take() {
            buf[0] = b;
            return Ok(1);
        }
        if buf.len() < 2 {
            // Too small to look at a CR and what follows it: convert through a scratch
            // buffer and keep what does not fit for the next read.
            let mut scratch = [0u8; 2];
            let n = self.read(&mut scratch)?;
            if n == 2 {
                self.pending = Some(scratch[1]);
            }
            buf[0] = scratch[0];
            return Ok(n.min(1));
        }
        let start = usize::from(self.held_cr);
        if self.held_cr {
            buf[0] = b'\r';
        }
        let n = self.inner.read(&mut buf[start..])?;
        if n == 0 {
            // A `\r` at the very end of the text is a line end of its own.
            if self.held_cr {
                buf[0] = b'\n';
            }
            self.held_cr = false;
            return Ok(start);
        }
        let len = start + n;
        if memchr::memchr(b'\r', &buf[..len]).is_none() {
            self.held_cr = false;
            return Ok(len);
        }
        let mut out = 0;
        let mut held = false;
        for i in 0..len {
            let b = buf[i];
            let b = if b == b'\r' {
                match buf[..len].get(i + 1) {
                    // The first half of a CRLF: the LF follows.
                    Some(b'\n') => continue,
                    Some(_) => b'\n',
                    // A `\r` at the very end may be the first half of a CRLF: keep it for
                    // the next read.
                    None => {
                        held = true;
                        continue;
                    }
                }
            } else {
                b
            };
            buf[out] = b;
            out += 1;
        }
        self.held_cr = held;
        if held && out == 0 {
            // Only a `\r` so far: read on to decide.
            return self.read(buf);
        }
        Ok(out)
    }
}

/// Decodes `bytes` (possibly cut mid-character at the end) for sniffing.
fn decode(bytes: &[u8], encoding: Encoding) -> String {
    let enc = match encoding {
        Encoding::Utf8 => encoding_rs::UTF_8,
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
    };
    enc.decode(bytes).0.into_owned()
}

/// The delimiter that splits the header line into the most fields, outside quotes.
fn sniff_delimiter(line: &str) -> u8 {
    let candidates = [b',', b';', b'\t', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = candidates.iter().position(|c| *c == b) {
            counts[i] += 1;
        }
    }
    let best = (0..candidates.len())
        .max_by_key(|i| (counts[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(bytes: &[u8], name: &str) -> Dialect {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let scan = scan_file(&path).unwrap();
        Dialect::detect(&path, &scan, &Profile::default()).unwrap()
    }

    #[test]
    fn canonical_csv_is_utf8_comma_dot() {
        let d = detect(b"request_id,service\nA,b\n", "a.csv");
        assert_eq!(
            (d.format, d.encoding, d.delimiter, d.decimal, d.sep_line),
            (Format::Csv, Encoding::Utf8, b',', DecimalMark::Dot, false)
        );
    }

    #[test]
    fn municipal_export_is_detected() {
        // Windows-1252 "Forlì" (0xEC), Excel's sep line, semicolons, CRLF.
        let d = detect(
            b"sep=;\r\nid_pratica;servizio;importo\r\n1;Forl\xec;1.234,50\r\n",
            "export.csv",
        );
        assert_eq!(d.encoding, Encoding::Windows1252);
        assert_eq!(d.delimiter, b';');
        assert!(d.sep_line);
        assert_eq!(d.decimal, DecimalMark::Comma);
    }

    #[test]
    fn bom_and_json_lines_are_recognised() {
        let d = detect(b"\xEF\xBB\xBFid_pratica;servizio\n", "b.csv");
        assert_eq!((d.encoding, d.delimiter), (Encoding::Utf8, b';'));
        let d = detect(b"{\"request_id\": \"A\"}\n", "log.txt");
        assert_eq!(d.format, Format::JsonLines);
    }

    #[test]
    fn crlf_becomes_lf_even_across_reads() {
        let data = b"a\r\nb\r\r\nc\r".to_vec();
        // A reader that returns one byte at a time splits every CRLF.
        struct OneByte(std::io::Cursor<Vec<u8>>);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let mut out = Vec::new();
        LineEnds::new(OneByte(std::io::Cursor::new(data.clone())))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\n\nc\n");
        let mut out = Vec::new();
        LineEnds::new(std::io::Cursor::new(data.clone()))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\n\nc\n");
        // Regression: reads into a one-byte buffer (as `Read::take` asks near its limit)
        // went around the conversion, dropping a held CR or passing a lone one through.
        let mut ends = LineEnds::new(std::io::Cursor::new(data));
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while ends.read(&mut byte).unwrap() == 1 {
            out.push(byte[0]);
        }
        assert_eq!(out, b"a\nb\n\nc\n");
    }

    #[test]
    fn delimiters_inside_quotes_do_not_count() {
        assert_eq!(sniff_delimiter("\"a;b;c\",d,e"), b',');
        assert_eq!(sniff_delimiter("a\tb\tc"), b'\t');
    }

    #[test]
    fn utf8_split_across_buffers_stays_valid() {
        let mut bytes = vec![b'a'; (1 << 20) - 1];
        bytes.extend_from_slice("è\n".as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.csv");
        std::fs::write(&path, &bytes).unwrap();
        assert!(scan_file(&path).unwrap().valid_utf8);
    }
}
