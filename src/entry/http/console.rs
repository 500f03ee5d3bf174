//! The key console: one page and its assets, compiled into the binary from console/, served
//! under `/console` by the local server and by the `console` Lambda function. Public and static:
//! the page holds no data, and every call it makes goes to the API, which authenticates it.

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Response};

use super::error::ApiError;

/// No inline script or style, nothing from elsewhere, calls only to this origin, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    /// The file name under `/console/`; the page itself is also `/console`.
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const PAGE: &str = "index.html";

const ASSETS: [Asset; 3] = [
    Asset { name: PAGE, content_type: "text/html; charset=utf-8", body: include_str!("../../../console/index.html") },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../console/app.js"),
    },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../../console/app.css") },
];

/// The bytes of every asset together (the page loads all of them).
#[cfg(test)]
fn total_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// The answer to `method path` for a console path (`/console`, `/console/{asset}`): the asset,
/// or a JSON 404/405 like the API's, every one with the console's security headers.
pub fn answer(method: &Method, path: &str) -> Response<Body> {
    let name = path.trim_end_matches('/').strip_prefix("/console").map(|rest| rest.trim_start_matches('/'));
    let name = name.map(|name| if name.is_empty() { PAGE } else { name });
    let asset = name.and_then(|name| ASSETS.iter().find(|a| a.name == name));
    let mut response = match asset {
        // The error's response carries `Allow: GET`.
        Some(_) if method != Method::GET && method != Method::HEAD => {
            ApiError::MethodNotAllowed { method: method.to_string(), allowed: "GET".into() }.into_response()
        }
        Some(asset) => {
            let body = if method == Method::HEAD { Body::Empty } else { Body::Text(asset.body.to_owned()) };
            let mut found = Response::new(body);
            *found.status_mut() = StatusCode::OK;
            found.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(asset.content_type));
            found
        }
        None => ApiError::NoRoute.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    // Small and compiled in: always asked again, so a deploy is seen at once.
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_fit_in_100_kb() {
        assert!(total_bytes() < 100 * 1024, "{} bytes", total_bytes());
    }

    #[test]
    fn assets_have_their_types_and_unknown_ones_are_404() {
        let page = answer(&Method::GET, "/console");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(answer(&Method::GET, "/console/").status(), StatusCode::OK);
        assert_eq!(
            answer(&Method::GET, "/console/app.js").headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let missing = answer(&Method::GET, "/console/nope.js");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(answer(&Method::POST, "/console").status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
