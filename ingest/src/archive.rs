//! Zip archives holding one export, as open-data portals and mail gateways deliver them: the
//! data file inside is read where it lies, without unpacking the archive on disk.
//!
//! The zip crate finds the member and where its bytes start; they are then read from a file
//! handle of their own (stored, or deflated through flate2) and checked against the CRC-32
//! the archive records, so that the reader owns everything it needs and can cross threads.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::DeflateDecoder;
use zip::CompressionMethod;

use crate::error::{Error, Result};

/// Extensions of the members taken for data, by preference: text exports first, then `.txt`
/// (Excel's "Unicode text"), which archives also use for their notes.
const DATA_EXTENSIONS: [&str; 6] = ["csv", "tsv", "json", "jsonl", "ndjson", "txt"];

/// Whether a file that starts with `head` is a zip archive.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
}

/// The data file inside an archive, and where its bytes lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path inside the archive.
    pub name: String,
    /// Size of its text.
    pub size: u64,
    data_start: u64,
    compressed_size: u64,
    deflated: bool,
    crc32: u32,
}

/// Finds the one data file of the archive at `path`: the only member with a data extension
/// (`.txt` ones count only when nothing else does). None, several, an encrypted member or an
/// unusual compression method are errors that say what to do.
pub fn data_member(path: &Path) -> Result<Member> {
    let fail = |message: String| Error::Archive {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| fail(e.to_string()))?;
    let mut candidates: Vec<(usize, String)> = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| fail(e.to_string()))?;
        let name = entry.name().map_err(|e| fail(e.to_string()))?.to_string();
        let base = name.rsplit('/').next().unwrap_or("");
        let hidden = base.starts_with('.') || name.starts_with("__MACOSX/");
        let extension = base
            .rsplit_once('.')
            .map(|(_, e)| e.to_lowercase())
            .unwrap_or_default();
        if entry.is_file() && !hidden && DATA_EXTENSIONS.contains(&extension.as_str()) {
            candidates.push((index, name));
        }
    }
    if candidates.len() > 1 {
        candidates.retain(|(_, name)| !name.to_lowercase().ends_with(".txt"));
    }
    let (index, name) = match candidates.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(fail(format!(
                "holds no data file ({}); an archive is read when it holds one export",
                DATA_EXTENSIONS.map(|e| format!(".{e}")).join(", ")
            )));
        }
        several => {
            let names: Vec<&str> = several.iter().map(|(_, n)| n.as_str()).collect();
            return Err(fail(format!(
                "holds {} data files ({}): unpack it and ingest them together",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let entry = archive
        .by_index_raw(index)
        .map_err(|e| fail(e.to_string()))?;
    if entry.encrypted() {
        return Err(fail(format!(
            "`{name}` is encrypted: unpack it with its password first"
        )));
    }
    let deflated = match entry.compression() {
        CompressionMethod::Stored => false,
        CompressionMethod::Deflated => true,
        other => {
            return Err(fail(format!(
                "`{name}` is compressed with {other:?}: unpack it, or pack it again with the \
                 usual (deflate) method"
            )));
        }
    };
    let data_start = entry
        .data_start()
        .ok_or_else(|| fail(format!("the data of `{name}` could not be located")))?;
    Ok(Member {
        size: entry.size(),
        data_start,
        compressed_size: entry.compressed_size(),
        deflated,
        crc32: entry.crc32(),
        name,
    })
}

/// The text of `member`, read from the archive at `path`.
pub fn open_member(path: &Path, member: &Member) -> Result<MemberText> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(member.data_start))
        .map_err(|e| Error::io(path, e))?;
    let stored = BufReader::with_capacity(1 << 20, file).take(member.compressed_size);
    let bytes: Box<dyn Read + Send> = if member.deflated {
        Box::new(DeflateDecoder::new(stored))
    } else {
        Box::new(stored)
    };
    Ok(MemberText {
        bytes,
        crc: flate2::Crc::new(),
        expected_crc: member.crc32,
        expected_size: member.size,
        name: member.name.clone(),
    })
}

/// A member's text, checked against the size and CRC-32 the archive records when it ends.
pub struct MemberText {
    bytes: Box<dyn Read + Send>,
    crc: flate2::Crc,
    expected_crc: u32,
    expected_size: u64,
    name: String,
}

impl Read for MemberText {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.bytes.read(buf)?;
        self.crc.update(&buf[..n]);
        if n == 0
            && !buf.is_empty()
            && (self.crc.sum() != self.expected_crc
                || u64::from(self.crc.amount()) != self.expected_size & u64::from(u32::MAX))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "`{}` in the archive is damaged (its size or checksum differs from the \
                     archive's record)",
                    self.name
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const TEXT: &str = "id_pratica;servizio;canale\nP1;visite_forlì;web\nP2;suap;sportello\n";

    /// An archive at `dir/name` with the given members (stored when `stored`).
    fn archive(
        dir: &Path,
        name: &str,
        members: &[(&str, &str)],
        stored: bool,
    ) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let method = if stored {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        for (member, text) in members {
            zip.start_file(
                *member,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn text_of(path: &Path) -> Result<String> {
        let member = data_member(path)?;
        let mut text = String::new();
        open_member(path, &member)?
            .read_to_string(&mut text)
            .map_err(|e| Error::io(path, e))?;
        Ok(text)
    }

    #[test]
    fn the_one_export_is_found_and_read_where_it_lies() {
        let dir = tempfile::tempdir().unwrap();
        for stored in [false, true] {
            let path = archive(
                dir.path(),
                "export.zip",
                &[
                    ("LEGGIMI.txt", "Estrazione del 3 marzo"),
                    ("__MACOSX/dati/._richieste.csv", "junk"),
                    ("dati/richieste.csv", TEXT),
                ],
                stored,
            );
            let member = data_member(&path).unwrap();
            assert_eq!(member.name, "dati/richieste.csv");
            assert_eq!(member.size, TEXT.len() as u64);
            assert_eq!(text_of(&path).unwrap(), TEXT, "stored: {stored}");
        }
        // A lone text file is an export too (Excel's "Unicode text").
        let path = archive(dir.path(), "txt.zip", &[("export.txt", TEXT)], false);
        assert_eq!(text_of(&path).unwrap(), TEXT);
    }

    #[test]
    fn archives_without_exactly_one_export_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let two = archive(
            dir.path(),
            "two.zip",
            &[("2016.csv", TEXT), ("2017.csv", TEXT)],
            false,
        );
        let message = data_member(&two).unwrap_err().to_string();
        assert!(
            message.contains("2016.csv, 2017.csv") && message.contains("unpack"),
            "{message}"
        );
        let none = archive(dir.path(), "none.zip", &[("foto.jpg", "x")], false);
        let message = data_member(&none).unwrap_err().to_string();
        assert!(message.contains("no data file"), "{message}");
        let broken = dir.path().join("broken.zip");
        std::fs::write(&broken, b"PK\x03\x04 not really").unwrap();
        assert!(data_member(&broken).is_err());
    }

    #[test]
    fn a_damaged_member_is_an_error_not_a_short_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), "export.zip", &[("richieste.csv", TEXT)], true);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == b"suap").unwrap();
        bytes[at] = b'S';
        std::fs::write(&path, &bytes).unwrap();
        let message = text_of(&path).unwrap_err().to_string();
        assert!(message.contains("damaged"), "{message}");
    }
}
