//! One module per resource; each exports `router()`.

pub mod api;
pub mod api_v1;
pub mod catalog;
pub mod charts;
pub mod docs;
pub mod error_pages;
pub mod health;
pub mod opendata;
pub mod pages;
pub mod query;
pub mod staff;
