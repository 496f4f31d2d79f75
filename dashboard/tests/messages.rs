//! Every interface message the code and the templates use exists in Italian and in English,
//! and both message files define the same keys.

use std::collections::BTreeSet;
use std::path::Path;

use civica_analytics::catalogue::AREAS;
use civica_dashboard::i18n::Lang;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Keys given as literals to `t(` or `t_args(` (the literal may be on the next line).
fn used_keys() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files(&root.join("src"), &mut paths);
    files(&root.join("templates"), &mut paths);
    let mut keys = BTreeSet::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for call in ["t(", "t_args("] {
            for (at, _) in text.match_indices(call) {
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = text[at + call.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let key: String = rest.chars().take_while(|c| *c != '"').collect();
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    keys.insert(key);
                }
            }
        }
    }
    keys
}

fn defined_keys(lang: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("locales/{lang}/civica.ftl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
        .collect()
}

#[test]
fn every_used_message_exists_in_both_languages() {
    let mut keys = used_keys();
    assert!(keys.len() > 100, "the scan finds the keys: {}", keys.len());
    keys.extend(AREAS.iter().map(|a| format!("area-{a}")));
    keys.extend(
        ["met", "on-track", "behind", "no-data"]
            .iter()
            .map(|s| format!("target-{s}")),
    );
    for lang in Lang::ALL {
        let missing: Vec<&String> = keys.iter().filter(|k| !lang.has(k)).collect();
        assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
    }
}

#[test]
fn both_languages_define_the_same_messages() {
    assert_eq!(defined_keys("it"), defined_keys("en"));
}
