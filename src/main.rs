//! The binary only wires telemetry, settings and the application; everything else lives in the
//! library so that tests build the very same server.

use clap::Parser;
#[cfg(not(feature = "system-alloc"))]
use mimalloc::MiMalloc;
use privmsg::{settings::Settings, startup::Application, telemetry};

/// glibc's allocator spent a third of the message path zeroing fresh pages and consolidating
/// chunks under load (see BENCHMARKS.md); mimalloc keeps and reuses its pages.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> anyhow::Result<()> {
    telemetry::init();
    privmsg::memory::refuse_transparent_huge_pages();
    let settings = Settings::parse();
    settings.runtime()?.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped(privmsg::shutdown::signal()).await
    })
}
