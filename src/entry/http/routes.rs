//! The one table of routes: method, path, Lambda function and permission of every endpoint,
//! and beside it the console's static routes (a public page, not an API endpoint). The local
//! server mounts both; template.yaml is checked against both, openapi.yaml against the API's.
//! From them, `LambdaFunction::all`: every Lambda function of the service, each a name that
//! template.yaml sets as the function's `FUNCTION` (what the one `lambda` binary serves).

use lambda_http::http::Method;

use crate::domain::Need;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    CreateKey,
    CreateCustomKey,
    ListKeys,
    GetKey,
    UpdateKey,
    DeleteKey,
    RollKey,
    VerifyKey,
    ImportKeys,
    ListKeyEvents,
    KeyUsage,
    Me,
    CreateIdentity,
    ListIdentities,
    GetIdentity,
    UpdateIdentity,
    DeleteIdentity,
    IdentityUsage,
    GetCompany,
    UpdateCompany,
    ListCompanyEvents,
    SecretScanningGithub,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub endpoint: Endpoint,
    pub method: Method,
    /// As API Gateway writes it: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda function: its `FUNCTION` in template.yaml, its log group's last segment, and
    /// its sample event in events/.
    pub function: &'static str,
    pub need: Need,
}

pub const ROUTES: [Route; 22] = [
    Route {
        endpoint: Endpoint::CreateKey,
        method: Method::POST,
        path: "/keys",
        function: "create_key",
        need: Need::Write,
    },
    Route { endpoint: Endpoint::ListKeys, method: Method::GET, path: "/keys", function: "list_keys", need: Need::Read },
    Route {
        endpoint: Endpoint::VerifyKey,
        method: Method::POST,
        path: "/keys/verify",
        function: "verify_key",
        need: Need::Verify,
    },
    Route {
        endpoint: Endpoint::ImportKeys,
        method: Method::POST,
        path: "/keys/import",
        function: "import_keys",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::CreateCustomKey,
        method: Method::POST,
        path: "/keys/{keyId}",
        function: "create_custom_key",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::GetKey,
        method: Method::GET,
        path: "/keys/{keyId}",
        function: "get_key",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::UpdateKey,
        method: Method::PATCH,
        path: "/keys/{keyId}",
        function: "update_key",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::DeleteKey,
        method: Method::DELETE,
        path: "/keys/{keyId}",
        function: "delete_key",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::RollKey,
        method: Method::POST,
        path: "/keys/{keyId}/roll",
        function: "roll_key",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::ListKeyEvents,
        method: Method::GET,
        path: "/keys/{keyId}/events",
        function: "list_key_events",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::KeyUsage,
        method: Method::GET,
        path: "/keys/{keyId}/usage",
        function: "key_usage",
        need: Need::Read,
    },
    Route { endpoint: Endpoint::Me, method: Method::GET, path: "/me", function: "me", need: Need::Authenticated },
    Route {
        endpoint: Endpoint::CreateIdentity,
        method: Method::POST,
        path: "/identities",
        function: "create_identity",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::ListIdentities,
        method: Method::GET,
        path: "/identities",
        function: "list_identities",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::GetIdentity,
        method: Method::GET,
        path: "/identities/{identityId}",
        function: "get_identity",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::UpdateIdentity,
        method: Method::PATCH,
        path: "/identities/{identityId}",
        function: "update_identity",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::DeleteIdentity,
        method: Method::DELETE,
        path: "/identities/{identityId}",
        function: "delete_identity",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::IdentityUsage,
        method: Method::GET,
        path: "/identities/{identityId}/usage",
        function: "identity_usage",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::GetCompany,
        method: Method::GET,
        path: "/company",
        function: "get_company",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::UpdateCompany,
        method: Method::PATCH,
        path: "/company",
        function: "update_company",
        need: Need::Write,
    },
    Route {
        endpoint: Endpoint::ListCompanyEvents,
        method: Method::GET,
        path: "/company/events",
        function: "list_company_events",
        need: Need::Read,
    },
    Route {
        endpoint: Endpoint::SecretScanningGithub,
        method: Method::POST,
        path: "/secret-scanning/github",
        function: "secret_scanning_github",
        need: Need::Signature,
    },
];

/// A route of the console: a static file compiled into the `console` function, public (the page
/// holds no data; the API it calls authenticates every request).
#[derive(Debug, Clone)]
pub struct StaticRoute {
    pub method: Method,
    /// As API Gateway writes it: `{asset}` is one file name.
    pub path: &'static str,
    pub function: &'static str,
}

/// The Lambda function that serves the console.
pub const CONSOLE_FUNCTION: &str = "console";
/// The Lambda function on the table's stream (`entry::stream`).
pub const STREAM_FUNCTION: &str = "retention_stream";
/// The Lambda function fed by verify's log group (`entry::usage_aggregator`).
pub const USAGE_AGGREGATOR_FUNCTION: &str = "usage_aggregator";
/// The Lambda function that publishes lifecycle events from the table's stream (`entry::events`).
pub const EVENTS_FUNCTION: &str = "lifecycle_events";
/// The Lambda function behind the `Custom::RootKey` resource (`entry::root_key_resource`).
pub const ROOT_KEY_FUNCTION: &str = "root_key_resource";
/// The Lambda function behind other stacks' `Custom::ApiKey` resources (`entry::api_key_resource`).
pub const API_KEY_FUNCTION: &str = "api_key_resource";

pub const STATIC_ROUTES: [StaticRoute; 2] = [
    StaticRoute { method: Method::GET, path: "/console", function: CONSOLE_FUNCTION },
    StaticRoute { method: Method::GET, path: "/console/{asset}", function: CONSOLE_FUNCTION },
];

/// Whether `path` is one of the console's (`/console`, `/console/…`): the console answers it,
/// never the API.
pub fn is_console_path(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

impl Endpoint {
    pub fn route(self) -> &'static Route {
        ROUTES.iter().find(|r| r.endpoint == self).expect("every endpoint has a route")
    }
}

/// What one Lambda function serves. Every function runs the same `lambda` binary; template.yaml
/// sets each one's `FUNCTION` to its name, read and checked at start-up by `entry::lambda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaFunction {
    /// One route of `ROUTES`.
    Endpoint(Endpoint),
    /// The console's page and assets (`STATIC_ROUTES`).
    Console,
    /// TTL removals from the table's stream.
    RetentionStream,
    /// Verify's usage lines, from its log group's subscription filter.
    UsageAggregator,
    /// The `Custom::RootKey` resource.
    RootKeyResource,
    /// Other stacks' `Custom::ApiKey` resources.
    ApiKeyResource,
    /// Lifecycle events (EventBridge) and expiry schedules from the table's stream.
    EventsStream,
}

impl LambdaFunction {
    /// Every function of the service: one per route, then the console, the retention stream's,
    /// the custom resources' and the lifecycle events'.
    pub fn all() -> impl Iterator<Item = LambdaFunction> {
        ROUTES.iter().map(|r| LambdaFunction::Endpoint(r.endpoint)).chain([
            LambdaFunction::Console,
            LambdaFunction::RetentionStream,
            LambdaFunction::UsageAggregator,
            LambdaFunction::RootKeyResource,
            LambdaFunction::ApiKeyResource,
            LambdaFunction::EventsStream,
        ])
    }

    /// Its name: `FUNCTION` in template.yaml, the `function` of its log lines' `request` span,
    /// its log group's last segment and its event in events/.
    pub fn name(self) -> &'static str {
        match self {
            LambdaFunction::Endpoint(endpoint) => endpoint.route().function,
            LambdaFunction::Console => CONSOLE_FUNCTION,
            LambdaFunction::RetentionStream => STREAM_FUNCTION,
            LambdaFunction::UsageAggregator => USAGE_AGGREGATOR_FUNCTION,
            LambdaFunction::RootKeyResource => ROOT_KEY_FUNCTION,
            LambdaFunction::ApiKeyResource => API_KEY_FUNCTION,
            LambdaFunction::EventsStream => EVENTS_FUNCTION,
        }
    }

    /// The function named `name`, if the service has one.
    pub fn from_name(name: &str) -> Option<LambdaFunction> {
        LambdaFunction::all().find(|f| f.name() == name)
    }
}

#[derive(Debug)]
pub enum RouteMatch {
    Found(&'static Route, Vec<(String, String)>),
    /// The path exists with other methods: these.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// Matches as API Gateway does: a literal segment beats a parameter (`/keys/verify` over
/// `/keys/{keyId}`).
pub fn match_route(method: &Method, path: &str) -> RouteMatch {
    let path = path.trim_end_matches('/');
    let mut candidates: Vec<(&'static Route, Vec<(String, String)>)> =
        ROUTES.iter().filter_map(|route| bind(route.path, path).map(|params| (route, params))).collect();
    let fewest_params = candidates.iter().filter(|(r, _)| r.method == *method).map(|(_, p)| p.len()).min();
    if let Some(fewest) = fewest_params {
        candidates.retain(|(r, p)| r.method == *method && p.len() == fewest);
        let (route, params) = candidates.swap_remove(0);
        return RouteMatch::Found(route, params);
    }
    // The methods of the path itself: `/keys/verify` has POST alone, though other methods of it
    // reach `/keys/{keyId}` (and answer 404 there).
    let Some(fewest) = candidates.iter().map(|(_, p)| p.len()).min() else { return RouteMatch::NotFound };
    let mut allowed: Vec<Method> =
        candidates.into_iter().filter(|(_, p)| p.len() == fewest).map(|(r, _)| r.method.clone()).collect();
    allowed.dedup();
    RouteMatch::MethodNotAllowed(allowed)
}

fn bind(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if template.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (t, p) in template.iter().zip(&path) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) if !p.is_empty() => params.push((name.to_owned(), (*p).to_owned())),
            Some(_) => return None,
            None if t == p => {}
            None => return None,
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: Method, path: &str) -> (Endpoint, Vec<(String, String)>) {
        match match_route(&method, path) {
            RouteMatch::Found(route, params) => (route.endpoint, params),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn literal_routes_win_over_parameters() {
        assert_eq!(found(Method::POST, "/keys/verify").0, Endpoint::VerifyKey);
        assert_eq!(found(Method::POST, "/keys/abc"), (Endpoint::CreateCustomKey, vec![("keyId".into(), "abc".into())]));
        assert_eq!(found(Method::GET, "/keys/verify").0, Endpoint::GetKey);
        assert_eq!(found(Method::POST, "/keys/abc/roll").0, Endpoint::RollKey);
        assert_eq!(found(Method::GET, "/keys/").0, Endpoint::ListKeys);
    }

    #[test]
    fn other_methods_and_paths() {
        assert!(matches!(match_route(&Method::PUT, "/keys/abc"), RouteMatch::MethodNotAllowed(m) if m.len() == 4));
        assert!(
            matches!(match_route(&Method::PUT, "/keys/verify"), RouteMatch::MethodNotAllowed(m) if m == [Method::POST])
        );
        assert!(matches!(match_route(&Method::GET, "/nope"), RouteMatch::NotFound));
        assert!(matches!(match_route(&Method::GET, "/keys/a/b"), RouteMatch::NotFound));
        assert_eq!(found(Method::GET, "/me").0, Endpoint::Me);
        assert_eq!(found(Method::GET, "/identities").0, Endpoint::ListIdentities);
        assert_eq!(found(Method::PATCH, "/identities/id_1").0, Endpoint::UpdateIdentity);
        assert_eq!(found(Method::GET, "/company/events").0, Endpoint::ListCompanyEvents);
        assert!(
            matches!(match_route(&Method::PATCH, "/company/events"), RouteMatch::MethodNotAllowed(m) if m == [Method::GET])
        );
        assert!(
            matches!(match_route(&Method::POST, "/identities/id_1"), RouteMatch::MethodNotAllowed(m) if m.len() == 3)
        );
    }

    #[test]
    fn console_paths_are_the_consoles() {
        for path in ["/console", "/console/", "/console/app.js", "/console/a/b"] {
            assert!(is_console_path(path), "{path}");
        }
        for path in ["/consoles", "/keys", "/", "/me"] {
            assert!(!is_console_path(path), "{path}");
        }
    }

    #[test]
    fn every_endpoint_has_one_route_and_a_distinct_function() {
        let mut functions: Vec<&str> = ROUTES.iter().map(|r| r.function).collect();
        functions.sort();
        functions.dedup();
        assert_eq!(functions.len(), ROUTES.len());
    }

    #[test]
    fn every_function_has_a_distinct_name_found_by_it() {
        let mut names: Vec<&str> = LambdaFunction::all().map(LambdaFunction::name).collect();
        assert_eq!(names.len(), ROUTES.len() + 6);
        for function in LambdaFunction::all() {
            assert_eq!(LambdaFunction::from_name(function.name()), Some(function));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ROUTES.len() + 6, "{names:?}");
        assert_eq!(LambdaFunction::from_name("lambda"), None);
        assert_eq!(LambdaFunction::from_name(""), None);
    }
}
