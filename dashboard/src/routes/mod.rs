//! One module per resource; each exports `router()`.

pub mod api;
pub mod health;
pub mod opendata;
pub mod pages;
