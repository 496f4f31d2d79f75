//! Recognising the columns of a log from its header: canonical names, the common Italian
//! (and English) names of municipal exports, and a profile's explicit mapping.

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
                // Most specific first: when a file has two candidates for one column, the one
                // listed first wins (`id_pratica` over `protocollo`, `stato` over `esito`).
                (
                    "request_id",
                    &[
                        "id_pratica",
                        "id_richiesta",
                        "numero_pratica",
                        "n_pratica",
                        "num_pratica",
                        "codice_pratica",
                        "cod_pratica",
                        "numero_richiesta",
                        "n_richiesta",
                        "codice_richiesta",
                        "id_domanda",
                        "numero_domanda",
                        "id_istanza",
                        "numero_istanza",
                        "id_segnalazione",
                        "numero_segnalazione",
                        "n_segnalazione",
                        "codice_segnalazione",
                        "id_reclamo",
                        "numero_reclamo",
                        "n_reclamo",
                        "numero_ticket",
                        "n_ticket",
                        "protocollo",
                        "numero_protocollo",
                        "n_protocollo",
                        "pratica",
                        "id",
                        // English.
                        "case_id",
                        "case_number",
                        "case_no",
                        "case_reference",
                        "request_number",
                        "request_no",
                        "request_reference",
                        "reference_number",
                        "reference",
                        "ticket_id",
                        "ticket_number",
                        "application_id",
                        "application_number",
                        "record_id",
                    ],
                ),
                (
                    "service",
                    &[
                        "servizio",
                        "codice_servizio",
                        "servizio_richiesto",
                        "nome_servizio",
                        "tipo_servizio",
                        "procedimento",
                        "tipo_procedimento",
                        "tipologia_procedimento",
                        "tipo_pratica",
                        "tipologia_pratica",
                        "tipo_richiesta",
                        "tipologia_richiesta",
                        "tipo_istanza",
                        "tipologia",
                        "tipo_segnalazione",
                        "tipologia_segnalazione",
                        "categoria_segnalazione",
                        "tipo_reclamo",
                        "categoria",
                        // English.
                        "service_name",
                        "service_code",
                        "service_type",
                        "procedure",
                        "procedure_type",
                        "case_type",
                        "request_type",
                        "application_type",
                    ],
                ),
                (
                    "channel",
                    &[
                        "canale",
                        "canale_presentazione",
                        "canale_di_presentazione",
                        "canale_accesso",
                        "canale_di_accesso",
                        "canale_ingresso",
                        "modalita_presentazione",
                        "modalita_di_presentazione",
                        "modalita_invio",
                        "modalita_di_invio",
                        "mezzo_presentazione",
                        "modalita",
                        "canale_segnalazione",
                        "fonte",
                        "fonte_segnalazione",
                        "origine",
                        "origine_segnalazione",
                        // English.
                        "submission_channel",
                        "channel_of_submission",
                        "access_channel",
                        "contact_channel",
                        "submission_method",
                        "submitted_via",
                    ],
                ),
                (
                    "submitted_at",
                    &[
                        "data_presentazione",
                        "data_richiesta",
                        "data_invio",
                        "data_ora_presentazione",
                        "data_e_ora_presentazione",
                        "data_domanda",
                        "data_istanza",
                        "data_protocollo",
                        "data_ricezione",
                        "data_inserimento",
                        "data_apertura",
                        "data_creazione",
                        "data_segnalazione",
                        "data_reclamo",
                        "data",
                        // English.
                        "submitted",
                        "date_submitted",
                        "submission_date",
                        "submitted_on",
                        "submission_time",
                        "created",
                        "created_at",
                        "created_on",
                        "creation_date",
                        "date_created",
                        "opened_at",
                        "opened_on",
                        "date_opened",
                        "received_at",
                        "date_received",
                        "request_date",
                        "application_date",
                        "date",
                    ],
                ),
                (
                    "completed_at",
                    &[
                        "data_conclusione",
                        "data_chiusura",
                        "data_evasione",
                        "data_conclusione_procedimento",
                        "data_chiusura_pratica",
                        "data_completamento",
                        "data_fine",
                        "data_esito",
                        "data_rilascio",
                        "data_provvedimento",
                        // English.
                        "completed",
                        "date_completed",
                        "completion_date",
                        "completed_on",
                        "closed",
                        "closed_at",
                        "closed_on",
                        "date_closed",
                        "closing_date",
                        "resolved",
                        "resolved_at",
                        "resolved_on",
                        "date_resolved",
                        "resolution_date",
                        "finished_at",
                        "decision_date",
                    ],
                ),
                (
                    "status",
                    &[
                        "stato",
                        "esito",
                        "stato_pratica",
                        "stato_richiesta",
                        "stato_domanda",
                        "stato_procedimento",
                        "stato_istanza",
                        "stato_segnalazione",
                        "stato_reclamo",
                        "esito_pratica",
                        "esito_procedimento",
                        // English.
                        "state",
                        "case_status",
                        "request_status",
                        "application_status",
                        "outcome",
                        "result",
                    ],
                ),
                (
                    "auth_method",
                    &[
                        "metodo_autenticazione",
                        "autenticazione",
                        "metodo_di_autenticazione",
                        "modalita_autenticazione",
                        "modalita_di_autenticazione",
                        "tipo_autenticazione",
                        "identita_digitale",
                        "modalita_accesso",
                        "tipo_accesso",
                        // English.
                        "authentication",
                        "authentication_method",
                        "auth",
                        "login_method",
                        "sign_in_method",
                        "identity_provider",
                        "idp",
                    ],
                ),
                (
                    "citizen_id",
                    &[
                        "codice_fiscale",
                        "cf",
                        "codice_fiscale_richiedente",
                        "cf_richiedente",
                        "codice_fiscale_dichiarante",
                        "cf_dichiarante",
                        "codicefiscale",
                        "cod_fiscale",
                        "cod_fisc",
                        "codfisc",
                        "c_f",
                        // English.
                        "tax_code",
                        "fiscal_code",
                        "tax_id",
                        "national_id",
                        "personal_id",
                        "citizen",
                        "citizen_code",
                        "applicant_id",
                        "applicant_tax_code",
                    ],
                ),
                (
                    "amount_eur",
                    &[
                        "importo",
                        "importo_euro",
                        "importo_eur",
                        "importo_pagato",
                        "importo_versato",
                        "importo_pagamento",
                        "importo_totale",
                        "totale",
                        // English.
                        "amount",
                        "amount_paid",
                        "amount_eur_paid",
                        "fee",
                        "fee_paid",
                        "fee_eur",
                        "fee_paid_eur",
                        "payment",
                        "payment_amount",
                        "paid",
                        "total",
                        "price",
                        "cost",
                    ],
                ),
                (
                    "satisfaction",
                    &[
                        "voto",
                        "voto_soddisfazione",
                        "soddisfazione",
                        "gradimento",
                        "voto_gradimento",
                        "valutazione",
                        // English.
                        "rating",
                        "score",
                        "satisfaction_score",
                        "satisfaction_rating",
                        "customer_rating",
                        "feedback_score",
                    ],
                ),
            ],
            LogKind::Surveys => &[
                (
                    "response_id",
                    &[
                        "id_risposta",
                        "id_questionario",
                        "numero_risposta",
                        // English.
                        "survey_response_id",
                        "survey_id",
                        "questionnaire_id",
                        "feedback_id",
                        "response_number",
                    ],
                ),
                (
                    "service",
                    &[
                        "servizio",
                        "codice_servizio",
                        // English.
                        "service_name",
                        "service_code",
                    ],
                ),
                (
                    "channel",
                    &[
                        "canale",
                        "canale_presentazione",
                        "canale_di_accesso",
                        "modalita",
                        // English.
                        "submission_channel",
                        "access_channel",
                    ],
                ),
                (
                    "responded_at",
                    &[
                        "data_risposta",
                        "data_compilazione",
                        "data_valutazione",
                        "data",
                        // English.
                        "response_date",
                        "responded",
                        "date_responded",
                        "submitted_at",
                        "submitted",
                        "date_submitted",
                        "created_at",
                        "date",
                    ],
                ),
                (
                    "score",
                    &[
                        "voto",
                        "punteggio",
                        "valutazione",
                        "voto_soddisfazione",
                        "gradimento",
                        "voto_gradimento",
                        // English.
                        "rating",
                        "satisfaction",
                        "satisfaction_score",
                        "grade",
                    ],
                ),
                (
                    "request_id",
                    &[
                        "id_pratica",
                        "id_richiesta",
                        "numero_pratica",
                        // English.
                        "case_id",
                        "case_number",
                        "ticket_id",
                        "application_id",
                        "request_number",
                    ],
                ),
            ],
        }
    }

    /// The canonical column a header name stands for, if any.
    pub fn canonical(self, header: &str) -> Option<&'static str> {
        self.ranked(header).map(|(c, _)| c)
    }

    /// The canonical column a header name stands for and how specific the name is: 0 for
    /// the canonical name itself, then the alias's place in the list.
    fn ranked(self, header: &str) -> Option<(&'static str, usize)> {
        let name = normalise(header);
        if let Some(c) = self.columns().iter().find(|c| **c == name) {
            return Some((c, 0));
        }
        self.aliases()
            .iter()
            .find_map(|(c, names)| {
                names
                    .iter()
                    .position(|n| *n == name)
                    .map(|rank| (*c, rank + 1))
            })
            .or_else(|| {
                self.by_words(&name)
                    .or_else(|| self.by_english_words(&name))
                    .map(|c| (c, FALLBACK_RANK))
            })
    }

    /// The same for English names (`Date of submission`, `Case reference number`,
    /// `Amount paid in euro`). A name about a date or a time stands for a date column or for
    /// none: `Payment date` is not an amount.
    fn by_english_words(self, name: &str) -> Option<&'static str> {
        let words: Vec<&str> = name.split('_').collect();
        let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
        if has(&["date", "time", "timestamp", "datetime", "when", "day"]) {
            return match self {
                LogKind::Requests
                    if has(&[
                        "submitted",
                        "submission",
                        "created",
                        "creation",
                        "received",
                        "receipt",
                        "opened",
                        "filed",
                        "application",
                        "request",
                    ]) =>
                {
                    Some("submitted_at")
                }
                LogKind::Requests
                    if has(&[
                        "completed",
                        "completion",
                        "closed",
                        "closing",
                        "closure",
                        "resolved",
                        "resolution",
                        "decision",
                        "decided",
                        "finished",
                        "end",
                    ]) =>
                {
                    Some("completed_at")
                }
                LogKind::Surveys
                    if has(&[
                        "response",
                        "responded",
                        "survey",
                        "feedback",
                        "submitted",
                        "submission",
                    ]) =>
                {
                    Some("responded_at")
                }
                _ => None,
            };
        }
        let reference = has(&["id", "number", "no", "nr", "ref", "reference", "code"]);
        match self {
            LogKind::Requests => {
                if has(&["tax", "fiscal"]) || has(&["citizen", "applicant"]) && reference {
                    Some("citizen_id")
                } else if has(&["authentication", "login", "auth", "identity"]) {
                    Some("auth_method")
                } else if has(&["status", "state", "outcome"]) {
                    Some("status")
                } else if has(&["channel"]) {
                    Some("channel")
                } else if has(&["amount", "fee", "paid", "payment"]) {
                    Some("amount_eur")
                } else if has(&["rating", "satisfaction"]) {
                    Some("satisfaction")
                } else if reference && has(&["case", "request", "application", "ticket", "file"]) {
                    Some("request_id")
                } else if has(&["service", "procedure"]) {
                    Some("service")
                } else {
                    None
                }
            }
            LogKind::Surveys => {
                if reference && has(&["response", "survey", "questionnaire", "feedback"]) {
                    Some("response_id")
                } else if reference && has(&["case", "request", "application", "ticket"]) {
                    Some("request_id")
                } else if has(&["rating", "score", "satisfaction"]) {
                    Some("score")
                } else if has(&["channel"]) {
                    Some("channel")
                } else if has(&["service"]) {
                    Some("service")
                } else {
                    None
                }
            }
        }
    }

    /// The column a name stands for by the words in it, when it is none of the listed names
    /// (`data_invio_istanza`, `stato_della_pratica`, `importo_versato_euro`): the last resort,
    /// below every listed name.
    fn by_words(self, name: &str) -> Option<&'static str> {
        let words: Vec<&str> = name.split('_').collect();
        let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
        let first = |list: &[&str]| words.first().is_some_and(|w| list.contains(w));
        let date = first(&["data", "dt", "date"]);
        match self {
            LogKind::Requests => {
                if first(&["codice", "cod"]) && has(&["fiscale"])
                    || first(&["cf"])
                        && has(&[
                            "richiedente",
                            "dichiarante",
                            "utente",
                            "cittadino",
                            "intestatario",
                        ])
                {
                    Some("citizen_id")
                } else if date
                    && has(&[
                        "presentazione",
                        "invio",
                        "richiesta",
                        "protocollo",
                        "ricezione",
                        "domanda",
                        "istanza",
                        "inserimento",
                        "apertura",
                        "creazione",
                        "arrivo",
                        "segnalazione",
                        "reclamo",
                    ])
                {
                    Some("submitted_at")
                } else if date
                    && has(&[
                        "conclusione",
                        "chiusura",
                        "evasione",
                        "fine",
                        "esito",
                        "rilascio",
                        "completamento",
                        "provvedimento",
                        "definizione",
                    ])
                {
                    Some("completed_at")
                } else if has(&["autenticazione", "spid", "identita"]) {
                    Some("auth_method")
                } else if first(&["stato", "esito"]) {
                    Some("status")
                } else if first(&["canale"])
                    || first(&["modalita"]) && has(&["presentazione", "invio", "accesso"])
                {
                    Some("channel")
                } else if first(&["importo"]) {
                    Some("amount_eur")
                } else if first(&["voto", "gradimento", "punteggio"]) || has(&["soddisfazione"]) {
                    Some("satisfaction")
                } else if first(&["id", "numero", "num", "n", "nr", "codice", "cod"])
                    && has(&[
                        "pratica",
                        "richiesta",
                        "domanda",
                        "istanza",
                        "protocollo",
                        "segnalazione",
                        "reclamo",
                        "ticket",
                    ])
                {
                    Some("request_id")
                } else if has(&["servizio", "procedimento"]) {
                    Some("service")
                } else {
                    None
                }
            }
            LogKind::Surveys => {
                if date && has(&["risposta", "compilazione", "valutazione", "questionario"]) {
                    Some("responded_at")
                } else if first(&["voto", "punteggio", "gradimento"]) {
                    Some("score")
                } else if first(&["canale"]) {
                    Some("channel")
                } else if has(&["servizio"]) {
                    Some("service")
                } else {
                    None
                }
            }
        }
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

/// The rank of a name recognised only by its words (below every listed alias).
const FALLBACK_RANK: usize = 1_000;

/// How many of `names` stand for a column of the same kind of log (the larger count of the
/// two kinds), counting `extra` names (a profile's explicit mapping) as recognised too. A
/// header row has several; a title or a note above it has none.
pub fn recognised_names<'a>(names: impl IntoIterator<Item = &'a str>, extra: &[String]) -> usize {
    let names: Vec<String> = names.into_iter().map(normalise).collect();
    let extra: Vec<String> = extra.iter().map(|n| normalise(n)).collect();
    [LogKind::Requests, LogKind::Surveys]
        .into_iter()
        .map(|kind| {
            names
                .iter()
                .filter(|n| !n.is_empty() && (extra.contains(n) || kind.canonical(n).is_some()))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The fewest recognised names that make a row the header when a file has lines above it.
pub const HEADER_MIN_NAMES: usize = 2;

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
        // Each column not fixed by the profile takes the most specific name that stands for
        // it (the first in the file among equals); the other candidates are reported unused.
        let mut best: Vec<Option<(usize, usize)>> = vec![None; columns.len()];
        for (i, name) in names.iter().enumerate() {
            if used[i] {
                continue;
            }
            if let Some((canonical, rank)) = kind.ranked(name)
                && let Some(slot) = columns.iter().position(|c| *c == canonical)
                && positions[slot].is_none()
                && best[slot].is_none_or(|(_, r)| rank < r)
            {
                best[slot] = Some((i, rank));
            }
        }
        for (slot, chosen) in best.iter().enumerate() {
            if let Some((i, _)) = chosen {
                positions[slot] = Some(*i);
                used[*i] = true;
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

    /// The columns of a requests log with `header`, without a profile.
    fn requests_map(header: &[String]) -> ColumnMap {
        ColumnMap::new(
            LogKind::Requests,
            header,
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap()
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
        let map = requests_map(&header);
        assert_eq!(map.position("request_id"), Some(0));
        assert_eq!(map.position("citizen_id"), Some(7));
        assert_eq!(map.position("amount_eur"), Some(8));
        assert_eq!(map.position("satisfaction"), Some(9));
        assert_eq!(map.unknown, ["Note"]);
        assert_eq!(map.width, 11);
    }

    /// A protocol register's export: none of its names is canonical.
    #[test]
    fn protocol_register_headers_are_recognised() {
        let header = names(&[
            "Protocollo",
            "Tipo procedimento",
            "Modalità di presentazione",
            "Data protocollo",
            "Stato pratica",
            "Data rilascio",
            "CF richiedente",
            "Importo pagato",
        ]);
        let map = requests_map(&header);
        let found: Vec<Option<usize>> = map.positions.clone();
        assert_eq!(
            found,
            [0, 1, 2, 3, 5, 4, usize::MAX, 6, 7, usize::MAX]
                .map(|i| (i != usize::MAX).then_some(i))
        );
        assert!(map.unknown.is_empty(), "{:?}", map.unknown);
    }

    /// Two names for one column: the more specific wins wherever it stands, and the other is
    /// reported as unused.
    #[test]
    fn the_most_specific_name_wins() {
        let header = names(&[
            "Protocollo",
            "Esito",
            "Servizio",
            "Canale",
            "Data",
            "Stato",
            "ID pratica",
            "Data presentazione",
        ]);
        let map = requests_map(&header);
        assert_eq!(map.position("request_id"), Some(6));
        assert_eq!(map.position("status"), Some(5));
        assert_eq!(map.position("submitted_at"), Some(7));
        assert_eq!(map.unknown, ["Protocollo", "Esito", "Data"]);
    }

    /// Names no list has, recognised by their words; listed names still win.
    #[test]
    fn english_headers_of_other_back_offices() {
        let listed = names(&[
            "Case number",
            "Service name",
            "Submission channel",
            "Date submitted",
            "Date closed",
            "Case status",
            "Login method",
            "Tax code",
            "Fee paid (EUR)",
            "Rating",
        ]);
        let by_words = names(&[
            "Application reference number",
            "Type of service",
            "Channel used",
            "Date of submission",
            "Decision date",
            "Current status",
            "Identity used for login",
            "Applicant ID",
            "Amount in euro",
            "Satisfaction (1-10)",
            "Payment date",
        ]);
        for header in [listed, by_words] {
            let map = requests_map(&header);
            let expected: Vec<Option<usize>> = (0..10).map(Some).collect();
            assert_eq!(map.positions, expected, "{header:?}");
        }
        let survey = names(&[
            "Response ID",
            "Service",
            "Channel",
            "Response date",
            "Score",
            "Case number",
        ]);
        assert_eq!(
            detect_kind(survey.iter().map(String::as_str)),
            LogKind::Surveys
        );
        let canonical: Vec<Option<&str>> = survey
            .iter()
            .map(|n| LogKind::Surveys.canonical(n))
            .collect();
        assert_eq!(
            canonical,
            [
                Some("response_id"),
                Some("service"),
                Some("channel"),
                Some("responded_at"),
                Some("score"),
                Some("request_id")
            ]
        );
        // A date about something else is no column: not an amount, not a submission.
        assert_eq!(LogKind::Requests.canonical("Payment date"), None);
        assert_eq!(LogKind::Requests.canonical("Date of birth"), None);
    }

    #[test]
    fn logs_of_reports_and_complaints() {
        // Open-data exports of citizens' reports (segnalazioni) and complaints (reclami): the
        // category stands for the service, the source for the channel.
        for header in [
            names(&[
                "ID segnalazione",
                "Categoria",
                "Fonte",
                "Data segnalazione",
                "Data chiusura",
                "Stato",
            ]),
            names(&[
                "Numero reclamo",
                "Tipo reclamo",
                "Origine",
                "Data reclamo",
                "Data risposta",
                "Stato reclamo",
            ]),
        ] {
            let canonical: Vec<Option<&str>> = header
                .iter()
                .map(|n| LogKind::Requests.canonical(n))
                .collect();
            assert_eq!(
                canonical[..4],
                [
                    Some("request_id"),
                    Some("service"),
                    Some("channel"),
                    Some("submitted_at")
                ],
                "{header:?}"
            );
            assert_eq!(canonical[5], Some("status"), "{header:?}");
        }
        // Unlisted, by their words.
        assert_eq!(
            LogKind::Requests.canonical("N. ticket assistenza"),
            Some("request_id")
        );
        assert_eq!(
            LogKind::Requests.canonical("Data della segnalazione"),
            Some("submitted_at")
        );
        // A service named in the file wins over a category.
        let map = requests_map(&names(&[
            "id_segnalazione",
            "categoria",
            "servizio",
            "canale",
            "data_segnalazione",
            "stato",
        ]));
        assert_eq!(map.positions[1], Some(2));
    }

    #[test]
    fn unlisted_names_are_recognised_by_their_words() {
        let header = names(&[
            "Nr. pratica SUAP",
            "Descrizione procedimento",
            "Canale di arrivo",
            "Data invio istanza",
            "Data/ora fine procedimento",
            "Stato della pratica",
            "Livello autenticazione SPID",
            "Codice fiscale del richiedente",
            "Importo versato (euro)",
            "Voto complessivo",
            "Data di nascita",
        ]);
        let map = requests_map(&header);
        let expected: Vec<Option<usize>> = (0..10).map(Some).collect();
        assert_eq!(map.positions, expected);
        assert_eq!(map.unknown, ["Data di nascita"]);
        // A listed name beats one recognised by its words, wherever it stands.
        let header = names(&[
            "Stato della pratica",
            "Numero pratica",
            "Servizio",
            "Canale",
            "Data presentazione",
            "Stato",
        ]);
        let map = requests_map(&header);
        assert_eq!(map.position("status"), Some(5));
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
