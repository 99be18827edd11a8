//! The binary only wires telemetry, settings and the application; everything else lives in the
//! library so that tests build the very same server.

use clap::Parser;
use privmsg::{settings::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let settings = Settings::parse();
    let app = Application::build(settings).await?;
    app.run_until_stopped(privmsg::shutdown::signal()).await
}
