//! Field-by-field validation of one input row of the canonical request log.
//!
//! A row becomes a typed [`ServiceRequest`] or a [`Rejection`] naming the first invalid field
//! and why. Nothing is repaired silently: a row with any invalid field is rejected whole.

use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest, Sha256};

use crate::pseudonym::Pseudonymiser;
use crate::schema::{
    AuthMethod, CITY_TIME_ZONE, Channel, INPUT_COLUMNS, REQUIRED_INPUT_COLUMNS, Status,
};

/// Longest accepted identifier or service code, in characters.
const MAX_CODE_CHARS: usize = 128;

/// One valid service request, as stored in the warehouse.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequest {
    pub request_id: String,
    pub service: String,
    pub channel: Channel,
    pub submitted_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub auth_method: Option<AuthMethod>,
    /// Keyed pseudonym of the citizen identifier; the raw identifier is never kept.
    pub citizen_key: Option<String>,
    /// Amount in euro cents, kept exact.
    pub amount_cents: Option<i64>,
    pub satisfaction: Option<i32>,
}

impl ServiceRequest {
    /// Calendar year of `submitted_at` in the city's time zone: the partition the row is
    /// stored in, and the year of every annual figure.
    pub fn year(&self) -> i32 {
        use chrono::Datelike;
        self.submitted_at.with_timezone(&CITY_TIME_ZONE).year()
    }

    /// A digest of every stored field: two rows with the same fingerprint are the same record.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let fields = [
            self.request_id.as_str(),
            self.service.as_str(),
            self.channel.as_str(),
            &self.submitted_at.timestamp_micros().to_string(),
            &opt(self.completed_at.map(|t| t.timestamp_micros())),
            self.status.as_str(),
            self.auth_method.map(|a| a.as_str()).unwrap_or(""),
            self.citizen_key.as_deref().unwrap_or(""),
            &opt(self.amount_cents),
            &opt(self.satisfaction),
        ];
        for field in fields {
            h.update(field.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Why a row was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The offending column (or `row` for problems of the whole row).
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Positions of the canonical columns in one file's header.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// For each of [`INPUT_COLUMNS`], its index in the file, if present.
    positions: [Option<usize>; INPUT_COLUMNS.len()],
    /// Number of columns in the header.
    pub width: usize,
    /// Header names that are not canonical columns (ignored).
    pub unknown: Vec<String>,
}

impl HeaderMap {
    /// Maps a header row; `Err` lists the required columns that are missing.
    pub fn from_header<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, Vec<String>> {
        let mut positions = [None; INPUT_COLUMNS.len()];
        let mut unknown = Vec::new();
        let mut width = 0;
        for (i, raw) in names.into_iter().enumerate() {
            width += 1;
            let name = raw.trim().trim_start_matches('\u{feff}').to_lowercase();
            match INPUT_COLUMNS.iter().position(|c| *c == name) {
                Some(k) if positions[k].is_none() => positions[k] = Some(i),
                _ if name.is_empty() => {}
                _ => unknown.push(raw.to_string()),
            }
        }
        let missing: Vec<String> = REQUIRED_INPUT_COLUMNS
            .iter()
            .filter(|c| positions[column_index(c)].is_none())
            .map(|c| c.to_string())
            .collect();
        if missing.is_empty() {
            Ok(HeaderMap {
                positions,
                width,
                unknown,
            })
        } else {
            Err(missing)
        }
    }

    /// Index in the row of the canonical column `name`, if the file has it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.positions[column_index(name)]
    }
}

fn column_index(name: &str) -> usize {
    INPUT_COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("canonical column name")
}

/// Validates one row (its fields in file order) against the header map.
pub fn validate_row(
    fields: &[&str],
    header: &HeaderMap,
    pseudonymiser: &Pseudonymiser,
) -> Result<ServiceRequest, Rejection> {
    if fields.len() != header.width {
        return Err(Rejection::new(
            "row",
            format!(
                "expected {} fields as in the header, found {}",
                header.width,
                fields.len()
            ),
        ));
    }
    let get = |name: &str| -> &str { header.position(name).map_or("", |i| fields[i].trim()) };

    let request_id = code("request_id", get("request_id"))?;
    let service = code("service", get("service"))?;
    let channel = required("channel", get("channel"))?
        .parse::<Channel>()
        .map_err(|e| Rejection::new("channel", e))?;
    let submitted_at = timestamp(
        "submitted_at",
        required("submitted_at", get("submitted_at"))?,
    )?;
    let completed_at = match get("completed_at") {
        "" => None,
        text => Some(timestamp("completed_at", text)?),
    };
    if let Some(done) = completed_at
        && done < submitted_at
    {
        return Err(Rejection::new(
            "completed_at",
            format!("{done} is before submitted_at {submitted_at}"),
        ));
    }
    let status = required("status", get("status"))?
        .parse::<Status>()
        .map_err(|e| Rejection::new("status", e))?;
    let auth_method = match get("auth_method") {
        "" => None,
        text => Some(
            text.parse::<AuthMethod>()
                .map_err(|e| Rejection::new("auth_method", e))?,
        ),
    };
    let citizen_key = match get("citizen_id") {
        "" => None,
        text => Some(pseudonymiser.citizen_key(text)),
    };
    let amount_cents = match get("amount_eur") {
        "" => None,
        text => Some(euro_cents(text).map_err(|e| Rejection::new("amount_eur", e))?),
    };
    let satisfaction = match get("satisfaction") {
        "" => None,
        text => Some(score(text).map_err(|e| Rejection::new("satisfaction", e))?),
    };
    Ok(ServiceRequest {
        request_id,
        service,
        channel,
        submitted_at,
        completed_at,
        status,
        auth_method,
        citizen_key,
        amount_cents,
        satisfaction,
    })
}

fn required<'a>(field: &str, text: &'a str) -> Result<&'a str, Rejection> {
    if text.is_empty() {
        Err(Rejection::new(field, "required value is empty"))
    } else {
        Ok(text)
    }
}

fn code(field: &str, text: &str) -> Result<String, Rejection> {
    let text = required(field, text)?;
    if text.chars().count() > MAX_CODE_CHARS {
        return Err(Rejection::new(
            field,
            format!("longer than {MAX_CODE_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Rejection::new(field, "contains control characters"));
    }
    Ok(text.to_string())
}

/// Parses an ISO 8601 timestamp that carries its UTC offset.
fn timestamp(field: &str, text: &str) -> Result<DateTime<Utc>, Rejection> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ];
    DateTime::parse_from_rfc3339(text)
        .or_else(|first| {
            FORMATS
                .iter()
                .find_map(|f| DateTime::<FixedOffset>::parse_from_str(text, f).ok())
                .ok_or(first)
        })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Rejection::new(
                field,
                format!("`{text}` is not an ISO 8601 timestamp with offset ({e})"),
            )
        })
}

/// Parses a non-negative decimal amount with at most two decimals (`.` as decimal mark).
fn euro_cents(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not an amount in euro such as 12.50");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 12
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    Ok(whole * 100 + frac)
}

/// Parses a satisfaction score: an integer from 1 to 10.
fn score(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(n) if (1..=10).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not an integer from 1 to 10")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> HeaderMap {
        HeaderMap::from_header(INPUT_COLUMNS).unwrap()
    }

    fn key() -> Pseudonymiser {
        Pseudonymiser::new(&[7u8; 32]).unwrap()
    }

    const GOOD: [&str; 10] = [
        "R1",
        "refezione_scolastica",
        "online",
        "2017-06-12T09:30:00+02:00",
        "2017-06-13T10:00:00+02:00",
        "completed",
        "spid",
        "RSSMRA80A01C573X",
        "1234.5",
        "9",
    ];

    fn check(field: usize, value: &str) -> Result<ServiceRequest, Rejection> {
        let mut row = GOOD;
        row[field] = value;
        validate_row(&row, &header(), &key())
    }

    #[test]
    fn a_good_row_is_typed_and_pseudonymised() {
        let r = validate_row(&GOOD, &header(), &key()).unwrap();
        assert_eq!(r.channel, Channel::Online);
        assert_eq!(r.submitted_at.to_rfc3339(), "2017-06-12T07:30:00+00:00");
        assert_eq!(r.amount_cents, Some(123_450));
        assert_eq!(r.satisfaction, Some(9));
        assert_eq!(r.year(), 2017);
        let citizen_key = r.citizen_key.unwrap();
        assert_ne!(citizen_key, "RSSMRA80A01C573X");
        assert_eq!(citizen_key.len(), 32);
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: [(usize, &str, &str); 12] = [
            (0, "", "request_id"),
            (1, "", "service"),
            (2, "web", "channel"),
            (3, "2017-02-30T09:00:00+01:00", "submitted_at"),
            (3, "12/06/2017", "submitted_at"),
            (3, "2017-06-12T09:30:00", "submitted_at"),
            (4, "2017-06-11T09:30:00+02:00", "completed_at"),
            (5, "done", "status"),
            (6, "password", "auth_method"),
            (8, "-3.00", "amount_eur"),
            (8, "12,50", "amount_eur"),
            (9, "11", "satisfaction"),
        ];
        for (index, value, field) in cases {
            let err = check(index, value).unwrap_err();
            assert_eq!(err.field, field, "{value}: {err:?}");
        }
        assert_eq!(check(9, "0").unwrap_err().field, "satisfaction");
        assert_eq!(check(9, "7.5").unwrap_err().field, "satisfaction");
    }

    #[test]
    fn optional_fields_may_be_empty() {
        let mut row = GOOD;
        for i in [4, 6, 7, 8, 9] {
            row[i] = "";
        }
        let r = validate_row(&row, &header(), &key()).unwrap();
        assert_eq!(r.completed_at, None);
        assert_eq!(r.citizen_key, None);
        assert_eq!(r.amount_cents, None);
    }

    #[test]
    fn wrong_field_count_rejects_the_row() {
        let err = validate_row(&GOOD[..9], &header(), &key()).unwrap_err();
        assert_eq!(err.field, "row");
    }

    #[test]
    fn header_needs_required_columns_and_reports_unknown_ones() {
        let missing = HeaderMap::from_header(["request_id", "service"]).unwrap_err();
        assert_eq!(missing, ["channel", "submitted_at", "status"]);
        let mut names: Vec<&str> = INPUT_COLUMNS.to_vec();
        names.push("note");
        let map = HeaderMap::from_header(names).unwrap();
        assert_eq!(map.unknown, ["note"]);
        assert_eq!(map.width, 11);
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let a = validate_row(&GOOD, &header(), &key()).unwrap();
        let b = check(5, "rejected").unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
