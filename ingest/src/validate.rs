//! Field-by-field validation of one input row into a typed record.
//!
//! A row becomes a [`ServiceRequest`] or [`SurveyResponse`], or a [`Rejection`] naming the
//! first invalid field and why. Nothing is repaired silently: a row with any invalid field is
//! rejected whole. The [`FieldParser`] knows the file's dialect (decimal mark, date format),
//! the city's time zone, the profile's value mappings and the pseudonymiser.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc,
};
use chrono_tz::Tz;

use crate::calendar::local_year;
use crate::dialect::DecimalMark;
use crate::header::normalise;
use crate::pseudonym::{CitizenKey, PseudonymCache, Pseudonymiser};
use crate::schema::{AuthMethod, CITY_TIME_ZONE, Channel, Status};
use compact_str::CompactString;

/// Longest accepted identifier or service code, in characters.
const MAX_CODE_CHARS: usize = 128;
/// One valid service request, as stored in the warehouse.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequest {
    pub request_id: CompactString,
    pub service: CompactString,
    pub channel: Channel,
    pub submitted_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub auth_method: Option<AuthMethod>,
    /// Keyed pseudonym of the citizen identifier; the raw identifier is never kept.
    pub citizen_key: Option<CitizenKey>,
    /// Amount in euro cents, kept exact.
    pub amount_cents: Option<i64>,
    pub satisfaction: Option<i32>,
}

/// One valid satisfaction-survey response.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyResponse {
    pub response_id: CompactString,
    pub service: CompactString,
    pub channel: Channel,
    pub responded_at: DateTime<Utc>,
    pub score: i32,
    pub request_id: Option<CompactString>,
}

/// A stable 128-bit digest (XXH3) of a record's fields, each followed by an ASCII unit
/// separator; absent values are empty, numbers are written as little-endian bytes. The
/// concatenation is gathered on the stack and digested in one call (a record is short);
/// a longer one is handed to the streaming hasher, which gives the same digest.
struct Digest {
    buffer: [u8; Digest::BUFFER],
    len: usize,
    streaming: Option<Box<xxhash_rust::xxh3::Xxh3Default>>,
}

impl Digest {
    const BUFFER: usize = 256;

    fn new() -> Self {
        Digest {
            buffer: [0; Digest::BUFFER],
            len: 0,
            streaming: None,
        }
    }
    /// Appends `bytes`; inlined so that the separators and numbers, of constant length,
    /// are single stores rather than calls to `memcpy`.
    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buffer.get_mut(self.len..end) {
            Some(free) if self.streaming.is_none() => {
                free.copy_from_slice(bytes);
                self.len = end;
            }
            _ => self.overflow(bytes),
        }
    }
    /// A record longer than the buffer, or what follows it: the streaming hasher.
    #[cold]
    fn overflow(&mut self, bytes: &[u8]) {
        let buffered = &self.buffer[..self.len];
        self.streaming
            .get_or_insert_with(|| {
                let mut hasher = Box::new(xxhash_rust::xxh3::Xxh3Default::new());
                hasher.update(buffered);
                hasher
            })
            .update(bytes);
    }
    #[inline(always)]
    fn text(&mut self, field: &str) -> &mut Self {
        self.bytes(field.as_bytes());
        self.bytes(&[0x1f]);
        self
    }
    #[inline(always)]
    fn number(&mut self, field: Option<i64>) -> &mut Self {
        if let Some(n) = field {
            self.bytes(&n.to_le_bytes());
        }
        self.bytes(&[0x1f]);
        self
    }
    fn finish(&self) -> u128 {
        match &self.streaming {
            Some(hasher) => hasher.digest128(),
            None => xxhash_rust::xxh3::xxh3_128(&self.buffer[..self.len]),
        }
    }
}

impl ServiceRequest {
    /// Partition year (local calendar year of `submitted_at`).
    pub fn year(&self) -> i32 {
        local_year(self.submitted_at)
    }

    /// A digest of every stored field: two rows with the same fingerprint are the same record.
    pub fn fingerprint(&self) -> u128 {
        let mut digest = Digest::new();
        digest
            .text(&self.request_id)
            .text(&self.service)
            .text(self.channel.as_str())
            .number(Some(self.submitted_at.timestamp_micros()))
            .number(self.completed_at.map(|t| t.timestamp_micros()))
            .text(self.status.as_str())
            .text(self.auth_method.map(|a| a.as_str()).unwrap_or(""))
            .text(self.citizen_key.as_ref().map_or("", CitizenKey::as_str))
            .number(self.amount_cents)
            .number(self.satisfaction.map(i64::from))
            .finish()
    }
}

impl SurveyResponse {
    /// Partition year (local calendar year of `responded_at`).
    pub fn year(&self) -> i32 {
        local_year(self.responded_at)
    }

    /// A digest of every stored field.
    pub fn fingerprint(&self) -> u128 {
        let mut digest = Digest::new();
        digest
            .text(&self.response_id)
            .text(&self.service)
            .text(self.channel.as_str())
            .number(Some(self.responded_at.timestamp_micros()))
            .number(Some(i64::from(self.score)))
            .text(self.request_id.as_deref().unwrap_or(""))
            .finish()
    }
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

/// Parses field text according to a file's dialect and a source profile.
pub struct FieldParser {
    decimal: DecimalMark,
    /// A chrono format that overrides timestamp detection.
    date_format: Option<String>,
    time_zone: Tz,
    /// Canonical column → (normalised value in the file → canonical value).
    /// Per column, value in the file → canonical value (a fast hash: looked up on every row).
    values: FxHashMap<String, FxHashMap<String, String>>,
    /// The spellings of enumerated values met most often, each canonical word and each
    /// mapped one as written, with their values: one lookup reads most fields.
    words: Words,
    /// Pseudonyms of the identifiers seen so far.
    pseudonyms: PseudonymCache,
    /// The latest instant a log can hold: a day after the parser was made (an event cannot
    /// have happened later; the day covers clocks that are a little ahead).
    latest: DateTime<Utc>,
}

/// See [`FieldParser::words`].
#[derive(Default)]
struct Words {
    channel: FxHashMap<Box<str>, Channel>,
    status: FxHashMap<Box<str>, Status>,
    auth_method: FxHashMap<Box<str>, AuthMethod>,
}

/// The earliest instant a log can hold: earlier years are misreadings (a two-digit year taken
/// as year 17), and beyond the range the engine computes local months in.
const EARLIEST_YEAR: i32 = 1900;

impl std::fmt::Debug for FieldParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldParser")
            .field("decimal", &self.decimal)
            .field("date_format", &self.date_format)
            .finish_non_exhaustive()
    }
}

/// Words used in Italian (and English) back-office exports for the canonical values.
const SYNONYMS: &[(&str, &[(&str, &str)])] = &[
    (
        "channel",
        &[
            ("web", "online"),
            ("portale", "online"),
            ("internet", "online"),
            ("sito", "online"),
            ("sito_web", "online"),
            ("on_line", "online"),
            ("telematico", "online"),
            ("app_io", "app"),
            ("io", "app"),
            ("app_mobile", "app"),
            ("servizi_online", "online"),
            ("sportello_telematico", "online"),
            ("sportello_online", "online"),
            ("sportello_digitale", "online"),
            ("area_riservata", "online"),
            ("appio", "app"),
            ("applicazione", "app"),
            ("front_office", "sportello"),
            ("allo_sportello", "sportello"),
            ("sportello_fisico", "sportello"),
            ("in_presenza", "sportello"),
            ("di_persona", "sportello"),
            ("ufficio", "sportello"),
            ("call_center", "telefono"),
            ("contact_center", "telefono"),
            ("telefonico", "telefono"),
            ("tel", "telefono"),
            ("e_mail", "email"),
            ("mail", "email"),
            ("posta_elettronica", "email"),
            ("posta_elettronica_certificata", "pec"),
            ("posta_certificata", "pec"),
            ("p_e_c", "pec"),
            ("posta_cartacea", "posta"),
            ("raccomandata", "posta"),
            ("posta_ordinaria", "posta"),
            // Paper forms are, in municipal exports, those handed in at the front desk.
            ("cartaceo", "sportello"),
            ("cartacea", "sportello"),
            ("modulo_cartaceo", "sportello"),
            ("telematica", "online"),
            ("digitale", "online"),
            ("mobile", "app"),
            // English, as exports of other European back offices write them.
            ("website", "online"),
            ("web_portal", "online"),
            ("portal", "online"),
            ("online_portal", "online"),
            ("mobile_app", "app"),
            ("counter", "sportello"),
            ("front_desk", "sportello"),
            ("desk", "sportello"),
            ("in_person", "sportello"),
            ("walk_in", "sportello"),
            ("paper", "sportello"),
            ("phone", "telefono"),
            ("telephone", "telefono"),
            ("post", "posta"),
            ("postal_mail", "posta"),
            ("letter", "posta"),
        ],
    ),
    (
        "status",
        &[
            ("completata", "completed"),
            ("conclusa", "completed"),
            ("evasa", "completed"),
            ("accolta", "completed"),
            ("chiusa", "completed"),
            ("conclusa_positivamente", "completed"),
            ("conclusa_con_esito_positivo", "completed"),
            ("approvata", "completed"),
            ("autorizzata", "completed"),
            ("rilasciata", "completed"),
            ("respinta", "rejected"),
            ("rifiutata", "rejected"),
            ("rigettata", "rejected"),
            ("negata", "rejected"),
            ("non_accolta", "rejected"),
            ("conclusa_negativamente", "rejected"),
            ("conclusa_con_esito_negativo", "rejected"),
            ("abbandonata", "abandoned"),
            ("non_inviata", "abandoned"),
            ("bozza", "abandoned"),
            ("annullata", "abandoned"),
            ("ritirata", "abandoned"),
            ("rinuncia", "abandoned"),
            ("in_corso", "pending"),
            ("in_lavorazione", "pending"),
            ("in_attesa", "pending"),
            ("aperta", "pending"),
            ("inoltrata", "pending"),
            ("inviata", "pending"),
            ("presentata", "pending"),
            ("protocollata", "pending"),
            ("ricevuta", "pending"),
            ("in_istruttoria", "pending"),
            ("sospesa", "pending"),
            // The outcome (`esito`) of a procedure, and the masculine forms used for
            // `procedimento`.
            ("positivo", "completed"),
            ("esito_positivo", "completed"),
            ("favorevole", "completed"),
            ("concluso", "completed"),
            ("completato", "completed"),
            ("evaso", "completed"),
            ("accolto", "completed"),
            ("chiuso", "completed"),
            ("approvato", "completed"),
            ("rilasciato", "completed"),
            ("autorizzato", "completed"),
            ("negativo", "rejected"),
            ("esito_negativo", "rejected"),
            ("sfavorevole", "rejected"),
            ("diniego", "rejected"),
            ("respinto", "rejected"),
            ("rifiutato", "rejected"),
            ("rigettato", "rejected"),
            ("negato", "rejected"),
            ("non_accolto", "rejected"),
            ("annullato", "abandoned"),
            ("ritirato", "abandoned"),
            ("abbandonato", "abandoned"),
            ("in_trattazione", "pending"),
            ("nuova", "pending"),
            ("nuovo", "pending"),
            ("da_lavorare", "pending"),
            ("sospeso", "pending"),
            ("aperto", "pending"),
            ("inevasa", "pending"),
            ("da_evadere", "pending"),
            ("in_carico", "pending"),
            ("presa_in_carico", "pending"),
            ("assegnata", "pending"),
            ("in_attesa_di_integrazione", "pending"),
            ("decaduta", "abandoned"),
            ("scaduta", "abandoned"),
            // Reports and complaints.
            ("risolta", "completed"),
            ("risolto", "completed"),
            ("in_gestione", "pending"),
            ("in_verifica", "pending"),
            ("in_valutazione", "pending"),
            ("improcedibile", "rejected"),
            ("irricevibile", "rejected"),
            ("inammissibile", "rejected"),
            // English.
            ("complete", "completed"),
            ("done", "completed"),
            ("closed", "completed"),
            ("approved", "completed"),
            ("granted", "completed"),
            ("accepted", "completed"),
            ("issued", "completed"),
            ("resolved", "completed"),
            ("finished", "completed"),
            ("fulfilled", "completed"),
            ("refused", "rejected"),
            ("denied", "rejected"),
            ("declined", "rejected"),
            ("not_approved", "rejected"),
            ("cancelled", "abandoned"),
            ("canceled", "abandoned"),
            ("withdrawn", "abandoned"),
            ("expired", "abandoned"),
            ("draft", "abandoned"),
            ("open", "pending"),
            ("in_progress", "pending"),
            ("processing", "pending"),
            ("submitted", "pending"),
            ("received", "pending"),
            ("new", "pending"),
            ("under_review", "pending"),
            ("in_review", "pending"),
            ("on_hold", "pending"),
            ("waiting", "pending"),
            ("suspended", "pending"),
        ],
    ),
    (
        "auth_method",
        &[
            ("nessuna", "none"),
            ("nessuno", "none"),
            ("username_password", "none"),
            ("credenziali", "none"),
            ("spid_livello_1", "spid"),
            ("spid_livello_2", "spid"),
            ("spid_livello_3", "spid"),
            ("spid_l2", "spid"),
            ("spid2", "spid"),
            ("spid_2", "spid"),
            ("spid_3", "spid"),
            ("cie_id", "cie"),
            ("tessera_sanitaria", "cns"),
            ("cie_3_0", "cie"),
            ("cieid", "cie"),
            ("carta_di_identita_elettronica", "cie"),
            ("carta_d_identita_elettronica", "cie"),
            ("carta_nazionale_dei_servizi", "cns"),
            ("ts_cns", "cns"),
            ("federa_pro", "federa"),
            ("password", "none"),
            ("spid_level_1", "spid"),
            ("spid_level_2", "spid"),
            ("spid_level_3", "spid"),
            ("electronic_identity_card", "cie"),
        ],
    ),
];

impl FieldParser {
    /// A parser for one file. `values` are the profile's mappings (canonical column → value in
    /// the file → canonical value); they take precedence over the built-in Italian synonyms.
    pub fn new(
        decimal: DecimalMark,
        date_format: Option<String>,
        values: &BTreeMap<String, BTreeMap<String, String>>,
        pseudonymiser: Pseudonymiser,
    ) -> Self {
        let mut maps: FxHashMap<String, FxHashMap<String, String>> = FxHashMap::default();
        for (column, pairs) in SYNONYMS {
            let map = maps.entry(column.to_string()).or_default();
            for (from, to) in *pairs {
                map.insert(from.to_string(), to.to_string());
            }
        }
        for (column, pairs) in values {
            let map = maps.entry(column.clone()).or_default();
            for (from, to) in pairs {
                map.insert(normalise(from), to.clone());
            }
        }
        let mut parser = FieldParser {
            decimal,
            date_format: date_format.filter(|f| f != "auto"),
            time_zone: CITY_TIME_ZONE,
            values: maps,
            words: Words::default(),
            pseudonyms: PseudonymCache::new(pseudonymiser),
            latest: Utc::now() + chrono::Duration::days(1),
        };
        parser.words = Words {
            channel: parser.known_words("channel", Channel::ALL.iter().map(|c| c.as_str())),
            status: parser.known_words("status", Status::ALL.iter().map(|s| s.as_str())),
            auth_method: parser
                .known_words("auth_method", AuthMethod::ALL.iter().map(|a| a.as_str())),
        };
        parser
    }

    /// The canonical words of `column` and the spellings mapped in it, each with the value
    /// [`FieldParser::vocabulary`] reads from it.
    fn known_words<'a, T: std::str::FromStr>(
        &'a self,
        column: &str,
        canonical: impl Iterator<Item = &'a str>,
    ) -> FxHashMap<Box<str>, T> {
        let mapped = self.values.get(column).into_iter().flat_map(|m| m.keys());
        canonical
            .chain(mapped.map(String::as_str))
            .filter_map(|word| {
                let value = self.canonical_value(column, word).parse::<T>().ok()?;
                Some((Box::from(word), value))
            })
            .collect()
    }

    /// Maps a value of an enumerated column to its canonical spelling.
    fn canonical_value<'a>(&'a self, column: &str, text: &'a str) -> std::borrow::Cow<'a, str> {
        // Text already in normal form (the usual case) needs no new string.
        let bytes = text.as_bytes();
        let normal = !text.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
            && bytes.first() != Some(&b'_')
            && bytes.last() != Some(&b'_')
            && !bytes.windows(2).any(|w| w[0] == b'_' && w[1] == b'_');
        if normal {
            let mapped = self.values.get(column).and_then(|m| m.get(text));
            return std::borrow::Cow::Borrowed(mapped.map_or(text, String::as_str));
        }
        let key = normalise(text);
        if let Some(to) = self.values.get(column).and_then(|m| m.get(&key)) {
            return std::borrow::Cow::Borrowed(to.as_str());
        }
        std::borrow::Cow::Owned(key)
    }

    fn vocabulary<T: std::str::FromStr<Err = String> + Copy>(
        &self,
        column: &str,
        known: &FxHashMap<Box<str>, T>,
        text: &str,
    ) -> Result<T, Rejection> {
        if let Some(value) = known.get(text) {
            return Ok(*value);
        }
        self.canonical_value(column, text)
            .parse::<T>()
            .map_err(|_| {
                let allowed = match column {
                    "channel" => Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "status" => Status::ALL.iter().map(|c| c.as_str()).collect(),
                    _ => AuthMethod::ALL.iter().map(|c| c.as_str()).collect(),
                };
                Rejection::new(
                    column,
                    format!(
                        "`{text}` is not one of: {} (map it in a profile's [values.{column}])",
                        allowed.join(", ")
                    ),
                )
            })
    }

    /// Validates a request row given by canonical column (see `schema::INPUT_COLUMNS`).
    pub fn request(&self, v: &[Option<&str>]) -> Result<ServiceRequest, Rejection> {
        let get = |i: usize| v.get(i).copied().flatten().map(present).unwrap_or("");
        let request_id = code("request_id", get(0))?;
        let service = code("service", get(1))?;
        let channel =
            self.vocabulary("channel", &self.words.channel, required("channel", get(2))?)?;
        let (submitted_at, _) =
            self.timestamp("submitted_at", required("submitted_at", get(3))?)?;
        let completed_at = match get(4) {
            "" => None,
            text => {
                let (done, date_only) = self.timestamp("completed_at", text)?;
                let before = if date_only {
                    done.with_timezone(&self.time_zone).date_naive()
                        < submitted_at.with_timezone(&self.time_zone).date_naive()
                } else {
                    done < submitted_at
                };
                if before {
                    return Err(Rejection::new(
                        "completed_at",
                        format!("`{text}` is before submitted_at"),
                    ));
                }
                Some(done)
            }
        };
        let status = self.vocabulary("status", &self.words.status, required("status", get(5))?)?;
        let auth_method = match get(6) {
            "" => None,
            text => Some(self.vocabulary("auth_method", &self.words.auth_method, text)?),
        };
        let citizen_key = match get(7) {
            "" => None,
            text => Some(self.pseudonyms.key_of(text)),
        };
        let amount_cents = match get(8) {
            "" => None,
            text => {
                Some(euro_cents(text, self.decimal).map_err(|e| Rejection::new("amount_eur", e))?)
            }
        };
        let satisfaction = match get(9) {
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

    /// Validates a survey row given by canonical column (see `schema::SURVEY_INPUT_COLUMNS`).
    pub fn survey(&self, v: &[Option<&str>]) -> Result<SurveyResponse, Rejection> {
        let get = |i: usize| v.get(i).copied().flatten().map(present).unwrap_or("");
        let response_id = code("response_id", get(0))?;
        let service = code("service", get(1))?;
        let channel =
            self.vocabulary("channel", &self.words.channel, required("channel", get(2))?)?;
        let (responded_at, _) =
            self.timestamp("responded_at", required("responded_at", get(3))?)?;
        let score = score(required("score", get(4))?).map_err(|e| Rejection::new("score", e))?;
        let request_id = match get(5) {
            "" => None,
            text => Some(code("request_id", text)?),
        };
        Ok(SurveyResponse {
            response_id,
            service,
            channel,
            responded_at,
            score,
            request_id,
        })
    }

    /// Parses a timestamp: ISO 8601 with offset, or a local date-time (ISO or Italian
    /// `dd/mm/yyyy [HH:MM[:SS]]`) in the city's time zone. Returns the instant and whether
    /// the text had a date only.
    pub fn timestamp(&self, field: &str, text: &str) -> Result<(DateTime<Utc>, bool), Rejection> {
        let (instant, date_only) = self.parse_timestamp(field, text)?;
        // The year in UTC, read from the stored date (`DateTime::year` would add the offset).
        if instant.naive_utc().year() < EARLIEST_YEAR {
            return Err(Rejection::new(
                field,
                format!(
                    "`{text}` reads as the year {}: write years with four digits (or give the \
                     date format in a profile)",
                    instant.year()
                ),
            ));
        }
        if instant > self.latest {
            return Err(Rejection::new(
                field,
                format!(
                    "`{text}` is in the future (later than {})",
                    self.latest.format("%Y-%m-%d")
                ),
            ));
        }
        Ok((instant, date_only))
    }

    fn parse_timestamp(&self, field: &str, text: &str) -> Result<(DateTime<Utc>, bool), Rejection> {
        const WITH_OFFSET: [&str; 4] = [
            "%Y-%m-%dT%H:%M%:z",
            "%Y-%m-%d %H:%M:%S%.f%:z",
            "%Y-%m-%d %H:%M%:z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
        ];
        // Two-digit years (`05/09/17`) come before four-digit ones, which would read them as
        // the year 17; `%y` takes two digits only, so `05/09/2017` does not match them.
        const LOCAL: [&str; 18] = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
            "%d/%m/%y %H:%M:%S",
            "%d/%m/%y %H:%M",
            "%d/%m/%Y %H:%M:%S",
            "%d/%m/%Y %H:%M",
            "%d/%m/%Y %H.%M.%S",
            "%d/%m/%Y %H.%M",
            "%d-%m-%Y %H:%M:%S",
            "%d-%m-%Y %H:%M",
            "%d.%m.%Y %H:%M:%S",
            "%d.%m.%Y %H:%M",
            "%d/%m/%Y, %H:%M",
            "%Y/%m/%d %H:%M:%S",
            "%Y/%m/%d %H:%M",
            "%d.%m.%Y %H.%M.%S",
        ];
        const DATES: [&str; 6] = [
            "%Y-%m-%d", "%d/%m/%y", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d",
        ];
        let bad = |detail: &str| {
            Rejection::new(
                field,
                format!("`{text}` is not a valid date-time ({detail})"),
            )
        };
        if let Some(format) = &self.date_format {
            if format.contains("%z") || format.contains("%:z") {
                return DateTime::<FixedOffset>::parse_from_str(text, format)
                    .map(|t| (t.with_timezone(&Utc), false))
                    .map_err(|e| bad(&format!("expected {format}: {e}")));
            }
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return self.local(field, text, naive).map(|t| (t, false));
            }
            return NaiveDate::parse_from_str(text, format)
                .map_err(|e| bad(&format!("expected {format}: {e}")))
                .and_then(|d| self.local(field, text, d.and_time(chrono::NaiveTime::MIN)))
                .map(|t| (t, true));
        }
        if let Some(t) = plain_rfc3339(text) {
            return Ok((t, false));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok((t.with_timezone(&Utc), false));
        }
        if let Some(t) = WITH_OFFSET
            .iter()
            .find_map(|f| DateTime::<FixedOffset>::parse_from_str(text, f).ok())
        {
            return Ok((t.with_timezone(&Utc), false));
        }
        let local = |text: &str| {
            LOCAL
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|naive| (naive, false))
                .or_else(|| {
                    DATES
                        .iter()
                        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
                        .map(|date| (date.and_time(chrono::NaiveTime::MIN), true))
                })
        };
        if let Some((naive, date_only)) =
            local(text).or_else(|| rewritten_date(text).and_then(|again| local(&again)))
        {
            return self.local(field, text, naive).map(|t| (t, date_only));
        }
        if let Some(instant) = epoch_instant(text) {
            return Ok((instant, false));
        }
        Err(bad(
            "use ISO 8601 such as 2017-06-12T09:30:00+02:00, or dd/mm/yyyy hh:mm in local time",
        ))
    }

    /// A local date-time in the city's zone as an instant. Times skipped by the change to
    /// summer time do not exist and are refused; in the repeated autumn hour the first
    /// (summer-time) instant is taken.
    fn local(
        &self,
        field: &str,
        text: &str,
        naive: NaiveDateTime,
    ) -> Result<DateTime<Utc>, Rejection> {
        match self.time_zone.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
            LocalResult::None => Err(Rejection::new(
                field,
                format!(
                    "`{text}` does not exist in {}: the clocks skipped that hour for summer time",
                    self.time_zone.name()
                ),
            )),
        }
    }
}

/// Dates in the forms of database exports, rewritten in a form of the lists above:
/// Oracle's `04-MAR-17` or `04-MAG-2017 10:22` (English or Italian month abbreviations, any
/// case) as `04/03/17` or `04/05/2017 10:22`, and ISO 8601's basic `20170304` or
/// `20170304102200` (also with `T` or a space before the time) as `2017-03-04[ 10:22:00]`.
fn rewritten_date(text: &str) -> Option<String> {
    const MONTHS: [[&str; 2]; 12] = [
        ["jan", "gen"],
        ["feb", "feb"],
        ["mar", "mar"],
        ["apr", "apr"],
        ["may", "mag"],
        ["jun", "giu"],
        ["jul", "lug"],
        ["aug", "ago"],
        ["sep", "set"],
        ["oct", "ott"],
        ["nov", "nov"],
        ["dec", "dic"],
    ];
    let (date, time) = match text.split_once(' ') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if let [day, month, year] = date.split('-').collect::<Vec<_>>()[..] {
        let month = month.to_lowercase();
        let number = MONTHS
            .iter()
            .position(|names| names.contains(&month.as_str()))?
            + 1;
        if !(digits(day) && digits(year) && [2, 4].contains(&year.len())) {
            return None;
        }
        let date = format!("{day}/{number:02}/{year}");
        return Some(match time {
            Some(time) => format!("{date} {time}"),
            None => date,
        });
    }
    let basic = |t: &str| {
        (digits(t) && t.len() == 6).then(|| format!("{}:{}:{}", &t[..2], &t[2..4], &t[4..]))
    };
    let iso = |d: &str| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..8]);
    let (date, time) = match (date.split_once('T'), time) {
        (Some((date, time)), None) => (date, Some(time)),
        _ => (date, time),
    };
    match (date.len(), time) {
        (8, None) if digits(date) => Some(iso(date)),
        (14, None) if digits(date) => Some(format!("{} {}", iso(date), basic(&date[8..])?)),
        (8, Some(time)) if digits(date) => Some(format!("{} {}", iso(date), basic(time)?)),
        _ => None,
    }
}

/// A field's text, trimmed; empty when it is a marker of a missing value as exports write
/// them (`-`, `N/D`, `n.d.`, `n/a`, `NULL`, `NaN`, Excel's `#N/D`, MySQL's zero date).
fn present(text: &str) -> &str {
    const MARKERS: [&str; 16] = [
        "-",
        "--",
        "---",
        "n/d",
        "n.d.",
        "n.d",
        "nd",
        "n/a",
        "n.a.",
        "na",
        "null",
        "nan",
        "#n/d",
        "#n/a",
        "0000-00-00",
        "0000-00-00 00:00:00",
    ];
    // A printable ASCII byte at each end (the usual case) leaves nothing to trim.
    let printable = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    let bytes = text.as_bytes();
    let text = if printable(bytes.first()) && printable(bytes.last()) {
        text
    } else {
        text.trim()
    };
    let maybe = text.len() <= 19
        && matches!(
            text.as_bytes().first(),
            Some(b'-' | b'n' | b'N' | b'#' | b'0')
        );
    if maybe && MARKERS.iter().any(|m| m.eq_ignore_ascii_case(text)) {
        ""
    } else {
        text
    }
}

/// The usual RFC 3339 timestamp, `2017-06-12T09:30:00+02:00` or `2017-06-12T09:30:00Z`,
/// read field by field; `None` for any other shape (fractions of a second, a space for the
/// `T`, a leap second…), which the general parser then reads.
fn plain_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let offset_seconds = match &b[19..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let minutes = number(23..25).filter(|m| *m < 60)?;
            let seconds = (number(20..22)? * 60 + minutes) * 60;
            let seconds = i32::try_from(seconds).ok()?;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    if offset_seconds.abs() >= 86_400 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    let (hours, minutes, seconds) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    // The UTC date and time of day, moved by the offset directly (a day at most either way):
    // cheaper than counting seconds since the epoch and turning them back into a date.
    let utc_seconds = i32::try_from(hours * 3_600 + minutes * 60 + seconds).ok()? - offset_seconds;
    let (date, utc_seconds) = if utc_seconds < 0 {
        (date.pred_opt()?, utc_seconds + 86_400)
    } else if utc_seconds >= 86_400 {
        (date.succ_opt()?, utc_seconds - 86_400)
    } else {
        (date, utc_seconds)
    };
    let time =
        chrono::NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(utc_seconds).ok()?, 0)?;
    Some(date.and_time(time).and_utc())
}

/// A Unix time as web back offices export it: seconds (9 or 10 digits) or milliseconds
/// (12 or 13 digits) since 1970 UTC. (8 and 14 digits are ISO 8601's basic dates.)
fn epoch_instant(text: &str) -> Option<DateTime<Utc>> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = text.parse().ok()?;
    match text.len() {
        9 | 10 => DateTime::from_timestamp(n, 0),
        12 | 13 => DateTime::from_timestamp_millis(n),
        _ => None,
    }
}

fn required<'a>(field: &str, text: &'a str) -> Result<&'a str, Rejection> {
    if text.is_empty() {
        Err(Rejection::new(field, "required value is empty"))
    } else {
        Ok(text)
    }
}

fn code(field: &str, text: &str) -> Result<CompactString, Rejection> {
    let text = required(field, text)?;
    // Printable ASCII (the usual code) has no control characters and a character per byte.
    let printable = text.bytes().all(|b| (b' '..=b'~').contains(&b));
    if printable && text.len() <= MAX_CODE_CHARS {
        return Ok(CompactString::from(text));
    }
    if text.len() > MAX_CODE_CHARS && text.chars().count() > MAX_CODE_CHARS {
        return Err(Rejection::new(
            field,
            format!("longer than {MAX_CODE_CHARS} characters"),
        ));
    }
    let control = if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    };
    if control {
        return Err(Rejection::new(field, "contains control characters"));
    }
    Ok(CompactString::from(text))
}

/// Parses a non-negative amount in euro with at most two decimals. Accepts a leading `€` or
/// trailing `EUR`, thousands separators, and either decimal mark: with `1.234,50` and
/// `1,234.50` the last mark is the decimal one; a lone mark followed by exactly three digits
/// in groups (`1.234`) is a thousands separator when it is not the file's decimal mark.
pub fn euro_cents(text: &str, decimal: DecimalMark) -> Result<i64, String> {
    match plain_cents(text.trim()) {
        Some(cents) => Ok(cents),
        None => written_cents(text, decimal),
    }
}

/// [`euro_cents`] for amounts written any other way.
fn written_cents(text: &str, decimal: DecimalMark) -> Result<i64, String> {
    let bad = || format!("`{text}` is not an amount in euro such as 12.50 or 12,50");
    let cleaned: String = text
        .trim()
        .trim_start_matches('€')
        .trim_start_matches("EUR")
        .trim_start_matches("Euro")
        .trim_end_matches("EUR")
        .trim_end_matches("Euro")
        .trim_end_matches("euro")
        .trim_end_matches('€')
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .collect();
    if cleaned.starts_with('-') {
        return Err(format!(
            "`{text}` is negative: amounts are what citizens paid (record refunds elsewhere)"
        ));
    }
    if cleaned.is_empty() {
        return Err(bad());
    }
    let last_comma = cleaned.rfind(',');
    let last_dot = cleaned.rfind('.');
    let decimal_at = match (last_comma, last_dot) {
        (Some(c), Some(d)) => Some(c.max(d)),
        (Some(c), None) => {
            let thousands = decimal == DecimalMark::Dot && is_grouped(&cleaned, ',');
            (!thousands).then_some(c)
        }
        (None, Some(d)) => {
            let thousands = decimal == DecimalMark::Comma && is_grouped(&cleaned, '.');
            (!thousands).then_some(d)
        }
        (None, None) => None,
    };
    let (whole, frac) = match decimal_at {
        Some(i) => (&cleaned[..i], &cleaned[i + 1..]),
        None => (cleaned.as_str(), ""),
    };
    let separators: Vec<char> = whole.chars().filter(|c| *c == '.' || *c == ',').collect();
    if let Some(sep) = separators.first()
        && (separators.iter().any(|c| c != sep) || !is_grouped(whole, *sep))
    {
        return Err(bad());
    }
    let whole: String = whole.chars().filter(|c| *c != '.' && *c != ',').collect();
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

/// The usual amount, `12`, `12.5` or `12,50` (at most 12 digits, then one mark and one or two
/// digits), read without a new string. Either mark is the decimal one here: a thousands
/// separator is always followed by three digits. `None` for anything else.
fn plain_cents(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let whole_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if whole_len == 0 || whole_len > 12 {
        return None;
    }
    let digits = |part: &[u8]| part.iter().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
    let whole = digits(&bytes[..whole_len]);
    let frac = match &bytes[whole_len..] {
        [] => 0,
        [b'.' | b',', d] if d.is_ascii_digit() => i64::from(d - b'0') * 10,
        [b'.' | b',', d, e] if d.is_ascii_digit() && e.is_ascii_digit() => digits(&[*d, *e]),
        _ => return None,
    };
    Some(whole * 100 + frac)
}

/// `1.234.567` with `.` as separator: groups of three digits after the first.
fn is_grouped(text: &str, separator: char) -> bool {
    let mut parts = text.split(separator);
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    !first.is_empty()
        && first.len() <= 3
        && !rest.is_empty()
        && rest
            .iter()
            .all(|p| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a score: an integer from 1 to 10 (`8`, `8.0` and `8,0` are the same).
fn score(text: &str) -> Result<i32, String> {
    let integral = text
        .strip_suffix(".0")
        .or_else(|| text.strip_suffix(",0"))
        .unwrap_or(text);
    match integral.parse::<i32>() {
        Ok(n) if (1..=10).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not an integer from 1 to 10")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(decimal: DecimalMark) -> FieldParser {
        FieldParser::new(
            decimal,
            None,
            &BTreeMap::new(),
            Pseudonymiser::new(&[7u8; 32]).unwrap(),
        )
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
        let mut row: Vec<Option<&str>> = GOOD.iter().map(|s| Some(*s)).collect();
        row[field] = Some(value);
        parser(DecimalMark::Dot).request(&row)
    }

    #[test]
    fn a_good_row_is_typed_and_pseudonymised() {
        let r = check(0, "R1").unwrap();
        assert_eq!(r.channel, Channel::Online);
        assert_eq!(r.submitted_at.to_rfc3339(), "2017-06-12T07:30:00+00:00");
        assert_eq!(r.amount_cents, Some(123_450));
        assert_eq!(r.satisfaction, Some(9));
        assert_eq!(r.year(), 2017);
        let citizen_key = r.citizen_key.unwrap();
        let citizen_key = citizen_key.as_str();
        assert_ne!(citizen_key, "RSSMRA80A01C573X");
        assert_eq!(citizen_key.len(), 32);
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: [(usize, &str, &str); 12] = [
            (0, "", "request_id"),
            (1, "", "service"),
            (2, "fax", "channel"),
            (3, "2017-02-30T09:00:00+01:00", "submitted_at"),
            (3, "30/02/2017", "submitted_at"),
            (3, "26/03/2017 02:30", "submitted_at"),
            (4, "2017-06-11T09:30:00+02:00", "completed_at"),
            (5, "forse", "status"),
            (6, "impronta digitale", "auth_method"),
            (8, "-3.00", "amount_eur"),
            (8, "12,5,0", "amount_eur"),
            (9, "11", "satisfaction"),
        ];
        for (index, value, field) in cases {
            let err = check(index, value).unwrap_err();
            assert_eq!(err.field, field, "{value}: {err:?}");
        }
        assert_eq!(check(9, "0").unwrap_err().field, "satisfaction");
        assert_eq!(check(9, "7.5").unwrap_err().field, "satisfaction");
        let dst = check(3, "26/03/2017 02:30").unwrap_err();
        assert!(dst.reason.contains("summer time"), "{dst:?}");
        let refund = check(8, "-3.00").unwrap_err();
        assert!(refund.reason.contains("negative"), "{refund:?}");
    }

    #[test]
    fn local_times_follow_daylight_saving() {
        let p = parser(DecimalMark::Comma);
        let winter = p.timestamp("t", "15/01/2017 10:00").unwrap().0;
        let summer = p.timestamp("t", "15/07/2017 10:00").unwrap().0;
        assert_eq!(winter.to_rfc3339(), "2017-01-15T09:00:00+00:00");
        assert_eq!(summer.to_rfc3339(), "2017-07-15T08:00:00+00:00");
        // 29 October 2017, 02:30 happened twice: the first (summer-time) one is taken.
        let repeated = p.timestamp("t", "29/10/2017 02:30").unwrap().0;
        assert_eq!(repeated.to_rfc3339(), "2017-10-29T00:30:00+00:00");
        let (midnight, date_only) = p.timestamp("t", "01/01/2017").unwrap();
        assert!(date_only);
        assert_eq!(local_year(midnight), 2017);
    }

    #[test]
    fn dates_as_offices_write_them_and_impossible_years() {
        let p = parser(DecimalMark::Comma);
        let utc = |text: &str| p.timestamp("t", text).unwrap().0.to_rfc3339();
        // 5 September 2017, 10:22 in Rome is 08:22 UTC (summer time).
        for text in [
            "05/09/17 10:22",
            "05/09/2017 10.22.00",
            "05.09.2017 10.22.00",
            "5/9/2017 10:22",
            "2017/09/05 10:22",
        ] {
            assert_eq!(utc(text), "2017-09-05T08:22:00+00:00", "{text}");
        }
        // Database exports: Oracle's month abbreviations, in English or Italian, and ISO
        // 8601's basic form.
        for text in [
            "05-SEP-17 10:22",
            "05-set-2017 10:22:00",
            "20170905102200",
            "20170905T102200",
            "20170905 102200",
        ] {
            assert_eq!(utc(text), "2017-09-05T08:22:00+00:00", "{text}");
        }
        assert_eq!(utc("05-OTT-17"), "2017-10-04T22:00:00+00:00");
        // Unix time, in seconds or (as JavaScript writes it) milliseconds.
        assert_eq!(utc("1504599720"), "2017-09-05T08:22:00+00:00");
        assert_eq!(utc("1504599720000"), "2017-09-05T08:22:00+00:00");
        assert!(p.timestamp("t", "15045997200").is_err());
        assert_eq!(utc("20171005"), "2017-10-04T22:00:00+00:00");
        assert!(p.timestamp("t", "20171005").unwrap().1, "a date only");
        for text in ["05-XYZ-17", "5-SEP", "2017100", "20171005 1022", "20171305"] {
            assert!(p.timestamp("t", text).is_err(), "{text}");
        }
        assert_eq!(utc("05/09/17"), "2017-09-04T22:00:00+00:00");
        assert_eq!(utc("2017/09/05"), "2017-09-04T22:00:00+00:00");
        // A year that no log can hold is refused, never stored as the year 17 or 2999.
        let ancient = p.timestamp("t", "05/09/0017 10:22").unwrap_err();
        assert!(ancient.reason.contains("four digits"), "{ancient:?}");
        let future = p.timestamp("t", "2999-01-01 10:00").unwrap_err();
        assert!(future.reason.contains("future"), "{future:?}");
        assert!(p.timestamp("t", "1899-12-31").is_err());
    }

    #[test]
    fn italian_words_for_channels_states_and_identities() {
        let p = parser(DecimalMark::Comma);
        let with = |channel: &str, status: &str, auth: &str| {
            let mut row: Vec<Option<&str>> = GOOD.iter().map(|s| Some(*s)).collect();
            row[2] = Some(channel);
            row[5] = Some(status);
            row[6] = Some(auth);
            let r = p.request(&row).unwrap();
            (r.channel, r.status, r.auth_method)
        };
        assert_eq!(
            with("Sportello fisico", "Annullata", "Nessuna"),
            (
                Channel::Sportello,
                Status::Abandoned,
                Some(AuthMethod::None)
            )
        );
        assert_eq!(
            with(
                "Sportello telematico",
                "Conclusa positivamente",
                "SPID livello 2"
            ),
            (Channel::Online, Status::Completed, Some(AuthMethod::Spid))
        );
        assert_eq!(
            with("App IO", "Inoltrata", "eIDAS"),
            (Channel::App, Status::Pending, Some(AuthMethod::Eidas))
        );
        assert_eq!(
            with("Posta certificata", "Non accolta", "CIE 3.0"),
            (Channel::Pec, Status::Rejected, Some(AuthMethod::Cie))
        );
        // An outcome column (`esito`) and paper forms.
        assert_eq!(
            with("Cartaceo", "Positivo", "SPID 2"),
            (
                Channel::Sportello,
                Status::Completed,
                Some(AuthMethod::Spid)
            )
        );
        assert_eq!(
            with("Telematica", "Esito negativo", "Tessera sanitaria"),
            (Channel::Online, Status::Rejected, Some(AuthMethod::Cns))
        );
        assert_eq!(
            with("Sportello", "Improcedibile", "Nessuna").1,
            Status::Rejected
        );
        // English exports.
        assert_eq!(
            with("Website", "In progress", "SPID level 2"),
            (Channel::Online, Status::Pending, Some(AuthMethod::Spid))
        );
        assert_eq!(
            with("Front desk", "Cancelled", "Password"),
            (
                Channel::Sportello,
                Status::Abandoned,
                Some(AuthMethod::None)
            )
        );
        assert_eq!(with("Phone", "Refused", "").1, Status::Rejected);
        assert_eq!(with("Post", "Approved", "").1, Status::Completed);
    }

    #[test]
    fn synonyms_and_profile_values_are_mapped() {
        let p = parser(DecimalMark::Comma);
        let row = [
            Some("7"),
            Some("suap"),
            Some("Portale"),
            Some("12/06/2017 09:30"),
            Some("20/06/2017"),
            Some("Conclusa"),
            Some("SPID"),
            None,
            Some("€ 1.234,50"),
            Some("8,0"),
        ];
        let r = p.request(&row).unwrap();
        assert_eq!(r.channel, Channel::Online);
        assert_eq!(r.status, Status::Completed);
        assert_eq!(r.auth_method, Some(AuthMethod::Spid));
        assert_eq!(r.amount_cents, Some(123_450));
        assert_eq!(r.satisfaction, Some(8));

        // A profile's mapping of channel `from` to `to`.
        let mapping = |from: &str, to: &str| {
            let values: BTreeMap<String, BTreeMap<String, String>> = [(
                "channel".to_string(),
                [(from.to_string(), to.to_string())].into(),
            )]
            .into();
            FieldParser::new(
                DecimalMark::Dot,
                None,
                &values,
                Pseudonymiser::new(&[7u8; 32]).unwrap(),
            )
        };
        let p = mapping("Sportello polifunzionale", "sportello");
        let mut row = row;
        row[2] = Some("sportello polifunzionale");
        assert_eq!(p.request(&row).unwrap().channel, Channel::Sportello);

        // The words read in one lookup read as the general path reads them, profile
        // mappings included; a profile may even map a canonical word to another.
        let p = mapping("app", "online");
        assert_eq!(p.words.channel.get("app"), Some(&Channel::Online));
        fn read_as_in_general<T>(p: &FieldParser, column: &str, words: &FxHashMap<Box<str>, T>)
        where
            T: std::str::FromStr<Err = String> + PartialEq + std::fmt::Debug,
        {
            for (word, value) in words {
                let general: T = p.canonical_value(column, word).parse().unwrap();
                assert_eq!((word, &general), (word, value));
            }
        }
        read_as_in_general(&p, "channel", &p.words.channel);
        read_as_in_general(&p, "status", &p.words.status);
        read_as_in_general(&p, "auth_method", &p.words.auth_method);
        assert!(p.words.status.len() > Status::ALL.len());
    }

    #[test]
    fn amounts_in_both_notations() {
        use DecimalMark::*;
        let cases = [
            ("12,50", Comma, 1250),
            ("1.234,50", Comma, 123_450),
            ("1.234", Comma, 123_400),
            ("1234.5", Comma, 123_450),
            ("1,234.50", Dot, 123_450),
            ("1,234", Dot, 123_400),
            ("12.5", Dot, 1250),
            ("0", Dot, 0),
            ("42 EUR", Dot, 4200),
            ("EUR 12,50", Comma, 1250),
            ("12,50 euro", Comma, 1250),
        ];
        for (text, mark, cents) in cases {
            assert_eq!(euro_cents(text, mark), Ok(cents), "{text}");
        }
        for text in ["", "-1", "1,2,3", "1.2.3", "abc", "1.2.3,4.5"] {
            assert!(euro_cents(text, Comma).is_err(), "{text}");
        }
    }

    proptest::proptest! {
        /// The quick reading of RFC 3339 timestamps agrees with chrono's wherever it answers,
        /// and answers for every valid one of the usual shape.
        #[test]
        fn plain_timestamps_read_as_chrono_reads_them(
            text in "[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](Z|[+-][0-2][0-9]:[0-6][0-9])"
        ) {
            let general = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc));
            let plain = plain_rfc3339(&text);
            if plain.is_some() {
                proptest::prop_assert_eq!(plain, general);
            } else if !text[17..19].starts_with('6') {
                // Only leap seconds are left to the general parser.
                proptest::prop_assert_eq!(general, None);
            }
        }

        /// Reading a field without trimming it when its ends are printable gives what
        /// trimming gives.
        #[test]
        fn fields_read_as_their_trimmed_text(text in "\\PC{0,6}[ \t\u{a0}]?") {
            let trimmed = present(text.trim());
            proptest::prop_assert_eq!(present(&text), trimmed);
        }

        /// The quick reading of plain amounts agrees with the general one wherever it
        /// answers, in both notations.
        #[test]
        fn plain_amounts_read_as_written_ones(text in "[0-9]{0,14}([.,][0-9]{0,4})?( ?EUR)?") {
            if let Some(cents) = plain_cents(&text) {
                for mark in [DecimalMark::Comma, DecimalMark::Dot] {
                    proptest::prop_assert_eq!(written_cents(&text, mark), Ok(cents));
                }
            }
        }
    }

    #[test]
    fn markers_of_missing_values_are_empty_fields() {
        let p = parser(DecimalMark::Comma);
        let mut row: Vec<Option<&str>> = GOOD.iter().map(|s| Some(*s)).collect();
        row[4] = Some("N/D");
        row[6] = Some(" - ");
        row[7] = Some("NULL");
        row[8] = Some("n.d.");
        row[9] = Some("#N/D");
        let r = p.request(&row).unwrap();
        assert_eq!(
            (
                r.completed_at,
                r.auth_method,
                r.citizen_key,
                r.amount_cents,
                r.satisfaction
            ),
            (None, None, None, None, None)
        );
        row[4] = Some("0000-00-00 00:00:00");
        assert_eq!(p.request(&row).unwrap().completed_at, None);
        // A required field given as a marker is missing, and said so.
        row[3] = Some("n/a");
        let refused = p.request(&row).unwrap_err();
        assert_eq!(
            (refused.field.as_str(), refused.reason.as_str()),
            ("submitted_at", "required value is empty")
        );
        // Values that only look alike are kept.
        assert_eq!(present(" -3 "), "-3");
        assert_eq!(present("none"), "none");
        assert_eq!(present("Napoli"), "Napoli");
    }

    #[test]
    fn long_records_digest_as_their_whole_text() {
        let long = "è".repeat(200);
        let mut digest = Digest::new();
        digest
            .text("URP-1")
            .text(&long)
            .number(Some(-5))
            .text(&long);
        let mut text = Vec::new();
        for part in [
            b"URP-1".as_slice(),
            long.as_bytes(),
            &(-5i64).to_le_bytes(),
            long.as_bytes(),
        ] {
            text.extend_from_slice(part);
            text.push(0x1f);
        }
        assert!(text.len() > Digest::BUFFER);
        assert_eq!(digest.finish(), xxhash_rust::xxh3::xxh3_128(&text));
    }

    #[test]
    fn fingerprints_digest_the_separated_fields() {
        // Stored fingerprints must never change: they are the XXH3-128 of the fields, each
        // followed by 0x1f, numbers as little-endian bytes.
        let row = check(0, "URP-1").unwrap();
        let mut text = Vec::new();
        let mut field = |bytes: &[u8]| {
            text.extend_from_slice(bytes);
            text.push(0x1f);
        };
        field(row.request_id.as_bytes());
        field(row.service.as_bytes());
        field(row.channel.as_str().as_bytes());
        field(&row.submitted_at.timestamp_micros().to_le_bytes());
        field(
            &row.completed_at
                .map_or(Vec::new(), |t| t.timestamp_micros().to_le_bytes().to_vec()),
        );
        field(row.status.as_str().as_bytes());
        field(row.auth_method.map_or("", |a| a.as_str()).as_bytes());
        field(
            row.citizen_key
                .as_ref()
                .map_or("", |k| k.as_str())
                .as_bytes(),
        );
        field(
            &row.amount_cents
                .map_or(Vec::new(), |a| a.to_le_bytes().to_vec()),
        );
        field(
            &row.satisfaction
                .map_or(Vec::new(), |s| i64::from(s).to_le_bytes().to_vec()),
        );
        assert_eq!(row.fingerprint(), xxhash_rust::xxh3::xxh3_128(&text));
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let a = check(0, "R1").unwrap();
        let b = check(5, "rejected").unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn surveys_are_validated() {
        let p = parser(DecimalMark::Dot);
        let ok = p
            .survey(&[
                Some("S1"),
                Some("suap"),
                Some("online"),
                Some("2017-06-12T09:30:00+02:00"),
                Some("9"),
                None,
            ])
            .unwrap();
        assert_eq!(ok.score, 9);
        let err = p
            .survey(&[
                Some("S1"),
                Some("suap"),
                Some("online"),
                Some("2017-06-12T09:30:00+02:00"),
                Some("12"),
                None,
            ])
            .unwrap_err();
        assert_eq!(err.field, "score");
    }
}
