//! The dashboard over the sample city, end to end: the real `civica serve` on loopback renders
//! every page type in Italian and English, and the figure the city published (83% of
//! nursery-school enrolments made online in 2017; the press release is the independent source)
//! appears with the same value on the overview, the comparison and the service page.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;

use support::Server;

/// The sample warehouse, generated and ingested once for all tests of this file.
fn sample_warehouse() -> &'static PathBuf {
    static WAREHOUSE: OnceLock<PathBuf> = OnceLock::new();
    WAREHOUSE.get_or_init(|| support::sample_city("dashboard-city"))
}

/// One URL of every page type.
const PAGES: [&str; 7] = [
    "/",
    "/servizi",
    "/servizi/iscrizione_scuola_infanzia",
    "/confronto",
    "/indicatori",
    "/indicatori/online_share",
    "/informazioni",
];

fn with_lang(path: &str, lang: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}lang={lang}")
}

#[test]
fn every_page_type_renders_in_italian_and_english() {
    let server = Server::start(sample_warehouse());
    for path in PAGES {
        for lang in ["it", "en"] {
            let (status, content_type, page) = server.get(&with_lang(path, lang));
            assert_eq!(status, 200, "{path} {lang}");
            assert!(content_type.starts_with("text/html"), "{content_type}");
            assert!(
                page.contains(&format!("<html lang=\"{lang}\">")),
                "{path} {lang}"
            );
            assert!(
                !page.contains("<script"),
                "{path}: pages need no JavaScript"
            );
        }
    }
    let (_, _, english) = server.get("/?lang=en");
    assert!(english.contains("Overview"));
    let (_, _, italian) = server.get("/");
    assert!(italian.contains("Panoramica"));
    assert!(
        italian.contains("Dati aggiornati al"),
        "data freshness on the overview"
    );
}

/// The text of the cell after the row header that ends with `name` in `page`.
fn cell_after(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("{name}</th>"))
        .or_else(|| page.find(&format!("{name}</a></th>")))
        .unwrap_or_else(|| panic!("a row for {name}"));
    let rest = &page[at..];
    let start = rest.find("<td>").expect("a cell") + 4;
    let end = rest[start..].find("</td>").expect("end of cell");
    rest[start..start + end].to_string()
}

#[test]
fn the_published_nursery_figure_is_the_same_on_every_page() {
    let server = Server::start(sample_warehouse());
    for (lang, name, expected) in [
        ("it", "scuola dell&#39;infanzia", "83,0%"),
        ("en", "Nursery-school enrolment", "83.0%"),
    ] {
        let (_, _, overview) = server.get(&format!("/?year=2017&lang={lang}"));
        let name = if overview.contains(name) {
            name.to_string()
        } else {
            name.replace("&#39;", "&#x27;")
        };
        assert_eq!(cell_after(&overview, &name), expected, "overview {lang}");
        let (_, _, comparison) = server.get(&format!("/confronto?year=2017&lang={lang}"));
        assert_eq!(
            cell_after(&comparison, &name),
            expected,
            "comparison {lang}"
        );
        let (_, _, service) = server.get(&format!(
            "/servizi/iscrizione_scuola_infanzia?year=2017&lang={lang}"
        ));
        let needle = "class=\"headline-value\">";
        let headline = service
            .find(needle)
            .map(|at| &service[at + needle.len()..at + needle.len() + expected.len()])
            .expect("a headline");
        assert_eq!(headline, expected, "service page {lang}");
    }
}

#[test]
fn every_chart_has_its_table_and_csv_link() {
    let server = Server::start(sample_warehouse());
    for path in [
        "/?year=2017",
        "/confronto?year=2017",
        "/servizi/iscrizione_scuola_infanzia",
    ] {
        let (_, _, page) = server.get(path);
        assert!(page.contains("<figure class=\"chart\""), "{path}");
        for figure in page.split("<figure class=\"chart\"").skip(1) {
            let end = figure.find("</table>").expect("a table after the chart");
            let block = &figure[..end];
            assert!(block.contains("<figcaption>"), "{path}");
            assert!(block.contains("role=\"img\""), "{path}");
            assert!(block.contains("/opendata/"), "{path}: a CSV link");
            assert!(block.contains("<caption>"), "{path}: a table caption");
            assert!(block.contains("scope=\"col\""), "{path}");
        }
    }
    // The CSV behind the service's monthly chart is the same query, disclosure-controlled.
    let (status, content_type, csv) =
        server.get("/opendata/online_share.csv?by=month&service=iscrizione_scuola_infanzia");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(csv.starts_with("month,value,"), "{csv}");
}

#[test]
fn errors_are_pages_with_their_status_in_the_reader_s_language() {
    let server = Server::start(sample_warehouse());
    for (path, status, text) in [
        ("/pagina/inesistente", 404, "Pagina non trovata"),
        ("/pagina/inesistente?lang=en", 404, "Page not found"),
        ("/servizi/nessun_servizio?lang=en", 404, "Page not found"),
        ("/indicatori/digital_rate", 404, "Pagina non trovata"),
        ("/?year=duemila", 400, "non accetta il valore «duemila»"),
        (
            "/confronto?area=luna&lang=en",
            400,
            "does not accept the value “luna”",
        ),
        (
            "/servizi/iscrizione_scuola_infanzia?channel=Web!",
            400,
            "Richiesta non valida",
        ),
    ] {
        let (got, content_type, page) = server.get(path);
        assert_eq!(got, status, "{path}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(page.contains(text), "{path}: {page}");
        assert!(
            page.contains("href=\"/") && page.contains("<nav"),
            "{path}: site frame"
        );
        assert!(!page.contains("<script"), "{path}");
    }
    // The API answers in JSON, as before.
    let (status, content_type, body) = server.get("/api/kpi/digital_rate");
    assert_eq!(status, 404);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["error"], "not_found");
}

/// The `href`s of the links labelled `label` in `page`, unescaped.
fn links_labelled(page: &str, label: &str) -> Vec<String> {
    page.split("<a href=\"")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find('"')?;
            let text = &rest[end..];
            let text_start = text.find('>')? + 1;
            text[text_start..]
                .starts_with(label)
                .then(|| rest[..end].replace("&#38;", "&").replace("&amp;", "&"))
        })
        .collect()
}

/// Width and height from a PNG's signature and header chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR", "the header chunk first");
    let word = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert!(png.ends_with(b"IEND\xaeB`\x82"), "ends with the IEND chunk");
    (word(16), word(20))
}

#[test]
fn every_chart_is_also_a_png_of_its_size_with_the_page_s_filters() {
    let server = Server::start(sample_warehouse());
    let mut seen = 0;
    for path in [
        "/?year=2017&area=school",
        "/confronto?year=2016&lang=en",
        "/servizi/iscrizione_scuola_infanzia?channel=online",
    ] {
        let (_, _, page) = server.get(path);
        let figures = page.matches("<figure class=\"chart\"").count();
        let links = links_labelled(
            &page,
            if path.contains("lang=en") {
                "Image (PNG)"
            } else {
                "Immagine (PNG)"
            },
        );
        assert_eq!(
            links.len(),
            figures,
            "{path}: a PNG link beside every chart"
        );
        let tiles = links_labelled(&page, "PNG");
        for link in links.iter().chain(&tiles) {
            assert!(link.starts_with("/charts/"), "{link}");
            let (status, content_type, png) = server.get_bytes(link);
            assert_eq!(status, 200, "{link}");
            assert_eq!(content_type, "image/png", "{link}");
            // The same drawing as SVG declares the same size.
            let (_, svg_type, svg) = server.get(&link.replace(".png", ".svg"));
            assert_eq!(svg_type, "image/svg+xml");
            let attr = |name: &str| -> u32 {
                let at = svg.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
                svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
            };
            assert_eq!(png_size(&png), (attr("width"), attr("height")), "{link}");
            seen += 1;
        }
    }
    assert!(
        seen >= 5 + 1 + 1 + 5,
        "tiles, overview bars, comparison areas, service figures"
    );
    // The filters are the page's: a bad one is refused as on the page, an unknown chart is 404.
    let (status, _, _) = server.get("/charts/confronto/comparison-school.png?year=abc");
    assert_eq!(status, 400);
    let (status, _, _) = server.get("/charts/servizi/iscrizione_scuola_infanzia/nothing.png");
    assert_eq!(status, 404);
}

#[test]
fn the_score_distribution_counts_the_ratings_of_the_logs() {
    // Counted here from the generated log itself: ratings of nursery enrolment submitted in
    // 2017 (local time, as written in the log), by score.
    let log = sample_warehouse()
        .parent()
        .unwrap()
        .join("sample/requests.csv");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut counts = [0u64; 11];
    for row in support::csv_rows(&text) {
        if row["service"] == "iscrizione_scuola_infanzia"
            && row["submitted_at"].starts_with("2017-")
            && let Ok(score) = row["satisfaction"].parse::<usize>()
        {
            counts[score] += 1;
        }
    }
    let n: u64 = counts.iter().sum();
    assert!(n >= 5, "the sample city has ratings to show");

    let server = Server::start(sample_warehouse());
    let (status, _, page) = server.get("/servizi/iscrizione_scuola_infanzia?year=2017&lang=en");
    assert_eq!(status, 200);
    let start = page
        .find("id=\"score-distribution-figure\"")
        .expect("the figure");
    let table = &page[start..start + page[start..].find("</table>").unwrap()];
    // English thousands separators.
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    assert!(
        table.contains(&format!("observations {grouped},")),
        "n in the caption: {table}"
    );
    let mut shown = 0;
    for row in table.split("<th scope=\"row\">").skip(1) {
        let score: usize = row[..row.find("</th>").unwrap()].parse().unwrap();
        let cell = row.split("<td>").nth(1).unwrap();
        let cell = &cell[..cell.find("</td>").unwrap()];
        if cell == "withheld" {
            assert!(
                counts[score] > 0,
                "score {score}: a withheld cell is never a zero"
            );
        } else {
            assert_eq!(
                cell.replace(',', ""),
                counts[score].to_string(),
                "score {score}"
            );
            shown += 1;
        }
    }
    assert!(shown >= 5, "most levels are published in the sample city");
}

/// The cells of the table row headed by `name` in `page`.
fn row_cells(page: &str, name: &str) -> Vec<String> {
    let at = page.find(&format!("{name}</a></th>")).expect("a row");
    let row = &page[at..at + page[at..].find("</tr>").expect("end of row")];
    row.split("<td>")
        .skip(1)
        .map(|cell| cell.split("</td>").next().unwrap_or_default().to_string())
        .collect()
}

/// The text of the headline figure of a service page.
fn headline_of(page: &str) -> String {
    let needle = "class=\"headline-value\">";
    let start = page.find(needle).expect("a headline") + needle.len();
    let end = page[start..].find('<').expect("end of the headline");
    page[start..start + end].to_string()
}

#[test]
fn a_period_of_the_twelve_months_of_a_year_shows_that_year_s_figures() {
    // The year's figures come from the yearly cells every page shares; the period's from a
    // query by service restricted to dates: two ways to the same 83% of the press release.
    let server = Server::start(sample_warehouse());
    let name = "Nursery-school enrolment";
    let (status, _, by_year) = server.get("/confronto?year=2017&lang=en");
    assert_eq!(status, 200);
    let (status, _, by_period) = server.get("/confronto?from=2017-01&to=2017-12&lang=en");
    assert_eq!(status, 200);
    assert_eq!(cell_after(&by_year, name), "83.0%");
    assert_eq!(cell_after(&by_period, name), "83.0%");
    // The same months a year earlier are 2016, so the whole rows agree (share, n, share in
    // 2016, movement).
    assert_eq!(row_cells(&by_period, name), row_cells(&by_year, name));
    assert!(by_period.contains("Online share January 2016 – December 2016"));
    assert!(
        by_period.contains("Services compared January 2017 – December 2017</h1>"),
        "the heading names the period"
    );
    assert!(by_period.contains("value=\"2017-01\"") && by_period.contains("value=\"2017-12\""));
    // The CSV links carry the period, as days, and answer.
    let links = links_labelled(&by_period, "Download the data (CSV)");
    assert!(!links.is_empty());
    for link in links {
        assert_eq!(
            link, "/opendata/online_share.csv?by=service&from=2017-01-01&to=2017-12-31",
            "CSV link with the period"
        );
        let (status, _, csv) = server.get(&link);
        assert_eq!(status, 200, "{link}: {csv}");
    }

    let (status, _, service) =
        server.get("/servizi/iscrizione_scuola_infanzia?from=2017-01&to=2017-12&lang=en");
    assert_eq!(status, 200);
    assert_eq!(headline_of(&service), "83.0%");
    assert!(service.contains("Share of requests made online in January 2017 – December 2017"));
    // A period across two years renders, and its charts are images with the same period.
    let path = "/servizi/iscrizione_scuola_infanzia?from=2017-03&to=2018-02&lang=en";
    let (status, _, service) = server.get(path);
    assert_eq!(status, 200, "{service}");
    assert!(service.contains("March 2017 – February 2018"));
    let (status, content_type, _) = server.get_bytes(
        "/charts/servizi/iscrizione_scuola_infanzia/monthly-online-share.png?from=2017-03&to=2018-02",
    );
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
}

#[test]
fn a_period_across_two_years_counts_the_requests_of_its_months() {
    // From the fixture (tests/fixtures/README.md), counted by hand: the school canteen from
    // June 2016 to June 2017 has REF-2016-1 (online), REF-2016-2 (counter), REF-2016-3
    // (counter, 1 July 2016), REF-2017-1 and REF-2017-2 (online), REF-2017-3 (app): 4 digital
    // of 6 = 66.7%, unlike 2016 (33.3%) or 2017 (60%). REF-2017-4 (3 July 2017) is outside.
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    let server = Server::start(&warehouse);
    let (status, _, comparison) = server.get("/confronto?from=2016-06&to=2017-06&lang=it");
    assert_eq!(status, 200, "{comparison}");
    assert!(
        comparison.contains("giugno 2016 – giugno 2017"),
        "{comparison}"
    );
    let name = "Refezione scolastica";
    assert_eq!(cell_after(&comparison, name), "66,7%");
    let (status, _, service) = server.get("/servizi/refezione_scolastica?from=2016-06&to=2017-06");
    assert_eq!(status, 200);
    assert_eq!(headline_of(&service), "66,7%");
    assert!(service.contains("osservazioni: 6"), "{service}");
}

#[test]
fn periods_that_are_not_months_are_refused_with_a_page() {
    let server = Server::start(sample_warehouse());
    for path in [
        "/confronto?from=2017-13",
        "/confronto?from=abc",
        "/confronto?from=2018-01&to=2017-01",
        "/confronto?to=2017-00",
        "/servizi/iscrizione_scuola_infanzia?from=2017-13",
        "/servizi/iscrizione_scuola_infanzia?from=2018-01&to=2017-01",
        "/?from=abc",
    ] {
        let (status, content_type, page) = server.get(path);
        assert_eq!(status, 400, "{path}");
        assert!(content_type.starts_with("text/html"), "{path}");
        assert!(
            page.contains("2017-01"),
            "{path}: the hint gives an example month"
        );
    }
    let (_, _, page) = server.get("/confronto?from=abc&lang=en");
    assert!(page.contains("From month"), "{page}");
    let (_, _, page) = server.get("/confronto?from=2018-01&to=2017-01&lang=en");
    assert!(page.contains("To month"), "{page}");
}
