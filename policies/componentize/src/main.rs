//! `suanli-componentize IN.wasm OUT.wasm`: turns a core module that carries wit-bindgen's
//! component-type section into a component, validating it. Used by `scripts/build-policies`.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: suanli-componentize IN.wasm OUT.wasm");
    };
    let module = std::fs::read(&input).with_context(|| format!("Failed to read {input}"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("{input} carries no component type section"))?
        .validate(true)
        .encode()
        .with_context(|| format!("Failed to encode {input} as a component"))?;
    std::fs::write(&output, &component).with_context(|| format!("Failed to write {output}"))?;
    println!("{output}: {} bytes", component.len());
    Ok(())
}
