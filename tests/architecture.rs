//! Architecture invariants (see ARCHITECTURE.md), checked on the manifests and sources:
//! dependencies point one way (dashboard → analytics → ingest), only `ingest` uses polars,
//! only `analytics` uses DataFusion, and SQL text lives only in `analytics`.

use std::path::Path;

fn manifest(krate: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(krate)
        .join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[dependencies]` section of a manifest (dev-dependencies may use anything).
fn dependencies(krate: &str) -> String {
    let text = manifest(krate);
    let start = text
        .find("[dependencies]")
        .expect("a [dependencies] section");
    let rest = &text[start + "[dependencies]".len()..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
}

fn depends_on(krate: &str, dependency: &str) -> bool {
    dependencies(krate).lines().any(|l| {
        l.trim_start().starts_with(&format!("{dependency}."))
            || l.trim_start().starts_with(&format!("{dependency} "))
    })
}

#[test]
fn dependencies_point_one_way() {
    assert!(!depends_on("ingest", "civica-analytics"));
    assert!(!depends_on("ingest", "civica-dashboard"));
    assert!(!depends_on("analytics", "civica-dashboard"));
    assert!(depends_on("analytics", "civica-ingest"));
    assert!(depends_on("dashboard", "civica-analytics"));
    assert!(
        !depends_on("dashboard", "civica-ingest"),
        "the dashboard reaches data only through analytics"
    );
}

#[test]
fn each_engine_stays_in_its_crate() {
    assert!(depends_on("ingest", "polars"));
    for krate in ["analytics", "dashboard", "."] {
        assert!(!depends_on(krate, "polars"), "{krate} must not use polars");
    }
    for krate in ["ingest", "dashboard", "."] {
        assert!(
            !depends_on(krate, "datafusion"),
            "{krate} must not use datafusion"
        );
    }
    assert!(
        !depends_on("analytics", "axum"),
        "analytics must not know about HTTP"
    );
}

#[test]
fn sql_text_lives_only_in_analytics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["dashboard/src", "ingest/src", "src"] {
        for entry in walk(&root.join(dir)) {
            let text = std::fs::read_to_string(&entry).unwrap();
            for needle in ["SELECT ", "GROUP BY", "ctx.sql("] {
                assert!(
                    !text.contains(needle),
                    "{} contains `{needle}`: SQL belongs in analytics",
                    entry.display()
                );
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
