//! The web console's one third-party asset, Apache ECharts, is embedded from `console/node_modules`
//! (installed by `scripts/setup` with `npm ci`, from `console/package-lock.json`). Say so plainly
//! when it is missing rather than let `include_bytes!` fail with a bare path.

fn main() {
    // The migrations are embedded (`db::MIGRATIONS`); a new one must rebuild the server.
    println!("cargo:rerun-if-changed=../migrations");
    let chart_library = "console/node_modules/echarts/dist/echarts.min.js";
    println!("cargo:rerun-if-changed={chart_library}");
    println!("cargo:rerun-if-changed=console/package-lock.json");
    if !std::path::Path::new(chart_library).is_file() {
        panic!(
            "{chart_library} is missing: run scripts/setup (it runs `npm ci --prefix server/console`)"
        );
    }
}
