//! The API reference page (`/api/docs`), rendered on the server from the OpenAPI document
//! that `/api/openapi.json` serves: every path and method with its summary, parameters and
//! their types, request body, responses and their media types, then the schemas.
//!
//! The page reads the document as JSON (as any client would), so it shows exactly what is
//! published. The document's own texts are in English; the page marks them `lang="en"`.

use askama::Template;
use serde_json::Value;

use super::{PageFrame, Reader, Section};
use crate::error::AppError;
use crate::i18n::LangChoice;

#[derive(Template)]
#[template(path = "api_docs.html")]
pub struct ApiDocsPage {
    pub frame: PageFrame,
    pub title: String,
    pub version: String,
    pub description: Rich,
    pub operations: Vec<Operation>,
    pub schemas: Vec<SchemaEntry>,
}

/// One method of one path.
pub struct Operation {
    /// The fragment identifier of its section: `get-api-v1-kpis-id`.
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: Rich,
    pub description: Rich,
    pub parameters: Vec<Parameter>,
    /// Media types of the request body, with their schema.
    pub request_body: Vec<MediaType>,
    pub responses: Vec<ResponseEntry>,
}

/// A parameter of an operation.
pub struct Parameter {
    pub name: String,
    /// `query`, `path` or `header`.
    pub location: String,
    pub type_name: TypeName,
    pub required: bool,
    pub description: Rich,
}

/// A schema's name, with a link when it is one of the document's schemas.
pub struct TypeName {
    pub text: String,
    pub href: Option<String>,
}

/// A media type and the schema of its body.
pub struct MediaType {
    pub media_type: String,
    pub schema: TypeName,
}

/// A documented response.
pub struct ResponseEntry {
    pub status: String,
    pub description: Rich,
    pub media_types: Vec<MediaType>,
    /// Response headers: name and description.
    pub headers: Vec<(String, Rich)>,
}

/// A schema of the document's components.
pub struct SchemaEntry {
    pub name: String,
    pub anchor: String,
    pub description: Rich,
    pub properties: Vec<Property>,
}

/// A property of a schema.
pub struct Property {
    pub name: String,
    pub type_name: TypeName,
    pub required: bool,
    pub description: Rich,
}

/// A text of the document: its lines joined, and the spans between backticks shown as code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rich {
    /// `(is code, text)`, in order.
    pub parts: Vec<(bool, String)>,
}

impl Rich {
    pub fn new(text: &str) -> Rich {
        let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let parts = joined
            .split('`')
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(|(i, part)| (i % 2 == 1, part.to_string()))
            .collect();
        Rich { parts }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// The methods shown, in this order.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    document: &Value,
    path_and_query: &str,
) -> Result<ApiDocsPage, AppError> {
    let lang = choice.lang;
    let frame = reader.frame(
        choice,
        Section::ApiDocs,
        path_and_query,
        format!("{} — civica", lang.t("api-docs-heading")),
    )?;
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut operations = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                let operation = &item[method];
                if operation.is_object() {
                    operations.push(operation_entry(method, path, operation));
                }
            }
        }
    }
    let required_names = |schema: &Value| -> Vec<String> {
        schema["required"]
            .as_array()
            .map(|names| names.iter().map(text).collect())
            .unwrap_or_default()
    };
    let schemas = document["components"]["schemas"]
        .as_object()
        .map(|schemas| {
            schemas
                .iter()
                .map(|(name, schema)| {
                    let required = required_names(schema);
                    SchemaEntry {
                        name: name.clone(),
                        anchor: schema_anchor(name),
                        description: rich(&schema["description"]),
                        properties: schema["properties"]
                            .as_object()
                            .map(|properties| {
                                properties
                                    .iter()
                                    .map(|(property, value)| Property {
                                        name: property.clone(),
                                        type_name: type_name(value),
                                        required: required.contains(property),
                                        description: rich(&value["description"]),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ApiDocsPage {
        frame,
        title: text(&document["info"]["title"]),
        version: text(&document["info"]["version"]),
        description: rich(&document["info"]["description"]),
        operations,
        schemas,
    })
}

fn operation_entry(method: &str, path: &str, operation: &Value) -> Operation {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let parameters = operation["parameters"]
        .as_array()
        .map(|parameters| {
            parameters
                .iter()
                .map(|p| Parameter {
                    name: text(&p["name"]),
                    location: text(&p["in"]),
                    type_name: type_name(&p["schema"]),
                    required: p["required"].as_bool().unwrap_or(false),
                    description: rich(&p["description"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let responses = operation["responses"]
        .as_object()
        .map(|responses| {
            responses
                .iter()
                .map(|(status, response)| ResponseEntry {
                    status: status.clone(),
                    description: rich(&response["description"]),
                    media_types: media_types(&response["content"]),
                    headers: response["headers"]
                        .as_object()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|(name, h)| (name.clone(), rich(&h["description"])))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Operation {
        anchor: format!(
            "{method}-{}",
            path.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("-")
        ),
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        summary: rich(&operation["summary"]),
        description: rich(&operation["description"]),
        parameters,
        request_body: media_types(&operation["requestBody"]["content"]),
        responses,
    }
}

fn rich(value: &Value) -> Rich {
    Rich::new(value.as_str().unwrap_or_default())
}

/// The media types of a `content` object, in the document's order.
fn media_types(content: &Value) -> Vec<MediaType> {
    content
        .as_object()
        .map(|content| {
            content
                .iter()
                .map(|(media_type, body)| MediaType {
                    media_type: media_type.clone(),
                    schema: type_name(&body["schema"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn schema_anchor(name: &str) -> String {
    format!("schema-{name}")
}

/// A short name for a schema: a component's name (linked), `string`, `integer (int64)`,
/// `array of KpiSummary`, `string or null`, `binary`.
fn type_name(schema: &Value) -> TypeName {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
        return TypeName {
            href: Some(format!("#{}", schema_anchor(&name))),
            text: name,
        };
    }
    let plain = |text: String| TypeName { text, href: None };
    if let Some(items) = schema.get("items") {
        let item = type_name(items);
        return TypeName {
            text: format!("array of {}", item.text),
            href: item.href,
        };
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let names: Vec<TypeName> = options.iter().map(type_name).collect();
            let href = names.iter().find_map(|n| n.href.clone());
            let text = names
                .into_iter()
                .map(|n| n.text)
                .collect::<Vec<_>>()
                .join(" or ");
            return TypeName { text, href };
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return plain("any".into());
    }
    let text = types.join(" or ");
    match schema["format"].as_str() {
        Some(format) => plain(format!("{text} ({format})")),
        None => plain(text),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn type_names() {
        for (schema, text, href) in [
            (
                json!({"$ref": "#/components/schemas/KpiValues"}),
                "KpiValues",
                Some("#schema-KpiValues"),
            ),
            (json!({"type": "string"}), "string", None),
            (json!({"type": ["string", "null"]}), "string or null", None),
            (
                json!({"type": "integer", "format": "int64"}),
                "integer (int64)",
                None,
            ),
            (
                json!({"type": "array", "items": {"$ref": "#/components/schemas/Service"}}),
                "array of Service",
                Some("#schema-Service"),
            ),
            (json!({}), "any", None),
        ] {
            let name = type_name(&schema);
            assert_eq!(name.text, text, "{schema}");
            assert_eq!(name.href.as_deref(), href, "{schema}");
        }
    }

    #[test]
    fn backticks_become_code_and_lines_are_joined() {
        let rich = Rich::new("KPI id, e.g.\n`online_share` or `requests`");
        assert_eq!(
            rich.parts,
            [
                (false, "KPI id, e.g. ".to_string()),
                (true, "online_share".to_string()),
                (false, " or ".to_string()),
                (true, "requests".to_string()),
            ]
        );
        assert!(Rich::new("  ").is_empty());
    }

    #[test]
    fn operations_get_stable_anchors() {
        let operation = operation_entry("get", "/api/v1/kpis/{id}", &json!({"responses": {}}));
        assert_eq!(operation.anchor, "get-api-v1-kpis-id");
        assert_eq!(operation.method, "GET");
    }
}
