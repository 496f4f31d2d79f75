//! The documented JSON API on the real server: every path of the OpenAPI document answers
//! as documented, errors share one shape, and any origin may read.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Server;

fn fixture_server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    let server = Server::start(&warehouse);
    (dir, server)
}

fn json(server: &Server, path: &str) -> (u16, String, Value) {
    let (status, content_type, body) = server.get(path);
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, content_type, value)
}

/// Follows a `$ref` to `#/components/schemas/…`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks `value` against the parts of a JSON Schema the document uses: type, required
/// properties, properties and array items.
fn conforms(document: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(document, schema);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() {
        assert!(
            types.contains(&actual) || (actual == "integer" && types.contains(&"number")),
            "{at}: {actual} is not {types:?}"
        );
    }
    if let Some(required) = schema["required"].as_array() {
        for name in required.iter().filter_map(Value::as_str) {
            assert!(value.get(name).is_some(), "{at}: `{name}` is missing");
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for (name, property) in properties {
            if let Some(v) = object.get(name) {
                conforms(document, property, v, &format!("{at}.{name}"));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            conforms(document, items, v, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn every_documented_path_answers_as_documented() {
    let (_dir, server) = fixture_server();
    let (status, content_type, document) = json(&server, "/api/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let paths = document["paths"].as_object().unwrap();
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort_unstable();
    assert_eq!(
        documented,
        [
            "/api/v1/datasets",
            "/api/v1/kpis",
            "/api/v1/kpis/{id}",
            "/api/v1/services",
            "/api/v1/version",
        ]
    );
    for (path, item) in paths {
        let url = path.replace("{id}", "online_share");
        let (status, content_type, body) = json(&server, &url);
        assert_eq!(status, 200, "{url}: {body}");
        assert_eq!(content_type, "application/json", "{url}");
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let resolved = resolve(&document, schema);
        assert!(
            resolved.get("properties").is_some() || resolved.get("items").is_some(),
            "{path}: the documented 200 body says nothing: {schema}"
        );
        conforms(&document, schema, &body, &url);
    }
}

#[test]
fn kpi_values_are_public_and_filtered() {
    let (_dir, server) = fixture_server();
    // Hand-checked from tests/fixtures/requests_small.csv: in 2016, 2 of the 5 submitted
    // requests were made online (the same figures as /api/kpi in tests/server.rs).
    let (status, _, body) = json(&server, "/api/v1/kpis/online_share?by=year&year=2016");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["audience"], "public");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["year"], 2016);
    assert_eq!(rows[0]["numerator"], 2);
    assert_eq!(rows[0]["denominator"], 5);
    // Broken down by service and year, every fixture cell is withheld: null, not zero.
    let (_, _, body) = json(&server, "/api/v1/kpis/online_share?by=service,year");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["value"].is_null() && r["flag"] == "suppressed")
    );
}

#[test]
fn errors_share_one_shape() {
    let (_dir, server) = fixture_server();
    for (path, status, code) in [
        ("/api/v1/kpis/digital_rate", 404, "not_found"),
        ("/api/v1/kpis/online_share?by=colour", 400, "bad_request"),
        ("/api/v1/kpis/online_share?year=soon", 400, "bad_request"),
        (
            "/api/v1/kpis/online_share?from=31/01/2017",
            400,
            "bad_request",
        ),
        ("/api/v1/kpis/online_share?colour=blue", 400, "bad_request"),
    ] {
        let (actual, content_type, body) = json(&server, path);
        assert_eq!(actual, status, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        assert_eq!(body["error"], code, "{path}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{path}");
    }
}

#[test]
fn any_origin_may_read() {
    let (_dir, server) = fixture_server();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(&format!("{}/api/v1/kpis", server.base))
        .header("Origin", "https://example.org")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
}

#[test]
fn answers_carry_the_warehouse_version_as_etag() {
    let (_dir, server) = fixture_server();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/kpis/online_share?by=year", server.base);
    let response = agent.get(&url).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(&response, "etag").expect("an ETag");
    // The fixture is one ingest: warehouse version 1.
    assert!(etag.ends_with("-1\""), "{etag}");
    assert!(header(&response, "cache-control").is_some());
    let again = agent
        .get(&url)
        .header("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let other = agent
        .get(&url)
        .header("If-None-Match", "\"0.0.0-0\"")
        .call()
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
}
