//! Per-source profiles (TOML): override dialect detection, map columns and values.
//!
//! ```toml
//! [source]
//! kind = "requests"            # or "surveys"; default: recognised from the header
//! encoding = "windows-1252"    # auto | utf-8 | windows-1252 | iso-8859-1
//! delimiter = ";"              # auto | ";" | "," | "\t" | "|"
//! decimal = ","                # auto | "," | "."
//! date_format = "%d/%m/%Y %H:%M"   # auto | a chrono format (local time unless it has %z)
//! sheet = "Pratiche 2017"      # spreadsheets: the sheet to read (default: the first)
//!
//! [columns]                    # canonical name = header as written in the file
//! request_id = "Num. pratica"
//!
//! [values.channel]             # value as written in the file = canonical value
//! web = "online"
//! portale = "online"
//!
//! [defaults]                   # constants for columns the file lacks
//! service = "suap"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// A source profile. Every part is optional; what is not set is detected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub source: SourceSettings,
    /// Canonical column → header in the file.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Canonical column → (value in the file → canonical value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Canonical column → constant value, for columns the file lacks.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
}

/// How to read the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default = "auto")]
    pub encoding: String,
    #[serde(default = "auto")]
    pub delimiter: String,
    #[serde(default = "auto")]
    pub decimal: String,
    #[serde(default = "auto")]
    pub date_format: String,
    /// The sheet of a spreadsheet to read; the first when unset.
    #[serde(default)]
    pub sheet: Option<String>,
}

fn auto() -> String {
    "auto".to_string()
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            kind: None,
            encoding: auto(),
            delimiter: auto(),
            decimal: auto(),
            date_format: auto(),
            sheet: None,
        }
    }
}

impl Profile {
    /// The file's header names that the profile maps to canonical columns.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.values().cloned().collect()
    }

    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let profile: Profile = toml::from_str(&text).map_err(|e| Error::Profile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        profile.check().map_err(|message| Error::Profile {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(profile)
    }

    /// Validates settings whose values TOML alone cannot constrain.
    pub fn check(&self) -> std::result::Result<(), String> {
        let s = &self.source;
        if let Some(kind) = &s.kind
            && !["requests", "surveys"].contains(&kind.as_str())
        {
            return Err(format!("source.kind `{kind}`: use requests or surveys"));
        }
        if !s.encoding.eq_ignore_ascii_case("auto")
            && crate::dialect::Encoding::from_profile(&s.encoding).is_none()
        {
            return Err(format!(
                "source.encoding `{}`: use auto, utf-8, windows-1252, iso-8859-1 or utf-16",
                s.encoding
            ));
        }
        if s.delimiter != "auto" && self.delimiter().is_none() {
            return Err(format!(
                "source.delimiter `{}`: use auto or a single character such as \";\"",
                s.delimiter
            ));
        }
        if !["auto", ",", "."].contains(&s.decimal.as_str()) {
            return Err(format!(
                "source.decimal `{}`: use auto, \",\" or \".\"",
                s.decimal
            ));
        }
        Ok(())
    }

    /// The delimiter byte, when the profile fixes one.
    pub fn delimiter(&self) -> Option<u8> {
        match self.source.delimiter.as_str() {
            "auto" => None,
            "\\t" | "tab" => Some(b'\t'),
            d if d.len() == 1 && d.is_ascii() => d.bytes().next(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_profile_parses() {
        let profile: Profile = toml::from_str(
            r#"
            [source]
            kind = "requests"
            encoding = "windows-1252"
            delimiter = ";"
            decimal = ","
            [columns]
            request_id = "Num. pratica"
            [values.channel]
            web = "online"
            [defaults]
            service = "suap"
            "#,
        )
        .unwrap();
        profile.check().unwrap();
        assert_eq!(profile.delimiter(), Some(b';'));
        assert_eq!(profile.values["channel"]["web"], "online");
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(toml::from_str::<Profile>("[source]\nseparator = \";\"").is_err());
        let bad: Profile = toml::from_str("[source]\nencoding = \"ebcdic\"").unwrap();
        assert!(bad.check().unwrap_err().contains("ebcdic"));
    }
}
