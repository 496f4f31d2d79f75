//! The services index (`/servizi`): every catalogued service grouped by area, and a plain GET
//! form that goes to a service page (`/servizi?service=code` redirects there).

use askama::Template;
use civica_analytics::catalogue::AREAS;

use super::{PageFrame, Reader, Section, SelectOption, area_name};
use crate::error::AppError;
use crate::i18n::LangChoice;

/// The services of one area.
#[derive(Debug, Clone)]
pub struct AreaServices {
    pub area: String,
    pub services: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "services.html")]
pub struct ServicesPage {
    pub frame: PageFrame,
    pub areas: Vec<AreaServices>,
    pub service_options: Vec<SelectOption>,
}

pub fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    path_and_query: &str,
) -> Result<ServicesPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let catalogue = engine.catalogue();
    let areas = AREAS
        .iter()
        .map(|area| AreaServices {
            area: area_name(lang, area),
            services: catalogue
                .services
                .iter()
                .filter(|s| s.area == *area)
                .map(|s| {
                    (
                        choice.href(&format!("/servizi/{}", s.code)),
                        s.name.get(lang.code()).to_string(),
                    )
                })
                .collect(),
        })
        .filter(|a| !a.services.is_empty())
        .collect();
    let service_options = catalogue
        .services
        .iter()
        .map(|s| SelectOption {
            value: s.code.clone(),
            label: s.name.get(lang.code()).to_string(),
            selected: false,
        })
        .collect();
    Ok(ServicesPage {
        frame: reader.frame(
            choice,
            Section::Services,
            path_and_query,
            format!("{} — civica", lang.t("services-heading")),
        )?,
        areas,
        service_options,
    })
}
