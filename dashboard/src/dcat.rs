//! The DCAT-AP_IT catalogue of the open datasets, as RDF (Turtle, RDF/XML, JSON-LD).
//!
//! Built from [`DATASETS`] and the publisher's [`OpenDataConfig`] with every class and
//! property the Italian profile makes mandatory: `dcatapit:Catalog` (title, description,
//! publisher, modified, homepage, datasets), `dcatapit:Dataset` (identifier prefixed with the
//! IPA code, title and description in Italian and English, modified, theme, rights holder,
//! accrual periodicity, contact point, publisher, distributions) and `dcatapit:Distribution`
//! (format, access and download URL, licence, media type). Themes, frequencies, formats,
//! licences and licence types are IRIs of the official vocabularies, never literals.

use civica_analytics::opendata::{DATASETS, Dataset, DownloadFormat, OpenDataConfig};
use oxrdf::vocab::{rdf, xsd};
use oxrdf::{IriParseError, Literal, NamedNode, Triple};
use oxrdfio::{RdfFormat, RdfSerializer};

/// Namespaces of the profile.
pub const DCATAPIT: &str = "http://dati.gov.it/onto/dcatapit#";
pub const DCAT: &str = "http://www.w3.org/ns/dcat#";
pub const DCT: &str = "http://purl.org/dc/terms/";
pub const FOAF: &str = "http://xmlns.com/foaf/0.1/";
pub const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";

/// The EU data theme of public-service KPIs: "Government and public sector".
pub const THEME_GOVE: &str = "http://publications.europa.eu/resource/authority/data-theme/GOVE";
/// The catalogue's language in the EU language table.
pub const LANGUAGE_ITA: &str = "http://publications.europa.eu/resource/authority/language/ITA";

/// A catalogue serialisation served at `/catalog.{extension}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogFormat {
    Turtle,
    RdfXml,
    JsonLd,
}

impl CatalogFormat {
    pub const ALL: [CatalogFormat; 3] = [
        CatalogFormat::Turtle,
        CatalogFormat::RdfXml,
        CatalogFormat::JsonLd,
    ];

    pub fn extension(self) -> &'static str {
        match self {
            CatalogFormat::Turtle => "ttl",
            CatalogFormat::RdfXml => "rdf",
            CatalogFormat::JsonLd => "jsonld",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            CatalogFormat::Turtle => "text/turtle; charset=utf-8",
            CatalogFormat::RdfXml => "application/rdf+xml",
            CatalogFormat::JsonLd => "application/ld+json",
        }
    }

    pub fn from_extension(extension: &str) -> Option<CatalogFormat> {
        CatalogFormat::ALL
            .into_iter()
            .find(|f| f.extension() == extension)
    }

    fn rdf_format(self) -> RdfFormat {
        match self {
            CatalogFormat::Turtle => RdfFormat::Turtle,
            CatalogFormat::RdfXml => RdfFormat::RdfXml,
            // The plain (non-streaming) JSON-LD profile.
            CatalogFormat::JsonLd => {
                RdfFormat::from_extension("jsonld").unwrap_or(RdfFormat::Turtle)
            }
        }
    }
}

/// The IRI of a term in `namespace`.
fn term(namespace: &str, local: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("{namespace}{local}"))
}

/// An IRI built from configuration or request data, checked: a malformed base URI or
/// e-mail address must fail loudly rather than publish a broken catalogue.
fn iri(value: &str) -> Result<NamedNode, IriParseError> {
    NamedNode::new(value)
}

fn text(value: &str, lang: &str) -> Literal {
    Literal::new_language_tagged_literal_unchecked(value, lang)
}

fn date(day: chrono::NaiveDate) -> Literal {
    Literal::new_typed_literal(day.format("%Y-%m-%d").to_string(), xsd::DATE)
}

/// The IRIs of the things the catalogue describes, under `base` (no trailing slash).
pub struct CatalogIris<'a> {
    pub base: &'a str,
}

impl CatalogIris<'_> {
    pub fn catalog(&self) -> String {
        format!("{}/catalog", self.base)
    }
    pub fn publisher(&self, ipa_code: &str) -> String {
        format!("{}/catalog#agent-{ipa_code}", self.base)
    }
    pub fn contact_point(&self) -> String {
        format!("{}/catalog#contact-point", self.base)
    }
    pub fn dataset(&self, dataset: &Dataset) -> String {
        format!("{}/opendata/{}", self.base, dataset.id)
    }
    pub fn distribution(&self, dataset: &Dataset, format: DownloadFormat) -> String {
        format!(
            "{}/opendata/{}#distribution{}",
            self.base,
            dataset.id,
            format.suffix().replace('.', "-")
        )
    }
    pub fn download(&self, dataset: &Dataset, format: DownloadFormat) -> String {
        format!("{}/opendata/{}{}", self.base, dataset.id, format.suffix())
    }
}

/// The whole catalogue as triples. `base` is the site's address without a trailing slash;
/// `modified` the date of the latest data.
pub fn catalog_triples(
    config: &OpenDataConfig,
    base: &str,
    modified: chrono::NaiveDate,
) -> Result<Vec<Triple>, IriParseError> {
    let iris = CatalogIris { base };
    let publisher = &config.publisher;
    let mut triples = Vec::new();
    let mut add = |s: &NamedNode, p: NamedNode, o: oxrdf::Term| {
        triples.push(Triple::new(s.clone(), p, o));
    };

    // The administration, publisher and rights holder of everything.
    let agent = iri(&iris.publisher(&publisher.ipa_code))?;
    add(&agent, rdf::TYPE.into(), term(DCATAPIT, "Agent").into());
    add(&agent, rdf::TYPE.into(), term(FOAF, "Agent").into());
    add(
        &agent,
        term(DCT, "identifier"),
        Literal::new_simple_literal(&publisher.ipa_code).into(),
    );
    add(
        &agent,
        term(FOAF, "name"),
        text(&publisher.name, "it").into(),
    );

    // The open-data office, contact point of every dataset.
    let contact = iri(&iris.contact_point())?;
    add(
        &contact,
        rdf::TYPE.into(),
        term(DCATAPIT, "Organization").into(),
    );
    add(
        &contact,
        rdf::TYPE.into(),
        term(VCARD, "Organization").into(),
    );
    add(
        &contact,
        term(VCARD, "fn"),
        text(&publisher.name, "it").into(),
    );
    add(
        &contact,
        term(VCARD, "hasEmail"),
        iri(&format!("mailto:{}", publisher.contact_email))?.into(),
    );

    // The licence of every distribution.
    let licence = iri(&config.licence.url)?;
    add(
        &licence,
        rdf::TYPE.into(),
        term(DCATAPIT, "LicenseDocument").into(),
    );
    add(
        &licence,
        rdf::TYPE.into(),
        term(DCT, "LicenseDocument").into(),
    );
    add(
        &licence,
        term(DCT, "type"),
        iri(&config.licence.licence_type)?.into(),
    );
    add(
        &licence,
        term(FOAF, "name"),
        text(&config.licence.title, "it").into(),
    );

    let catalog = iri(&iris.catalog())?;
    add(&catalog, rdf::TYPE.into(), term(DCATAPIT, "Catalog").into());
    add(&catalog, rdf::TYPE.into(), term(DCAT, "Catalog").into());
    add(
        &catalog,
        term(DCT, "title"),
        text(
            &format!("Dati aperti dei servizi pubblici – {}", publisher.name),
            "it",
        )
        .into(),
    );
    add(
        &catalog,
        term(DCT, "title"),
        text(
            &format!("Public-service open data – {}", publisher.name),
            "en",
        )
        .into(),
    );
    add(
        &catalog,
        term(DCT, "description"),
        text(
            "Indicatori dei servizi pubblici del Comune (uso dei canali online, richieste, soddisfazione), calcolati dai registri dei servizi e pubblicati solo come aggregati sottoposti a controllo della riservatezza.",
            "it",
        )
        .into(),
    );
    add(
        &catalog,
        term(DCT, "description"),
        text(
            "Key indicators of the city's public services (online take-up, requests, satisfaction), computed from the services' logs and published only as disclosure-controlled aggregates.",
            "en",
        )
        .into(),
    );
    add(&catalog, term(DCT, "publisher"), agent.clone().into());
    add(&catalog, term(DCT, "modified"), date(modified).into());
    add(&catalog, term(DCT, "language"), iri(LANGUAGE_ITA)?.into());
    add(
        &catalog,
        term(FOAF, "homepage"),
        iri(&format!("{base}/opendata"))?.into(),
    );

    for dataset in DATASETS {
        let node = iri(&iris.dataset(dataset))?;
        add(&catalog, term(DCAT, "dataset"), node.clone().into());
        add(&node, rdf::TYPE.into(), term(DCATAPIT, "Dataset").into());
        add(&node, rdf::TYPE.into(), term(DCAT, "Dataset").into());
        add(
            &node,
            term(DCT, "identifier"),
            Literal::new_simple_literal(format!("{}:{}", publisher.ipa_code, dataset.id)).into(),
        );
        add(
            &node,
            term(DCT, "title"),
            text(dataset.title_it, "it").into(),
        );
        add(
            &node,
            term(DCT, "title"),
            text(dataset.title_en, "en").into(),
        );
        add(
            &node,
            term(DCT, "description"),
            text(dataset.description_it, "it").into(),
        );
        add(
            &node,
            term(DCT, "description"),
            text(dataset.description_en, "en").into(),
        );
        add(&node, term(DCT, "modified"), date(modified).into());
        add(&node, term(DCAT, "theme"), iri(THEME_GOVE)?.into());
        add(&node, term(DCT, "rightsHolder"), agent.clone().into());
        add(&node, term(DCT, "publisher"), agent.clone().into());
        add(
            &node,
            term(DCT, "accrualPeriodicity"),
            iri(dataset.frequency.iri())?.into(),
        );
        add(&node, term(DCAT, "contactPoint"), contact.clone().into());
        add(&node, term(DCT, "language"), iri(LANGUAGE_ITA)?.into());
        add(
            &node,
            term(DCAT, "landingPage"),
            iri(&format!("{base}/opendata#{}", dataset.id))?.into(),
        );
        for format in DownloadFormat::ALL {
            let distribution = iri(&iris.distribution(dataset, format))?;
            let url = iri(&iris.download(dataset, format))?;
            add(
                &node,
                term(DCAT, "distribution"),
                distribution.clone().into(),
            );
            add(
                &distribution,
                rdf::TYPE.into(),
                term(DCATAPIT, "Distribution").into(),
            );
            add(
                &distribution,
                rdf::TYPE.into(),
                term(DCAT, "Distribution").into(),
            );
            add(
                &distribution,
                term(DCT, "format"),
                iri(format.file_type_iri())?.into(),
            );
            add(&distribution, term(DCAT, "accessURL"), url.clone().into());
            add(&distribution, term(DCAT, "downloadURL"), url.into());
            add(&distribution, term(DCT, "license"), licence.clone().into());
            let media_type = format.media_type().split(';').next().unwrap_or_default();
            add(
                &distribution,
                term(DCAT, "mediaType"),
                iri(&format!(
                    "http://www.iana.org/assignments/media-types/{media_type}"
                ))?
                .into(),
            );
            add(
                &distribution,
                term(DCT, "title"),
                text(&format!("{} ({})", dataset.title_it, format.label()), "it").into(),
            );
        }
    }
    Ok(triples)
}

/// `triples` serialised in `format`.
pub fn serialise(triples: &[Triple], format: CatalogFormat) -> std::io::Result<Vec<u8>> {
    let mut serializer = RdfSerializer::from_format(format.rdf_format());
    for (prefix, namespace) in [
        ("dcatapit", DCATAPIT),
        ("dcat", DCAT),
        ("dct", DCT),
        ("foaf", FOAF),
        ("vcard", VCARD),
    ] {
        serializer = serializer
            .with_prefix(prefix, namespace)
            .map_err(std::io::Error::other)?;
    }
    let mut writer = serializer.for_writer(Vec::new());
    for triple in triples {
        writer.serialize_triple(triple)?;
    }
    writer.finish()
}
