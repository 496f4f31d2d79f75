//! The open datasets: which disclosure-controlled aggregates the city publishes, who
//! publishes them and under which licence.
//!
//! Every dataset is a KPI of the catalogue computed by the engine for the public audience
//! (so suppressed cells stay empty, never zero), or, for the satisfaction distribution, a
//! family of counts suppressed together (see [`Engine::dataset`]). Request-level rows are
//! never published. Encoders live in [`encode`], the Frictionless descriptor in
//! [`datapackage`]; the DCAT-AP_IT catalogue is built by the dashboard from [`DATASETS`] and
//! [`OpenDataConfig`].

pub mod datapackage;
pub mod encode;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Condition, KpiDef, Measure};
use crate::error::{Error, Result};
use crate::kpi::{Audience, Dimension, Flag, KpiQuery, KpiRow};
use crate::session::Engine;

pub use encode::DownloadFormat;

/// Who publishes the data: the administration as registered in the IPA index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Official name, e.g. `Comune di Cesena`.
    pub name: String,
    /// Code in the index of public administrations (IPA), e.g. `c_c573`; dataset
    /// identifiers are prefixed with it.
    pub ipa_code: String,
    /// Where the site is published (`https://dati.example.it`), without a trailing slash.
    /// `None`: the address the request came to.
    #[serde(default)]
    pub base_uri: Option<String>,
    /// The open-data office's address, for the DCAT contact point.
    pub contact_email: String,
    /// The administration's home page.
    pub homepage: String,
}

/// The licence of every download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    /// SPDX-style identifier (`CC-BY-4.0`), as Frictionless expects.
    pub id: String,
    pub title: String,
    /// The licence document.
    pub url: String,
    /// The kind of licence, from the ADMS licence-type vocabulary (DCAT-AP_IT `dct:type`).
    pub licence_type: String,
    /// The text users must reproduce, e.g. `Comune di Cesena – dati civica`.
    pub attribution: String,
}

/// Publisher and licence of the open data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenDataConfig {
    pub publisher: Publisher,
    pub licence: Licence,
}

impl Default for OpenDataConfig {
    /// The sample city: Cesena, CC BY 4.0.
    fn default() -> Self {
        OpenDataConfig {
            publisher: Publisher {
                name: "Comune di Cesena".into(),
                ipa_code: "c_c573".into(),
                base_uri: None,
                contact_email: "opendata@comune.cesena.fc.it".into(),
                homepage: "https://www.comune.cesena.fc.it".into(),
            },
            licence: Licence {
                id: "CC-BY-4.0".into(),
                title: "Creative Commons Attribuzione 4.0 Internazionale (CC BY 4.0)".into(),
                url: "https://creativecommons.org/licenses/by/4.0/".into(),
                licence_type: "http://purl.org/adms/licencetype/Attribution".into(),
                attribution: "Comune di Cesena".into(),
            },
        }
    }
}

impl OpenDataConfig {
    /// Reads a configuration (TOML with `[publisher]` and `[licence]`).
    pub fn parse(text: &str, name: &str) -> Result<OpenDataConfig> {
        toml::from_str(text).map_err(|e| Error::Catalogue {
            message: format!("{name}: {e}"),
        })
    }
}

/// How often a dataset is updated: an entry of the EU frequency vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Monthly,
    Annual,
}

impl Frequency {
    /// The IRI in the EU "frequency" authority table.
    pub fn iri(self) -> &'static str {
        match self {
            Frequency::Monthly => {
                "http://publications.europa.eu/resource/authority/frequency/MONTHLY"
            }
            Frequency::Annual => {
                "http://publications.europa.eu/resource/authority/frequency/ANNUAL"
            }
        }
    }
}

/// What a dataset computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// A catalogue KPI broken down by `by`, for the public.
    Kpi {
        kpi: &'static str,
        by: &'static [Dimension],
    },
    /// Ratings (1–10) counted by service, year and score.
    SatisfactionDistribution,
}

/// One published table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    /// The name in URLs and files (`online_share_by_service_year`).
    pub id: &'static str,
    pub title_it: &'static str,
    pub title_en: &'static str,
    pub description_it: &'static str,
    pub description_en: &'static str,
    pub kind: DatasetKind,
    pub frequency: Frequency,
}

/// Every published dataset.
pub const DATASETS: &[Dataset] = &[
    Dataset {
        id: "online_share_by_service_year",
        title_it: "Quota di richieste online per servizio e anno",
        title_en: "Online share of requests by service and year",
        description_it: "Richieste presentate online (sito o app) sul totale delle richieste presentate, per servizio e anno, con numeratore, denominatore e intervallo di confidenza al 95%. Le celle con meno osservazioni della soglia di riservatezza sono vuote.",
        description_en: "Requests made online (website or app) out of all requests submitted, by service and year, with numerator, denominator and 95% confidence interval. Cells with fewer observations than the confidentiality threshold are empty.",
        kind: DatasetKind::Kpi {
            kpi: "online_share",
            by: &[Dimension::Service, Dimension::Year],
        },
        frequency: Frequency::Annual,
    },
    Dataset {
        id: "online_share_by_service_month",
        title_it: "Quota di richieste online per servizio e mese",
        title_en: "Online share of requests by service and month",
        description_it: "Richieste presentate online (sito o app) sul totale delle richieste presentate, per servizio e mese. Le celle con meno osservazioni della soglia di riservatezza sono vuote.",
        description_en: "Requests made online (website or app) out of all requests submitted, by service and month. Cells with fewer observations than the confidentiality threshold are empty.",
        kind: DatasetKind::Kpi {
            kpi: "online_share",
            by: &[Dimension::Service, Dimension::Month],
        },
        frequency: Frequency::Monthly,
    },
    Dataset {
        id: "channel_mix_by_service_year",
        title_it: "Richieste per servizio, canale e anno",
        title_en: "Requests by service, channel and year",
        description_it: "Numero di richieste presentate per servizio, canale (online, app, sportello, PEC, …) e anno. Le celle con meno osservazioni della soglia di riservatezza sono vuote.",
        description_en: "Number of requests submitted by service, channel (online, app, counter, certified e-mail, …) and year. Cells with fewer observations than the confidentiality threshold are empty.",
        kind: DatasetKind::Kpi {
            kpi: "requests",
            by: &[Dimension::Service, Dimension::Channel, Dimension::Year],
        },
        frequency: Frequency::Annual,
    },
    Dataset {
        id: "satisfaction_by_service_year",
        title_it: "Distribuzione dei voti di soddisfazione per servizio e anno",
        title_en: "Satisfaction ratings by service and year",
        description_it: "Numero di voti (da 1 a 10) dati dagli utenti nei questionari e al termine delle richieste, per servizio, anno e voto. Le celle con meno osservazioni della soglia di riservatezza sono vuote.",
        description_en: "Number of ratings (1 to 10) given by users in surveys and at the end of requests, by service, year and score. Cells with fewer observations than the confidentiality threshold are empty.",
        kind: DatasetKind::SatisfactionDistribution,
        frequency: Frequency::Annual,
    },
    Dataset {
        id: "requests_by_service_year",
        title_it: "Richieste presentate per servizio e anno",
        title_en: "Requests submitted by service and year",
        description_it: "Numero di richieste presentate da tutti i canali, escluse quelle abbandonate prima dell'invio, per servizio e anno. Le celle con meno osservazioni della soglia di riservatezza sono vuote.",
        description_en: "Number of requests submitted through any channel, excluding those abandoned before submission, by service and year. Cells with fewer observations than the confidentiality threshold are empty.",
        kind: DatasetKind::Kpi {
            kpi: "requests",
            by: &[Dimension::Service, Dimension::Year],
        },
        frequency: Frequency::Annual,
    },
];

/// The dataset named `id`, if published.
pub fn dataset(id: &str) -> Option<&'static Dataset> {
    DATASETS.iter().find(|d| d.id == id)
}

impl Engine {
    /// The date of the latest commit (UTC), `None` before the first ingest or when the
    /// commit record carries no readable date.
    pub fn last_modified(&self) -> Result<Option<chrono::NaiveDate>> {
        let version = self.version()?;
        if version == 0 {
            return Ok(None);
        }
        let path = self.layout().commit_record(version);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Warehouse {
            path: path.display().to_string(),
            source,
        })?;
        let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(record["committed_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.date_naive()))
    }
}

/// A computed dataset: its rows as one Arrow batch and the warehouse version they come from.
#[derive(Debug, Clone)]
pub struct DatasetTable {
    pub dataset: &'static Dataset,
    pub batch: RecordBatch,
    pub version: u64,
}

/// The ratings scale.
const SCORES: std::ops::RangeInclusive<i32> = 1..=10;

impl Engine {
    /// Computes a published dataset. Only disclosure-controlled aggregates come out.
    pub async fn dataset(&self, dataset: &'static Dataset) -> Result<DatasetTable> {
        let version = self.version()?;
        let batch = match dataset.kind {
            DatasetKind::Kpi { kpi, by } => {
                let query = KpiQuery::new(kpi)
                    .by(by.to_vec())
                    .for_audience(Audience::Public);
                let result = self.kpi(&query).await?;
                let batch = result.batch()?;
                if result.kpi.measure == Measure::Count {
                    count_columns(&batch, by.len(), "requests")?
                } else {
                    batch
                }
            }
            DatasetKind::SatisfactionDistribution => self.satisfaction_distribution().await?,
        };
        Ok(DatasetTable {
            dataset,
            batch,
            version,
        })
    }

    /// Ratings counted by service, year and score, suppressed together: a withheld score
    /// level could otherwise be recomputed from the published number of ratings of its
    /// service and year (the `n` of `satisfaction_mean`), so the disclosure rule runs over
    /// the three dimensions at once rather than over each level alone.
    async fn satisfaction_distribution(&self) -> Result<RecordBatch> {
        let rows = self.score_distribution(Audience::Public).await?;
        let text = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.dims[i].clone()).collect::<Vec<_>>(),
            ))
        };
        let integer = |i: usize| -> ArrayRef {
            Arc::new(Int32Array::from(
                rows.iter()
                    .map(|r| r.dims[i].parse::<i32>().ok())
                    .collect::<Vec<_>>(),
            ))
        };
        let schema = Schema::new(vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("year", DataType::Int32, true),
            Field::new("score", DataType::Int32, true),
            Field::new("ratings", DataType::Int64, true),
            Field::new("flag", DataType::Utf8, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            text(0),
            integer(1),
            integer(2),
            Arc::new(Int64Array::from(
                rows.iter()
                    .map(|r| r.n.map(|n| n as i64))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| r.flag.filter(|f| *f == Flag::Suppressed).map(Flag::as_str))
                    .collect::<Vec<_>>(),
            )),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).map_err(|source| Error::Encode { source })
    }

    /// The satisfaction distribution: ratings (surveys and end-of-request ratings, the source
    /// of the satisfaction KPIs) counted by service, year and score over all channels; for
    /// the public, suppressed jointly over the three dimensions. Rows are
    /// `dims = [service, year, score]` with the count in `n`; a withheld cell has `n = None`
    /// and `flag = suppressed`; a score nobody gave has no row. Sorted by service, year, score.
    pub async fn score_distribution(&self, audience: Audience) -> Result<Vec<KpiRow>> {
        let base = self.catalogue().kpi("satisfaction_mean")?.clone();
        let mut catalogue = self.catalogue().clone();
        for score in SCORES {
            let mut def: KpiDef = base.clone();
            def.id = format!("satisfaction_score_{score}");
            def.measure = Measure::Count;
            def.targets.clear();
            def.filter.insert(
                "score".into(),
                Condition {
                    ge: Some(f64::from(score)),
                    le: Some(f64::from(score)),
                    ..Condition::default()
                },
            );
            catalogue.kpis.push(def);
        }
        let min_cell = catalogue.disclosure.min_cell;
        let engine = self.clone().with_catalogue(catalogue);
        let mut rows: Vec<KpiRow> = Vec::new();
        for score in SCORES {
            // Internal here: the joint suppression below is applied before anything leaves.
            let query = KpiQuery::new(format!("satisfaction_score_{score}"))
                .by(vec![Dimension::Service, Dimension::Year])
                .for_audience(Audience::Internal);
            for mut row in engine.kpi(&query).await?.rows {
                row.dims.push(score.to_string());
                rows.push(row);
            }
        }
        if audience == Audience::Public {
            crate::disclosure::suppress(&mut rows, 3, min_cell);
        }
        rows.sort_by(|a, b| {
            let key = |r: &KpiRow| {
                (
                    r.dims[0].clone(),
                    r.dims[1].parse::<i32>().unwrap_or(0),
                    r.dims[2].parse::<i32>().unwrap_or(0),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(rows)
    }
}

/// The columns of a count KPI worth publishing: the dimensions, the count (named `name`),
/// its change on the previous period and the flag. (Numerator, denominator and interval
/// say nothing more about a count.)
fn count_columns(batch: &RecordBatch, n_dims: usize, name: &str) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for i in 0..n_dims {
        fields.push(schema.field(i).as_ref().clone());
        columns.push(batch.column(i).clone());
    }
    for (column, published) in [("n", name), ("change", "change"), ("flag", "flag")] {
        let index = schema
            .index_of(column)
            .map_err(|source| Error::Encode { source })?;
        fields.push(schema.field(index).as_ref().clone().with_name(published));
        columns.push(batch.column(index).clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|source| Error::Encode { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_configuration_loads_and_matches_the_defaults() {
        let text = include_str!("../../../data/opendata.example.toml");
        let mut config = OpenDataConfig::parse(text, "opendata.example.toml").unwrap();
        assert_eq!(
            config.publisher.base_uri.as_deref(),
            Some("https://dati.example.it")
        );
        config.publisher.base_uri = None;
        assert_eq!(config, OpenDataConfig::default());
        let unknown = format!("{text}\ncolour = 1\n");
        let err = OpenDataConfig::parse(&unknown, "x.toml").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn dataset_ids_are_unique_and_url_safe() {
        let mut ids: Vec<&str> = DATASETS.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), DATASETS.len());
        for id in ids {
            assert!(
                id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{id}"
            );
            assert_eq!(
                DownloadFormat::split_file_name(&format!("{id}.csv")).map(|s| s.0),
                Some(id)
            );
        }
    }
}
