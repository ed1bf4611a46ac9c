//! The web console (`GET /`): a page and its scripts, embedded in the binary, served from the
//! exchange itself. The page talks only to this origin's API (its Content-Security-Policy says so
//! to the browser); the chart library is Apache ECharts from `console/node_modules`.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One embedded file: its name under `/console/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    media_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../../console/index.html"),
};

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/app.js"),
    },
    Asset {
        name: "app.css",
        media_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../console/app.css"),
    },
    Asset {
        name: "echarts.min.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/node_modules/echarts/dist/echarts.min.js"),
    },
];

/// Scripts only from this origin, requests only to it, no framing. Inline styles are allowed:
/// the chart library positions its tooltips with them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .wrap(Compress::default())
                .route(web::get().to(index))
                // Another method gets the JSON 405 every other path gets, not actix's empty one.
                .default_service(web::to(super::not_found)),
        )
        .service(
            web::resource("/console/{name}")
                .wrap(Compress::default())
                .route(web::get().to(asset))
                .default_service(web::to(super::not_found)),
        );
}

/// The web console: the public market view, and each role's desk after signing in (HTML).
#[utoipa::path(get, path = "/", tag = "console", operation_id = "console",
    responses((status = 200, description = "the console's page", content_type = "text/html"),
              (status = 304, description = "unchanged since the `If-None-Match` tag")))]
pub async fn index(request: HttpRequest) -> HttpResponse {
    serve(&request, &INDEX)
}

/// One of the console's files: `app.js`, `app.css`, `echarts.min.js`.
#[utoipa::path(get, path = "/console/{name}", tag = "console", operation_id = "console_file",
    params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "the file (JavaScript or CSS)"),
              (status = 304, description = "unchanged since the `If-None-Match` tag"),
              (status = 404, body = suanli_sdk::ErrorBody)))]
pub async fn asset(
    request: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no console file {name}")))?;
    Ok(serve(&request, asset))
}

/// The asset with a strong ETag (its content hash), revalidated on every use (`no-cache`): a new
/// server version is picked up at once, an unchanged file costs a 304.
fn serve(request: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = etag(asset);
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if matches {
        response.finish()
    } else {
        response.content_type(asset.media_type).body(asset.bytes)
    }
}

fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        std::iter::once(&INDEX)
            .chain(ASSETS)
            .map(|asset| {
                let digest = Sha256::digest(asset.bytes);
                (asset.name, format!("\"{}\"", hex::encode(&digest[..12])))
            })
            .collect()
    });
    tags.iter()
        .find(|(name, _)| *name == asset.name)
        .map_or("\"\"", |(_, tag)| tag.as_str())
}
