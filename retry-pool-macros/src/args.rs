//! The attribute's arguments, parsed into a typed model that keeps each value's span.
//!
//! Parsing checks each key on its own (its name and the form of its value); checks across
//! keys live in `validate`. Every mistake is collected, and parsing goes on after one, so
//! that a single build reports them all.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens as _;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitInt, LitStr, Path, Token, UnOp};

use crate::duration::{self, BackoffProblem, Nanos};
use crate::errors::Errors;
use crate::suggest;

/// The keys the attribute takes, each with an example of its value: the attribute's one
/// table of keys (documented, with their defaults, on `pooled` in `lib.rs`).
pub(crate) const KEYS: &[(&str, &str)] = &[
    ("concurrency", "concurrency = 8"),
    ("retry", "retry = \"lifo\""),
    ("attempts", "attempts = 3"),
    ("backoff", "backoff = \"50ms\""),
    ("timeout", "timeout = \"2s\""),
    ("spawn", "spawn = true"),
    ("retry_if", "retry_if = is_transient"),
    ("retry_after", "retry_after = retry_after_header"),
    ("rate", "rate = \"100/s\""),
    ("retry_throttle", "retry_throttle = (10, 0.1)"),
    ("crate", "crate = \"my_reexport\""),
];

/// The names of the keys.
pub(crate) fn key_names() -> Vec<&'static str> {
    KEYS.iter().map(|&(name, _)| name).collect()
}

/// The retry policies, as written in `retry = "..."`.
const POLICIES: &[&str] = &["lifo", "fifo", "none"];

/// The arguments of one `#[pooled(...)]`, each with where it was written.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) concurrency: Option<Concurrency>,
    pub(crate) retry: Option<Spanned<Retry>>,
    pub(crate) attempts: Option<Spanned<u32>>,
    pub(crate) backoff: Option<Backoff>,
    /// Per attempt; never 0.
    pub(crate) timeout: Option<Spanned<Nanos>>,
    pub(crate) spawn: Option<Spanned<bool>>,
    /// `retry_if = path`, with where its key was written.
    pub(crate) retry_if: Option<Keyed<Path>>,
    /// `retry_after = path`, with where its key was written.
    pub(crate) retry_after: Option<Keyed<Path>>,
    /// At most this many starts in any window of this length.
    pub(crate) rate: Option<(u32, Nanos)>,
    /// gRPC's retry throttling: tokens and the token ratio, with where its key was written.
    pub(crate) retry_throttle: Option<Keyed<(u32, f64)>>,
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

/// The value of `backoff`, and where its key was written (its checks across keys point
/// there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) value: duration::Backoff,
    pub(crate) key: Span,
}

/// A value and where its key was written (its checks across keys point there).
#[derive(Clone, Debug)]
pub(crate) struct Keyed<T> {
    pub(crate) value: T,
    pub(crate) key: Span,
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
            format!("expected a key, one of {}", list(&key_names(), "`")),
        ));
        return skip_value(meta.input);
    };
    let span = meta.path.span();

    let names = key_names();
    let Some(&key_name) = names.iter().find(|&&known| known == key) else {
        let message = match suggest::closest(&key, &names) {
            Some(known) => {
                args.written.push(known);
                format!("unknown key `{key}`; did you mean `{known}`?")
            }
            None => format!("unknown key `{key}`; expected {}", list(&names, "`")),
        };
        errors.push(syn::Error::new(span, message));
        return skip_value(meta.input);
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
        "backoff" => backoff(&value).map(|value| {
            args.backoff = Some(Backoff { value, key: span });
        }),
        "timeout" => timeout(&value).map(|value| args.timeout = Some(value)),
        "spawn" => spawn(&value).map(|value| args.spawn = Some(value)),
        "retry_if" => function(&value, "retry_if", "fn(&E) -> bool", "is_transient")
            .map(|value| args.retry_if = Some(Keyed { value, key: span })),
        "retry_after" => function(
            &value,
            "retry_after",
            "fn(&E) -> Option<Duration>",
            "retry_after_header",
        )
        .map(|value| args.retry_after = Some(Keyed { value, key: span })),
        "rate" => rate(&value).map(|value| args.rate = Some(value)),
        "retry_throttle" => retry_throttle(&value)
            .map(|value| args.retry_throttle = Some(Keyed { value, key: span })),
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

/// The accepted forms of a duration, for the errors.
const DURATION_FORMS: &str = "expected a duration such as `250ms`, `2s` or `1m`: a number followed by one of the units `ns`, `us`, `ms`, `s`, `m`, `h`";

/// `timeout = "2s"`: per attempt, above 0.
fn timeout(value: &Expr) -> syn::Result<Spanned<Nanos>> {
    let string = duration_string(value, "timeout", "2s", |text| duration::parse(text).is_ok())?;
    match duration::parse(&string.value()) {
        Ok(Nanos(0)) => Err(syn::Error::new(
            string.span(),
            "`timeout` must be above 0: every attempt would time out before it could finish (leave `timeout` out for no timeout)",
        )),
        Ok(nanos) => Ok(Spanned {
            value: nanos,
            span: string.span(),
        }),
        Err(problem) => Err(syn::Error::new(
            string.span(),
            problem.message(&string.value(), DURATION_FORMS),
        )),
    }
}

/// `backoff = "50ms"` (fixed) or `backoff = "50ms..5s"` (exponential, with jitter).
fn backoff(value: &Expr) -> syn::Result<duration::Backoff> {
    const FORMS: &str = "expected a backoff such as `50ms` (a fixed delay) or `50ms..5s` (exponential: 50ms, doubling after each failure up to 5s, with jitter), each a number followed by one of the units `ns`, `us`, `ms`, `s`, `m`, `h`";
    let string = duration_string(value, "backoff", "50ms", |text| {
        duration::parse_backoff(text).is_ok()
    })?;
    let text = string.value();
    duration::parse_backoff(&text).map_err(|problem| {
        let message = match problem {
            BackoffProblem::Duration { text, problem } => problem.message(&text, FORMS),
            BackoffProblem::MissingEnd => with_hint(
                FORMS.to_owned(),
                Some("an exponential backoff needs both ends".to_owned()),
            ),
            BackoffProblem::Inclusive { suggestion } => with_hint(
                FORMS.to_owned(),
                Some(format!(
                    "did you mean \"{suggestion}\"? (`..` includes the maximum)"
                )),
            ),
            BackoffProblem::Shrinks { first, max } => {
                let swapped = text
                    .split_once("..")
                    .map(|(first, max)| format!("{max}..{first}"))
                    .unwrap_or_default();
                format!(
                    "this backoff's maximum ({max}) is below its first delay ({first}): an exponential backoff doubles from its first delay up to its maximum; did you mean \"{swapped}\"?"
                )
            }
            BackoffProblem::StartsAtZero => {
                "an exponential backoff cannot start at 0: it doubles its first delay, and 0 doubled stays 0; start above 0, such as `1ms..5s`".to_owned()
            }
        };
        syn::Error::new(string.span(), message)
    })
}

/// The string of a duration key (`timeout`, `backoff`), or the error for any other value:
/// when the value is a duration written without its quotes (`timeout = 2s`, which Rust reads
/// as the number 2 with a suffix), saying how to quote it.
fn duration_string<'a>(
    value: &'a Expr,
    key: &str,
    example: &str,
    parses: impl Fn(&str) -> bool,
) -> syn::Result<&'a LitStr> {
    if let Some(Lit::Str(string)) = literal(value) {
        return Ok(string);
    }
    let written: String = value
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let message = if parses(&written) {
        format!("`{key}` takes a string: write `{key} = \"{written}\"`, with the quotes")
    } else if matches!(literal(value), Some(Lit::Int(_) | Lit::Float(_))) {
        format!(
            "`{key}` takes a string with a unit, not a number: write it in quotes, such as `{key} = \"{example}\"`"
        )
    } else {
        format!("`{key}` takes a duration string, such as `{key} = \"{example}\"`")
    };
    Err(match literal(value) {
        Some(other) => syn::Error::new(other.span(), message),
        None => syn::Error::new_spanned(value, message),
    })
}

fn with_hint(message: String, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{message}; {hint}"),
        None => message,
    }
}

/// `spawn = true` or `spawn = false`.
fn spawn(value: &Expr) -> syn::Result<Spanned<bool>> {
    match literal(value) {
        Some(Lit::Bool(boolean)) => Ok(Spanned {
            value: boolean.value,
            span: boolean.span,
        }),
        Some(Lit::Str(string)) if matches!(string.value().as_str(), "true" | "false") => {
            Err(syn::Error::new(
                string.span(),
                format!(
                    "`spawn` takes `true` or `false`, not a string: write `spawn = {}`",
                    string.value()
                ),
            ))
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            "`spawn` takes `true` or `false`, such as `spawn = true`",
        )),
        None => Err(syn::Error::new_spanned(
            value,
            "`spawn` takes `true` or `false`, such as `spawn = true`",
        )),
    }
}

/// `retry_if = is_transient`: the path of a function, which the compiler checks is of the
/// right type where the expansion passes it to the builder.
fn function(value: &Expr, key: &str, signature: &str, example: &str) -> syn::Result<Path> {
    let message = || {
        format!(
            "`{key}` takes the path of a function `{signature}` (`E` the tasks' error type), such as `{key} = {example}`"
        )
    };
    match value {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        Expr::Group(group) => function(&group.expr, key, signature, example),
        Expr::Lit(ExprLit {
            lit: Lit::Str(string),
            ..
        }) => Err(syn::Error::new(
            string.span(),
            format!(
                "{}, not a string: write `{key} = {}`",
                message(),
                string.value()
            ),
        )),
        _ => Err(syn::Error::new_spanned(value, message())),
    }
}

/// `rate = "100/s"`: at most 100 attempt starts in any second.
fn rate(value: &Expr) -> syn::Result<(u32, Nanos)> {
    const EXPECTED: &str = "`rate` takes a string such as `rate = \"100/s\"` (at most 100 attempt starts in any second)";
    match literal(value) {
        Some(Lit::Str(string)) => duration::parse_rate(&string.value())
            .map_err(|problem| syn::Error::new(string.span(), problem.message(&string.value()))),
        Some(other) => Err(syn::Error::new(other.span(), EXPECTED)),
        None => Err(syn::Error::new_spanned(value, EXPECTED)),
    }
}

/// `retry_throttle = (10, 0.1)`: gRPC's retry throttling, with 10 tokens, each success
/// giving back 0.1 of one.
fn retry_throttle(value: &Expr) -> syn::Result<(u32, f64)> {
    const EXPECTED: &str = "`retry_throttle` takes `(max_tokens, token_ratio)`, such as `retry_throttle = (10, 0.1)`: 10 tokens, each failed attempt takes one, each success gives back 0.1, and retries stop while half or fewer are left";
    let tuple = match value {
        Expr::Tuple(tuple) if tuple.elems.len() == 2 => tuple,
        Expr::Group(group) => return retry_throttle(&group.expr),
        _ => return Err(syn::Error::new_spanned(value, EXPECTED)),
    };
    let tokens = match literal(&tuple.elems[0]) {
        Some(Lit::Int(int)) => {
            let tokens: u32 = int.base10_parse().map_err(|_| {
                syn::Error::new(
                    int.span(),
                    "`retry_throttle`'s token count is too large for a `u32`",
                )
            })?;
            if tokens == 0 {
                return Err(syn::Error::new(
                    int.span(),
                    "`retry_throttle` needs at least 1 token: with 0, every retry would be refused (gRPC's default is 10)",
                ));
            }
            tokens
        }
        _ => return Err(syn::Error::new_spanned(&tuple.elems[0], EXPECTED)),
    };
    let ratio_expr = &tuple.elems[1];
    let not_positive = || {
        syn::Error::new_spanned(
            ratio_expr,
            "`retry_throttle`'s token ratio must be above 0: it is the share of a token each success gives back (gRPC suggests 0.1); with 0, tokens would never come back",
        )
    };
    if negative_literal(ratio_expr) {
        return Err(not_positive());
    }
    let ratio: f64 = match literal(ratio_expr) {
        Some(Lit::Float(float)) => float.base10_parse().map_err(|_| not_positive())?,
        Some(Lit::Int(int)) => int.base10_parse().map_err(|_| not_positive())?,
        _ => return Err(syn::Error::new_spanned(ratio_expr, EXPECTED)),
    };
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(not_positive());
    }
    Ok((tokens, ratio))
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

/// An example of `key` with its value.
fn example(key: &str) -> &'static str {
    KEYS.iter()
        .find(|&&(name, _)| name == key)
        .map_or("", |&(_, example)| example)
}

/// `` `a`, `b` or `c` `` (with `quote` around each word).
fn list(words: &[&str], quote: &str) -> String {
    join(words, quote, "or")
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
    fn retry_control_keys() {
        assert!(messages(quote!(retry_if = is_transient)).is_empty());
        assert!(messages(quote!(retry_after = http::retry_after)).is_empty());
        assert!(messages(quote!(rate = "100/s", retry_throttle = (10, 0.1))).is_empty());
        assert!(messages(quote!(retry_throttle = (10, 1))).is_empty());
        assert!(messages(quote!(retry_if = |e| true))[0].starts_with("`retry_if` takes the path"));
        assert!(messages(quote!(rate = "0/s"))[0].contains("would never start a task"));
        assert!(messages(quote!(rate = "5/fortnight"))[0].starts_with("unknown unit `fortnight`"));
        assert!(messages(quote!(retry_throttle = (10, -0.1)))[0].contains("must be above 0"));
        assert!(messages(quote!(retry_throttle = 10))[0].starts_with("`retry_throttle` takes"));
    }

    #[test]
    fn keys() {
        assert_eq!(
            messages(quote!(concurency = 8)),
            ["unknown key `concurency`; did you mean `concurrency`?"]
        );
        assert_eq!(
            messages(quote!(workers = 8)),
            [
                "unknown key `workers`; expected `concurrency`, `retry`, `attempts`, `backoff`, `timeout`, `spawn`, `retry_if`, `retry_after`, `rate`, `retry_throttle` or `crate`"
            ]
        );
        assert_eq!(
            messages(quote!(timout = "2s")),
            ["unknown key `timout`; did you mean `timeout`?"]
        );
        assert_eq!(
            messages(quote!(concurrency = 8, concurrency = 9)),
            ["duplicate key `concurrency`; each key may be given once"]
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
            timeout = "2 s",
            backoff(1),
            crate = 3
        ));
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn timeout_is_a_duration_above_zero() {
        let args = parse_ok(quote!(timeout = "1.5s"));
        assert_eq!(args.timeout.unwrap().value, Nanos(1_500_000_000));
        assert_eq!(
            messages(quote!(timeout = "2 seconds")),
            [
                "expected a duration such as `250ms`, `2s` or `1m`: a number followed by one of the units `ns`, `us`, `ms`, `s`, `m`, `h`; did you mean \"2s\"?"
            ]
        );
        assert!(messages(quote!(timeout = "0ms"))[0].starts_with("`timeout` must be above 0"));
        assert!(
            messages(quote!(timeout = "10"))[0]
                .ends_with("\"10\" has no unit: did you mean \"10ms\" or \"10s\"?")
        );
        assert!(messages(quote!(timeout = "-1s"))[0].ends_with("cannot be negative"));
        assert!(messages(quote!(timeout = "9999999h"))[0].contains("too long"));
        assert_eq!(
            messages(quote!(timeout = 2)),
            [
                "`timeout` takes a string with a unit, not a number: write it in quotes, such as `timeout = \"2s\"`"
            ]
        );
        assert_eq!(
            messages(quote!(timeout = 2s)),
            ["`timeout` takes a string: write `timeout = \"2s\"`, with the quotes"]
        );
        assert!(
            messages(quote!(timeout = Duration::from_secs(2)))[0]
                .starts_with("`timeout` takes a duration string")
        );
    }

    #[test]
    fn backoff_is_fixed_or_a_range() {
        let args = parse_ok(quote!(backoff = "50ms"));
        assert_eq!(
            args.backoff.unwrap().value,
            duration::Backoff::Fixed(Nanos(50_000_000))
        );
        let args = parse_ok(quote!(backoff = "50ms..5s"));
        assert_eq!(
            args.backoff.unwrap().value,
            duration::Backoff::Exponential {
                first: Nanos(50_000_000),
                max: Nanos(5_000_000_000)
            }
        );
        assert_eq!(
            messages(quote!(backoff = "5s..50ms")),
            [
                "this backoff's maximum (50ms) is below its first delay (5s): an exponential backoff doubles from its first delay up to its maximum; did you mean \"50ms..5s\"?"
            ]
        );
        assert!(messages(quote!(backoff = "0ms..1s"))[0].contains("cannot start at 0"));
        assert!(messages(quote!(backoff = "50ms.."))[0].ends_with("needs both ends"));
        assert!(messages(quote!(backoff = "fast"))[0].starts_with("expected a backoff such as"));
        assert_eq!(
            messages(quote!(backoff = 50ms..5s)),
            ["`backoff` takes a string: write `backoff = \"50ms..5s\"`, with the quotes"]
        );
    }

    #[test]
    fn spawn_is_a_bool() {
        assert!(parse_ok(quote!(spawn = true)).spawn.unwrap().value);
        assert!(!parse_ok(quote!(spawn = false)).spawn.unwrap().value);
        assert_eq!(
            messages(quote!(spawn = "true")),
            ["`spawn` takes `true` or `false`, not a string: write `spawn = true`"]
        );
        assert_eq!(
            messages(quote!(spawn = 1)),
            ["`spawn` takes `true` or `false`, such as `spawn = true`"]
        );
        assert_eq!(
            messages(quote!(spawn)),
            ["`spawn` takes a value, such as `spawn = true`"]
        );
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
