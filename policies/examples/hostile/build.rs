//! The hostile policy keeps the 128 KiB stack the examples had before (the others link with
//! 32 KiB, see `.cargo/config.toml`): its `recursion` mode is there to overflow the engine's own
//! stack bound (`max_wasm_stack`), which a smaller linear-memory stack would pre-empt with an
//! out-of-bounds access.
fn main() {
    // Only for the WebAssembly build (the last `-z stack-size` given to the linker counts, and a
    // build script's link arguments come after the ones in `.cargo/config.toml`).
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=131072");
    }
}
