//! Languages of the interface: which one a request gets (`?lang=`, then `Accept-Language`,
//! then Italian), the Fluent messages of each (`dashboard/locales/*/civica.ftl`, embedded at
//! compile time) and how each writes numbers and dates.
//!
//! KPI and service names are not here: they come from the catalogue's `it`/`en` fields.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid, static_loader};

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "it",
        // No Unicode isolation marks around arguments: the text goes into HTML and SVG.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::It, Lang::En];

    /// The BCP 47 code, as in `<html lang>` and `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    /// `it`, `en`, or a regional variant (`en-GB`); anything else is `None`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The preferred language among ours in an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (position, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            // Higher quality wins; among equals, the one listed first.
            let better = match best {
                None => true,
                Some((q, p, _)) => quality > q || (quality == q && position < p),
            };
            if better {
                best = Some((quality, position, lang));
            }
        }
        best.map(|(_, _, lang)| lang)
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::It => langid!("it"),
            Lang::En => langid!("en"),
        }
    }

    /// The message `key`. A missing key shows as the key itself (and a test checks that every
    /// key used by the code and the templates exists in both languages).
    pub fn t(self, key: &str) -> String {
        LOCALES
            .try_lookup(&self.id(), key)
            .unwrap_or_else(|| key.to_string())
    }

    /// The message `key` with named arguments, all given as text.
    pub fn t_args(self, key: &str, args: &[(&'static str, String)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), FluentValue::from(value.clone())))
            .collect();
        LOCALES
            .try_lookup_with_args(&self.id(), key, &args)
            .unwrap_or_else(|| key.to_string())
    }

    /// Whether a message exists in this language (without falling back).
    pub fn has(self, key: &str) -> bool {
        match LOCALES.lookup_single_language::<&str>(&self.id(), key, None) {
            Ok(_) => true,
            // A message with arguments, looked up without them, is there all the same.
            // (fluent-templates does not export its error type, hence its `Debug` name.)
            Err(e) => format!("{e:?}").starts_with("FluentError"),
        }
    }

    /// A decimal number with `digits` decimals: `83,0` or `83.0`.
    pub fn decimal(self, value: f64, digits: usize) -> String {
        let text = format!("{value:.digits$}");
        match self {
            Lang::It => text.replace('.', ","),
            Lang::En => text,
        }
    }

    /// A percentage with one decimal: `83,0%` or `83.0%`.
    pub fn percent(self, value: f64) -> String {
        format!("{}%", self.decimal(value, 1))
    }

    /// A whole number with thousands separators: `12.345` or `12,345`.
    pub fn count(self, value: f64) -> String {
        let rounded = value.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let separator = match self {
            Lang::It => '.',
            Lang::En => ',',
        };
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if rounded < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(c);
        }
        out
    }

    /// A signed difference with one decimal: `+3,2` or `−1.5` (with a true minus sign).
    pub fn signed(self, value: f64) -> String {
        let text = self.decimal(value.abs(), 1);
        if text.trim_start_matches(['0', ',', '.']).is_empty() {
            return format!("±{text}");
        }
        if value < 0.0 {
            format!("−{text}")
        } else {
            format!("+{text}")
        }
    }

    /// A date from an RFC 3339 timestamp: `26/11/2026` or `2026-11-26` (ISO 8601).
    pub fn date(self, timestamp: &str) -> String {
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
            return timestamp.to_string();
        };
        match self {
            Lang::It => at.format("%d/%m/%Y").to_string(),
            Lang::En => at.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The language of one request, and whether links must carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LangChoice {
    pub lang: Lang,
    /// True when the language is not the default one a bare URL would give: links and forms
    /// then add `lang=…` so that following them keeps the language.
    pub in_links: bool,
}

impl LangChoice {
    /// `?lang=` wins (an unknown value is ignored), then `Accept-Language`, then Italian.
    pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> LangChoice {
        if let Some(lang) = query.and_then(Lang::parse) {
            return LangChoice {
                lang,
                in_links: true,
            };
        }
        let lang = accept_language
            .and_then(Lang::from_accept_language)
            .unwrap_or_default();
        LangChoice {
            lang,
            in_links: lang != Lang::default(),
        }
    }

    /// `path` with `lang=…` added when links must carry the language. `path` may already have
    /// a query string.
    pub fn href(&self, path: &str) -> String {
        if !self.in_links {
            return path.to_string();
        }
        let (base, fragment) = match path.split_once('#') {
            Some((base, fragment)) => (base, Some(fragment)),
            None => (path, None),
        };
        let separator = if base.contains('?') { '&' } else { '?' };
        let mut out = format!("{base}{separator}lang={}", self.lang.code());
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_then_the_header_then_italian() {
        let pick = |q, h| LangChoice::negotiate(q, h).lang;
        assert_eq!(pick(Some("en"), Some("it-IT")), Lang::En);
        assert_eq!(pick(Some("it"), Some("en")), Lang::It);
        assert_eq!(pick(None, Some("en-GB,en;q=0.9,it;q=0.8")), Lang::En);
        assert_eq!(pick(None, Some("de-DE,it;q=0.5,en;q=0.7")), Lang::En);
        assert_eq!(pick(None, Some("fr")), Lang::It);
        assert_eq!(pick(None, Some("en;q=0")), Lang::It);
        assert_eq!(pick(Some("xx"), None), Lang::It);
        assert_eq!(pick(None, None), Lang::It);
    }

    #[test]
    fn links_keep_a_language_that_a_bare_url_would_lose() {
        let explicit_it = LangChoice::negotiate(Some("it"), Some("en"));
        assert_eq!(explicit_it.href("/confronto"), "/confronto?lang=it");
        let en = LangChoice::negotiate(None, Some("en"));
        assert_eq!(en.href("/?year=2017"), "/?year=2017&lang=en");
        assert_eq!(
            en.href("/informazioni#accessibilita"),
            "/informazioni?lang=en#accessibilita"
        );
        assert_eq!(LangChoice::default().href("/"), "/");
    }

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(Lang::It.percent(83.04), "83,0%");
        assert_eq!(Lang::En.percent(83.04), "83.0%");
        assert_eq!(Lang::It.count(1234567.0), "1.234.567");
        assert_eq!(Lang::En.count(1234.0), "1,234");
        assert_eq!(Lang::En.count(999.0), "999");
        assert_eq!(Lang::It.signed(3.26), "+3,3");
        assert_eq!(Lang::En.signed(-1.5), "−1.5");
        assert_eq!(Lang::En.signed(0.01), "±0.0");
        assert_eq!(Lang::It.date("2026-11-26T13:05:00Z"), "26/11/2026");
    }
}
