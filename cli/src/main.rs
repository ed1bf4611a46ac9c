//! `suanli`: see [`suanli_cli`].

fn main() {
    suanli_cli::main();
}
