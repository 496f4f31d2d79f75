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

/// A value for each required parameter of the documented operations.
fn example_parameter(name: &str) -> &'static str {
    match name {
        "id" => "online_share",
        "sql" => "SELECT service, year, n, flag FROM kpi_requests ORDER BY service, year",
        other => panic!("no example value for the required parameter `{other}`: add one"),
    }
}

/// Checks that `answer` is a well-formed table in `media_type` with at least one row.
fn check_table(media_type: &str, answer: &support::Answer, at: &str) {
    let rows = match media_type {
        "text/csv" => support::csv_rows(&answer.text()).len(),
        "application/vnd.apache.parquet" => support::read_parquet(&answer.body)
            .iter()
            .map(|b| b.num_rows())
            .sum(),
        "application/vnd.apache.arrow.stream" => support::read_arrow_stream(&answer.body)
            .iter()
            .map(|b| b.num_rows())
            .sum(),
        other => panic!("{at}: no reader for {other}"),
    };
    assert!(rows > 0, "{at}: an empty table");
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
            "/api/v1/query",
            "/api/v1/services",
            "/api/v1/version",
        ]
    );
    let mut operations = 0;
    let mut tables = 0;
    for (path, item) in paths {
        for method in ["get", "post"] {
            let operation = &item[method];
            if operation.is_null() {
                continue;
            }
            operations += 1;
            // Required parameters get example values: path ones in the path, query ones in
            // the query string for GET and in the JSON body for POST.
            let mut url = path.clone();
            let mut query = Vec::new();
            let mut body = serde_json::Map::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["required"] != true {
                    continue;
                }
                let value = example_parameter(name);
                match parameter["in"].as_str().unwrap() {
                    "path" => url = url.replace(&format!("{{{name}}}"), value),
                    "query" => query.push(format!("{name}={}", support::url_encoded(value))),
                    other => panic!("{path}: a required {other} parameter"),
                }
            }
            let request_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if request_schema.is_object() {
                let schema = resolve(&document, request_schema);
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap();
                    body.insert(name.into(), example_parameter(name).into());
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let body = Value::Object(body).to_string();
            let response = &operation["responses"]["200"];
            let content = response["content"].as_object().unwrap();
            assert!(content.contains_key("application/json"), "{method} {path}");
            for (media_type, media) in content {
                let at = format!("{method} {url} ({media_type})");
                let answer = server.request(
                    &method.to_uppercase(),
                    &url,
                    &[("accept", media_type)],
                    (method == "post").then_some(body.as_str()),
                );
                assert_eq!(answer.status, 200, "{at}: {}", answer.text());
                assert!(
                    answer
                        .header("content-type")
                        .starts_with(media_type.as_str()),
                    "{at}: {}",
                    answer.header("content-type")
                );
                for header in response["headers"].as_object().into_iter().flatten() {
                    assert!(!answer.header(header.0).is_empty(), "{at}: no {}", header.0);
                }
                if media_type == "application/json" {
                    let schema = &media["schema"];
                    let resolved = resolve(&document, schema);
                    assert!(
                        resolved.get("properties").is_some() || resolved.get("items").is_some(),
                        "{at}: the documented 200 body says nothing: {schema}"
                    );
                    conforms(&document, schema, &answer.json(), &at);
                } else {
                    check_table(media_type, &answer, &at);
                    tables += 1;
                }
            }
        }
    }
    assert_eq!(operations, 7, "every operation was tried");
    assert_eq!(tables, 9, "three table formats of three operations");
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

/// (year, numerator, denominator, value) of the online share by year, read from a table.
type YearCells = Vec<(i64, i64, i64, f64)>;

fn cells_of_batches(batches: &[civica_analytics::arrow::record_batch::RecordBatch]) -> YearCells {
    let number = |column: &str| -> Vec<String> {
        support::column_text(batches, column)
            .into_iter()
            .map(|v| v.unwrap_or_else(|| panic!("a null {column}")))
            .collect()
    };
    let (years, numerators, denominators, values) = (
        number("year"),
        number("numerator"),
        number("denominator"),
        number("value"),
    );
    (0..years.len())
        .map(|i| {
            (
                years[i].parse().unwrap(),
                numerators[i].parse().unwrap(),
                denominators[i].parse().unwrap(),
                values[i].parse().unwrap(),
            )
        })
        .collect()
}

fn cells_of_json(rows: &Value) -> YearCells {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["year"].as_i64().unwrap(),
                r["numerator"].as_i64().unwrap(),
                r["denominator"].as_i64().unwrap(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn cells_of_csv(text: &str) -> YearCells {
    support::csv_rows(text)
        .iter()
        .map(|r| {
            (
                r["year"].parse().unwrap(),
                r["numerator"].parse().unwrap(),
                r["denominator"].parse().unwrap(),
                r["value"].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn kpi_values_in_every_format_carry_the_same_figures() {
    let (_dir, server) = fixture_server();
    // By hand from tests/fixtures/requests_small.csv, abandoned requests left out: in 2016,
    // 2 of 5 requests were online; in 2017, 8 of 14 (refezione 3 of 5, suap 4 of 5,
    // certificati 1 of 4).
    let expected = [(2016, 2, 5, 40.0), (2017, 8, 14, 800.0 / 14.0)];
    let check = |cells: YearCells, how: &str| {
        assert_eq!(cells.len(), expected.len(), "{how}: {cells:?}");
        for (cell, want) in cells.iter().zip(&expected) {
            assert_eq!((cell.0, cell.1, cell.2), (want.0, want.1, want.2), "{how}");
            assert!(
                (cell.3 - want.3).abs() < 1e-9,
                "{how}: {} ≠ {}",
                cell.3,
                want.3
            );
        }
    };
    let path = "/api/v1/kpis/online_share?by=year";
    for (query, accept, media_type) in [
        ("", "", "application/json"),
        ("", "*/*", "application/json"),
        ("&format=json", "text/csv", "application/json"),
        ("&format=csv", "", "text/csv; charset=utf-8; header=present"),
        ("", "text/csv", "text/csv; charset=utf-8; header=present"),
        ("&format=parquet", "", "application/vnd.apache.parquet"),
        (
            "",
            "application/vnd.apache.parquet",
            "application/vnd.apache.parquet",
        ),
        (
            "",
            "application/x-parquet",
            "application/vnd.apache.parquet",
        ),
        ("&format=arrow", "", "application/vnd.apache.arrow.stream"),
        (
            "",
            "text/html, application/vnd.apache.arrow.stream;q=0.9, */*;q=0.1",
            "application/vnd.apache.arrow.stream",
        ),
    ] {
        let how = format!("{query} Accept: {accept}");
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            Vec::new()
        } else {
            vec![("accept", accept)]
        };
        let answer = server.request("GET", &format!("{path}{query}"), &headers, None);
        assert_eq!(
            answer.status,
            200,
            "{how}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.header("content-type"), media_type, "{how}");
        assert!(
            answer.header_all("vary").to_lowercase().contains("accept,")
                || answer.header_all("vary").to_lowercase().ends_with("accept"),
            "{how}: {}",
            answer.header_all("vary")
        );
        let cells = match media_type {
            "application/json" => cells_of_json(&answer.json()["rows"]),
            "application/vnd.apache.parquet" => {
                cells_of_batches(&support::read_parquet(&answer.body))
            }
            "application/vnd.apache.arrow.stream" => {
                cells_of_batches(&support::read_arrow_stream(&answer.body))
            }
            _ => cells_of_csv(&answer.text()),
        };
        check(cells, &how);
    }
}

#[test]
fn formats_nobody_asked_for_are_refused_with_406() {
    let (_dir, server) = fixture_server();
    for (query, accept) in [
        ("", "text/html"),
        ("", "application/xml, text/plain;q=0.5"),
        ("", "application/json;q=0, text/csv;q=0"),
        ("&format=xlsx", ""),
        ("&format=xml", "application/json"),
    ] {
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            Vec::new()
        } else {
            vec![("accept", accept)]
        };
        let answer = server.request(
            "GET",
            &format!("/api/v1/kpis/online_share?by=year{query}"),
            &headers,
            None,
        );
        assert_eq!(answer.status, 406, "{query} {accept}");
        assert_eq!(answer.header("content-type"), "application/json");
        let body = answer.json();
        assert_eq!(body["error"], "not_acceptable");
        assert!(
            body["message"].as_str().unwrap().contains("parquet"),
            "the message says what is offered: {body}"
        );
    }
}

#[test]
fn each_format_has_its_own_etag() {
    let (_dir, server) = fixture_server();
    let path = "/api/v1/kpis/online_share?by=year";
    let json = server.request("GET", path, &[], None);
    let csv = server.request("GET", path, &[("accept", "text/csv")], None);
    let json_tag = json.header("etag").to_string();
    let csv_tag = csv.header("etag").to_string();
    assert!(!json_tag.is_empty() && !csv_tag.is_empty());
    assert_ne!(json_tag, csv_tag);
    // A client holding the JSON answer that now asks for CSV gets the CSV, not a 304.
    let again = server.request(
        "GET",
        path,
        &[("accept", "text/csv"), ("if-none-match", &json_tag)],
        None,
    );
    assert_eq!(again.status, 200);
    assert!(again.text().starts_with("year,value,"));
    let same = server.request(
        "GET",
        path,
        &[("accept", "text/csv"), ("if-none-match", &csv_tag)],
        None,
    );
    assert_eq!(same.status, 304);
}
