//! The exchange's own command line, built inside the test package so that whole-system tests can
//! run it as a separate process (and kill it) through `CARGO_BIN_EXE_suanli-test-server`.

fn main() -> anyhow::Result<()> {
    suanli_server::cli::main()
}
