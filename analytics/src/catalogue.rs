//! The KPI catalogue: KPI definitions and the city's services, as data (TOML).
//!
//! The catalogue is loaded and checked once at start-up: an unknown field, an unknown column
//! or a measure that does not fit its source is an error naming the KPI and its line. The
//! engine ([`crate::kpi`]) compiles each entry into a DataFusion plan, so adding a KPI needs no
//! Rust code. The default catalogue ships inside the binary (`analytics/catalogue.toml`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The catalogue shipped with civica.
pub const DEFAULT_CATALOGUE: &str = include_str!("../catalogue.toml");

/// The areas services are grouped in.
pub const AREAS: [&str; 10] = [
    "school",
    "registry",
    "mobility",
    "taxes",
    "police",
    "business",
    "building",
    "social",
    "culture",
    "relations",
];

/// A text in Italian and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub it: String,
    pub en: String,
}

impl Texts {
    /// The text in `lang` (`en`, else Italian).
    pub fn get(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.it }
    }
}

/// The unit of a KPI's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    Count,
    Score,
    Days,
}

/// Where a KPI's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Requests,
    Surveys,
    /// Survey scores and the scores given with requests, together.
    Ratings,
}

impl Source {
    /// The columns a filter or measure may use, and whether they are numeric.
    pub fn columns(self) -> &'static [(&'static str, ColumnType)] {
        use ColumnType::*;
        match self {
            Source::Requests => &[
                ("request_id", Text),
                ("service", Text),
                ("channel", Text),
                ("submitted_at", Time),
                ("completed_at", Time),
                ("status", Text),
                ("auth_method", Text),
                ("amount_eur", Number),
                ("satisfaction", Number),
                ("year", Number),
            ],
            Source::Surveys => &[
                ("response_id", Text),
                ("service", Text),
                ("channel", Text),
                ("responded_at", Time),
                ("score", Number),
                ("request_id", Text),
                ("year", Number),
            ],
            Source::Ratings => &[
                ("service", Text),
                ("channel", Text),
                ("rated_at", Time),
                ("score", Number),
                ("origin", Text),
                ("year", Number),
            ],
        }
    }

    /// The timestamp that places a row in a period.
    pub fn time_column(self) -> &'static str {
        match self {
            Source::Requests => "submitted_at",
            Source::Surveys => "responded_at",
            Source::Ratings => "rated_at",
        }
    }

    fn column(self, name: &str) -> Option<ColumnType> {
        self.columns()
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, t)| *t)
    }
}

/// The type of a source column, for checking conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Number,
    Time,
}

/// What a KPI computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// 100 × rows matching `numerator` ÷ rows.
    Share,
    /// Number of rows.
    Count,
    /// Mean of a numeric column.
    Mean(String),
    /// Median number of days between two timestamps.
    MedianDays([String; 2]),
    /// 100 × sum of a column over the rows matching `numerator` ÷ its sum over all rows.
    SumShare(String),
}

/// A condition on one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub is_in: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
}

/// Conditions by column, all of which must hold.
pub type Filter = BTreeMap<String, Condition>;

/// A target: a value to reach by a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub value: f64,
    /// ISO date (`2020-12-31`).
    pub by: String,
}

/// A dated note on how a KPI is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodNote {
    pub date: String,
    pub it: String,
    pub en: String,
}

/// The default period of a KPI's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultPeriod {
    Month,
    Quarter,
    Year,
    SchoolYear,
}

/// One KPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiDef {
    pub id: String,
    pub title: Texts,
    pub description: Texts,
    pub unit: Unit,
    pub source: Source,
    pub measure: Measure,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub numerator: Option<Filter>,
    /// Breakdowns allowed besides the periods.
    pub dimensions: Vec<String>,
    pub default_period: DefaultPeriod,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub method: Vec<MethodNote>,
}

/// One of the city's services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub code: String,
    pub area: String,
    pub name: Texts,
    /// When the service went online (`2018-05`), for chart annotations.
    #[serde(default)]
    pub online_since: Option<String>,
}

/// Disclosure-control settings of public outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    pub min_cell: u64,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        DisclosureConfig { min_cell: 5 }
    }
}

/// The whole catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    #[serde(rename = "kpi")]
    pub kpis: Vec<KpiDef>,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceDef>,
}

impl Default for Catalogue {
    fn default() -> Self {
        // The shipped catalogue is checked by a test; failing here would be a build defect.
        Catalogue::parse(DEFAULT_CATALOGUE, "catalogue.toml").unwrap_or(Catalogue {
            disclosure: DisclosureConfig::default(),
            kpis: Vec::new(),
            services: Vec::new(),
        })
    }
}

impl Catalogue {
    /// Reads and checks a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Warehouse {
            path: path.display().to_string(),
            source,
        })?;
        Catalogue::parse(&text, &path.display().to_string())
    }

    /// Parses and checks catalogue text; `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<Catalogue> {
        let catalogue: Catalogue = toml::from_str(text).map_err(|e| Error::Catalogue {
            message: format!("{name}: {e}"),
        })?;
        catalogue.check(text, name)?;
        Ok(catalogue)
    }

    /// The KPI with `id`.
    pub fn kpi(&self, id: &str) -> Result<&KpiDef> {
        self.kpis
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::UnknownKpi {
                id: id.to_string(),
                known: self
                    .kpis
                    .iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The service with `code`, if catalogued.
    pub fn service(&self, code: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.code == code)
    }

    /// The name of a service in `lang`, or its code when uncatalogued.
    pub fn service_name<'a>(&'a self, code: &'a str, lang: &str) -> &'a str {
        self.service(code).map_or(code, |s| s.name.get(lang))
    }

    fn check(&self, text: &str, name: &str) -> Result<()> {
        let fail = |id: &str, message: String| {
            let line = text
                .find(&format!("id = \"{id}\""))
                .map(|at| text[..at].lines().count() + 1)
                .unwrap_or(0);
            Err(Error::Catalogue {
                message: format!("{name}:{line}: KPI `{id}`: {message}"),
            })
        };
        if self.disclosure.min_cell < 3 {
            return Err(Error::Catalogue {
                message: format!(
                    "{name}: disclosure.min_cell is {}, it may not be below 3",
                    self.disclosure.min_cell
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for kpi in &self.kpis {
            let id = kpi.id.as_str();
            if !seen.insert(id) {
                return fail(id, "defined twice".into());
            }
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return fail(id, "ids are lower-case letters, digits and `_`".into());
            }
            let filters = std::iter::once(&kpi.filter).chain(kpi.numerator.as_ref());
            for filter in filters {
                for (column, condition) in filter {
                    let Some(kind) = kpi.source.column(column) else {
                        return fail(id, format!("unknown column `{column}` in {:?}", kpi.source));
                    };
                    let numeric = condition.ge.is_some() || condition.le.is_some();
                    if numeric && kind != ColumnType::Number {
                        return fail(
                            id,
                            format!("`ge`/`le` need a numeric column, `{column}` is not"),
                        );
                    }
                    if *condition == Condition::default() {
                        return fail(id, format!("empty condition on `{column}`"));
                    }
                }
            }
            let needs_numerator = matches!(kpi.measure, Measure::Share | Measure::SumShare(_));
            if needs_numerator != kpi.numerator.is_some() {
                return fail(
                    id,
                    if needs_numerator {
                        "this measure needs a `numerator` filter".into()
                    } else {
                        "only share measures take a `numerator`".into()
                    },
                );
            }
            match &kpi.measure {
                Measure::Mean(c) | Measure::SumShare(c) => {
                    if kpi.source.column(c) != Some(ColumnType::Number) {
                        return fail(
                            id,
                            format!("`{c}` is not a numeric column of {:?}", kpi.source),
                        );
                    }
                }
                Measure::MedianDays([a, b]) => {
                    for c in [a, b] {
                        if kpi.source.column(c) != Some(ColumnType::Time) {
                            return fail(
                                id,
                                format!("`{c}` is not a timestamp of {:?}", kpi.source),
                            );
                        }
                    }
                }
                Measure::Share | Measure::Count => {}
            }
            for dim in &kpi.dimensions {
                let known = dim == "area" || kpi.source.column(dim) == Some(ColumnType::Text);
                if !known {
                    return fail(id, format!("unknown dimension `{dim}`"));
                }
            }
            for target in &kpi.targets {
                if chrono::NaiveDate::parse_from_str(&target.by, "%Y-%m-%d").is_err() {
                    return fail(id, format!("target date `{}` is not YYYY-MM-DD", target.by));
                }
            }
        }
        for service in &self.services {
            if !AREAS.contains(&service.area.as_str()) {
                return Err(Error::Catalogue {
                    message: format!(
                        "{name}: service `{}`: unknown area `{}` (areas: {})",
                        service.code,
                        service.area,
                        AREAS.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_is_valid_and_complete() {
        let catalogue = Catalogue::parse(DEFAULT_CATALOGUE, "catalogue.toml").unwrap();
        for id in [
            "online_share",
            "requests",
            "satisfaction_mean",
            "satisfaction_satisfied_share",
            "completion_rate",
            "median_days_to_complete",
            "digital_identity_share",
            "online_payment_share",
        ] {
            assert!(catalogue.kpi(id).is_ok(), "{id}");
        }
        assert_eq!(catalogue.disclosure.min_cell, 5);
        assert_eq!(catalogue.service("suap").unwrap().area, "business");
    }

    #[test]
    fn mistakes_are_named_with_the_kpi_and_line() {
        let bad_column = DEFAULT_CATALOGUE.replacen(
            "numerator = { channel = { in = [\"online\", \"app\"] } }",
            "numerator = { canale = { in = [\"online\", \"app\"] } }",
            1,
        );
        let err = Catalogue::parse(&bad_column, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("online_share") && err.contains("canale") && err.contains("c.toml:"),
            "{err}"
        );

        let unknown_field = format!("{DEFAULT_CATALOGUE}\n[[kpi]]\nid = \"x\"\ncolour = 1\n");
        let err = Catalogue::parse(&unknown_field, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");

        let low = DEFAULT_CATALOGUE.replacen("min_cell = 5", "min_cell = 2", 1);
        assert!(Catalogue::parse(&low, "c.toml").is_err());
    }
}
