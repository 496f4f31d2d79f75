//! Recognising the columns of a log from its header: canonical names, the common Italian
//! names of municipal exports, and a profile's explicit mapping.

use std::collections::BTreeMap;

/// The kinds of log civica stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// Service requests: table `requests`.
    Requests,
    /// Satisfaction-survey responses: table `surveys`.
    Surveys,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Requests => "requests",
            LogKind::Surveys => "surveys",
        }
    }

    /// Canonical input columns, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            LogKind::Requests => &crate::schema::INPUT_COLUMNS,
            LogKind::Surveys => &crate::schema::SURVEY_INPUT_COLUMNS,
        }
    }

    /// Columns that every file of this kind must have (or get from a profile default).
    pub fn required(self) -> &'static [&'static str] {
        match self {
            LogKind::Requests => &crate::schema::REQUIRED_INPUT_COLUMNS,
            LogKind::Surveys => &crate::schema::REQUIRED_SURVEY_COLUMNS,
        }
    }

    /// Header names (normalised) recognised for each canonical column.
    fn aliases(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            LogKind::Requests => &[
                (
                    "request_id",
                    &[
                        "id_pratica",
                        "id_richiesta",
                        "numero_pratica",
                        "n_pratica",
                        "num_pratica",
                    ],
                ),
                ("service", &["servizio", "codice_servizio"]),
                ("channel", &["canale", "canale_presentazione"]),
                (
                    "submitted_at",
                    &["data_presentazione", "data_richiesta", "data_invio"],
                ),
                (
                    "completed_at",
                    &["data_conclusione", "data_chiusura", "data_evasione"],
                ),
                ("status", &["stato", "esito"]),
                ("auth_method", &["metodo_autenticazione", "autenticazione"]),
                ("citizen_id", &["codice_fiscale", "cf"]),
                ("amount_eur", &["importo", "importo_euro", "importo_eur"]),
                (
                    "satisfaction",
                    &["voto", "voto_soddisfazione", "soddisfazione"],
                ),
            ],
            LogKind::Surveys => &[
                (
                    "response_id",
                    &["id_risposta", "id_questionario", "numero_risposta"],
                ),
                ("service", &["servizio", "codice_servizio"]),
                ("channel", &["canale"]),
                ("responded_at", &["data_risposta", "data_compilazione"]),
                (
                    "score",
                    &["voto", "punteggio", "valutazione", "voto_soddisfazione"],
                ),
                (
                    "request_id",
                    &["id_pratica", "id_richiesta", "numero_pratica"],
                ),
            ],
        }
    }

    /// The canonical column a header name stands for, if any.
    pub fn canonical(self, header: &str) -> Option<&'static str> {
        let name = normalise(header);
        self.columns()
            .iter()
            .find(|c| **c == name)
            .copied()
            .or_else(|| {
                self.aliases()
                    .iter()
                    .find(|(_, names)| names.contains(&name.as_str()))
                    .map(|(c, _)| *c)
            })
    }
}

/// A header name in comparable form: lower case, accents dropped, runs of anything but
/// letters and digits turned into one `_`. `"Data presentazione"` → `data_presentazione`.
pub fn normalise(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    for c in header.trim().trim_start_matches('\u{feff}').chars() {
        let c = match c {
            'à' | 'á' | 'À' | 'Á' => 'a',
            'è' | 'é' | 'È' | 'É' => 'e',
            'ì' | 'í' | 'Ì' | 'Í' => 'i',
            'ò' | 'ó' | 'Ò' | 'Ó' => 'o',
            'ù' | 'ú' | 'Ù' | 'Ú' => 'u',
            c => c.to_ascii_lowercase(),
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Recognises the kind of a log from its header names.
pub fn detect_kind<'a>(names: impl IntoIterator<Item = &'a str>) -> LogKind {
    let names: Vec<&str> = names.into_iter().collect();
    let is_survey = names
        .iter()
        .any(|n| LogKind::Surveys.canonical(n) == Some("response_id"));
    if is_survey {
        LogKind::Surveys
    } else {
        LogKind::Requests
    }
}

/// Where each canonical column comes from in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub kind: LogKind,
    /// For each canonical column (in `kind.columns()` order), its position in the header.
    pub positions: Vec<Option<usize>>,
    /// Header names that are not used (reported once as a warning).
    pub unknown: Vec<String>,
    /// Number of named columns in the header (trailing empty names excluded).
    pub width: usize,
}

impl ColumnMap {
    /// Maps header `names` for `kind`, applying a profile's `columns` (canonical → header)
    /// first. `Err` lists the required columns that are missing and have no default.
    pub fn new(
        kind: LogKind,
        names: &[String],
        explicit: &BTreeMap<String, String>,
        defaults: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<String>> {
        let columns = kind.columns();
        let mut positions = vec![None; columns.len()];
        let mut used = vec![false; names.len()];
        for (canonical, header) in explicit {
            if let Some(slot) = columns.iter().position(|c| c == canonical)
                && let Some(i) = names.iter().position(|n| normalise(n) == normalise(header))
            {
                positions[slot] = Some(i);
                used[i] = true;
            }
        }
        for (i, name) in names.iter().enumerate() {
            if used[i] {
                continue;
            }
            if let Some(canonical) = kind.canonical(name)
                && let Some(slot) = columns.iter().position(|c| *c == canonical)
                && positions[slot].is_none()
            {
                positions[slot] = Some(i);
                used[i] = true;
            }
        }
        let width = names
            .iter()
            .rposition(|n| !n.trim().is_empty())
            .map_or(0, |i| i + 1);
        let unknown = names
            .iter()
            .enumerate()
            .filter(|(i, n)| !used[*i] && !n.trim().is_empty())
            .map(|(_, n)| n.trim().to_string())
            .collect();
        let missing: Vec<String> = kind
            .required()
            .iter()
            .filter(|c| {
                let slot = columns.iter().position(|x| x == *c).unwrap_or(0);
                positions[slot].is_none() && !defaults.contains_key(**c)
            })
            .map(|c| c.to_string())
            .collect();
        if missing.is_empty() {
            Ok(ColumnMap {
                kind,
                positions,
                unknown,
                width,
            })
        } else {
            Err(missing)
        }
    }

    /// Position of canonical column `name` in the file, if present.
    pub fn position(&self, name: &str) -> Option<usize> {
        let slot = self.kind.columns().iter().position(|c| *c == name)?;
        self.positions[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn italian_headers_are_recognised() {
        let header = names(&[
            "ID Pratica",
            "Servizio",
            "Canale presentazione",
            "Data presentazione",
            "Data conclusione",
            "Esito",
            "Autenticazione",
            "Codice Fiscale",
            "Importo (€)",
            "Voto",
            "Note",
            "",
            "",
        ]);
        let map = ColumnMap::new(
            LogKind::Requests,
            &header,
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(map.position("request_id"), Some(0));
        assert_eq!(map.position("citizen_id"), Some(7));
        assert_eq!(map.position("amount_eur"), Some(8));
        assert_eq!(map.position("satisfaction"), Some(9));
        assert_eq!(map.unknown, ["Note"]);
        assert_eq!(map.width, 11);
    }

    #[test]
    fn profile_mapping_wins_and_defaults_fill_required_columns() {
        let header = names(&["Num. pratica", "Quando", "Come", "Stato"]);
        let explicit: BTreeMap<String, String> = [
            ("request_id", "Num. pratica"),
            ("submitted_at", "Quando"),
            ("channel", "Come"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let defaults: BTreeMap<String, String> =
            [("service".to_string(), "suap".to_string())].into();
        let map = ColumnMap::new(LogKind::Requests, &header, &explicit, &defaults).unwrap();
        assert_eq!(map.position("submitted_at"), Some(1));
        assert!(map.unknown.is_empty());
        let missing =
            ColumnMap::new(LogKind::Requests, &header, &explicit, &BTreeMap::new()).unwrap_err();
        assert_eq!(missing, ["service"]);
    }

    #[test]
    fn kind_is_recognised_from_the_header() {
        assert_eq!(
            detect_kind(["id_risposta", "servizio", "voto"]),
            LogKind::Surveys
        );
        assert_eq!(detect_kind(["request_id", "service"]), LogKind::Requests);
    }

    #[test]
    fn normalise_handles_spaces_accents_and_symbols() {
        assert_eq!(normalise(" Data  Presentazione "), "data_presentazione");
        assert_eq!(normalise("\u{feff}Città"), "citta");
        assert_eq!(normalise("Importo (€)"), "importo");
    }
}
