//! `suanli-server`: see [`suanli_server::cli`].

fn main() -> anyhow::Result<()> {
    suanli_server::cli::main()
}
