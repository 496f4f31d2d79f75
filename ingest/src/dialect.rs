//! What a file looks like before it can be parsed: its content hash, text encoding, format
//! (CSV or JSON Lines), delimiter, an Excel `sep=` line, and the decimal mark.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::archive;
use crate::error::{Error, Result};
use crate::profile::Profile;

/// Text encodings civica reads. Latin-1 files are read as Windows-1252, its superset for
/// every printable character. UTF-16 is what Excel writes as "Unicode text" (tab-separated,
/// with a byte order mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    Windows1252,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    /// The name shown in summaries and accepted in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
        }
    }

    /// The encoding a profile names (`auto` and unknown names give `None`).
    pub fn from_profile(name: &str) -> Option<Encoding> {
        match name.to_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1252" | "cp1252" | "iso-8859-1" | "latin-1" | "latin1" => {
                Some(Encoding::Windows1252)
            }
            "utf-16" | "utf16" | "utf-16le" | "utf16le" => Some(Encoding::Utf16Le),
            "utf-16be" | "utf16be" => Some(Encoding::Utf16Be),
            _ => None,
        }
    }

    fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
        }
    }
}

/// Physical format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Csv,
    JsonLines,
    /// One JSON array of objects (`[{…}, {…}]`), as open-data portals and many web
    /// back offices export; read as JSON Lines, one object per record.
    JsonArray,
    /// A spreadsheet (xlsx, xlsm, xlsb, xls, ods): one sheet read as CSV text, see
    /// [`crate::spreadsheet`].
    Spreadsheet,
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
    /// The sheet read, for a spreadsheet (the first when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The file is gzip-compressed (`.csv.gz`, `.jsonl.gz`): the text above is what it holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gzip: bool,
    /// The file is a zip archive and this is the export inside it that is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_member: Option<String>,
    /// The file is a web page (an HTML table saved as a spreadsheet): the text above is its
    /// largest table as CSV (see [`crate::html`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html_table: bool,
}

/// What reading a file tells before parsing it: complete once the file has been read from
/// end to end ([`scan_file`], or a [`ScanningReader`] at its end), partial when only its
/// first bytes are known ([`FileScan::of_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    /// BLAKE3 of the bytes, hex: identifies a file already ingested. Empty while partial.
    /// (BLAKE3 rather than SHA-256: a quarter of the time on a 1.3 GB export, 0.2 s against
    /// 0.8 s here, with the same strength; `b3sum` prints the same digest.)
    pub blake3: String,
    /// Size of the file as stored (compressed, for a gzip file).
    pub bytes: u64,
    /// The file is gzip-compressed; everything below describes the text it holds.
    pub gzip: bool,
    /// The file is a zip archive; everything below describes the text of this member.
    pub zip_member: Option<String>,
    /// The file is a web page; everything below describes the CSV text of its table.
    pub html_table: bool,
    /// Line ends (`\n`) in the file: an upper bound of its rows, to size buffers. An
    /// estimate from the first bytes while partial.
    pub lines: u64,
    /// Whether every byte sequence is valid UTF-8 (after an optional BOM); while partial, of
    /// the first bytes only.
    pub valid_utf8: bool,
    pub utf8_bom: bool,
    /// The first bytes (up to 64 KiB), for sniffing.
    pub head: Vec<u8>,
}

const HEAD_BYTES: usize = 64 * 1024;

/// The most text a compressed byte is taken to stand for, when estimating the rows of a
/// packed file (CSV exports compress by about 5 to 20 times).
const MAX_PACKING_RATIO: u64 = 32;

impl FileScan {
    /// Whether the whole file has been read (hash, validity and lines are exact).
    pub fn is_complete(&self) -> bool {
        !self.blake3.is_empty()
    }

    /// A partial scan from the first bytes of `path` and its size, for a file whose only full
    /// pass is the ingest itself (through a [`ScanningReader`]).
    pub fn of_head(path: &Path) -> Result<FileScan> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let packing = Packing::of(path, &mut file)?;
        // A packed file's own record of its text size sizes buffers only: it is taken up to
        // a ratio that text exports do not exceed, so that a forged one cannot inflate them.
        let packed = |claimed: u64| claimed.min(bytes.saturating_mul(MAX_PACKING_RATIO));
        let (text_bytes, mut text): (u64, Box<dyn Read>) = match &packing {
            Packing::Gzip => {
                let size = gzip_text_size(&mut file, bytes).map_err(|e| Error::io(path, e))?;
                (
                    packed(size),
                    Box::new(MultiGzDecoder::new(BufReader::new(file))),
                )
            }
            Packing::Zip(member) => (
                packed(member.size),
                Box::new(archive::open_member(path, member)?),
            ),
            // A page's text is known without sniffing it (see `Dialect::detect`): it is parsed
            // once, when it is read.
            Packing::Html | Packing::Plain => (bytes, Box::new(file)),
        };
        let mut head = vec![0u8; HEAD_BYTES];
        let n = read_full(&mut text, &mut head).map_err(|e| Error::io(path, e))?;
        head.truncate(n);
        let whole = n < HEAD_BYTES;
        let valid_utf8 = match std::str::from_utf8(&head) {
            Ok(_) => true,
            // A sequence cut by the end of the head is judged with the rest of the file.
            Err(e) => e.error_len().is_none() && !whole,
        };
        let head_lines = memchr::memchr_iter(b'\n', &head).count() as u64;
        // Lines a little shorter than those of the head, so that buffers are not undersized.
        let lines = if head_lines >= 2 {
            (text_bytes.max(n as u64).saturating_mul(head_lines) / 4 * 5).div_ceil(n as u64)
        } else {
            text_bytes / 32 + 1
        };
        Ok(FileScan {
            blake3: String::new(),
            bytes,
            gzip: packing == Packing::Gzip,
            zip_member: packing.member_name(),
            html_table: packing == Packing::Html,
            lines,
            valid_utf8,
            utf8_bom: head.starts_with(&[0xEF, 0xBB, 0xBF]),
            head,
        })
    }
}

/// Where a [`ScanningReader`] leaves the complete scan when it reaches the end of the file.
pub type ScanSlot = std::sync::Arc<std::sync::Mutex<Option<FileScan>>>;

/// A file read through once, hashed and checked on the way: it completes the scan of a file
/// whose only full pass is its parsing. The scan is put in the slot at the end of the file.
/// A gzip file is hashed as stored and checked as the text it holds, which is what it reads.
pub struct ScanningReader {
    input: ScannedInput,
    text: TextCheck,
    slot: ScanSlot,
}

enum ScannedInput {
    Plain(Hashing),
    Gzip(Box<MultiGzDecoder<BufReader<Hashing>>>),
    /// The text of a zip member; the archive was hashed by a pass of its own.
    Member {
        text: archive::MemberText,
        member: String,
        blake3: String,
        bytes: u64,
    },
    /// The CSV text of a web page's table; the page was hashed when it was read whole.
    Page {
        text: std::io::Cursor<Vec<u8>>,
        blake3: String,
        bytes: u64,
    },
}

/// The stored bytes of a file, hashed and counted as they are read.
struct Hashing {
    file: File,
    /// Boxed: a BLAKE3 hasher holds about 1.9 KB of state.
    hasher: Box<blake3::Hasher>,
    bytes: u64,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl ScanningReader {
    /// Reads `file` from its current position (its start), as plain text or gzip.
    pub fn new(file: File, gzip: bool, slot: ScanSlot) -> Self {
        let hashing = Hashing {
            file,
            hasher: Box::new(blake3::Hasher::new()),
            bytes: 0,
        };
        let input = if gzip {
            ScannedInput::Gzip(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                hashing,
            ))))
        } else {
            ScannedInput::Plain(hashing)
        };
        ScanningReader {
            input,
            text: TextCheck::new(),
            slot,
        }
    }
}

impl Read for ScanningReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match &mut self.input {
            ScannedInput::Plain(file) => file.read(buf)?,
            ScannedInput::Gzip(text) => text.read(buf)?,
            ScannedInput::Member { text, .. } => text.read(buf)?,
            ScannedInput::Page { text, .. } => text.read(buf)?,
        };
        if n > 0 {
            self.text.update(&buf[..n]);
        } else if let Ok(mut slot) = self.slot.lock()
            && slot.is_none()
        {
            let stored = |file: &Hashing| (file.hasher.finalize().to_hex().to_string(), file.bytes);
            let ((blake3, bytes), gzip, zip_member) = match &self.input {
                ScannedInput::Plain(file) => (stored(file), false, None),
                ScannedInput::Gzip(text) => (stored(text.get_ref().get_ref()), true, None),
                ScannedInput::Member {
                    member,
                    blake3,
                    bytes,
                    ..
                } => ((blake3.clone(), *bytes), false, Some(member.clone())),
                ScannedInput::Page { blake3, bytes, .. } => ((blake3.clone(), *bytes), false, None),
            };
            let html_table = matches!(self.input, ScannedInput::Page { .. });
            let text = std::mem::replace(&mut self.text, TextCheck::new());
            *slot = Some(FileScan {
                blake3,
                bytes,
                gzip,
                zip_member,
                html_table,
                lines: text.lines,
                valid_utf8: text.valid_utf8 && text.carry.is_empty(),
                utf8_bom: text.head.starts_with(&[0xEF, 0xBB, 0xBF]),
                head: text.head,
            });
        }
        Ok(n)
    }
}

impl ScanningReader {
    /// Reads the text of the data file inside the zip archive at `path`, after hashing the
    /// archive (it is read by seeking in it, so the hash cannot be taken on the way).
    pub fn zip_member(path: &Path, member: &archive::Member, slot: ScanSlot) -> Result<Self> {
        let (blake3, bytes) = stored_hash(path)?;
        Ok(ScanningReader {
            input: ScannedInput::Member {
                text: archive::open_member(path, member)?,
                member: member.name.clone(),
                blake3,
                bytes,
            },
            text: TextCheck::new(),
            slot,
        })
    }

    /// Reads the CSV text of the table of the web page at `path`, which is read whole, hashed
    /// and parsed.
    pub fn html_page(path: &Path, slot: ScanSlot) -> Result<Self> {
        let (page, text) = crate::html::read_page(path)?;
        Ok(ScanningReader {
            input: ScannedInput::Page {
                text: std::io::Cursor::new(text),
                blake3: blake3::hash(&page).to_hex().to_string(),
                bytes: page.len() as u64,
            },
            text: TextCheck::new(),
            slot,
        })
    }
}

/// The BLAKE3 (hex) and size of the file at `path` as stored, by a pass of their own.
fn stored_hash(path: &Path) -> Result<(String, u64)> {
    let mut hashing = Hashing {
        file: File::open(path).map_err(|e| Error::io(path, e))?,
        hasher: Box::new(blake3::Hasher::new()),
        bytes: 0,
    };
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
    Ok((
        hashing.hasher.finalize().to_hex().to_string(),
        hashing.bytes,
    ))
}

/// How a file's text is stored in it.
#[derive(Debug, PartialEq, Eq)]
enum Packing {
    Plain,
    Gzip,
    Zip(archive::Member),
    /// A web page whose table is the text.
    Html,
}

impl Packing {
    /// Told by the first bytes of `file` (a spreadsheet, also a zip file, is plain here: it is
    /// read as a workbook). Leaves the file at its start.
    fn of(path: &Path, file: &mut File) -> Result<Packing> {
        let mut magic = [0u8; 64];
        let n = read_full(file, &mut magic).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;
        let magic = &magic[..n];
        Ok(if magic.starts_with(&[0x1f, 0x8b]) {
            Packing::Gzip
        } else if archive::is_zip(magic) && !crate::spreadsheet::is_spreadsheet(path, magic) {
            Packing::Zip(archive::data_member(path)?)
        } else if crate::html::is_html_page(magic) {
            Packing::Html
        } else {
            Packing::Plain
        })
    }

    fn member_name(&self) -> Option<String> {
        match self {
            Packing::Zip(member) => Some(member.name.clone()),
            _ => None,
        }
    }
}

/// The size of the text a gzip file holds, as its last member records it: exact for the
/// usual file of one member under 4 GiB of text. Never taken below the stored size (the
/// record wraps at 4 GiB, and a file of several members records its last one only), so the
/// estimate errs on the small side, never by billions. Leaves the file at its start.
fn gzip_text_size(file: &mut File, stored: u64) -> std::io::Result<u64> {
    if stored < 18 {
        return Ok(stored);
    }
    let mut trailer = [0u8; 4];
    file.seek(SeekFrom::End(-4))?;
    read_full(file, &mut trailer)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(u64::from(u32::from_le_bytes(trailer)).max(stored))
}

/// Reads `path` once, whole: hash, UTF-8 validity, BOM and the first bytes. The same pass as
/// a [`ScanningReader`] read to its end, before parsing instead of during it.
pub fn scan_file(path: &Path) -> Result<FileScan> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let slot = ScanSlot::default();
    let reader = match Packing::of(path, &mut file)? {
        Packing::Zip(member) => ScanningReader::zip_member(path, &member, slot.clone())?,
        Packing::Html => ScanningReader::html_page(path, slot.clone())?,
        packing => ScanningReader::new(file, packing == Packing::Gzip, slot.clone()),
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
    slot.lock()
        .ok()
        .and_then(|mut scan| scan.take())
        .ok_or_else(|| Error::io(path, std::io::Error::other("the scan did not complete")))
}

/// Fills `buf` as far as the file allows; returns the bytes read (0 at the end).
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// What the scan learns from the text, chunk after chunk.
struct TextCheck {
    head: Vec<u8>,
    lines: u64,
    valid_utf8: bool,
    /// Bytes of a UTF-8 sequence cut by the end of the previous chunk.
    carry: Vec<u8>,
}

impl TextCheck {
    fn new() -> Self {
        TextCheck {
            head: Vec::with_capacity(HEAD_BYTES),
            lines: 0,
            valid_utf8: true,
            carry: Vec::new(),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        if !self.valid_utf8 {
            return;
        }
        let joined;
        let data: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.carry);
            &joined
        };
        match std::str::from_utf8(data) {
            Ok(_) => {}
            // An incomplete sequence at the end: keep it for the next chunk.
            Err(e) if e.error_len().is_none() => self.carry = data[e.valid_up_to()..].to_vec(),
            Err(_) => self.valid_utf8 = false,
        }
    }
}

impl Dialect {
    /// Works out the dialect from the scan, letting the profile override each part.
    pub fn detect(path: &Path, scan: &FileScan, profile: &Profile) -> Result<Dialect> {
        let settings = &profile.source;
        // Text that civica writes itself, from a workbook or a page: UTF-8 CSV, no sniffing.
        let written = |format, delimiter, decimal| Dialect {
            format,
            encoding: Encoding::Utf8,
            delimiter,
            sep_line: false,
            decimal,
            sheet: None,
            gzip: false,
            zip_member: None,
            html_table: false,
        };
        if crate::spreadsheet::is_spreadsheet(path, &scan.head) {
            // Cells are turned into CSV text with decimal points.
            return Ok(Dialect {
                sheet: settings.sheet.clone(),
                ..written(Format::Spreadsheet, b',', DecimalMark::Dot)
            });
        }
        if scan.html_table {
            // A page's table is written with `;` between fields (see `crate::html`); amounts
            // are read as Italian pages write them unless the profile says.
            let decimal = match settings.decimal.as_str() {
                "." => DecimalMark::Dot,
                _ => DecimalMark::Comma,
            };
            return Ok(Dialect {
                html_table: true,
                ..written(Format::Csv, b';', decimal)
            });
        }
        let encoding = match Encoding::from_profile(&settings.encoding) {
            Some(encoding) => encoding,
            // A UTF-16 byte order mark says it all (as it does for a UTF-8 one).
            None if scan.head.starts_with(&[0xFF, 0xFE]) => Encoding::Utf16Le,
            None if scan.head.starts_with(&[0xFE, 0xFF]) => Encoding::Utf16Be,
            None if scan.utf8_bom || scan.valid_utf8 => Encoding::Utf8,
            None => Encoding::Windows1252,
        };
        let head = decode(&scan.head, encoding);
        let head = head.trim_start_matches('\u{feff}');
        let first_line = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let extension = match &scan.zip_member {
            Some(member) => text_extension(Path::new(member)),
            None => text_extension(path),
        };
        let first = first_line.trim_start();
        let format = if first.starts_with('[') && (extension == "json" || looks_like_json(head)) {
            Format::JsonArray
        } else if ["jsonl", "ndjson"].contains(&extension.as_str()) || first.starts_with('{') {
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
            .unwrap_or_else(|| sniff_delimiter(header_line(head, &profile.column_names())));
        let decimal = match settings.decimal.as_str() {
            "," => DecimalMark::Comma,
            "." => DecimalMark::Dot,
            // Where `;` separates fields, the comma is the decimal mark (Excel in Italy).
            // (JSON numbers always use the point.)
            _ if delimiter == b';' && format == Format::Csv => DecimalMark::Comma,
            _ => DecimalMark::Dot,
        };
        Ok(Dialect {
            format,
            encoding,
            delimiter,
            sep_line: sep_directive.is_some(),
            decimal,
            sheet: None,
            gzip: scan.gzip,
            zip_member: scan.zip_member.clone(),
            html_table: scan.html_table,
        })
    }

    /// A reader of the file's text as UTF-8 (BOM removed). With a `scan` slot, the bytes are
    /// hashed and checked on the way and the complete scan lands in the slot at the end.
    pub fn open(&self, path: &Path, scan: Option<&ScanSlot>) -> Result<Box<dyn Read + Send>> {
        if self.format == Format::Spreadsheet {
            // A workbook is read by seeking in it: its scan is completed by a pass of its
            // own first (spreadsheets are small next to text exports).
            if let Some(slot) = scan {
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                std::io::copy(
                    &mut ScanningReader::new(file, false, slot.clone()),
                    &mut std::io::sink(),
                )
                .map_err(|e| Error::io(path, e))?;
            }
            return Ok(Box::new(crate::spreadsheet::open(
                path,
                self.sheet.as_deref(),
            )?));
        }
        let file: Box<dyn Read + Send> = match (&self.zip_member, scan) {
            _ if self.html_table => match scan {
                Some(slot) => Box::new(ScanningReader::html_page(path, slot.clone())?),
                None => Box::new(std::io::Cursor::new(crate::html::read_page(path)?.1)),
            },
            (Some(name), scan) => {
                let member = archive::data_member(path)?;
                if &member.name != name {
                    return Err(Error::DialectChanged {
                        path: path.to_path_buf(),
                    });
                }
                match scan {
                    Some(slot) => {
                        Box::new(ScanningReader::zip_member(path, &member, slot.clone())?)
                    }
                    None => Box::new(archive::open_member(path, &member)?),
                }
            }
            (None, scan) => {
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                match (scan, self.gzip) {
                    (Some(slot), gzip) => Box::new(ScanningReader::new(file, gzip, slot.clone())),
                    (None, true) => {
                        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)))
                    }
                    (None, false) => Box::new(file),
                }
            }
        };
        let encoding = self.encoding.codec();
        let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .bom_override(true)
            .build(BufReader::with_capacity(1 << 20, file));
        let text = LineEnds::new(BufReader::with_capacity(1 << 20, decoder));
        Ok(match self.format {
            Format::JsonArray => Box::new(JsonArrayLines::new(text)),
            Format::Csv | Format::JsonLines | Format::Spreadsheet => Box::new(text),
        })
    }
}

/// The extension that tells the text's format: `csv` for `export.csv` and `export.csv.gz`.
fn text_extension(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((_, extension)) => extension.to_string(),
        None => String::new(),
    }
}

/// Whether text that starts with `[` is JSON (an array of objects) rather than a CSV header
/// whose first name happens to be in brackets: the first thing inside the array is an
/// object.
fn looks_like_json(head: &str) -> bool {
    head.trim_start()
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with('{') || rest.trim_start().is_empty())
}

/// Turns one JSON array of objects into JSON Lines while keeping line numbers: the array's
/// brackets and the commas between objects become spaces, the line ends inside an object
/// (outside its strings) move after it, so each object is one line that starts on the line
/// where the object starts in the file. Objects that share a line in the file (a compact
/// array) are put on lines of their own, which counts each as one more line.
struct JsonArrayLines<R> {
    inner: R,
    /// Nesting depth: 0 outside the array, 1 between its elements, 2 or more inside one.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Line ends met inside the current object, written after it.
    held_lines: usize,
    /// An object ended on the current output line (which needs a line end before the next).
    line_open: bool,
    /// Converted bytes that did not fit in the caller's buffer.
    out: std::collections::VecDeque<u8>,
    buf: Vec<u8>,
}

impl<R: Read> JsonArrayLines<R> {
    fn new(inner: R) -> Self {
        JsonArrayLines {
            inner,
            depth: 0,
            in_string: false,
            escaped: false,
            held_lines: 0,
            line_open: false,
            out: std::collections::VecDeque::new(),
            buf: vec![0; 64 << 10],
        }
    }

    fn convert(&mut self, b: u8) {
        let out = &mut self.out;
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            out.push_back(b);
            return;
        }
        match (self.depth, b) {
            (_, b'\n') if self.depth >= 2 => {
                self.held_lines += 1;
                out.push_back(b' ');
            }
            (_, b'\n') => {
                self.line_open = false;
                out.push_back(b'\n');
            }
            (0, b'[') => {
                self.depth = 1;
                out.push_back(b' ');
            }
            (1, b',') | (1, b']') => {
                if b == b']' {
                    self.depth = 0;
                }
                out.push_back(b' ');
            }
            (1, b'{') | (1, b'[') => {
                if self.line_open {
                    out.push_back(b'\n');
                    self.line_open = false;
                }
                self.depth = 2;
                out.push_back(b);
            }
            (d, b'{') | (d, b'[') if d >= 2 => {
                self.depth += 1;
                out.push_back(b);
            }
            (d, b'}') | (d, b']') if d >= 2 => {
                self.depth -= 1;
                out.push_back(b);
                if self.depth == 1 {
                    if self.held_lines > 0 {
                        out.extend(std::iter::repeat_n(b'\n', self.held_lines));
                        self.held_lines = 0;
                    } else {
                        self.line_open = true;
                    }
                }
            }
            (_, b'"') => {
                self.in_string = true;
                out.push_back(b);
            }
            _ => out.push_back(b),
        }
    }
}

impl<R: Read> Read for JsonArrayLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out.is_empty() {
            let n = self.inner.read(&mut self.buf)?;
            if n == 0 {
                // An array cut short: its last object's line ends still count.
                self.out.extend(std::iter::repeat_n(b'\n', self.held_lines));
                self.held_lines = 0;
                if self.out.is_empty() {
                    return Ok(0);
                }
                break;
            }
            for i in 0..n {
                let b = self.buf[i];
                self.convert(b);
            }
        }
        let n = self.out.len().min(buf.len());
        for (slot, b) in buf.iter_mut().zip(self.out.drain(..n)) {
            *slot = b;
        }
        Ok(n)
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
    encoding.codec().decode(bytes).0.into_owned()
}

/// The delimiter that splits the header line into the most fields, outside quotes.
/// The line of `head` that holds the header: the first of the first lines whose names,
/// split at their own likeliest delimiter, are recognised column names (exports from report
/// tools put a title, a period or notes above the header); else the first non-blank line.
fn header_line<'a>(head: &'a str, extra: &[String]) -> &'a str {
    let lines = head.lines().filter(|l| !l.trim().is_empty());
    let first = lines.clone().next().unwrap_or("");
    lines
        .take(HEADER_SEARCH_LINES)
        .find(|line| {
            let delimiter = sniff_delimiter(line) as char;
            let names = line.split(delimiter).map(|n| n.trim().trim_matches('"'));
            crate::header::recognised_names(names, extra) >= crate::header::HEADER_MIN_NAMES
        })
        .unwrap_or(first)
}

/// How many non-blank lines at the top of a file may come before its header.
pub const HEADER_SEARCH_LINES: usize = 30;

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

    /// The hash of empty input from the test vectors published with the BLAKE3 specification:
    /// checks the scan's hashing against the standard rather than against itself.
    #[test]
    fn the_scan_hash_is_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.csv");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            scan_file(&path).unwrap().blake3,
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    /// A file read through a [`ScanningReader`] (in small reads, as a decoder does) ends with
    /// the same scan as one read whole beforehand, and its partial scan says what the head
    /// alone can say.
    #[test]
    fn scanning_while_reading_gives_the_whole_file_scan() {
        let mut bytes = b"request_id;service\n".to_vec();
        for i in 0..20_000 {
            bytes.extend_from_slice(format!("R{i};certificati_anagrafici\n").as_bytes());
        }
        // Beyond the first 64 KiB: a Windows-1252 byte (Forl\xec) and a split UTF-8 one.
        bytes.extend_from_slice(b"R-late;Forl\xec\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.csv");
        std::fs::write(&path, &bytes).unwrap();

        let partial = FileScan::of_head(&path).unwrap();
        assert!(!partial.is_complete());
        assert!(partial.valid_utf8, "the head alone is UTF-8");
        assert_eq!(partial.bytes, bytes.len() as u64);
        assert!(
            partial.lines >= 20_002,
            "an estimate that is not short: {}",
            partial.lines
        );

        let slot = ScanSlot::default();
        let mut reader = ScanningReader::new(File::open(&path).unwrap(), false, slot.clone());
        let mut buf = [0u8; 1000];
        while reader.read(&mut buf).unwrap() > 0 {}
        let complete = slot.lock().unwrap().take().unwrap();
        let whole = scan_file(&path).unwrap();
        assert!(complete.is_complete());
        assert!(!complete.valid_utf8);
        assert_eq!(complete, whole);
        assert_eq!(complete.lines, 20_002);
        // The dialect of the whole file differs from the one of its head.
        let profile = Profile::default();
        assert_eq!(
            Dialect::detect(&path, &partial, &profile).unwrap().encoding,
            Encoding::Utf8
        );
        assert_eq!(
            Dialect::detect(&path, &complete, &profile)
                .unwrap()
                .encoding,
            Encoding::Windows1252
        );
    }

    /// The text of `path` read through `d`, and the scan completed on the way.
    fn read_scanning(d: &Dialect, path: &Path) -> (String, FileScan) {
        let slot = ScanSlot::default();
        let mut read = String::new();
        d.open(path, Some(&slot))
            .unwrap()
            .read_to_string(&mut read)
            .unwrap();
        let scan = slot.lock().unwrap().take().unwrap();
        (read, scan)
    }

    fn gzipped(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A gzip file is hashed as stored, and described, sniffed and counted as its text.
    #[test]
    fn a_gzip_file_is_scanned_as_the_text_it_holds() {
        let mut text = b"request_id;service;importo\n".to_vec();
        for i in 0..5_000 {
            text.extend_from_slice(format!("R{i};visite_forlì;12,50\n").as_bytes());
        }
        let stored = gzipped(&text);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("richieste.CSV.gz");
        std::fs::write(&path, &stored).unwrap();

        let whole = scan_file(&path).unwrap();
        assert!(whole.gzip);
        assert_eq!(whole.blake3, blake3::hash(&stored).to_hex().to_string());
        assert_eq!(whole.bytes, stored.len() as u64);
        assert_eq!(whole.lines, 5_001);
        assert!(whole.valid_utf8);
        assert!(whole.head.starts_with(b"request_id;service"));

        let partial = FileScan::of_head(&path).unwrap();
        assert!(partial.gzip && !partial.is_complete());
        assert!(partial.lines >= 5_001, "not short: {}", partial.lines);
        assert_eq!(partial.head, whole.head);

        let d = Dialect::detect(&path, &partial, &Profile::default()).unwrap();
        assert!(d.gzip);
        assert_eq!((d.format, d.delimiter), (Format::Csv, b';'));
        assert_eq!(d.decimal, DecimalMark::Comma);

        // Read through the dialect, the text comes out, and the scan completes on the way.
        let (read, scan) = read_scanning(&d, &path);
        assert_eq!(read.as_bytes(), text.as_slice());
        assert_eq!(scan, whole);
        let mut again = String::new();
        d.open(&path, None)
            .unwrap()
            .read_to_string(&mut again)
            .unwrap();
        assert_eq!(again, read);
    }

    /// A zip archive is hashed as stored, and described, sniffed and counted as the export
    /// inside it, whose name tells the format.
    #[test]
    fn a_zip_archive_is_scanned_as_the_export_it_holds() {
        use std::io::Write;
        let mut text = String::from("{\"request_id\": \"R0\", \"service\": \"suap\"}\n");
        for i in 1..3_000 {
            text.push_str(&format!(
                "{{\"request_id\": \"R{i}\", \"service\": \"suap\"}}\n"
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("richieste.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file("richieste.jsonl", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
        zip.finish().unwrap();
        let stored = std::fs::read(&path).unwrap();

        let whole = scan_file(&path).unwrap();
        assert_eq!(whole.zip_member.as_deref(), Some("richieste.jsonl"));
        assert!(!whole.gzip);
        assert_eq!(whole.blake3, blake3::hash(&stored).to_hex().to_string());
        assert_eq!(whole.bytes, stored.len() as u64);
        assert_eq!(whole.lines, 3_000);
        assert!(whole.valid_utf8);
        let partial = FileScan::of_head(&path).unwrap();
        assert_eq!(partial.head, whole.head);
        assert!(partial.lines >= 3_000, "not short: {}", partial.lines);

        let d = Dialect::detect(&path, &partial, &Profile::default()).unwrap();
        assert_eq!(d.format, Format::JsonLines);
        assert_eq!(d.zip_member.as_deref(), Some("richieste.jsonl"));
        let (read, scan) = read_scanning(&d, &path);
        assert_eq!(read, text);
        assert_eq!(scan, whole);
        // A workbook is a zip file too, and stays a workbook.
        assert!(detect(&stored, "richieste.xlsx").zip_member.is_none());
    }

    /// A forged size record cannot make the row estimate (which sizes buffers) huge, and the
    /// damaged file is refused when read.
    #[test]
    fn a_forged_gzip_size_record_is_bounded_and_refused() {
        let text = b"request_id,service\nR1,suap\nR2,suap\n".repeat(3_000);
        let mut stored = gzipped(&text);
        let at = stored.len() - 4;
        stored[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forged.csv.gz");
        std::fs::write(&path, &stored).unwrap();
        let partial = FileScan::of_head(&path).unwrap();
        let bound = stored.len() as u64 * MAX_PACKING_RATIO;
        assert!(partial.lines <= bound, "{} > {bound}", partial.lines);
        let d = Dialect::detect(&path, &partial, &Profile::default()).unwrap();
        let mut read = String::new();
        assert!(
            d.open(&path, None)
                .unwrap()
                .read_to_string(&mut read)
                .is_err()
        );
    }

    #[test]
    fn the_format_is_told_by_the_extension_under_gz() {
        let lines = b"{\"request_id\": \"R1\"}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("richieste.jsonl.gz");
        std::fs::write(&path, gzipped(lines)).unwrap();
        let scan = scan_file(&path).unwrap();
        let d = Dialect::detect(&path, &scan, &Profile::default()).unwrap();
        assert_eq!((d.format, d.gzip), (Format::JsonLines, true));
        assert_eq!(text_extension(Path::new("a/b.Csv.GZ")), "csv");
        assert_eq!(text_extension(Path::new("export")), "");
        // A plain file is not taken for gzip whatever its name.
        assert!(!detect(b"request_id,service\nR1,x\n", "plain.csv.gz").gzip);
    }

    /// Excel's "Unicode text": UTF-16 little-endian with its byte order mark, tab-separated.
    #[test]
    fn utf16_with_a_byte_order_mark_is_recognised() {
        let text = "request_id\tservice\r\nR1\tvisite_forlì\r\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let d = detect(&le, "export.txt");
        assert_eq!((d.encoding, d.delimiter), (Encoding::Utf16Le, b'\t'));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(detect(&be, "export.txt").encoding, Encoding::Utf16Be);
    }
}
