//! The orders service binary: REST on port 8000 (`PLATFORM_HTTP_PORT`), queries
//! between instances on `PLATFORM_APPLICATION_SERVER` (default port 8100 on the HTTP
//! host). Configuration: see `service_kit::ServiceConfig`.

fn main() -> anyhow::Result<()> {
    orders_service::run()
}
