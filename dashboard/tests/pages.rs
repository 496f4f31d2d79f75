//! Every page type rendered in Italian and English over a small fixed city
//! (`tests/fixtures/city_small.csv`), through the router without sockets: status, language,
//! the figures worked out by hand from the fixture, ETag/304, and an insta snapshot of the
//! HTML of each page type (reviewed by eye).

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use civica_analytics::Engine;
use civica_dashboard::{AppState, app};
use civica_ingest::{IngestOptions, Layout, Pseudonymiser};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Ingests the fixture into a fresh warehouse.
fn fixture_state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("warehouse"));
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/city_small.csv");
    let pseudonymiser = Pseudonymiser::new(&[7u8; 32]).unwrap();
    let summary = civica_ingest::ingest(
        &layout,
        &[fixture],
        &pseudonymiser,
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(summary.rows_quarantined, 0, "{summary:?}");
    (dir, AppState::new(Engine::new(layout)))
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(state: &AppState, uri: &str, headers: &[(&str, &str)]) -> Page {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The page with the commit date (the only thing that changes from run to run) masked.
fn stable(state: &AppState, body: &str) -> String {
    let at = state.engine.latest_commit_time().unwrap().unwrap();
    let date = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    body.replace(&date.format("%d/%m/%Y").to_string(), "[commit date]")
        .replace(&date.format("%Y-%m-%d").to_string(), "[commit date]")
}

/// Every page type, with a name for its snapshot.
const PAGES: [(&str, &str); 9] = [
    ("overview", "/?year=2017"),
    ("service", "/servizi/iscrizione_scuola_infanzia?year=2017"),
    ("comparison", "/confronto?year=2017"),
    ("services", "/servizi"),
    ("indicators", "/indicatori"),
    ("method", "/indicatori/online_share"),
    ("about", "/informazioni"),
    (
        "query",
        "/query?sql=SELECT%20service%2C%20year%2C%20value%2C%20flag%20FROM%20kpi_online_share%20ORDER%20BY%20service%2C%20year",
    ),
    ("api_docs", "/api/docs"),
];

#[tokio::test]
async fn every_page_type_renders_in_both_languages() {
    let (_dir, state) = fixture_state();
    for (name, uri) in PAGES {
        for lang in ["it", "en"] {
            let separator = if uri.contains('?') { '&' } else { '?' };
            let page = get(&state, &format!("{uri}{separator}lang={lang}"), &[]).await;
            assert_eq!(page.status, StatusCode::OK, "{name} {lang}: {}", page.body);
            assert!(
                page.body.contains(&format!("<html lang=\"{lang}\">")),
                "{name} {lang}"
            );
            assert_eq!(page.headers[header::CONTENT_LANGUAGE], lang);
            // Links keep the language: the navigation carries it.
            assert!(
                page.body
                    .contains(&format!("href=\"/confronto?lang={lang}\"")),
                "{name} {lang}: navigation keeps the language"
            );
            insta::assert_snapshot!(format!("{name}_{lang}"), stable(&state, &page.body));
        }
    }
}

#[tokio::test]
async fn figures_worked_out_by_hand_appear_on_every_page_that_shows_them() {
    // From the fixture, by hand: nursery enrolment 2017 has 12 submitted requests, 10 of
    // them online or by app: 83.3%; 2018: 9 of 10 (the abandoned one does not count), 90.0%.
    let (_dir, state) = fixture_state();
    for uri in [
        "/?year=2017",
        "/confronto?year=2017",
        "/servizi/iscrizione_scuola_infanzia?year=2017",
    ] {
        let page = get(&state, uri, &[]).await;
        assert!(page.body.contains("83,3%"), "{uri}");
    }
    let overview = get(&state, "/?year=2018", &[]).await;
    assert!(overview.body.contains("90,0%"));
    let english = get(&state, "/confronto?year=2017&lang=en", &[]).await;
    assert!(english.body.contains("83.3%"));
    // Business procedures: 3 requests a year, under the threshold of 5: withheld, not zero.
    // Registry certificates (8 and 9 requests) are then the smallest other cell of each year,
    // withheld too so that the business figures cannot be worked out from the yearly totals.
    for service in [
        "Pratiche SUAP (attività produttive)",
        "Certificati anagrafici",
    ] {
        let row = overview.body.find(&format!("{service}</th>")).unwrap();
        let cells = &overview.body[row..row + 120];
        assert!(cells.contains("<td>riservato</td>"), "{cells}");
    }
    assert!(overview.body.contains("«riservato»: dato non pubblicato"));
}

/// The cells of the score table that follows the figure `id` in `page`: (score, text).
fn score_cells(page: &str, id: &str) -> Vec<(String, String)> {
    let start = page
        .find(&format!("id=\"{id}-figure\""))
        .expect("the figure");
    let table = &page[start..start + page[start..].find("</table>").unwrap()];
    table
        .split("<th scope=\"row\">")
        .skip(1)
        .map(|row| {
            let score = row[..row.find("</th>").unwrap()].to_string();
            let cell = row.split("<td>").nth(1).unwrap();
            (score, cell[..cell.find("</td>").unwrap()].to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_score_distribution_is_withheld_below_the_threshold_and_zero_only_when_nobody_gave_it()
{
    // From the fixture, by hand: nursery enrolment 2017 has six ratings, 10, 6, 7, 8, 8 and
    // 9: n = 6, mean 48 / 6 = 8.0. Every score level given has fewer than 5 ratings, so all
    // of them are withheld; scores 1 to 5 were given by nobody: 0.
    let (_dir, state) = fixture_state();
    let page = get(&state, "/servizi/iscrizione_scuola_infanzia?year=2017", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let cells = score_cells(&page.body, "score-distribution");
    let expected: Vec<(String, String)> = (1..=10)
        .map(|s| {
            (
                s.to_string(),
                if s <= 5 { "0" } else { "riservato" }.to_string(),
            )
        })
        .collect();
    assert_eq!(cells, expected);
    assert!(
        page.body
            .contains("Voti per punteggio nel 2017: osservazioni 6, voto medio 8,0"),
        "n and mean in the table caption"
    );
    let english = get(
        &state,
        "/servizi/iscrizione_scuola_infanzia?year=2017&lang=en",
        &[],
    )
    .await;
    assert!(english.body.contains("observations 6, mean score 8.0"));
    assert_eq!(
        score_cells(&english.body, "score-distribution")[9].1,
        "withheld"
    );
}

#[tokio::test]
async fn accept_language_picks_english_and_the_query_overrides_it() {
    let (_dir, state) = fixture_state();
    let page = get(
        &state,
        "/informazioni",
        &[("accept-language", "en-GB,en;q=0.9")],
    )
    .await;
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page.body.contains("Accessibility statement"));
    let page = get(
        &state,
        "/informazioni?lang=it",
        &[("accept-language", "en")],
    )
    .await;
    assert!(page.body.contains("<html lang=\"it\">"));
    assert!(page.body.contains("Dichiarazione di accessibilità"));
    let page = get(&state, "/informazioni", &[]).await;
    assert!(page.body.contains("<html lang=\"it\">"));
}

#[tokio::test]
async fn etag_gives_304_until_a_new_commit() {
    let (dir, state) = fixture_state();
    let first = get(&state, "/?year=2017", &[]).await;
    let tag = first.headers[header::ETAG].to_str().unwrap().to_string();
    assert!(tag.starts_with("W/\"v1-it-"), "{tag}");
    let again = get(&state, "/?year=2017", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let english = get(&state, "/?year=2017&lang=en", &[("if-none-match", &tag)]).await;
    assert_eq!(
        english.status,
        StatusCode::OK,
        "another language, another tag"
    );

    // A new ingest commit: the same URL now answers 200 with a new tag and the new data.
    let extra = dir.path().join("extra.csv");
    std::fs::write(
        &extra,
        "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction\n\
         INF-2017-99,iscrizione_scuola_infanzia,sportello,2017-02-27T10:00:00+01:00,,pending,,,,\n",
    )
    .unwrap();
    civica_ingest::ingest(
        state.engine.layout(),
        &[extra],
        &Pseudonymiser::new(&[7u8; 32]).unwrap(),
        &IngestOptions::default(),
    )
    .unwrap();
    let after = get(&state, "/?year=2017", &[("if-none-match", &tag)]).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(
        after.headers[header::ETAG]
            .to_str()
            .unwrap()
            .starts_with("W/\"v2-it-")
    );
    // 10 online of 13 submitted now: 76.9%.
    assert!(
        after.body.contains("76,9%"),
        "the new commit is visible without a restart"
    );
}

#[tokio::test]
async fn pages_are_compressed_when_the_client_accepts_it() {
    let (_dir, state) = fixture_state();
    let page = get(&state, "/confronto", &[("accept-encoding", "gzip")]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn bad_filters_and_unknown_pages_are_refused_with_error_pages() {
    let (_dir, state) = fixture_state();
    // (uri, status, the heading and the detail of the page in its language)
    let cases = [
        (
            "/?year=abc",
            400,
            "Richiesta non valida",
            "non accetta il valore «abc»",
        ),
        (
            "/confronto?area=moon&lang=en",
            400,
            "Invalid request",
            "The filter “Area” does not accept the value “moon”",
        ),
        (
            "/servizi/nessuno",
            404,
            "Pagina non trovata",
            "Torna alla panoramica",
        ),
        (
            "/indicatori/digital_rate?lang=en",
            404,
            "Page not found",
            "Back to the overview",
        ),
        (
            "/servizi?service=nessuno",
            404,
            "Pagina non trovata",
            "Elenco dei servizi",
        ),
        (
            "/non/esiste",
            404,
            "Pagina non trovata",
            "Codice di errore HTTP: 404",
        ),
    ];
    for (uri, status, heading, detail) in cases {
        let page = get(&state, uri, &[]).await;
        assert_eq!(page.status.as_u16(), status, "{uri}");
        assert_eq!(
            page.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{uri}"
        );
        assert!(
            page.body.contains(&format!("<h1>{heading}</h1>")),
            "{uri}: {}",
            page.body
        );
        assert!(page.body.contains(detail), "{uri}: {}", page.body);
        // In the site's frame, with the way back to the overview.
        assert!(page.body.contains("class=\"site-nav\""), "{uri}");
    }
    for lang in ["it", "en"] {
        let page = get(&state, &format!("/non/esiste?lang={lang}"), &[]).await;
        insta::assert_snapshot!(format!("not_found_{lang}"), page.body);
    }
    // The language comes from Accept-Language as on every page; the switch keeps the query.
    let english = get(&state, "/?year=abc", &[("accept-language", "en")]).await;
    assert!(english.body.contains("<h1>Invalid request</h1>"));
    let italian = get(&state, "/?year=abc&lang=en", &[]).await;
    assert!(
        italian.body.contains("href=\"/?year=abc&#38;lang=it\""),
        "{}",
        italian.body
    );
    // The API keeps its JSON errors, unknown API paths included.
    for uri in ["/api/kpi/digital_rate", "/api/nothing/here"] {
        let api = get(&state, uri, &[]).await;
        assert_eq!(api.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            api.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert!(
            api.body.contains("\"error\":\"not_found\""),
            "{uri}: {}",
            api.body
        );
    }
    let redirect = get(&state, "/servizi?service=suap&lang=en", &[]).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.headers[header::LOCATION], "/servizi/suap?lang=en");
}

#[tokio::test]
async fn a_warehouse_that_cannot_be_read_gives_the_500_page() {
    let (dir, state) = fixture_state();
    // Every data file of the warehouse replaced by bytes that are not Parquet.
    let mut stack = vec![dir.path().join("warehouse")];
    let mut broken = 0;
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                std::fs::remove_file(&path).unwrap();
                std::fs::write(&path, b"not parquet").unwrap();
                broken += 1;
            }
        }
    }
    assert!(broken > 0);
    for (lang, heading) in [("it", "Errore del sistema"), ("en", "System error")] {
        let page = get(&state, &format!("/confronto?year=2017&lang={lang}"), &[]).await;
        assert_eq!(
            page.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            page.body
        );
        assert!(
            page.body.contains(&format!("<h1>{heading}</h1>")),
            "{}",
            page.body
        );
        assert!(page.body.contains(&format!("<html lang=\"{lang}\">")));
        // Nothing of the cause reaches the reader.
        assert!(!page.body.contains("parquet"), "{}", page.body);
    }
}
