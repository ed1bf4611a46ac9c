//! The `suanli` command line, built inside the test package so that whole-system tests can run
//! it as a process through `CARGO_BIN_EXE_suanli-test-cli`.

fn main() {
    suanli_cli::main();
}
