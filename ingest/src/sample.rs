//! A synthetic Cesena-like city (about 97,000 inhabitants, 2015–2018) for the demo and tests.
//!
//! The channel mixes are calibrated so that computing over the generated rows reproduces the
//! figures the city published (for example 83% of nursery-school enrolments online in 2017,
//! SUAP 38.2% online in 2015 and 80% in 2017, 5,290 self-service certificates in 2017). Those
//! figures are *inputs* of the model, never stored results: the engine has to find them again.
//!
//! Exactness: for every service and year the number of digital requests is allocated exactly
//! (`round(share × requests)`), so published shares are met to rounding, whatever the seed;
//! where the city published a share, the volume is chosen so that the share is exact at scale 1
//! (664 of 800 nursery enrolments are 83.0%).
//! Everything else (dates, hours, identities, scores, amounts) is drawn from a ChaCha8 stream
//! seeded by `seed`, so the same seed and scale always give the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Weekday};
use chrono_tz::Europe::Rome;
use chrono_tz::Tz;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::schema::{AuthMethod, Channel, INPUT_COLUMNS, Status};

/// First and last year of the sample.
pub const YEARS: std::ops::RangeInclusive<i32> = 2015..=2018;
/// Inhabitants of the modelled city (at scale 1).
pub const INHABITANTS: usize = 97_000;

/// Options of the generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    pub seed: u64,
    /// Multiplies every volume (1.0 ≈ 350,000 requests).
    pub scale: f64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            seed: 2018,
            scale: 1.0,
        }
    }
}

/// How long a service takes from submission to completion.
#[derive(Debug, Clone, Copy)]
enum Processing {
    /// Issued on the spot (certificates, payments): seconds to minutes.
    Instant,
    /// A uniform number of days in the range.
    Days(u32, u32),
}

/// What a request pays, if anything.
#[derive(Debug, Clone, Copy)]
enum Payment {
    None,
    /// One of a list of fixed amounts, in cents (fines have statutory amounts).
    Fixed(&'static [i64]),
    /// A uniform amount between two bounds, in cents.
    Range(i64, i64),
}

/// The model of one service.
#[derive(Debug, Clone, Copy)]
struct ServiceModel {
    code: &'static str,
    id_prefix: &'static str,
    /// Submitted (non-abandoned) requests per year, 2015–2018, at scale 1.
    volume: [u32; 4],
    /// Share of submitted requests made online or by app, 2015–2018 (after `online_since`).
    digital_share: [f64; 4],
    /// Of digital requests, the share made through the app.
    app_share: f64,
    /// When the service went online, if during the sample period (year, month).
    online_since: Option<(i32, u32)>,
    /// Non-digital channels and their weights.
    offline: &'static [(Channel, f64)],
    /// Weight of each calendar month (enrolment windows, seasons).
    months: [f64; 12],
    processing: Processing,
    payment: Payment,
    /// Share of submitted requests that are rejected.
    rejected: f64,
    /// Share of requests with no citizen identifier (anonymous reports, businesses).
    anonymous: f64,
}

const ALL_YEAR: [f64; 12] = [1.0, 1.0, 1.1, 1.0, 1.0, 0.9, 0.8, 0.5, 1.0, 1.1, 1.0, 0.8];
const COUNTER: &[(Channel, f64)] = &[(Channel::Sportello, 1.0)];
const COUNTER_PHONE_MAIL: &[(Channel, f64)] = &[
    (Channel::Sportello, 0.75),
    (Channel::Telefono, 0.1),
    (Channel::Email, 0.15),
];
const COUNTER_POST: &[(Channel, f64)] = &[(Channel::Sportello, 0.6), (Channel::Posta, 0.4)];
const BUSINESS: &[(Channel, f64)] = &[
    (Channel::Pec, 0.55),
    (Channel::Sportello, 0.35),
    (Channel::Posta, 0.1),
];
const REPORTS: &[(Channel, f64)] = &[
    (Channel::Telefono, 0.45),
    (Channel::Email, 0.3),
    (Channel::Sportello, 0.25),
];

/// The services of the city, in a fixed order (the order is part of the seed's meaning).
const SERVICES: &[ServiceModel] = &[
    ServiceModel {
        code: "iscrizione_scuola_infanzia",
        id_prefix: "INF",
        volume: [780, 765, 800, 790],
        digital_share: [0.52, 0.68, 0.83, 0.86],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: [1.0, 0.3, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.],
        processing: Processing::Days(20, 60),
        payment: Payment::None,
        rejected: 0.02,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "refezione_scolastica",
        id_prefix: "REF",
        volume: [3400, 3450, 3500, 3520],
        digital_share: [0.45, 0.62, 0.76, 0.81],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: [0., 0., 0., 0., 0.3, 1.0, 1.0, 0.6, 0.8, 0.1, 0., 0.],
        processing: Processing::Days(3, 20),
        payment: Payment::None,
        rejected: 0.01,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "pre_scuola",
        id_prefix: "PRE",
        volume: [620, 630, 650, 660],
        digital_share: [0.42, 0.60, 0.74, 0.79],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: [0., 0., 0., 0., 0.5, 1.0, 0.8, 0.3, 0.6, 0., 0., 0.],
        processing: Processing::Days(3, 20),
        payment: Payment::Range(6_000, 18_000),
        rejected: 0.01,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "post_scuola",
        id_prefix: "POS",
        volume: [700, 715, 730, 740],
        digital_share: [0.60, 0.78, 0.90, 0.92],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: [0., 0., 0., 0., 0.5, 1.0, 0.8, 0.3, 0.6, 0., 0., 0.],
        processing: Processing::Days(3, 20),
        payment: Payment::Range(9_000, 25_000),
        rejected: 0.01,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "trasporto_scolastico",
        id_prefix: "TRA",
        volume: [900, 885, 875, 860],
        digital_share: [0.45, 0.63, 0.76, 0.80],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER_POST,
        months: [0., 0., 0., 0., 0.4, 1.0, 1.0, 0.5, 0.5, 0., 0., 0.],
        processing: Processing::Days(5, 30),
        payment: Payment::Range(10_000, 32_000),
        rejected: 0.02,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "centri_estivi",
        id_prefix: "CES",
        volume: [1500, 1550, 1600, 1650],
        digital_share: [0.40, 0.58, 0.71, 0.77],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: [0., 0., 0.6, 1.0, 1.0, 0.3, 0., 0., 0., 0., 0., 0.],
        processing: Processing::Days(2, 15),
        payment: Payment::Range(5_000, 30_000),
        rejected: 0.02,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "certificati_anagrafici",
        id_prefix: "CER",
        volume: [21_000, 20_500, 20_000, 19_500],
        // 5,290 self-service certificates out of 20,000 in 2017.
        digital_share: [0.12, 0.19, 0.2645, 0.31],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER,
        months: ALL_YEAR,
        processing: Processing::Instant,
        payment: Payment::None,
        rejected: 0.0,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "carta_identita_elettronica",
        id_prefix: "CIE",
        volume: [9000, 9400, 10_400, 11_000],
        digital_share: [0.0, 0.0, 0.38, 0.55],
        app_share: 0.0,
        online_since: Some((2017, 3)),
        offline: &[(Channel::Sportello, 0.6), (Channel::Telefono, 0.4)],
        months: ALL_YEAR,
        processing: Processing::Days(1, 20),
        payment: Payment::Fixed(&[2_221]),
        rejected: 0.01,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "cambio_residenza",
        id_prefix: "RES",
        volume: [3300, 3350, 3400, 3450],
        digital_share: [0.0, 0.0, 0.0, 0.35],
        app_share: 0.0,
        online_since: Some((2018, 5)),
        offline: &[
            (Channel::Sportello, 0.7),
            (Channel::Email, 0.15),
            (Channel::Pec, 0.1),
            (Channel::Posta, 0.05),
        ],
        months: ALL_YEAR,
        processing: Processing::Days(2, 45),
        payment: Payment::None,
        rejected: 0.03,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "permessi_ztl",
        id_prefix: "ZTL",
        volume: [4200, 4100, 4000, 4050],
        digital_share: [0.30, 0.45, 0.60, 0.68],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER_PHONE_MAIL,
        months: [1.6, 1.2, 1.0, 0.9, 0.9, 0.8, 0.8, 0.5, 0.9, 1.0, 1.0, 1.2],
        processing: Processing::Days(1, 10),
        payment: Payment::Fixed(&[3_000, 6_000, 10_000]),
        rejected: 0.04,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "ztl_alberghi",
        id_prefix: "ZTA",
        // 1,151 requests from hotels and B&Bs in 2017.
        volume: [905, 1040, 1151, 1230],
        digital_share: [0.70, 0.85, 0.93, 0.95],
        app_share: 0.0,
        online_since: None,
        offline: &[(Channel::Email, 0.6), (Channel::Telefono, 0.4)],
        months: [0.4, 0.4, 0.6, 0.9, 1.1, 1.4, 1.6, 1.7, 1.2, 0.8, 0.5, 0.6],
        processing: Processing::Instant,
        payment: Payment::None,
        rejected: 0.01,
        anonymous: 1.0,
    },
    ServiceModel {
        code: "ztl_primo_permesso",
        id_prefix: "ZTP",
        volume: [600, 610, 630, 650],
        digital_share: [0.0, 0.0, 0.0, 0.45],
        app_share: 0.0,
        online_since: Some((2018, 9)),
        offline: COUNTER_PHONE_MAIL,
        months: ALL_YEAR,
        processing: Processing::Days(2, 15),
        payment: Payment::Fixed(&[3_000, 6_000]),
        rejected: 0.05,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "aggiornamento_targhe_ztl",
        id_prefix: "TAR",
        volume: [1500, 1520, 1540, 1560],
        digital_share: [0.0, 0.0, 0.0, 0.55],
        app_share: 0.0,
        online_since: Some((2018, 4)),
        offline: COUNTER_PHONE_MAIL,
        months: ALL_YEAR,
        processing: Processing::Days(0, 3),
        payment: Payment::None,
        rejected: 0.02,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "contributi_economici",
        id_prefix: "CON",
        volume: [1200, 1250, 1300, 1350],
        digital_share: [0.0, 0.0, 0.0, 0.30],
        app_share: 0.0,
        online_since: Some((2018, 10)),
        offline: COUNTER_POST,
        months: ALL_YEAR,
        processing: Processing::Days(15, 90),
        payment: Payment::None,
        rejected: 0.12,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "numerazione_civica",
        id_prefix: "NUM",
        volume: [150, 160, 170, 180],
        digital_share: [0.0, 0.0, 0.0, 0.40],
        app_share: 0.0,
        online_since: Some((2018, 6)),
        offline: &[(Channel::Sportello, 0.5), (Channel::Pec, 0.5)],
        months: ALL_YEAR,
        processing: Processing::Days(10, 40),
        payment: Payment::Fixed(&[1_500]),
        rejected: 0.03,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "sanzioni_codice_strada",
        id_prefix: "SAN",
        volume: [16_000, 15_500, 15_800, 16_200],
        digital_share: [0.20, 0.30, 0.42, 0.50],
        app_share: 0.08,
        online_since: None,
        offline: COUNTER_POST,
        months: ALL_YEAR,
        processing: Processing::Instant,
        payment: Payment::Fixed(&[4_100, 4_200, 8_300, 8_700, 16_800, 17_300]),
        rejected: 0.0,
        anonymous: 0.2,
    },
    ServiceModel {
        code: "tari",
        id_prefix: "TRI",
        volume: [12_000, 12_100, 12_200, 12_300],
        digital_share: [0.15, 0.22, 0.30, 0.38],
        app_share: 0.05,
        online_since: None,
        offline: COUNTER_POST,
        months: [0.3, 0.3, 0.5, 1.5, 1.0, 0.6, 1.2, 0.4, 0.6, 1.2, 1.5, 1.0],
        processing: Processing::Instant,
        payment: Payment::Range(8_000, 60_000),
        rejected: 0.0,
        anonymous: 0.0,
    },
    ServiceModel {
        code: "cosap",
        id_prefix: "COS",
        volume: [1400, 1420, 1450, 1480],
        digital_share: [0.25, 0.35, 0.50, 0.58],
        app_share: 0.0,
        online_since: None,
        offline: COUNTER_POST,
        months: [0.6, 1.5, 1.0, 1.0, 1.2, 1.2, 1.0, 0.5, 0.8, 0.8, 0.8, 0.6],
        processing: Processing::Instant,
        payment: Payment::Range(2_000, 90_000),
        rejected: 0.0,
        anonymous: 0.3,
    },
    ServiceModel {
        code: "suap",
        id_prefix: "SUA",
        volume: [2500, 2450, 2400, 2450],
        // Business procedures: 38.2% online in 2015, 80% in 2017.
        digital_share: [0.382, 0.60, 0.80, 0.84],
        app_share: 0.0,
        online_since: None,
        offline: BUSINESS,
        months: ALL_YEAR,
        processing: Processing::Days(5, 60),
        payment: Payment::Fixed(&[1_600, 5_000, 10_000]),
        rejected: 0.06,
        anonymous: 0.4,
    },
    ServiceModel {
        code: "accesso_atti_edilizi",
        id_prefix: "EDI",
        volume: [1300, 1320, 1350, 1380],
        digital_share: [0.10, 0.25, 0.45, 0.55],
        app_share: 0.0,
        online_since: None,
        offline: &[(Channel::Pec, 0.5), (Channel::Sportello, 0.5)],
        months: ALL_YEAR,
        processing: Processing::Days(5, 30),
        payment: Payment::Fixed(&[1_000, 2_500]),
        rejected: 0.05,
        anonymous: 0.1,
    },
    ServiceModel {
        code: "segnalazioni_urp",
        id_prefix: "URP",
        volume: [3800, 4200, 4600, 5000],
        digital_share: [0.35, 0.45, 0.55, 0.62],
        app_share: 0.4,
        online_since: None,
        offline: REPORTS,
        months: ALL_YEAR,
        processing: Processing::Days(1, 30),
        payment: Payment::None,
        rejected: 0.08,
        anonymous: 0.3,
    },
];

/// Share of digital starts that are abandoned before submission.
const ABANDONED_SHARE: f64 = 0.05;
/// Chance that a completed request carries a satisfaction score, online and offline.
const SCORED_ONLINE: f64 = 0.25;
const SCORED_OFFLINE: f64 = 0.08;
/// Weights of scores 1–10 (mean ≈ 8.1).
const SCORE_WEIGHTS: [f64; 10] = [1., 1., 1., 2., 3., 5., 12., 25., 28., 22.];
/// The extract is taken at the end of the sample: later completions are still pending.
const EXTRACTED_AT: (i32, u32, u32) = (2018, 12, 31);

/// The codes of the modelled services, in order.
pub fn service_codes() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.code)
}

/// One generated request.
struct SampleRow {
    request_id: String,
    service: &'static str,
    channel: Channel,
    submitted_at: DateTime<Tz>,
    completed_at: Option<DateTime<Tz>>,
    status: Status,
    auth_method: Option<AuthMethod>,
    /// Index into the citizen pool (taken modulo its size).
    citizen: Option<usize>,
    amount_cents: Option<i64>,
    satisfaction: Option<u32>,
}

/// Writes `out_dir/requests.csv` and returns its path.
pub fn write_sample(out_dir: &Path, options: SampleOptions) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let path = out_dir.join("requests.csv");
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = std::io::BufWriter::new(file);
    write_sample_to(&mut out, options)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Writes the sample as canonical CSV to `out`.
pub fn write_sample_to(out: &mut impl Write, options: SampleOptions) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let citizens = citizen_pool(&mut rng, scaled(INHABITANTS as u32, options.scale).max(1));
    let mut rows = Vec::new();
    for service in SERVICES {
        for (k, year) in YEARS.enumerate() {
            generate_service_year(&mut rng, service, k, year, options.scale, &mut rows);
        }
    }
    rows.sort_by(|a, b| (a.submitted_at, &a.request_id).cmp(&(b.submitted_at, &b.request_id)));

    let mut writer = csv::WriterBuilder::new().from_writer(out);
    writer.write_record(INPUT_COLUMNS)?;
    for row in &rows {
        writer.write_record([
            row.request_id.as_str(),
            row.service,
            row.channel.as_str(),
            &timestamp(row.submitted_at),
            &row.completed_at.map(timestamp).unwrap_or_default(),
            row.status.as_str(),
            row.auth_method.map(AuthMethod::as_str).unwrap_or(""),
            row.citizen
                .map(|i| citizens[i % citizens.len()].as_str())
                .unwrap_or(""),
            &row.amount_cents
                .map(|c| format!("{}.{:02}", c / 100, c % 100))
                .unwrap_or_default(),
            &row.satisfaction.map(|s| s.to_string()).unwrap_or_default(),
        ])?;
    }
    writer.flush()
}

fn scaled(volume: u32, scale: f64) -> u32 {
    (f64::from(volume) * scale).round().max(0.0) as u32
}

fn timestamp(t: DateTime<Tz>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Generates the requests of one service in one year (`k` = index of the year).
fn generate_service_year(
    rng: &mut ChaCha8Rng,
    service: &ServiceModel,
    k: usize,
    year: i32,
    scale: f64,
    rows: &mut Vec<SampleRow>,
) {
    let submitted = scaled(service.volume[k], scale) as usize;
    let launch = match service.online_since {
        Some((y, _)) if y > year => None,
        Some((y, m)) if y == year => NaiveDate::from_ymd_opt(year, m, 1),
        _ => NaiveDate::from_ymd_opt(year, 1, 1),
    };
    let digital = match launch {
        Some(_) => (service.digital_share[k] * submitted as f64).round() as usize,
        None => 0,
    };
    let abandoned = (digital as f64 * ABANDONED_SHARE).round() as usize;
    let app = (service.app_share * digital as f64).round() as usize;

    // Exact channel allocation, then a shuffle so that channels are not ordered.
    let mut channels: Vec<Channel> = Vec::with_capacity(submitted);
    channels.extend(std::iter::repeat_n(Channel::App, app));
    channels.extend(std::iter::repeat_n(Channel::Online, digital - app));
    for _ in digital..submitted {
        channels.push(pick(rng, service.offline));
    }
    channels.shuffle(rng);

    let mut seq = 0usize;
    let mut next_id = || {
        seq += 1;
        format!("{}-{year}-{seq:06}", service.id_prefix)
    };
    for channel in channels {
        let from = if channel.is_digital() { launch } else { None };
        let submitted_at = random_moment(rng, service, year, channel, from);
        let row = submitted_row(rng, service, next_id(), channel, submitted_at, year);
        rows.push(row);
    }
    for _ in 0..abandoned {
        let submitted_at = random_moment(rng, service, year, Channel::Online, launch);
        rows.push(SampleRow {
            request_id: next_id(),
            service: service.code,
            channel: Channel::Online,
            submitted_at,
            completed_at: None,
            status: Status::Abandoned,
            auth_method: Some(auth_method(rng, year, service)),
            citizen: None,
            amount_cents: None,
            satisfaction: None,
        });
    }
}

/// A submitted request: status, completion, identity, payment and score.
fn submitted_row(
    rng: &mut ChaCha8Rng,
    service: &ServiceModel,
    request_id: String,
    channel: Channel,
    submitted_at: DateTime<Tz>,
    year: i32,
) -> SampleRow {
    let duration = match service.processing {
        Processing::Instant if channel.is_digital() => Duration::seconds(rng.random_range(5..90)),
        Processing::Instant => Duration::minutes(rng.random_range(2..25)),
        Processing::Days(lo, hi) => {
            Duration::days(i64::from(rng.random_range(lo..=hi)))
                + Duration::minutes(rng.random_range(0..480))
        }
    };
    let completed_at = submitted_at + duration;
    let (end_y, end_m, end_d) = EXTRACTED_AT;
    let extracted = Rome
        .with_ymd_and_hms(end_y, end_m, end_d, 23, 59, 59)
        .single()
        .unwrap_or(submitted_at);
    let rejected = rng.random::<f64>() < service.rejected;
    let (status, completed_at) = if completed_at > extracted {
        (Status::Pending, None)
    } else if rejected {
        (Status::Rejected, Some(completed_at))
    } else {
        (Status::Completed, Some(completed_at))
    };
    let citizen_present = rng.random::<f64>() >= service.anonymous;
    let citizen = citizen_present.then(|| rng.random::<u32>() as usize);
    let amount_cents = match (status, service.payment) {
        (Status::Completed, Payment::Fixed(amounts)) => {
            Some(amounts[rng.random_range(0..amounts.len())])
        }
        (Status::Completed, Payment::Range(lo, hi)) => Some(rng.random_range(lo..=hi)),
        _ => None,
    };
    let scored_chance = if channel.is_digital() {
        SCORED_ONLINE
    } else {
        SCORED_OFFLINE
    };
    let satisfaction = (status == Status::Completed && rng.random::<f64>() < scored_chance)
        .then(|| 1 + weighted_index(rng, &SCORE_WEIGHTS) as u32);
    SampleRow {
        request_id,
        service: service.code,
        channel,
        submitted_at,
        completed_at,
        status,
        auth_method: channel
            .is_digital()
            .then(|| auth_method(rng, year, service)),
        citizen,
        amount_cents,
        satisfaction,
    }
}

/// The identity used online: FedERa (the regional system) first, SPID from 2016, CIE from 2017.
/// Anonymous reports and payments may need no login.
fn auth_method(rng: &mut ChaCha8Rng, year: i32, service: &ServiceModel) -> AuthMethod {
    if service.anonymous > 0.0 && rng.random::<f64>() < service.anonymous {
        return AuthMethod::None;
    }
    let mix: &[(AuthMethod, f64)] = match year {
        ..=2015 => &[(AuthMethod::Federa, 0.85), (AuthMethod::Cns, 0.15)],
        2016 => &[
            (AuthMethod::Federa, 0.6),
            (AuthMethod::Spid, 0.3),
            (AuthMethod::Cns, 0.1),
        ],
        2017 => &[
            (AuthMethod::Spid, 0.55),
            (AuthMethod::Federa, 0.35),
            (AuthMethod::Cns, 0.05),
            (AuthMethod::Cie, 0.05),
        ],
        _ => &[
            (AuthMethod::Spid, 0.7),
            (AuthMethod::Federa, 0.15),
            (AuthMethod::Cie, 0.12),
            (AuthMethod::Cns, 0.03),
        ],
    };
    pick(rng, mix)
}

/// A moment in `year` (not before `from`) following the service's months, the channel's
/// weekdays and opening hours, in local time.
fn random_moment(
    rng: &mut ChaCha8Rng,
    service: &ServiceModel,
    year: i32,
    channel: Channel,
    from: Option<NaiveDate>,
) -> DateTime<Tz> {
    let first = from.unwrap_or_else(|| NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default());
    let mut months = service.months;
    for (m, weight) in months.iter_mut().enumerate() {
        if (m as u32 + 1) < first.month() {
            *weight = 0.0;
        }
    }
    if months.iter().all(|w| *w <= 0.0) {
        months = [1.0; 12];
        for (m, weight) in months.iter_mut().enumerate() {
            if (m as u32 + 1) < first.month() {
                *weight = 0.0;
            }
        }
    }
    let counter = matches!(
        channel,
        Channel::Sportello | Channel::Telefono | Channel::Posta
    );
    // Rejection sampling on days: the weekday weight depends on the channel.
    let date = loop {
        let month = 1 + weighted_index(rng, &months) as u32;
        let days = days_in_month(year, month);
        let day = rng.random_range(1..=days);
        let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
            continue;
        };
        if date < first || (month == 12 && day == 31) || (month == 1 && day == 1) {
            continue;
        }
        let weight = match (date.weekday(), counter) {
            (Weekday::Sun, true) => 0.0,
            (Weekday::Sat, true) => 0.25,
            (Weekday::Sat, false) => 0.5,
            (Weekday::Sun, false) => 0.4,
            _ => 1.0,
        };
        if rng.random::<f64>() < weight {
            break date;
        }
    };
    let minutes = if counter {
        // 8:30–13:00, and 14:30–17:00 two afternoons a week.
        if matches!(date.weekday(), Weekday::Tue | Weekday::Thu) && rng.random::<f64>() < 0.3 {
            rng.random_range(14 * 60 + 30..17 * 60)
        } else {
            rng.random_range(8 * 60 + 30..13 * 60)
        }
    } else {
        // Online: mornings, lunch breaks and evenings, 7:00–23:30.
        const HOURS: [f64; 17] = [
            0.3, 0.8, 1.2, 1.4, 1.4, 1.3, 1.1, 0.9, 1.0, 1.1, 1.1, 1.0, 0.9, 1.1, 1.2, 1.0, 0.5,
        ];
        (7 + weighted_index(rng, &HOURS) as u32) * 60 + rng.random_range(0..60)
    };
    let second = rng.random_range(0..60);
    let naive = date.and_hms_opt(minutes / 60, minutes % 60, second);
    // Hours between 7:00 and 23:59 never fall in a DST gap (02:00–03:00), so this is exact.
    naive
        .and_then(|n| Rome.from_local_datetime(&n).earliest())
        .unwrap_or_else(|| Rome.with_ymd_and_hms(year, 6, 1, 12, 0, 0).unwrap())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

fn weighted_index(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[(T, f64)]) -> T {
    let weights: Vec<f64> = options.iter().map(|(_, w)| *w).collect();
    options[weighted_index(rng, &weights)].0
}

/// A pool of synthetic (well-formed, check-digit correct) codici fiscali of people born in
/// Cesena (cadastral code C573). They are invented; any match with a real code is chance.
fn citizen_pool(rng: &mut ChaCha8Rng, size: u32) -> Vec<String> {
    const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
    (0..size)
        .map(|_| {
            let mut code = String::with_capacity(16);
            for _ in 0..6 {
                code.push(char::from(b'A' + rng.random_range(0..26u8)));
            }
            code.push_str(&format!("{:02}", rng.random_range(30..100u32) % 100));
            code.push(char::from(MONTHS[rng.random_range(0..12usize)]));
            let day = rng.random_range(1..=28u32) + if rng.random::<bool>() { 40 } else { 0 };
            code.push_str(&format!("{day:02}"));
            code.push_str("C573");
            code.push(codice_fiscale_check(&code));
            code
        })
        .collect()
}

/// The check character of the first 15 characters of a codice fiscale.
pub fn codice_fiscale_check(first15: &str) -> char {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let sum: u32 = first15
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let v = if b.is_ascii_digit() {
                u32::from(b - b'0')
            } else {
                u32::from(b.to_ascii_uppercase() - b'A')
            };
            // Positions are counted from 1: odd positions use the odd table.
            if i % 2 == 0 { ODD[v as usize] } else { v }
        })
        .sum();
    char::from(b'A' + (sum % 26) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codice_fiscale_check_character_matches_a_known_code() {
        // The textbook example of the Agenzia delle Entrate's algorithm: RSSMRA80A01H501U.
        assert_eq!(codice_fiscale_check("RSSMRA80A01H501"), 'U');
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let small = |seed| {
            let mut out = Vec::new();
            write_sample_to(&mut out, SampleOptions { seed, scale: 0.02 }).unwrap();
            out
        };
        assert_eq!(small(7), small(7));
        assert_ne!(small(7), small(8));
    }

    #[test]
    fn days_in_month_knows_leap_years() {
        assert_eq!(days_in_month(2016, 2), 29);
        assert_eq!(days_in_month(2017, 2), 28);
        assert_eq!(days_in_month(2017, 12), 31);
    }
}
