//! The HTTP side: the actix-web application, its routes and how it starts and stops.

pub mod error;
pub mod pages;
pub mod routes;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{web, App, HttpServer};
use deadpool_postgres::Pool;

use crate::config::Settings;
use crate::registry::serving::ForecastCache;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    /// Champions and their latest forecasts, shared with the scheduler's monitor.
    pub forecasts: Arc<ForecastCache>,
    /// Rendered pages for anonymous readers, reused for a few seconds.
    pub pages: Arc<pages::PageCache>,
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    port: u16,
    server: Server,
    forecasts: Arc<ForecastCache>,
}

impl Application {
    /// Binds `server.bind` (port 0 picks a free port) and builds the server.
    pub fn build(settings: Arc<Settings>, pool: Pool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&settings.server.bind)?;
        let port = listener.local_addr()?.port();
        let forecasts = Arc::new(ForecastCache::new());
        let state = AppState {
            pool,
            settings: settings.clone(),
            forecasts: forecasts.clone(),
            pages: Arc::new(pages::PageCache::default()),
        };
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::JsonConfig::default().error_handler(error::json_error_handler))
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let method = req.method().clone();
                    let path = req.path().to_owned();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await;
                        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                        match &res {
                            Ok(r) => tracing::info!(
                                %method, %path, status = r.status().as_u16(), latency_ms, "request"
                            ),
                            Err(e) => tracing::warn!(%method, %path, error = %e, latency_ms, "request failed"),
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

    /// Runs until the server is stopped through its handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully: in-flight requests finish.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            handle.stop(true).await;
        });
        self.server.await
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
