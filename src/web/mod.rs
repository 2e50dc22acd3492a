//! The HTTP side: the actix-web application, its routes and how it starts and stops.

pub mod error;
pub mod openapi;
pub mod pages;
pub mod proxy;
pub mod routes;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::{web, App, HttpMessage, HttpServer};
use deadpool_postgres::Pool;

use crate::config::Settings;
use crate::ingest::auth::TokenCache;
use crate::ingest::batcher::{self, Batcher, BatcherConfig, BatcherTasks};
use crate::ingest::IngestLimits;
use crate::registry::serving::ForecastCache;
use proxy::{ClientInfo, TrustedProxies};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    /// Champions and their latest forecasts, shared with the scheduler's monitor.
    pub forecasts: Arc<ForecastCache>,
    /// Group-commit queue every ingested reading goes through.
    pub batcher: Batcher,
    /// Token → sensor hints (re-checked at commit; see `ingest::auth`).
    pub tokens: Arc<TokenCache>,
    pub limits: IngestLimits,
    /// Rendered pages for anonymous readers, reused for a few seconds.
    pub pages: Arc<pages::cache::PageCache>,
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    port: u16,
    server: Server,
    forecasts: Arc<ForecastCache>,
    writers: BatcherTasks,
    shutdown_timeout: Duration,
}

impl Application {
    /// Binds `server.bind` (port 0 picks a free port), starts the ingest writers and
    /// builds the server. Must be called inside a Tokio runtime (the writers run on it).
    pub fn build(settings: Arc<Settings>, pool: Pool) -> std::io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "Application::build must run inside a Tokio runtime",
            ));
        }
        let listener = TcpListener::bind(&settings.server.bind)?;
        let port = listener.local_addr()?.port();
        let forecasts = Arc::new(ForecastCache::new(settings.registry.serve_recheck_ms));
        let ingest = &settings.ingest;
        let (batcher, writers) = batcher::start(
            pool.clone(),
            BatcherConfig {
                queue_capacity: ingest.queue_capacity,
                writers: ingest.writers,
                max_flush_rows: ingest.max_flush_rows,
            },
        );
        let state = AppState {
            pool,
            settings: settings.clone(),
            forecasts: forecasts.clone(),
            batcher,
            tokens: Arc::new(TokenCache::new()),
            limits: IngestLimits {
                max_body: ingest.max_body,
                max_batch: ingest.max_batch,
                // Absurdly large values mean "no limit" rather than a panic.
                max_future: i64::try_from(ingest.max_future_secs)
                    .ok()
                    .and_then(chrono::Duration::try_seconds)
                    .unwrap_or(chrono::Duration::MAX),
            },
            pages: Arc::new(pages::cache::PageCache::new(settings.ui.page_cache_secs)),
        };
        // Validated with the settings; parsing again here cannot fail for loaded settings,
        // but settings built in code get the same check.
        let trusted = Arc::new(
            TrustedProxies::parse(&settings.server.trusted_proxies)
                .map_err(|m| std::io::Error::other(format!("server.trusted_proxies: {m}")))?,
        );
        let mut server = HttpServer::new(move || {
            let trusted = trusted.clone();
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::JsonConfig::default().error_handler(error::json_error_handler))
                .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
                .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
                // One log line and one metrics observation per request, with the real
                // client address (see `proxy`) and the matched route pattern.
                .wrap_fn(move |req, srv| {
                    let started = Instant::now();
                    let method = req.method().clone();
                    let path = req.path().to_owned();
                    let client = ClientInfo::resolve(req.peer_addr(), req.headers(), &trusted);
                    let client_addr = client.addr_display();
                    req.extensions_mut().insert(client);
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await;
                        let elapsed = started.elapsed();
                        let latency_ms = elapsed.as_secs_f64() * 1000.0;
                        match &res {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let route = r.request().match_pattern();
                                crate::metrics::http_request(
                                    method.as_str(),
                                    route.as_deref(),
                                    status,
                                    elapsed,
                                );
                                tracing::info!(
                                    client = %client_addr, %method, %path, status, latency_ms, "request"
                                )
                            }
                            Err(e) => {
                                let status = e.as_response_error().status_code().as_u16();
                                crate::metrics::http_request(method.as_str(), None, status, elapsed);
                                tracing::warn!(
                                    client = %client_addr, %method, %path, status, error = %e, latency_ms, "request failed"
                                )
                            }
                        }
                        res
                    }
                })
                .configure(routes::configure)
        })
        // We handle SIGINT/SIGTERM ourselves so both stop gracefully.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            port,
            server,
            forecasts,
            writers,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The forecast cache of this application, to share with the scheduler.
    pub fn forecasts(&self) -> Arc<ForecastCache> {
        self.forecasts.clone()
    }

    /// A handle that stops the server (gracefully or not) from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until the server is stopped through its handle, then lets the ingest
    /// writers finish what is queued (every queued request is answered before that).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // The server has dropped its workers and with them every handle to the queue:
        // the writers commit what is left and stop.
        self.writers.drain(self.shutdown_timeout).await;
        result
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully: in-flight requests finish.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            handle.stop(true).await;
        });
        self.run_until_stopped().await
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
