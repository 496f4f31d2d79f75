//! The canonical service-log format and the columns of the warehouse tables.
//!
//! Input (CSV, UTF-8, comma, header row), one row per service request:
//! `request_id, service, channel, submitted_at, completed_at, status, auth_method, citizen_id,
//! amount_eur, satisfaction`.
//!
//! The warehouse table `requests` keeps these names, except that `citizen_id` becomes the keyed
//! pseudonym `citizen_key`; it adds `record_fingerprint` (for duplicate detection) and the
//! partition column `year` (the calendar year of `submitted_at` in the city's time zone).

use std::fmt;
use std::str::FromStr;

/// The time zone of the city: local dates (the `year` partition, months, school years) are
/// taken in it. Timestamps are stored in UTC.
pub const CITY_TIME_ZONE: chrono_tz::Tz = chrono_tz::Europe::Rome;

/// Columns of the canonical input, in order.
pub const INPUT_COLUMNS: [&str; 10] = [
    "request_id",
    "service",
    "channel",
    "submitted_at",
    "completed_at",
    "status",
    "auth_method",
    "citizen_id",
    "amount_eur",
    "satisfaction",
];

/// Input columns that must be present in every header.
pub const REQUIRED_INPUT_COLUMNS: [&str; 5] =
    ["request_id", "service", "channel", "submitted_at", "status"];

/// Columns of the Parquet files of the `requests` table, in order (the partition column `year`
/// lives in the directory names, not in the files).
pub const REQUEST_COLUMNS: [&str; 11] = [
    "request_id",
    "service",
    "channel",
    "submitted_at",
    "completed_at",
    "status",
    "auth_method",
    "citizen_key",
    "amount_eur",
    "satisfaction",
    "record_fingerprint",
];

/// Columns of the canonical survey log, in order.
pub const SURVEY_INPUT_COLUMNS: [&str; 6] = [
    "response_id",
    "service",
    "channel",
    "responded_at",
    "score",
    "request_id",
];

/// Survey columns that must be present.
pub const REQUIRED_SURVEY_COLUMNS: [&str; 5] =
    ["response_id", "service", "channel", "responded_at", "score"];

/// Columns of the Parquet files of the `surveys` table (partitioned by `year`). Free-text
/// comments are never stored.
pub const SURVEY_COLUMNS: [&str; 7] = [
    "response_id",
    "service",
    "channel",
    "responded_at",
    "score",
    "request_id",
    "record_fingerprint",
];

/// Columns of the `quarantine` table files (partitioned by `ingest`, the commit number).
pub const QUARANTINE_COLUMNS: [&str; 5] = ["source_file", "line", "field", "reason", "raw_line"];

/// Generates an enumeration whose values are written in lower case in logs and tables.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in canonical order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in logs and in the warehouse.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "`{s}` is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// How a request reached the city.
    Channel {
        Online => "online",
        App => "app",
        Sportello => "sportello",
        Telefono => "telefono",
        Email => "email",
        Pec => "pec",
        Posta => "posta",
    }
}

vocabulary! {
    /// Where a request stands.
    Status {
        Completed => "completed",
        Rejected => "rejected",
        Abandoned => "abandoned",
        Pending => "pending",
    }
}

vocabulary! {
    /// How the citizen proved their identity (`none` for anonymous online use, or credentials
    /// that are not a digital identity). `eidas`: a European digital identity, accepted by
    /// Italian public services through the eIDAS node.
    AuthMethod {
        Spid => "spid",
        Cie => "cie",
        Federa => "federa",
        Cns => "cns",
        Eidas => "eidas",
        None => "none",
    }
}

impl Channel {
    /// Digital channels: the numerator of `online_share`.
    pub const DIGITAL: [Channel; 2] = [Channel::Online, Channel::App];

    /// True for the channels that count as "online" in the city's figures.
    pub fn is_digital(self) -> bool {
        Channel::DIGITAL.contains(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), *c);
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        for a in AuthMethod::ALL {
            assert_eq!(a.as_str().parse::<AuthMethod>().unwrap(), *a);
        }
    }

    #[test]
    fn unknown_value_lists_the_allowed_ones() {
        let err = "web".parse::<Channel>().unwrap_err();
        assert!(err.contains("`web`") && err.contains("sportello"), "{err}");
    }

    #[test]
    fn only_online_and_app_are_digital() {
        let digital: Vec<_> = Channel::ALL.iter().filter(|c| c.is_digital()).collect();
        assert_eq!(digital, [&Channel::Online, &Channel::App]);
    }
}
