//! `cargo run -p spindle-manifest --example check -- path/to/spindle.toml`
//! prints the diagnostics for a manifest, or its parsed model.
fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "spindle.toml".into());
    match manifest::Manifest::load(&path) {
        Ok(m) => {
            println!("{m:#?}");
            if let Err(e) = m.check_sources() {
                println!("{e}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
