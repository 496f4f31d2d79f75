//! The About page (`/informazioni`): accessibility statement, data sources, licence, contact.
//! Its text is interface text (the Fluent files); the figures (warehouse version and date,
//! disclosure threshold) come from the engine.

use askama::Template;

use super::{PageFrame, Reader, Section};
use crate::error::AppError;
use crate::i18n::LangChoice;

#[derive(Template)]
#[template(path = "about.html")]
pub struct AboutPage {
    pub frame: PageFrame,
    pub min_cell: u64,
    pub services: usize,
    pub kpis: usize,
}

pub fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    path_and_query: &str,
) -> Result<AboutPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    Ok(AboutPage {
        frame: reader.frame(
            choice,
            Section::About,
            path_and_query,
            format!("{} — civica", lang.t("about-heading")),
        )?,
        min_cell: engine.catalogue().disclosure.min_cell,
        services: engine.catalogue().services.len(),
        kpis: engine.catalogue().kpis.len(),
    })
}
