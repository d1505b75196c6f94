//! The examples' command-line flags: `--name value` or `--name=value`, and `-h`/`--help`,
//! which prints the usage and exits.

/// The flags in `args`, as `(name, value)` pairs in order, each name one of `known`.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    known: &[&str],
    usage: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut args = args.into_iter();
    let mut flags = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown flag {name}"));
        }
        let Some(value) = value.or_else(|| args.next()) else {
            return Err(format!("{name} needs a value"));
        };
        flags.push((name, value));
    }
    Ok(flags)
}

/// The error for a value `name` does not take.
pub fn invalid(name: &str, value: &str) -> String {
    format!("invalid value for {name}: {value:?}")
}
