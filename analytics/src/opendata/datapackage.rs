//! The Frictionless Data Package descriptor (`datapackage.json`) of a dataset: one tabular
//! resource (the CSV) with its Table Schema, the marker of withheld cells and the licence.

use datafusion::arrow::datatypes::DataType;
use serde_json::{Value, json};

use super::{DatasetKind, DatasetTable, OpenDataConfig};
use crate::catalogue::Catalogue;

/// Table Schema type of a column.
fn field_type(name: &str, data_type: &DataType) -> &'static str {
    match (name, data_type) {
        ("month", _) => "yearmonth",
        (_, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => "integer",
        (_, DataType::Float32 | DataType::Float64) => "number",
        _ => "string",
    }
}

/// What a column holds, in Italian and English. `value_it`/`value_en` describe the KPI's
/// value column.
fn field_description(name: &str, value_it: &str, value_en: &str) -> (String, String) {
    let (it, en) = match name {
        "service" => (
            "Codice del servizio (vedi l'elenco dei servizi del Comune)",
            "Service code (see the city's list of services)",
        ),
        "channel" => (
            "Canale di presentazione della richiesta (online, app, sportello, pec, …)",
            "Channel the request came through (online, app, counter, certified e-mail, …)",
        ),
        "year" => (
            "Anno solare della presentazione (ora di Roma)",
            "Calendar year of submission (Rome time)",
        ),
        "month" => (
            "Mese della presentazione, AAAA-MM (ora di Roma)",
            "Month of submission, YYYY-MM (Rome time)",
        ),
        "value" => return (value_it.to_string(), value_en.to_string()),
        "numerator" => (
            "Numeratore dell'indicatore (es. richieste online)",
            "Numerator of the indicator (e.g. online requests)",
        ),
        "denominator" => (
            "Denominatore dell'indicatore (es. richieste presentate)",
            "Denominator of the indicator (e.g. requests submitted)",
        ),
        "n" => ("Numero di osservazioni", "Number of observations"),
        "ci_low" => (
            "Estremo inferiore dell'intervallo di confidenza al 95%",
            "Lower bound of the 95% confidence interval",
        ),
        "ci_high" => (
            "Estremo superiore dell'intervallo di confidenza al 95%",
            "Upper bound of the 95% confidence interval",
        ),
        "change" => (
            "Variazione sul periodo precedente (punti percentuali per le quote)",
            "Change on the previous period (percentage points for shares)",
        ),
        "flag" => (
            "Nota: `suppressed` = dato non pubblicato per riservatezza (celle vuote); `low_n` = poche osservazioni, leggere con cautela",
            "Note: `suppressed` = withheld for confidentiality (empty cells); `low_n` = few observations, read with care",
        ),
        "requests" => (
            "Numero di richieste presentate",
            "Number of requests submitted",
        ),
        "score" => ("Voto, da 1 a 10", "Score, from 1 to 10"),
        "ratings" => ("Numero di voti dati", "Number of ratings given"),
        _ => ("", ""),
    };
    (it.to_string(), en.to_string())
}

/// The descriptor of `table`, whose CSV is published at `csv_url`.
pub fn datapackage(
    table: &DatasetTable,
    catalogue: &Catalogue,
    config: &OpenDataConfig,
    csv_url: &str,
) -> Value {
    let dataset = table.dataset;
    let (value_it, value_en) = match dataset.kind {
        DatasetKind::Kpi { kpi, .. } => catalogue
            .kpi(kpi)
            .map(|def| (def.description.it.clone(), def.description.en.clone()))
            .unwrap_or_default(),
        DatasetKind::SatisfactionDistribution => (String::new(), String::new()),
    };
    let fields: Vec<Value> = table
        .batch
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let (it, en) = field_description(field.name(), &value_it, &value_en);
            let mut descriptor = json!({
                "name": field.name(),
                "type": field_type(field.name(), field.data_type()),
                "description": it,
                "description_en": en,
            });
            if field.name() == "flag" {
                descriptor["constraints"] = json!({ "enum": ["suppressed", "low_n"] });
            }
            descriptor
        })
        .collect();
    let licence = json!({
        "name": config.licence.id,
        "path": config.licence.url,
        "title": config.licence.title,
    });
    json!({
        "name": dataset.id.replace('_', "-"),
        "id": format!("{}_{}", config.publisher.ipa_code, dataset.id),
        "title": dataset.title_it,
        "description": dataset.description_it,
        "version": table.version.to_string(),
        "licenses": [licence],
        "contributors": [{
            "title": config.publisher.name,
            "role": "publisher",
            "email": config.publisher.contact_email,
        }],
        "attribution": config.licence.attribution,
        "resources": [{
            "name": dataset.id.replace('_', "-"),
            "path": csv_url,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "dialect": { "delimiter": ",", "lineTerminator": "\r\n", "header": true },
            "licenses": [licence],
            "schema": {
                "fields": fields,
                // A withheld (suppressed) cell is an empty field, never a zero.
                "missingValues": [""],
            },
        }],
    })
}
