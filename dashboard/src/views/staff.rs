//! The staff pages: the sign-in form, the upload form, and an upload's ingest (progress, then
//! the summary and the rows it quarantined). None of them is cached.

use askama::Template;
use civica_analytics::format::text_table;

use super::{PageFrame, Section};
use crate::AppState;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::staff::Viewer;
use crate::staff::ingests::{Job, JobState};

/// The most quarantined rows an ingest page lists.
pub const QUARANTINE_ROWS: usize = 1_000;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub frame: PageFrame,
    pub csrf: String,
    /// The name typed, shown again after a failed attempt.
    pub username: String,
    pub error: Option<String>,
}

/// The sign-in form with the form token `csrf` (and the message of a failed attempt).
pub fn login(
    state: &AppState,
    choice: LangChoice,
    csrf: String,
    username: &str,
    failed: bool,
) -> Result<LoginPage, AppError> {
    let lang = choice.lang;
    let frame = PageFrame::new(
        &state.engine,
        choice,
        Section::Elsewhere,
        "/login",
        format!("{} — civica", lang.t("login-heading")),
    )?;
    Ok(LoginPage {
        frame,
        csrf,
        username: username.to_string(),
        error: failed.then(|| lang.t("login-failed")),
    })
}

#[derive(Template)]
#[template(path = "upload.html")]
pub struct UploadPage {
    pub frame: PageFrame,
    pub csrf: String,
    pub limit_note: String,
    /// Whether this server ingests uploads.
    pub available: bool,
}

pub fn upload(
    state: &AppState,
    choice: LangChoice,
    viewer: &Viewer,
) -> Result<UploadPage, AppError> {
    let lang = choice.lang;
    let frame = PageFrame::new(
        &state.engine,
        choice,
        Section::Elsewhere,
        "/staff/upload",
        format!("{} — civica", lang.t("upload-heading")),
    )?
    .with_viewer(viewer);
    let mebibytes = state.staff.config.upload_limit as f64 / (1u64 << 20) as f64;
    Ok(UploadPage {
        csrf: frame
            .staff
            .as_ref()
            .map(|b| b.csrf.clone())
            .unwrap_or_default(),
        frame,
        limit_note: lang.t_args("upload-limit", &[("size", lang.decimal(mebibytes, 1))]),
        available: state.staff.config.ingester.is_some(),
    })
}

#[derive(Template)]
#[template(path = "ingest.html")]
pub struct IngestPage {
    pub frame: PageFrame,
    pub heading: String,
    pub status: String,
    pub finished: bool,
    pub reload_href: String,
    pub upload_href: String,
    pub failure: Option<String>,
    /// (label, number) rows of the summary.
    pub summary: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub quarantine: Option<QuarantineTable>,
}

/// The rows an ingest refused.
pub struct QuarantineTable {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The page of the upload `job`.
pub async fn ingest(
    state: &AppState,
    choice: LangChoice,
    viewer: &Viewer,
    job: &Job,
) -> Result<IngestPage, AppError> {
    let lang = choice.lang;
    let path = format!("/staff/ingests/{}", job.id);
    let heading = lang.t_args("ingest-heading", &[("file", job.file.clone())]);
    let frame = PageFrame::new(
        &state.engine,
        choice,
        Section::Elsewhere,
        &path,
        format!("{heading} — civica"),
    )?
    .with_viewer(viewer);
    let rows = |n: u64| lang.count(n as f64);
    let mut page = IngestPage {
        frame,
        heading,
        status: String::new(),
        finished: false,
        reload_href: choice.href(&path),
        upload_href: choice.href("/staff/upload"),
        failure: None,
        summary: Vec::new(),
        warnings: Vec::new(),
        quarantine: None,
    };
    match &job.state {
        JobState::Waiting => page.status = lang.t("ingest-waiting"),
        JobState::Running => {
            page.status = lang.t_args("ingest-running", &[("rows", rows(job.rows_read()))]);
        }
        JobState::Failed(reason) => {
            page.finished = true;
            page.status = lang.t("ingest-failed");
            page.failure = Some(reason.clone());
        }
        JobState::Done(outcome) => {
            page.finished = true;
            page.status = if outcome.committed {
                lang.t_args("ingest-done", &[("commit", outcome.commit.to_string())])
            } else {
                lang.t_args(
                    "ingest-nothing-new",
                    &[("commit", outcome.commit.to_string())],
                )
            };
            page.summary = [
                ("ingest-rows-read", outcome.rows_read),
                ("ingest-rows-accepted", outcome.rows_accepted),
                ("ingest-rows-quarantined", outcome.rows_quarantined),
                ("ingest-rows-duplicate", outcome.rows_duplicate),
                ("ingest-rows-updated", outcome.rows_updated),
            ]
            .into_iter()
            .map(|(key, n)| (lang.t(key), rows(n)))
            .collect();
            page.warnings = outcome.warnings.clone();
            if outcome.rows_quarantined > 0 {
                let batches = state.engine.quarantine(Some(outcome.commit)).await?;
                let mut table = text_table(&batches)?;
                table.rows.truncate(QUARANTINE_ROWS);
                page.quarantine = Some(QuarantineTable {
                    caption: lang.t_args(
                        "ingest-quarantine-caption",
                        &[("rows", rows(table.rows.len() as u64))],
                    ),
                    columns: table.columns,
                    rows: table.rows,
                });
            }
        }
    }
    Ok(page)
}
