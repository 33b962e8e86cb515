//! Waiting for the signal to stop: SIGTERM (how deployments stop a service) or Ctrl-C.

/// Completes on SIGTERM or Ctrl-C; returns the signal's name.
pub async fn signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => "Ctrl-C",
        _ = terminate => "SIGTERM",
    }
}
