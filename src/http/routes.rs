//! Building the router while writing down what it serves: each route is added with its method, so the list
//! of `METHOD /path` the application answers comes from the very calls that build the router (the API
//! reference is checked against that list, not against this code's text).

use axum::Router;
use axum::handler::Handler;
use axum::routing::{self, MethodRouter};

use crate::app::App;

/// Routes being built, and each one's method and path.
pub(crate) struct Routes {
    router: Router<App>,
    listed: Vec<(&'static str, String)>,
}

/// One method per HTTP method a route can answer: `.get(path, handler)` serves `GET path` with `handler`.
macro_rules! methods {
    ($($name:ident => $method:literal),+ $(,)?) => {
        $(
            #[doc = concat!("Serves `", $method, " path` with `handler`.")]
            pub fn $name<H: Handler<T, App>, T: 'static>(self, path: &str, handler: H) -> Self {
                self.add($method, path, routing::$name(handler))
            }
        )+
    };
}

impl Routes {
    pub fn new() -> Self {
        Self { router: Router::new(), listed: Vec::new() }
    }

    methods!(get => "GET", post => "POST", put => "PUT", patch => "PATCH", delete => "DELETE");

    /// Several methods on one path merge into one route (axum's `route` joins them).
    fn add(mut self, method: &'static str, path: &str, endpoint: MethodRouter<App>) -> Self {
        self.router = self.router.route(path, endpoint);
        self.listed.push((method, path.to_owned()));
        self
    }

    /// Adds `other`'s routes to these.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.listed.extend(other.listed);
        self
    }

    /// Each route as `METHOD /path`, the path under `prefix` (where the router will be nested).
    pub fn listed_under(&self, prefix: &str) -> impl Iterator<Item = String> {
        self.listed.iter().map(move |(method, path)| format!("{method} {prefix}{path}"))
    }

    pub fn into_router(self) -> Router<App> {
        self.router
    }
}
