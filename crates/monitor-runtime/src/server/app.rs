//! The server itself: its shared state, its routes, and how it stops.

use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use monitor_core::Error;
use monitor_core::observer::Observer;
use monitor_report::{Collector, Limits};
use monitor_strategies::{MonitorPlan, WindowFeed};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::auth::{self, Token};
use super::config::ServerConfig;
use super::events::{EventLog, EventLogObserver};
use super::{dashboard, health, ingest, journal, metrics, openapi, query};
use crate::engine::{Engine, Sink};

/// How often histograms are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) sink: Sink,
    pub(crate) config: ServerConfig,
    pub(crate) token: Option<Token>,
    pub(crate) events: Arc<EventLog>,
    /// Records accepted and not yet processed, within `max_queued_records`.
    pub(crate) admission: Arc<Semaphore>,
    pub(crate) metrics: PrometheusHandle,
    /// The `model` labels of the open-findings gauge set so far.
    pub(crate) open_labels: Mutex<BTreeSet<String>>,
    /// The recent windows the dashboard draws.
    pub(crate) dashboard: Collector,
    draining: AtomicBool,
}

/// The state handed to handlers: cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// Whether the server is shutting down.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// A JSON error answer: `{"error": "..."}`.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The HTTP server of `model-monitor serve`, before it listens.
///
/// Build it from `[server]` with [`Server::new`], add [`Server::observer`]
/// to the engine, spawn the engine, then [`Server::bind`] it to the
/// engine: that gives a [`ServerHandle`] and the future that serves.
///
/// ```no_run
/// use monitor_core::observer::ObserverRegistry;
/// use monitor_core::registry::BuildContext;
/// use monitor_runtime::server::Server;
/// use monitor_runtime::{Config, EngineBuilder};
///
/// # async fn run() -> Result<(), monitor_core::Error> {
/// let config = Config::from_toml("[server]\nlisten = \"127.0.0.1:0\"\n")?;
/// let server = Server::new(config.server.clone(), false)?;
/// let ctx = BuildContext { detectors: monitor_strategies::builtin_detectors(), ..Default::default() };
/// let engine = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &ctx)?
///     .metrics_max_models(config.server.metrics_max_models)
///     .observer(server.observer())
///     .spawn()?;
/// let (handle, serving) = server.bind(engine.engine()).await?;
/// let serving = tokio::spawn(serving);
/// // ... later: stop taking requests, let those in flight finish, drain.
/// handle.shutdown();
/// let _ = serving.await;
/// let summary = engine.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Server {
    config: ServerConfig,
    token: Option<Token>,
    events: Arc<EventLog>,
    metrics: PrometheusHandle,
    dashboard: Collector,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.config).field("token", &self.token).finish_non_exhaustive()
    }
}

impl Server {
    /// Checks `config`, reads the token from the variable that
    /// `token_env` names, and installs the Prometheus recorder (once per
    /// process). Without a token, a listen address that is not loopback is
    /// refused unless `insecure`.
    pub fn new(config: ServerConfig, insecure: bool) -> Result<Self, Error> {
        config.validate()?;
        let token = config.token_env.as_deref().map(Token::from_env).transpose()?;
        if token.is_none() && !config.listen.ip().is_loopback() && !insecure {
            return Err(Error::config(
                "server.listen",
                format!(
                    "{} is not a loopback address, and no token guards the API: set server.token_env, or pass --insecure to serve it unguarded",
                    config.listen
                ),
            ));
        }
        let events = Arc::new(EventLog::new(config.event_ring, config.recent_per_model, config.tracked_models));
        Ok(Self { config, token, events, metrics: metrics::recorder(), dashboard: dashboard::unlabelled() })
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The observer that keeps the recent events, findings and jobs the
    /// server answers with. Add it to the engine before spawning it.
    pub fn observer(&self) -> Box<dyn Observer> {
        Box::new(EventLogObserver { log: Arc::clone(&self.events) })
    }

    /// Titles the dashboard's charts with the detectors of `plan` (the
    /// plan the engine runs).
    #[must_use]
    pub fn with_plan(mut self, plan: &MonitorPlan) -> Self {
        self.dashboard = Collector::new(plan, Limits::LIVE);
        self
    }

    /// The window feed of the dashboard, for
    /// [`EngineBuilder::window_feed`](crate::EngineBuilder::window_feed):
    /// without it, the dashboard lists no window.
    pub fn window_feed(&self) -> impl Fn(usize) -> Box<dyn WindowFeed> + Send + Sync + 'static + use<> {
        let dashboard = self.dashboard.clone();
        move |_| dashboard.feed()
    }

    /// The observer that follows retrain jobs for the dashboard. Add it to
    /// the engine before spawning it.
    pub fn dashboard_observer(&self) -> Box<dyn Observer> {
        self.dashboard.observer()
    }

    /// Listens on `server.listen` and serves `engine`.
    pub async fn bind(
        self,
        engine: &Engine,
    ) -> Result<(ServerHandle, impl Future<Output = ()> + Send + 'static + use<>), Error> {
        let addr = self.config.listen;
        let listener = TcpListener::bind(addr).await.map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        self.serve(engine, listener)
    }

    /// Serves `engine` on a listener of the caller's.
    ///
    /// The future answers requests until [`ServerHandle::shutdown`]; then
    /// new requests get 503, no connection is taken, and it completes once
    /// the requests in flight have been answered. Records it accepted are
    /// in the engine's queues: shut the engine down after it to drain them.
    pub fn serve(
        self,
        engine: &Engine,
        listener: TcpListener,
    ) -> Result<(ServerHandle, impl Future<Output = ()> + Send + 'static + use<>), Error> {
        let local_addr = listener.local_addr().map_err(|e| Error::io("cannot read the listen address", e))?;
        let permits = self.config.max_queued_records.min(Semaphore::MAX_PERMITS);
        let state = AppState(Arc::new(Shared {
            engine: engine.clone(),
            sink: engine.sink(),
            config: self.config,
            token: self.token,
            events: self.events,
            admission: Arc::new(Semaphore::new(permits)),
            metrics: self.metrics.clone(),
            open_labels: Mutex::new(BTreeSet::new()),
            dashboard: self.dashboard,
            draining: AtomicBool::new(false),
        }));
        let stop = CancellationToken::new();
        let handle = ServerHandle { local_addr, stop: stop.clone(), state: state.clone() };
        let app = router(state);
        let upkeep_handle = self.metrics;
        let serving = async move {
            let upkeep = async {
                let mut every = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    every.tick().await;
                    upkeep_handle.run_upkeep();
                }
            };
            let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            tokio::select! {
                result = server.into_future() => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "the HTTP server failed");
                    }
                }
                () = upkeep => {}
            }
        };
        Ok((handle, serving))
    }
}

/// Controls a serving [`Server`]. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    state: AppState,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on (with the port the system chose
    /// for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts shutting down: new requests get 503, no new connection is
    /// taken, and the serving future completes once the requests in flight
    /// are answered.
    pub fn shutdown(&self) {
        self.state.draining.store(true, Ordering::Relaxed);
        self.stop.cancel();
    }

    /// Whether [`ServerHandle::shutdown`] was called.
    pub fn is_draining(&self) -> bool {
        self.state.is_draining()
    }
}

/// While shutting down, every new request gets 503.
async fn refuse_when_draining(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.is_draining() {
        let mut response = error_body(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

async fn not_found() -> Response {
    error_body(StatusCode::NOT_FOUND, "no such endpoint; GET /v1/openapi.json lists them")
}

fn router(state: AppState) -> Router {
    let writes = Router::new()
        .route("/v1/records", post(ingest::post_records))
        .route("/v1/jobs/{id}/retry", post(journal::retry_job))
        .route("/v1/jobs/{id}/cancel", post(journal::cancel_job))
        .route("/v1/outbox/{id}/retry", post(journal::retry_outbox))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let reads = Router::new()
        .route("/v1/models", get(query::list_models))
        .route("/v1/models/{model}", get(query::get_model))
        .route("/v1/events", get(query::events))
        .route("/v1/jobs", get(journal::list_jobs))
        .route("/v1/jobs/{id}", get(journal::get_job))
        .route("/v1/outbox", get(journal::list_outbox))
        .route("/v1/openapi.json", get(openapi::get_document))
        .route("/metrics", get(metrics::scrape))
        .route("/", get(dashboard::index))
        .route("/models/{model}", get(dashboard::model))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token_for_reads));
    let probes = Router::new().route("/healthz", get(health::healthz)).route("/readyz", get(health::readyz));
    Router::new()
        .merge(writes)
        .merge(reads)
        .merge(probes)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), refuse_when_draining))
        .layer(middleware::from_fn(metrics::track))
        .with_state(state)
}
