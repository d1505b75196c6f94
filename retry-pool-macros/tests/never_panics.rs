//! Property tests: the attribute never panics. A panicking proc macro shows its
//! user "proc macro panicked" and nothing useful, so whatever it is fed, the parsing,
//! validation and expansion functions must return tokens or a spanned error.
//!
//! They are fed through proc-macro2 (outside a proc macro it runs on its own fallback
//! implementation, which is what these tests use):
//!
//! - arbitrary text, lexed with `TokenStream::from_str` when it lexes at all;
//! - arbitrary token trees built with proc-macro2's constructors, invisible groups and
//!   joint punctuation included (which text cannot express);
//! - `key = value` lists of known, misspelt and unknown keys, with values of every literal
//!   kind, durations well and badly formed, expressions, and the list's own mistakes
//!   (missing values, `key(..)`, missing or doubled commas);
//! - items of every kind under the attribute, valid functions and not;
//! - arbitrary strings to the duration parsers.
//!
//! Each call runs under `catch_unwind`. What it returns is checked too: with an error, the
//! expansion carries a `compile_error!`; without one, it is a function that parses again,
//! no longer `async`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;

use crate::errors::Errors;
use crate::{args, duration, expand, item, suggest, validate};

/// Runs `f`, failing the property with `what` when it panics.
fn no_panic<T>(
    what: &str,
    input: &dyn std::fmt::Display,
    f: impl FnOnce() -> T,
) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked ({message}) on: {input}"))
    })
}

/// Every message of `errors`, which must each say something.
fn messages(errors: Errors) -> Vec<String> {
    errors
        .into_error()
        .map(|error| error.into_iter().map(|error| error.to_string()).collect())
        .unwrap_or_default()
}

/// Runs the attribute's functions one by one and then whole on `args` and `item`, and
/// checks what they return.
fn check(args: TokenStream, item: TokenStream) -> Result<(), TestCaseError> {
    let shown = format!("#[pooled({args})] {item}");

    // Parsing and validation, on their own.
    let (parsed, mut errors) = no_panic("args::parse", &shown, || args::parse(args.clone()))?;
    no_panic("validate::krate", &shown, || validate::krate(&parsed))?;
    let config = no_panic("validate::validate", &shown, || {
        validate::validate(parsed, &mut errors)
    })?;
    let target = no_panic("item::parse", &shown, || {
        item::parse(item.clone(), &mut errors)
    })?;
    let is_function = matches!(target, item::Target::Function(_));
    let failed = !errors.is_empty();
    prop_assert!(
        failed || config.is_some(),
        "no error and no configuration: {shown}"
    );
    for message in no_panic("the errors", &shown, || messages(errors))? {
        prop_assert!(
            !message.trim().is_empty(),
            "an empty error message: {shown}"
        );
    }

    // The whole attribute.
    let relexes = [&args, &item]
        .iter()
        .all(|tokens| TokenStream::from_str(&tokens.to_string()).is_ok());
    let output = no_panic("expand::pooled", &shown, || expand::pooled(args, item))?;
    let text = no_panic("printing the expansion", &shown, || output.to_string())?;
    prop_assert!(!text.is_empty(), "no tokens at all: {shown}");
    if relexes {
        // What it returns reads back as text, as rustc will read it.
        let relexed = no_panic("relexing the expansion", &shown, || {
            TokenStream::from_str(&text)
        })?;
        prop_assert!(
            relexed.is_ok(),
            "the expansion does not lex: {text}\nfrom: {shown}"
        );
    }
    if shown.contains("compile_error") {
        return Ok(());
    }
    if failed {
        prop_assert!(
            text.contains("compile_error"),
            "errors, but no compile_error!: {text}\nfrom: {shown}"
        );
    } else {
        prop_assert!(
            !text.contains("compile_error"),
            "an error from nowhere: {text}"
        );
    }
    if is_function {
        // A function is always rewritten, with or without mistakes (then with the
        // fallback body), followed by the errors' `compile_error!` items.
        let file = syn::parse2::<syn::File>(output);
        prop_assert!(file.is_ok(), "not items: {text}\nfrom: {shown}");
        let file = file.unwrap();
        let Some(syn::Item::Fn(function)) = file.items.first() else {
            return Err(TestCaseError::fail(format!(
                "not a function: {text}\nfrom: {shown}"
            )));
        };
        prop_assert!(function.sig.asyncness.is_none(), "still async: {text}");
        for item in &file.items[1..] {
            prop_assert!(
                matches!(item, syn::Item::Macro(call) if call.mac.path.segments.last().is_some_and(|last| last.ident == "compile_error")),
                "after the function, not an error: {text}"
            );
        }
    }
    Ok(())
}

// Strategies.

/// Keys as written: the known ones, misspellings, other words and keywords.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(args::key_names()).prop_map(str::to_owned),
        1 => proptest::sample::select(&[
            "concurency", "Concurrency", "retyr", "attempt", "timout", "backof", "spwan",
            "crates", "workers", "self", "Self", "super", "r#try", "r#match", "fn", "async",
            "_", "a::b", "::concurrency", "retry::lifo", "x",
        ][..]).prop_map(str::to_owned),
        1 => "[a-z_][a-z0-9_]{0,12}",
    ]
}

/// A number as a duration string may start: digits, `_`, a decimal point.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}",
        "[0-9_]{0,25}",
        "[0-9]{1,3}\\.[0-9]{0,15}",
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999999999".to_owned()),
        Just("0".to_owned()),
        Just(".5".to_owned()),
        "[0-9.]{0,6}",
    ]
}

fn unit() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "ns", "us", "ms", "s", "m", "h", "", " s", "sec", "seconds", "µs", "μs", "S", "Ms",
            "min", "hr", "d", "y", "ms2", "e3ms", " ", "🦀",
        ][..],
    )
    .prop_map(str::to_owned)
}

/// Durations and backoffs, well and badly formed, and arbitrary text.
fn duration_text() -> impl Strategy<Value = String> {
    let single = (
        prop_oneof![Just(""), Just("-"), Just("+"), Just(" ")],
        number(),
        unit(),
    )
        .prop_map(|(sign, number, unit)| format!("{sign}{number}{unit}"));
    let single = single.boxed();
    prop_oneof![
        3 => single.clone(),
        2 => (single.clone(), prop_oneof![Just(".."), Just("..="), Just("..."), Just(". .")], single)
            .prop_map(|(first, range, max)| format!("{first}{range}{max}")),
        1 => "\\PC{0,12}",
        1 => any::<String>(),
    ]
}

/// A literal of any kind, as source text.
fn literal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Integers.
        "[0-9]{1,3}",
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just("4294967295".to_owned()),
        Just("4294967296".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("340282366920938463463374607431768211456".to_owned()),
        (
            0u64..1000,
            proptest::sample::select(
                &["u8", "u32", "usize", "i64", "u128", "f32", "xyz", "_u8"][..]
            )
        )
            .prop_map(|(n, suffix)| format!("{n}{suffix}")),
        Just("0x10".to_owned()),
        Just("0b1_0".to_owned()),
        Just("0o7".to_owned()),
        Just("1_000".to_owned()),
        // Floats.
        "[0-9]{1,3}\\.[0-9]{1,3}",
        Just("1e3".to_owned()),
        Just("2.5e-3f64".to_owned()),
        // Strings: durations, policies, paths, escapes, raw, byte, C strings, suffixes.
        duration_text().prop_map(|text| format!("{text:?}")),
        proptest::sample::select(
            &[
                "lifo",
                "fifo",
                "none",
                "lifoo",
                "LIFO",
                "true",
                "8",
                " 8 ",
                "my::reexport",
                "::a::b",
                "self",
                "a b",
                "crate",
                "a::",
                "",
                "r#try",
                "1.5"
            ][..]
        )
        .prop_map(|text| format!("{text:?}")),
        Just(r#""\u{1F980}\n\t\"\\""#.to_owned()),
        Just(r##"r#"2s"#"##.to_owned()),
        Just(r#"b"2s""#.to_owned()),
        Just(r#"c"2s""#.to_owned()),
        Just(r#""2s"suffix"#.to_owned()),
        Just(r#"b'x'"#.to_owned()),
        Just("'x'".to_owned()),
        Just("'\\u{10FFFF}'".to_owned()),
        // Booleans are idents, but values all the same.
        Just("true".to_owned()),
        Just("false".to_owned()),
    ]
}

/// A value as written after `=`: literals, negated literals, paths, expressions.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => literal_text(),
        1 => literal_text().prop_map(|literal| format!("-{literal}")),
        1 => literal_text().prop_map(|literal| format!("({literal})")),
        1 => literal_text().prop_map(|literal| format!("{{ {literal} }}")),
        2 => proptest::sample::select(&[
            "self.limit", "n * 2", "lifo", "Retry::Lifo", "Duration::from_secs(2)", "2s", "50ms..5s",
            "50 ms", "|| 8", "async {}", "[8]", "8 as usize", "-n", "!0", "&8", "a::b::<c>",
            "if x { 1 } else { 2 }", "match x {}", "loop {}", "..", "..=", "'a", "#", "$x",
            "=", "8 8", "()",
        ][..]).prop_map(str::to_owned),
    ]
}

/// One entry of the list: `key = value`, `key`, `key(..)`, `key =`, or a stray token.
fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (key(), value_text()).prop_map(|(key, value)| format!("{key} = {value}")),
        1 => key(),
        1 => (key(), value_text()).prop_map(|(key, value)| format!("{key}({value})")),
        1 => key().prop_map(|key| format!("{key} =")),
        1 => (key(), value_text()).prop_map(|(key, value)| format!("{key} == {value}")),
        1 => value_text(),
    ]
}

/// A whole list of entries, with separators good and bad.
fn key_values() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            entry(),
            prop_oneof![8 => Just(", "), 1 => Just(" "), 1 => Just(",, "), 1 => Just("; ")],
        ),
        0..9,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|(entry, separator)| format!("{entry}{separator}"))
            .collect()
    })
}

/// Attributes that are mostly right, so that the expansion itself (not only the errors)
/// is exercised: every key with a valid value most of the time, in any order, now and
/// then one value from anywhere.
fn mostly_valid_key_values() -> impl Strategy<Value = String> {
    fn valid_or_any(valid: &'static [&'static str]) -> BoxedStrategy<Option<String>> {
        prop_oneof![
            2 => Just(None),
            6 => proptest::sample::select(valid).prop_map(|value| Some(value.to_owned())),
            1 => value_text().prop_map(Some),
        ]
        .boxed()
    }
    let durations = &[
        "\"1ns\"",
        "\"250us\"",
        "\"50ms\"",
        "\"1.5s\"",
        "\"2m\"",
        "\"1h\"",
        "\"1_000ms\"",
        "\"18446744073709551615ns\"",
        "\"0.001us\"",
    ][..];
    let backoffs = &[
        "\"50ms\"",
        "\"1ns..1ns\"",
        "\"50ms..5s\"",
        "\"1ns..18446744073709551615ns\"",
        "\"0ms\"",
        "\"2s..2s\"",
    ][..];
    (
        prop_oneof![
            4 => proptest::sample::select(&[
                "1", "8", "usize::MAX", "n", "self.limit", "n * 2", "4u8", "18446744073709551615",
                "(3)", "{ 2 }", "width as usize",
            ][..]).prop_map(|value| Some(value.to_owned())),
            1 => valid_or_any(&["8"]),
        ],
        valid_or_any(&["\"lifo\"", "\"fifo\"", "\"none\""]),
        valid_or_any(&["1", "2", "4294967295", "3u32"]),
        valid_or_any(backoffs),
        valid_or_any(durations),
        valid_or_any(&["true", "false"]),
        valid_or_any(&[
            "\"::retry_pool\"",
            "\"my::reexport\"",
            "\"crate::pool\"",
            "\"self\"",
        ]),
        Just(()).prop_perturb(|(), mut rng| rng.random::<u64>()),
    )
        .prop_map(
            |(concurrency, retry, attempts, backoff, timeout, spawn, krate, order)| {
                let mut entries: Vec<String> = [
                    ("concurrency", concurrency),
                    ("retry", retry),
                    ("attempts", attempts),
                    ("backoff", backoff),
                    ("timeout", timeout),
                    ("spawn", spawn),
                    ("crate", krate),
                ]
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| format!("{key} = {value}")))
                .collect();
                // A shuffle, from the drawn number.
                let mut order = order;
                for at in (1..entries.len()).rev() {
                    entries.swap(at, (order % (at as u64 + 1)) as usize);
                    order /= at as u64 + 1;
                }
                entries.join(", ")
            },
        )
}

/// Functions as the attribute expects them, in their variety.
fn good_function() -> impl Strategy<Value = String> {
    proptest::sample::select(&[
        "async fn f(n: usize) -> Result<usize, ()> { (0..n).map(|n| async move || Ok(n)) }",
        "pub async fn fetch(&self, urls: Vec<String>) -> std::io::Result<String> { urls.into_iter().map(|u| async move { Ok(u) }) }",
        "async fn g<T: Send + 'static, E>(items: Vec<T>, width: u8) -> Result<T, E> where E: Send { let x = 1; items.into_iter().map(move |t| move || async move { Ok(t) }) }",
        "/// Docs.
#[allow(unused)]
pub(crate) async fn h(mut self) -> anyhow::Result<()> { self.tasks.drain(..) }",
        "async fn i() -> Result<impl Sized, ()> { [] }",
        "async fn j() -> Result<u8, ()> { let tasks = compute().await; tasks }",
        "async unsafe fn k() -> core::result::Result<(), core::convert::Infallible> { }",
    ][..])
    .prop_map(str::to_owned)
}

/// Items under the attribute, as text: functions of every shape, and other items.
fn item_text() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        Just("(0..3).map(|n| async move || Ok(n))".to_owned()),
        Just("[]".to_owned()),
        Just("let x = 1; x".to_owned()),
        Just("".to_owned()),
        Just("todo!()".to_owned()),
        value_text(),
    ];
    let output = prop_oneof![
        Just("-> Result<u8, ()>".to_owned()),
        Just("-> std::io::Result<String>".to_owned()),
        Just("-> impl Sized".to_owned()),
        Just("-> impl Fn() -> u8 + Send".to_owned()),
        Just("-> dyn A + B".to_owned()),
        Just("-> !".to_owned()),
        Just("-> ()".to_owned()),
        Just("-> &'a str".to_owned()),
        Just("-> fn() -> u8".to_owned()),
        Just("-> Self".to_owned()),
        Just("-> [u8; 3]".to_owned()),
        Just("".to_owned()),
    ];
    let signature = prop_oneof![
        Just("async fn f()"),
        Just("pub async fn f(a: &str, b: Vec<u8>)"),
        Just("async fn f<T: Send, const N: usize>(t: T) where T: Clone"),
        Just("async fn f(&self)"),
        Just("async fn f(mut self, (a, b): (u8, u8))"),
        Just("async unsafe extern \"C\" fn f(...)"),
        Just("fn f()"),
        Just("const async fn f()"),
        Just("#[inline] /// doc\n async fn f()"),
    ];
    prop_oneof![
        6 => (signature, output, body).prop_map(|(signature, output, body)| {
            format!("{signature} {output} {{ {body} }}")
        }),
        1 => proptest::sample::select(&[
            "struct S;", "enum E {}", "trait T { async fn f(&self) -> Result<(), ()>; }",
            "impl S {}", "mod m {}", "const C: u8 = 0;", "static S: u8 = 0;", "type T = u8;",
            "use a::b;", "union U { a: u8 }", "macro_rules! m { () => {} }", "",
            "async fn f() -> Result<(), ()>;", "fn", "async", "{}", "extern crate a;",
        ][..]).prop_map(str::to_owned),
    ]
}

/// Arbitrary text made of token-like fragments, most of which lexes.
fn token_soup() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        4 => key(),
        3 => value_text(),
        2 => proptest::sample::select(&[
            "=", ",", ";", ":", "::", ".", "..", "-", "+", "*", "!", "#", "&", "|", "||", "<", ">",
            "->", "=>", "?", "@", "~", "^", "%", "/", "$", "'a", "(", ")", "[", "]", "{", "}",
            "()", "[]", "{}", "async", "move", "fn", "impl", "dyn", "r#type", "//", "/* */",
        ][..]).prop_map(str::to_owned),
        1 => "\\PC{0,4}",
    ];
    proptest::collection::vec(fragment, 0..24).prop_map(|fragments| fragments.join(" "))
}

/// Token trees built directly: invisible groups, joint punctuation, literals of every
/// constructor.
fn token_tree() -> impl Strategy<Value = TokenTree> {
    let leaf = prop_oneof![
        3 => key().prop_filter_map("an identifier", |key| {
            // Only what `Ident::new` takes (a path is no identifier).
            let ident = key.strip_prefix("r#").unwrap_or(&key).to_owned();
            let valid = !ident.is_empty()
                && ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !ident.starts_with(|c: char| c.is_ascii_digit());
            valid.then(|| TokenTree::Ident(Ident::new(&ident, Span::call_site())))
        }),
        2 => (proptest::sample::select(&[
            '=', ',', ';', ':', '.', '-', '+', '*', '!', '#', '&', '|', '<', '>', '?', '@', '~',
            '^', '%', '/', '$', '\'',
        ][..]), any::<bool>()).prop_filter_map("a punct", |(ch, joint)| {
            // A lone `'` must be joint (it starts a lifetime).
            let spacing = if joint || ch == '\'' { Spacing::Joint } else { Spacing::Alone };
            Some(TokenTree::Punct(Punct::new(ch, spacing)))
        }),
        3 => prop_oneof![
            any::<u64>().prop_map(Literal::u64_unsuffixed),
            any::<u32>().prop_map(Literal::u32_suffixed),
            any::<i64>().prop_map(Literal::i64_unsuffixed),
            any::<u128>().prop_map(Literal::u128_suffixed),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Literal::f64_unsuffixed),
            any::<f32>().prop_filter("finite", |f| f.is_finite()).prop_map(Literal::f32_suffixed),
            duration_text().prop_map(|text| Literal::string(&text)),
            any::<String>().prop_map(|text| Literal::string(&text)),
            any::<Vec<u8>>().prop_map(|bytes| Literal::byte_string(&bytes)),
            any::<char>().prop_map(Literal::character),
            any::<u8>().prop_map(Literal::byte_character),
            literal_text().prop_filter_map("a literal", |text| Literal::from_str(&text).ok()),
        ].prop_map(TokenTree::Literal),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        (
            proptest::sample::select(
                &[
                    Delimiter::Parenthesis,
                    Delimiter::Brace,
                    Delimiter::Bracket,
                    Delimiter::None,
                ][..],
            ),
            proptest::collection::vec(inner, 0..6),
        )
            .prop_map(|(delimiter, trees)| {
                TokenTree::Group(Group::new(delimiter, trees.into_iter().collect()))
            })
    })
}

fn token_stream() -> impl Strategy<Value = TokenStream> {
    proptest::collection::vec(token_tree(), 0..12).prop_map(|trees| trees.into_iter().collect())
}

/// `key = <tokens>` lists whose values are built token trees (invisible groups around
/// literals, as `macro_rules!` fragments make them, included).
fn structured_key_values() -> impl Strategy<Value = TokenStream> {
    let value = prop_oneof![
        3 => token_tree().prop_map(TokenStream::from),
        // An invisible group around a literal or an expression: `$value:expr` in a macro.
        2 => proptest::collection::vec(token_tree(), 1..4).prop_map(|trees| {
            let inner: TokenStream = trees.into_iter().collect();
            TokenStream::from(TokenTree::Group(Group::new(Delimiter::None, inner)))
        }),
        1 => token_stream(),
    ];
    let entry = (key(), value).prop_map(|(key, value)| {
        let mut entry = TokenStream::from_str(&key).unwrap_or_default();
        entry.extend([TokenTree::Punct(Punct::new('=', Spacing::Alone))]);
        entry.extend(value);
        entry
    });
    proptest::collection::vec((entry, any::<bool>()), 0..7).prop_map(|entries| {
        let mut list = TokenStream::new();
        for (entry, comma) in entries {
            list.extend(entry);
            if comma {
                list.extend([TokenTree::Punct(Punct::new(',', Spacing::Alone))]);
            }
        }
        list
    })
}

fn lexed(text: &str) -> Option<TokenStream> {
    // A lexer that panics is proc-macro2's bug, but it would still be the user's panic.
    catch_unwind(|| TokenStream::from_str(text).ok()).expect("proc-macro2's lexer panicked")
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Nothing is written into the source tree when a case fails: the failing input
        // is in the message, and `PROPTEST_CASES`/the seed replay it.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    /// `key = value` lists written as text, under a valid function.
    #[test]
    fn key_value_lists_never_panic(list in key_values(), item in item_text()) {
        if let (Some(args), Some(item)) = (lexed(&list), lexed(&item)) {
            check(args, item)?;
        }
    }

    /// Built `key = <tokens>` lists: invisible groups, joint punctuation, any literal.
    #[test]
    fn structured_key_values_never_panic(args in structured_key_values(), item in item_text()) {
        if let Some(item) = lexed(&item) {
            check(args, item)?;
        }
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    /// Mostly valid attributes on good functions: the expansion, not only the errors.
    #[test]
    fn mostly_valid_attributes_never_panic(list in mostly_valid_key_values(), function in good_function()) {
        let (args, function) = (lexed(&list).unwrap(), lexed(&function).unwrap());
        check(args, function)?;
    }

    /// Arbitrary token trees as the arguments and as the item.
    #[test]
    fn arbitrary_token_trees_never_panic(args in token_stream(), item in token_stream()) {
        check(args, item.clone())?;
        // And the same trees inside a function, as its return type and its body.
        let function = format!("async fn f() -> {item} {{ {item} }}");
        if let Some(function) = lexed(&function) {
            check(TokenStream::from_str("concurrency = 2").unwrap(), function)?;
        }
    }

    /// Arbitrary text, lexed when it lexes: as the arguments and as the item.
    #[test]
    fn arbitrary_text_never_panics(args in token_soup(), item in token_soup()) {
        if let Some(args) = lexed(&args) {
            let function = TokenStream::from_str("async fn f() -> Result<u8, ()> { [] }").unwrap();
            check(args.clone(), function)?;
            if let Some(item) = lexed(&item) {
                check(args, item)?;
            }
        }
    }

    /// The duration parsers and the suggestions take any string.
    #[test]
    fn duration_parsers_never_panic(text in duration_text(), other in any::<String>()) {
        for text in [&text, &other] {
            let parsed = no_panic("duration::parse", text, || duration::parse(text))?;
            if let Ok(nanos) = parsed {
                let shown = no_panic("Nanos::to_string", text, || nanos.to_string())?;
                // What it shows parses back to itself.
                prop_assert_eq!(duration::parse(&shown), Ok(nanos));
                no_panic("Nanos::constructor", text, || nanos.constructor())?;
            } else if let Err(problem) = parsed {
                let message = no_panic("Problem::message", text, || problem.message(text, "forms"))?;
                prop_assert!(!message.is_empty());
            }
            let _ = no_panic("duration::parse_backoff", text, || duration::parse_backoff(text))?;
            let _ = no_panic("suggest::closest", text, || suggest::closest(text, &args::key_names()))?;
        }
    }
}

/// Cases that once were, or could well be, trouble: each must give tokens or an error.
#[test]
fn known_hard_cases() {
    let cases = [
        ("", "async fn f() -> Result<u8, ()> { [] }"),
        (
            "concurrency = 18446744073709551616",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, attempts = 4294967296",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, timeout = \"18446744073709551615ns\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, timeout = \"5124096h\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, retry = \"lifo\", backoff = \"1ns..18446744073709551615ns\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, timeout = \"-\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, timeout = \"..\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, timeout = \"0.0000000000000000000001s\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"a::self::crate::super\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"Self\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"r#try\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"::\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"a\\u{0}b\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"/* a */ b\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"a //\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, crate = \"a\" suffix",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8",
            "async fn f() -> dyn for<'a> Fn(&'a u8) + Send { [] }",
        ),
        (
            "concurrency = 8",
            "async fn f() -> impl for<'a> Fn(&'a u8) { [] }",
        ),
        ("concurrency = 8", "async fn f() -> _ { [] }"),
        ("concurrency = 8", "async fn f() -> Result<u8, ()>"),
        (
            "concurrency = 8, spawn = true",
            "async fn f(self: Box<Self>) -> Result<u8, ()> { [] }",
        ),
        (
            "concurrency = 8, retry = \"lifo\", spawn = true",
            "async fn f() -> Result<u8, ()> { }",
        ),
        (
            "concurrency = 8, retry = \"lifo\"",
            "async fn f() -> Result<u8, ()> { ; }",
        ),
        ("concurrency = 0x0", "async fn f() -> Result<u8, ()> { [] }"),
        ("concurrency = 1e3", "async fn f() -> Result<u8, ()> { [] }"),
        ("concurrency = -0", "async fn f() -> Result<u8, ()> { [] }"),
        ("concurrency = --8", "async fn f() -> Result<u8, ()> { [] }"),
        ("concurrency = 8,,", "async fn f() -> Result<u8, ()> { [] }"),
        ("= 8", "async fn f() -> Result<u8, ()> { [] }"),
        (
            "concurrency = 8 retry = \"lifo\"",
            "async fn f() -> Result<u8, ()> { [] }",
        ),
    ];
    for (args, item) in cases {
        let (args, item) = (
            TokenStream::from_str(args).unwrap(),
            TokenStream::from_str(item).unwrap(),
        );
        if let Err(failure) = check(args, item) {
            panic!("{failure}");
        }
    }
}
