//! How a data file is written: row groups, and the encoding and compression of each column.
//!
//! Every column gets what suits its values instead of one rule for all:
//!
//! - codes from a short list (service, channel, status, authentication): dictionary
//!   encoding, the dictionary of each row group built by comparing each value with the few
//!   already met (most often the previous row's), without hashing, then zstd;
//! - amounts and scores: dictionary encoding when it pays, then zstd (the general rule of
//!   Parquet writers);
//! - identifiers, pseudonyms and timestamps, nearly all different: plain values and zstd,
//!   without first estimating how many distinct values they hold (the estimate only ever
//!   answers "too many" for them);
//! - `record_fingerprint`, a hash: plain and uncompressed, as no compressor can shorten it.
//!
//! Readers see standard Parquet (plain and dictionary pages, zstd), with min/max statistics
//! on every column of every row group.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::DataPageHeader;
use polars_parquet::write::{
    CompressedDataPage, CompressedPage, CompressionOptions, DynIter, DynStreamingIterator,
    Encoding, FileWriter, Page, StatisticsOptions, Version, WriteOptions, ZstdLevel,
    array_to_columns, fallible_streaming_iterator, to_parquet_schema,
};

use crate::error::{Error, Result};

/// Rows per row group, at least: a frame is cut into as many equal row groups as this
/// number of rows fits whole (so each holds 64 to 128 Ki rows), or written as one when it is
/// smaller. Large enough for good compression, small enough that a one-service query skips
/// most of a file.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The zstd level of data files. Level 1 takes about half the compression time of the
/// default level 3, for files about 4% larger (10 million requests: 413 MB against 399 MB).
const ZSTD_LEVEL: i32 = 1;

/// Columns whose values are nearly all different: written plain.
const DISTINCT_COLUMNS: [&str; 6] = [
    "request_id",
    "response_id",
    "citizen_key",
    "submitted_at",
    "completed_at",
    "responded_at",
];

/// Columns of codes from a short list: dictionary pages built here (see [`dictionary`]).
const CODE_COLUMNS: [&str; 4] = ["service", "channel", "status", "auth_method"];

/// Columns of hashes: written plain and uncompressed.
const HASH_COLUMNS: [&str; 1] = ["record_fingerprint"];

/// How one column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColumnCoding {
    encoding: Encoding,
    compression: CompressionOptions,
    /// The column holds codes from a short list.
    codes: bool,
}

impl ColumnCoding {
    fn of(name: &str) -> ColumnCoding {
        let zstd = CompressionOptions::Zstd(ZstdLevel::try_new(ZSTD_LEVEL).ok());
        if HASH_COLUMNS.contains(&name) {
            ColumnCoding {
                encoding: Encoding::Plain,
                compression: CompressionOptions::Uncompressed,
                codes: false,
            }
        } else if DISTINCT_COLUMNS.contains(&name) {
            ColumnCoding {
                encoding: Encoding::Plain,
                compression: zstd,
                codes: false,
            }
        } else {
            ColumnCoding {
                encoding: Encoding::RleDictionary,
                compression: zstd,
                codes: CODE_COLUMNS.contains(&name),
            }
        }
    }
}

/// Writes `df` to `path` (creating its directory): equal row groups of [`ROW_GROUP_ROWS`]
/// to twice that many rows, each column coded as the module documentation says.
pub fn write(df: &mut DataFrame, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let parquet_error = |source: PolarsError| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    write_to(df, BufWriter::with_capacity(1 << 20, file)).map_err(parquet_error)?;
    Ok(())
}

fn write_to(df: &mut DataFrame, out: BufWriter<File>) -> PolarsResult<()> {
    df.rechunk_mut();
    let schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&schema)?;
    let codings: Vec<ColumnCoding> = schema
        .iter_names()
        .map(|name| ColumnCoding::of(name))
        .collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::full(),
        version: Version::V1,
        compression: CompressionOptions::Uncompressed,
        data_page_size: None,
    };
    let fields = parquet_schema.fields().to_vec();
    let mut writer = FileWriter::new_with_parquet_schema(out, schema, parquet_schema, options);
    let height = df.height();
    // One zstd context for every page of the file: the generic page compressor makes one per
    // page, and zero-fills an output buffer of the page's worst-case size before each.
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    // Equal row groups, as many as ROW_GROUP_ROWS fits whole (one for a smaller frame); an
    // empty frame is a file with its schema and no row group.
    let groups = if height == 0 {
        0
    } else {
        (height / ROW_GROUP_ROWS).max(1)
    };
    for group in 0..groups {
        let start = height * group / groups;
        let len = height * (group + 1) / groups - start;
        let part = df.slice(start as i64, len);
        let Some(batch) = part.iter_chunks(CompatLevel::newest(), false).next() else {
            polars_bail!(ComputeError: "rows {start}..{} of the frame gave no batch to write", start + len);
        };
        let mut columns: Vec<Vec<CompressedPage>> = Vec::with_capacity(fields.len());
        for ((array, field), coding) in batch.into_arrays().into_iter().zip(&fields).zip(&codings) {
            let column_options = WriteOptions {
                compression: coding.compression,
                ..options
            };
            let array = match array.as_any().downcast_ref::<Utf8ViewArray>() {
                Some(codes) if coding.codes => dictionary(codes).map_or(array, |d| d.boxed()),
                _ => array,
            };
            for pages in array_to_columns(array, field.clone(), column_options, &[coding.encoding])?
            {
                columns.push(
                    pages
                        .map(|page| compress(page?, coding.compression, &mut zstd))
                        .collect::<PolarsResult<_>>()?,
                );
            }
        }
        let row_group = columns.iter().map(|pages| {
            Ok(DynStreamingIterator::new(
                fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
            ))
        });
        writer.write(len as u64, DynIter::new(row_group))?;
    }
    writer.end(None)?;
    // Flushed here, so that a failed write is an error rather than lost in a drop.
    std::io::Write::flush(&mut writer.into_inner())?;
    Ok(())
}

/// Compresses one page as `compression` says, zstd through `zstd` (V1 data pages and
/// dictionary pages are compressed whole; anything else goes to the generic compressor).
fn compress(
    page: Page,
    compression: CompressionOptions,
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> PolarsResult<CompressedPage> {
    let whole = match &page {
        Page::Data(data) => matches!(data.header(), DataPageHeader::V1(_)),
        Page::Dict(_) => true,
    };
    if !whole || !matches!(compression, CompressionOptions::Zstd(_)) {
        return Ok(polars_parquet::write::compress(
            page,
            Vec::new(),
            compression,
        )?);
    }
    let squeeze = |zstd: &mut zstd::bulk::Compressor<'_>, bytes: &[u8]| {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
        zstd.compress_to_buffer(bytes, &mut out).map(|_| out)
    };
    let format: Compression = compression.into();
    Ok(match page {
        Page::Data(data) => {
            let uncompressed = data.buffer().len();
            let buffer = squeeze(zstd, data.buffer())?;
            let header = data.header().clone();
            let num_rows = data
                .num_rows
                .ok_or_else(|| polars_err!(ComputeError: "a data page without its row count"))?;
            CompressedPage::Data(CompressedDataPage::new(
                header,
                CowBuffer::Owned(buffer),
                format,
                uncompressed,
                data.descriptor,
                num_rows,
            ))
        }
        Page::Dict(dict) => {
            let uncompressed = dict.buffer.len();
            let buffer = squeeze(zstd, &dict.buffer)?;
            CompressedPage::Dict(polars_parquet::parquet::page::CompressedDictPage::new(
                CowBuffer::Owned(buffer),
                format,
                uncompressed,
                dict.num_values,
                dict.is_sorted,
            ))
        }
    })
}

/// Most distinct values a code column's row group is expected to hold; beyond, the column
/// goes to the general dictionary encoder.
const MAX_CODES: usize = 64;

/// `codes` as a dictionary array: each value's key found among the values already met, the
/// previous row's first. A string view of up to 12 bytes holds the string itself, so two such
/// views are equal exactly when their strings are; a longer string is compared whole when its
/// length and first four bytes match. `None` beyond [`MAX_CODES`] distinct values.
fn dictionary(codes: &Utf8ViewArray) -> Option<DictionaryArray<u32>> {
    // The low 64 bits of a view: the string's length and first four bytes.
    const HEAD: u128 = u64::MAX as u128;
    let mut met: Vec<(u128, &str)> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(codes.len());
    let mut last: Option<(u128, u32)> = None;
    for (i, view) in codes.views().iter().enumerate() {
        if !codes.is_valid(i) {
            keys.push(0);
            continue;
        }
        let bits = view.as_u128();
        if let Some((last_bits, last_key)) = last
            && last_bits == bits
        {
            keys.push(last_key);
            continue;
        }
        let value = codes.value(i);
        let inline = view.length <= 12;
        let found = met.iter().position(|(known, text)| {
            if inline {
                *known == bits
            } else {
                (*known & HEAD) == (bits & HEAD) && *text == value
            }
        });
        let key = match found {
            Some(key) => key,
            None if met.len() < MAX_CODES => {
                met.push((bits, value));
                met.len() - 1
            }
            None => return None,
        };
        let key = u32::try_from(key).ok()?;
        keys.push(key);
        last = Some((bits, key));
    }
    let values =
        Utf8ViewArray::from_slice_values(met.iter().map(|(_, text)| *text).collect::<Vec<_>>());
    let keys = PrimitiveArray::from_vec(keys).with_validity(codes.validity().cloned());
    DictionaryArray::try_from_keys(keys, values.boxed(), false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value each key of `array` stands for, row by row.
    fn decoded(array: &DictionaryArray<u32>) -> Vec<Option<String>> {
        let values = array
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .unwrap();
        (0..array.len())
            .map(|i| {
                array
                    .keys()
                    .get(i)
                    .map(|k| values.value(k as usize).to_string())
            })
            .collect()
    }

    proptest::proptest! {
        /// Every row of a code column reads back as itself through its dictionary, whatever
        /// the mix of short (inline) and long strings, repeats and nulls.
        #[test]
        fn codes_read_back_through_their_dictionary(
            rows in proptest::collection::vec(
                proptest::option::of("(abc|certificati_anagrafici|certificati_anagrafiche|x{0,14}|online)"),
                0..300,
            )
        ) {
            let codes = Utf8ViewArray::from_slice(&rows);
            let array = dictionary(&codes).unwrap();
            proptest::prop_assert_eq!(decoded(&array), rows.clone());
            let distinct: std::collections::BTreeSet<_> = rows.iter().flatten().collect();
            proptest::prop_assert_eq!(array.values().len(), distinct.len());
        }
    }

    #[test]
    fn a_column_of_many_values_is_left_to_the_general_encoder() {
        let rows: Vec<String> = (0..=MAX_CODES).map(|i| format!("servizio_{i}")).collect();
        assert!(dictionary(&Utf8ViewArray::from_slice_values(&rows)).is_none());
        assert!(dictionary(&Utf8ViewArray::from_slice_values(&rows[..MAX_CODES])).is_some());
    }

    /// A frame written and read back (by polars' reader) is the same frame, in equal row
    /// groups, with dictionary pages for codes and none for ids.
    #[test]
    fn a_written_file_reads_back_as_its_frame() {
        let n = ROW_GROUP_ROWS * 2 + 123;
        let services = ["certificati_anagrafici", "mensa", "permessi_ztl"];
        let mut df = df!(
            "request_id" => (0..n).map(|i| format!("R-{i:08}")).collect::<Vec<_>>(),
            "service" => (0..n).map(|i| services[i * 3 / n]).collect::<Vec<_>>(),
            "channel" => (0..n).map(|i| (i % 7 != 0).then_some(["online", "sportello"][i % 2])).collect::<Vec<_>>(),
            "record_fingerprint" => (0..n).map(|i| (i as i64).wrapping_mul(0x1E37_79B9_7F4A_7C15)).collect::<Vec<_>>(),
            "amount_eur" => (0..n).map(|i| (i % 5 == 0).then_some(i as f64 / 4.0)).collect::<Vec<_>>(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("year=2017").join("part.parquet");
        write(&mut df, &path).unwrap();

        let back = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert_eq!(back, df);
        let mut file = File::open(&path).unwrap();
        let metadata = polars_parquet::read::read_metadata(&mut file).unwrap();
        assert_eq!(metadata.row_groups.len(), 2);
        assert_eq!(
            metadata
                .row_groups
                .iter()
                .map(|g| g.num_rows())
                .sum::<usize>(),
            n
        );
        let group = &metadata.row_groups[0];
        let column = |name: &str| {
            group
                .parquet_columns()
                .iter()
                .find(|c| c.descriptor().path_in_schema[0].as_str() == name)
                .unwrap()
        };
        let dictionary = |name: &str| column(name).dictionary_page_offset().is_some();
        assert!(dictionary("service"));
        assert!(dictionary("channel"));
        assert!(!dictionary("request_id"));
        assert!(!dictionary("record_fingerprint"));
        assert_eq!(column("request_id").compression(), Compression::Zstd);
        assert_eq!(
            column("record_fingerprint").compression(),
            Compression::Uncompressed
        );
    }
}
