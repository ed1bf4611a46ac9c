//! The hostile policy keeps the 128 KiB stack the examples had before (the others link with
//! 32 KiB, see `.cargo/config.toml`): its `recursion` mode is there to overflow the engine's own
//! stack bound (`max_wasm_stack`), which a smaller linear-memory stack would pre-empt with an
//! out-of-bounds access.
fn main() {
    println!("cargo:rustc-link-arg=-zstack-size=131072");
}
