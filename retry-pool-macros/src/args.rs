//! The attribute's arguments, parsed into a typed model that keeps each value's span.
//!
//! Parsing checks each key on its own (its name and the form of its value); checks across
//! keys live in `validate`. Every mistake is collected, and parsing goes on after one, so
//! that a single build reports them all.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitInt, LitStr, Path, Token, UnOp};

use crate::errors::Errors;
use crate::suggest;

/// The keys the attribute takes.
pub(crate) const KEYS: &[&str] = &["concurrency", "retry", "attempts", "crate"];

/// Keys kept for later versions: each is an error for now, never silently ignored.
const RESERVED: &[&str] = &["backoff", "timeout", "spawn"];

/// The retry policies, as written in `retry = "..."`.
const POLICIES: &[&str] = &["lifo", "fifo", "none"];

/// The arguments of one `#[pooled(...)]`, each with where it was written.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) concurrency: Option<Concurrency>,
    pub(crate) retry: Option<Spanned<Retry>>,
    pub(crate) attempts: Option<Spanned<u32>>,
    pub(crate) krate: Option<Path>,
    /// Keys that were written, even with a bad value or misspelt (as the key suggested):
    /// checks across keys must not report a key as missing when its mistake is reported.
    pub(crate) written: Vec<&'static str>,
}

impl Args {
    pub(crate) fn was_written(&self, key: &str) -> bool {
        self.written.contains(&key)
    }
}

/// The value of `concurrency`.
pub(crate) enum Concurrency {
    /// An integer literal, known to be at least 1.
    Literal(LitInt),
    /// Any other expression, evaluated when the function is called.
    Expr(Expr),
}

impl Concurrency {
    pub(crate) fn span(&self) -> Span {
        match self {
            Concurrency::Literal(literal) => literal.span(),
            Concurrency::Expr(expr) => expr.span(),
        }
    }
}

/// The value of `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    Lifo,
    Fifo,
    None,
}

impl Retry {
    fn from_name(name: &str) -> Option<Retry> {
        match name {
            "lifo" => Some(Retry::Lifo),
            "fifo" => Some(Retry::Fifo),
            "none" => Some(Retry::None),
            _ => None,
        }
    }

    /// Whether a failed task may run again.
    pub(crate) fn retries(self) -> bool {
        self != Retry::None
    }
}

/// A value and the span of the tokens that gave it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// Parses the tokens inside `#[pooled(...)]`.
///
/// Returns what could be parsed, and the errors (each spanned on the offending token), so
/// that the caller can still use `crate = "..."` in the code it emits on error.
pub(crate) fn parse(tokens: TokenStream) -> (Args, Errors) {
    let mut args = Args::default();
    let mut errors = Errors::default();
    let parser = syn::meta::parser(|meta| parse_key(&mut args, &mut errors, meta));
    if let Err(error) = parser.parse2(tokens) {
        // Malformed beyond a single key (a missing comma, a stray token): syn's own error.
        errors.push(error);
    }
    (args, errors)
}

fn parse_key(args: &mut Args, errors: &mut Errors, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    let Some(key) = meta.path.get_ident().map(ToString::to_string) else {
        errors.push(syn::Error::new_spanned(
            &meta.path,
            format!("expected a key, one of {}", list(KEYS, "`")),
        ));
        return skip_value(meta.input);
    };
    let span = meta.path.span();

    if RESERVED.contains(&key.as_str()) {
        errors.push(syn::Error::new(
            span,
            format!(
                "`{key}` is not supported yet; the supported keys are {}",
                all(KEYS, "`")
            ),
        ));
        return skip_value(meta.input);
    }
    if !KEYS.contains(&key.as_str()) {
        let message = match suggest::closest(&key, KEYS) {
            Some(known) => {
                args.written.push(known);
                format!("unknown key `{key}`; did you mean `{known}`?")
            }
            None => format!("unknown key `{key}`; expected {}", list(KEYS, "`")),
        };
        errors.push(syn::Error::new(span, message));
        return skip_value(meta.input);
    }

    let Some(&key_name) = KEYS.iter().find(|&&known| known == key) else {
        unreachable!("`{key}` is one of the keys");
    };
    let already_written = args.was_written(key_name);
    args.written.push(key_name);
    if already_written {
        errors.push(syn::Error::new(
            span,
            format!("duplicate key `{key}`; each key may be given once"),
        ));
        return skip_value(meta.input);
    }

    if !meta.input.peek(Token![=]) {
        errors.push(syn::Error::new(
            span,
            format!("`{key}` takes a value, such as `{}`", example(&key)),
        ));
        return skip_value(meta.input);
    }
    let value: Expr = meta.value()?.parse()?;
    let parsed = match key.as_str() {
        "concurrency" => concurrency(value).map(|value| args.concurrency = Some(value)),
        "retry" => retry(&value).map(|value| args.retry = Some(value)),
        "attempts" => attempts(&value).map(|value| args.attempts = Some(value)),
        _ => krate(&value).map(|value| args.krate = Some(value)),
    };
    if let Err(error) = parsed {
        errors.push(error);
    }
    Ok(())
}

/// `concurrency = 8`, or an expression evaluated when the function is called.
fn concurrency(value: Expr) -> syn::Result<Concurrency> {
    match literal(&value) {
        Some(Lit::Int(int)) => {
            let slots: u64 = int.base10_parse().map_err(|_| {
                syn::Error::new(int.span(), "`concurrency` is too large for a `usize`")
            })?;
            if slots == 0 {
                return Err(syn::Error::new(
                    int.span(),
                    "`concurrency` must be at least 1: a pool of 0 slots would never run a task",
                ));
            }
            Ok(Concurrency::Literal(int.clone()))
        }
        Some(Lit::Str(string)) if string.value().trim().parse::<u64>().is_ok() => {
            Err(syn::Error::new(
                string.span(),
                format!(
                    "`concurrency` takes an integer, not a string: write `concurrency = {}`",
                    string.value().trim()
                ),
            ))
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            "`concurrency` takes an integer greater than 0, such as `concurrency = 8`, or an expression evaluated when the function is called, such as `concurrency = self.limit`",
        )),
        None if negative_literal(&value) => Err(syn::Error::new_spanned(
            &value,
            "`concurrency` must be at least 1",
        )),
        None => Ok(Concurrency::Expr(value)),
    }
}

/// `retry = "lifo"`, `"fifo"` or `"none"`.
fn retry(value: &Expr) -> syn::Result<Spanned<Retry>> {
    let expected = list(POLICIES, "\"");
    match literal(value) {
        Some(Lit::Str(string)) => {
            let name = string.value();
            match Retry::from_name(&name) {
                Some(retry) => Ok(Spanned {
                    value: retry,
                    span: string.span(),
                }),
                None => Err(syn::Error::new(
                    string.span(),
                    match suggest::closest(&name, POLICIES) {
                        Some(known) => format!(
                            "unknown retry policy \"{name}\"; did you mean \"{known}\"? (expected {expected})"
                        ),
                        None => format!("unknown retry policy \"{name}\"; expected {expected}"),
                    },
                )),
            }
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!("`retry` takes a string: {expected}"),
        )),
        None => {
            // `retry = lifo` or `retry = Retry::Lifo`: the policy, unquoted.
            let unquoted = match value {
                Expr::Path(path) => path.path.segments.last().and_then(|last| {
                    let name = last.ident.to_string().to_ascii_lowercase();
                    POLICIES.contains(&name.as_str()).then_some(name)
                }),
                _ => None,
            };
            Err(syn::Error::new_spanned(
                value,
                match unquoted {
                    Some(name) => format!(
                        "`retry` takes a string: write `retry = \"{name}\"`, with the quotes"
                    ),
                    None => format!("`retry` takes a string: {expected}"),
                },
            ))
        }
    }
}

/// `attempts = 3`: total attempts per task, the first one included.
fn attempts(value: &Expr) -> syn::Result<Spanned<u32>> {
    const EXPECTED: &str = "`attempts` takes an integer literal of at least 1, such as `attempts = 3` (every attempt counts, the first one included)";
    match literal(value) {
        Some(Lit::Int(int)) => {
            let attempts: u32 = int
                .base10_parse()
                .map_err(|_| syn::Error::new(int.span(), "`attempts` is too large for a `u32`"))?;
            if attempts == 0 {
                return Err(syn::Error::new(
                    int.span(),
                    "`attempts` must be at least 1: it counts every attempt, the first one included",
                ));
            }
            Ok(Spanned {
                value: attempts,
                span: int.span(),
            })
        }
        Some(other) => Err(syn::Error::new(other.span(), EXPECTED)),
        None => Err(syn::Error::new_spanned(value, EXPECTED)),
    }
}

/// `crate = "path::to::retry_pool"`.
fn krate(value: &Expr) -> syn::Result<Path> {
    const EXPECTED: &str = "`crate` takes the path of the retry-pool crate as a string, such as `crate = \"my_reexport\"`";
    match literal(value) {
        Some(Lit::Str(string)) => parse_path(string).map_err(|_| {
            syn::Error::new(
                string.span(),
                format!(
                    "`crate` takes a path, such as `crate = \"my_reexport\"`, not \"{}\"",
                    string.value()
                ),
            )
        }),
        Some(other) => Err(syn::Error::new(other.span(), EXPECTED)),
        None => Err(syn::Error::new_spanned(value, EXPECTED)),
    }
}

fn parse_path(string: &LitStr) -> syn::Result<Path> {
    string.parse_with(Path::parse_mod_style)
}

/// The literal `value` is, seen through the invisible groups of `macro_rules!` fragments
/// and parentheses.
fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        Expr::Paren(paren) => literal(&paren.expr),
        _ => None,
    }
}

/// `-1`, `-0.5`: a negated literal.
fn negative_literal(value: &Expr) -> bool {
    match value {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => literal(expr).is_some(),
        Expr::Group(group) => negative_literal(&group.expr),
        Expr::Paren(paren) => negative_literal(&paren.expr),
        _ => false,
    }
}

/// Skips the rest of a key that is reported already: `= value` or `(...)`, up to the comma.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn example(key: &str) -> &'static str {
    match key {
        "concurrency" => "concurrency = 8",
        "retry" => "retry = \"lifo\"",
        "attempts" => "attempts = 3",
        _ => "crate = \"my_reexport\"",
    }
}

/// `` `a`, `b` or `c` `` (with `quote` around each word).
fn list(words: &[&str], quote: &str) -> String {
    join(words, quote, "or")
}

/// `` `a`, `b` and `c` ``.
fn all(words: &[&str], quote: &str) -> String {
    join(words, quote, "and")
}

fn join(words: &[&str], quote: &str, conjunction: &str) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| format!("{quote}{word}{quote}"))
        .collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {conjunction} {last}", rest.join(", "))
        }
        _ => quoted.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> Args {
        let (args, errors) = parse(tokens);
        if let Some(error) = errors.into_error() {
            panic!("unexpected error: {error}");
        }
        args
    }

    fn messages(tokens: TokenStream) -> Vec<String> {
        let (_, errors) = parse(tokens);
        errors
            .into_error()
            .map(|error| error.into_iter().map(|error| error.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_key() {
        let args = parse_ok(quote!(
            concurrency = 8,
            retry = "fifo",
            attempts = 4,
            crate = "a::b"
        ));
        assert!(
            matches!(args.concurrency, Some(Concurrency::Literal(ref int)) if int.base10_digits() == "8")
        );
        assert_eq!(args.retry.unwrap().value, Retry::Fifo);
        assert_eq!(args.attempts.unwrap().value, 4);
        let krate = args.krate.unwrap();
        assert_eq!(quote!(#krate).to_string(), quote!(a::b).to_string());
    }

    #[test]
    fn defaults_are_left_to_validation() {
        let args = parse_ok(quote!(concurrency = self.limit));
        assert!(matches!(args.concurrency, Some(Concurrency::Expr(_))));
        assert!(args.retry.is_none() && args.attempts.is_none() && args.krate.is_none());
        assert!(parse_ok(quote!()).concurrency.is_none());
    }

    #[test]
    fn concurrency_takes_any_expression_but_a_bad_literal() {
        for ok in [
            quote!(concurrency = n),
            quote!(concurrency = n * 2),
            quote!(concurrency = 8u8),
        ] {
            parse_ok(ok);
        }
        assert_eq!(
            messages(quote!(concurrency = "8")),
            ["`concurrency` takes an integer, not a string: write `concurrency = 8`"]
        );
        assert!(messages(quote!(concurrency = 0))[0].contains("at least 1"));
        assert!(messages(quote!(concurrency = -1))[0].contains("at least 1"));
        assert!(messages(quote!(concurrency = 1.5))[0].contains("takes an integer"));
    }

    #[test]
    fn retry_policies() {
        for (name, retry) in [
            ("lifo", Retry::Lifo),
            ("fifo", Retry::Fifo),
            ("none", Retry::None),
        ] {
            let args = parse_ok(quote!(retry = #name));
            assert_eq!(args.retry.unwrap().value, retry);
        }
        assert_eq!(
            messages(quote!(retry = "lifoo")),
            [
                r#"unknown retry policy "lifoo"; did you mean "lifo"? (expected "lifo", "fifo" or "none")"#
            ]
        );
        assert_eq!(
            messages(quote!(retry = lifo)),
            [r#"`retry` takes a string: write `retry = "lifo"`, with the quotes"#]
        );
        assert_eq!(
            messages(quote!(retry = "random")),
            [r#"unknown retry policy "random"; expected "lifo", "fifo" or "none""#]
        );
    }

    #[test]
    fn attempts_is_a_positive_integer_literal() {
        assert!(messages(quote!(attempts = 0))[0].contains("at least 1"));
        assert!(
            messages(quote!(attempts = 2.5))[0].starts_with("`attempts` takes an integer literal")
        );
        assert!(
            messages(quote!(attempts = n))[0].starts_with("`attempts` takes an integer literal")
        );
        assert!(messages(quote!(attempts = 99999999999))[0].contains("too large"));
    }

    #[test]
    fn keys() {
        assert_eq!(
            messages(quote!(concurency = 8)),
            ["unknown key `concurency`; did you mean `concurrency`?"]
        );
        assert_eq!(
            messages(quote!(workers = 8)),
            ["unknown key `workers`; expected `concurrency`, `retry`, `attempts` or `crate`"]
        );
        assert_eq!(
            messages(quote!(concurrency = 8, concurrency = 9)),
            ["duplicate key `concurrency`; each key may be given once"]
        );
        assert_eq!(
            messages(quote!(timeout = "2s")),
            [
                "`timeout` is not supported yet; the supported keys are `concurrency`, `retry`, `attempts` and `crate`"
            ]
        );
        assert_eq!(
            messages(quote!(concurrency)),
            ["`concurrency` takes a value, such as `concurrency = 8`"]
        );
    }

    #[test]
    fn every_mistake_is_reported() {
        let found = messages(quote!(
            concurency = 8,
            retry = lifo,
            attempts = 0,
            timeout = "2s",
            backoff(1),
            crate = 3
        ));
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn crate_path() {
        let args = parse_ok(quote!(crate = "::my::reexport"));
        let krate = args.krate.unwrap();
        assert_eq!(
            quote!(#krate).to_string(),
            quote!(::my::reexport).to_string()
        );
        assert!(messages(quote!(crate = "not a path"))[0].starts_with("`crate` takes a path"));
        assert!(messages(quote!(crate = my_reexport))[0].starts_with("`crate` takes the path"));
    }
}
