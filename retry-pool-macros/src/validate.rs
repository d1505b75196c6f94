//! Checks across keys, and the defaults: the parsed arguments become the configuration
//! the expansion follows.

use proc_macro2::Span;
use syn::Path;

use crate::args::{Args, Concurrency, Retry};
use crate::duration::{Backoff, Nanos};
use crate::errors::Errors;

/// What the expansion follows: every key checked, and those written. Defaults are the
/// runtime's: a key left out is left out of the expansion too.
pub(crate) struct Config {
    pub(crate) concurrency: Concurrency,
    /// As written; `None` is the runtime's default, no retry.
    pub(crate) retry: Option<Retry>,
    /// Total attempts per task, the first one included, as written.
    pub(crate) attempts: Option<u32>,
    /// Only when retrying.
    pub(crate) backoff: Option<Backoff>,
    /// Per attempt.
    pub(crate) timeout: Option<Nanos>,
    /// Attempts as tokio tasks (`__private::spawn_pooled`), or in place.
    pub(crate) spawn: bool,
    pub(crate) retry_if: Option<Path>,
    pub(crate) retry_after: Option<Path>,
    /// At most this many starts in any window of this length.
    pub(crate) rate: Option<(u32, Nanos)>,
    /// Tokens and token ratio.
    pub(crate) retry_throttle: Option<(u32, f64)>,
    pub(crate) krate: Path,
}

/// The path of the runtime crate, from `crate = "..."` or `::retry_pool`.
pub(crate) fn krate(args: &Args) -> Path {
    args.krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::retry_pool))
}

/// Turns parsed arguments into a configuration, adding to `errors` what contradicts.
pub(crate) fn validate(args: Args, errors: &mut Errors) -> Option<Config> {
    let krate = krate(&args);
    let retry = args.retry.map_or(Retry::None, |retry| retry.value);

    // A `retry` with a mistake of its own is not "none".
    let retry_unknown = args.retry.is_none() && args.was_written("retry");
    let no_retry_because = match args.retry {
        Some(_) => "`retry = \"none\"` runs each task once",
        None => "`retry` is `\"none\"` by default, which runs each task once",
    };
    // The settings about retries, each with what it is and where its key was written.
    let about_retries = [
        (
            args.backoff.map(|backoff| backoff.key),
            "backoff",
            "is the delay before a failed task runs again",
        ),
        (
            args.retry_if.as_ref().map(|keyed| keyed.key),
            "retry_if",
            "chooses which errors are retried",
        ),
        (
            args.retry_after.as_ref().map(|keyed| keyed.key),
            "retry_after",
            "lets an error say how long to wait before its retry",
        ),
        (
            args.retry_throttle.as_ref().map(|keyed| keyed.key),
            "retry_throttle",
            "throttles retries",
        ),
    ];
    for (key, name, what) in about_retries {
        if let Some(key) = key {
            if !retry.retries() && !retry_unknown {
                errors.push(syn::Error::new(
                    key,
                    format!(
                        "`{name}` {what}, but {no_retry_because}; add `retry = \"lifo\"` or `retry = \"fifo\"`"
                    ),
                ));
            }
        }
    }
    if let Some(attempts) = args.attempts {
        if attempts.value > 1 && !retry.retries() && !retry_unknown {
            errors.push(syn::Error::new(
                attempts.span,
                format!(
                    "`attempts = {}` needs a retry policy, but {no_retry_because}; add `retry = \"lifo\"` or `retry = \"fifo\"`",
                    attempts.value
                ),
            ));
        }
    }

    let Some(concurrency) = args.concurrency else {
        if args.was_written("concurrency") {
            // Its mistake is reported already.
            return None;
        }
        // Nothing to point at but the attribute itself.
        errors.push(syn::Error::new(
            Span::call_site(),
            "missing key `concurrency`: how many attempts may run at once, such as `#[pooled(concurrency = 8)]`",
        ));
        return None;
    };

    errors.is_empty().then_some(Config {
        concurrency,
        retry: args.retry.map(|retry| retry.value),
        attempts: args.attempts.map(|attempts| attempts.value),
        backoff: args.backoff.map(|backoff| backoff.value),
        timeout: args.timeout.map(|timeout| timeout.value),
        spawn: args.spawn.is_some_and(|spawn| spawn.value),
        retry_if: args.retry_if.map(|keyed| keyed.value),
        retry_after: args.retry_after.map(|keyed| keyed.value),
        rate: args.rate,
        retry_throttle: args.retry_throttle.map(|keyed| keyed.value),
        krate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn check(tokens: TokenStream) -> Result<Config, Vec<String>> {
        let (args, mut errors) = args::parse(tokens);
        let config = validate(args, &mut errors);
        match errors.into_error() {
            Some(error) => Err(error.into_iter().map(|error| error.to_string()).collect()),
            None => Ok(config.expect("a config when there is no error")),
        }
    }

    /// Only the keys written reach the expansion: the defaults are the runtime's.
    #[test]
    fn only_written_keys() {
        let config = check(quote!(concurrency = 8)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((config.retry, config.attempts), (None, None));
        let krate = config.krate;
        assert_eq!(quote!(#krate).to_string(), quote!(::retry_pool).to_string());

        let config =
            check(quote!(concurrency = 8, retry = "lifo")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((config.retry, config.attempts), (Some(Retry::Lifo), None));
        let config = check(quote!(concurrency = 8, retry = "fifo", attempts = 1))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (config.retry, config.attempts),
            (Some(Retry::Fifo), Some(1))
        );
        let config =
            check(quote!(concurrency = 8, attempts = 1)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((config.retry, config.attempts), (None, Some(1)));
    }

    #[test]
    fn attempts_without_retry() {
        let errors = check(quote!(concurrency = 8, attempts = 3)).err().unwrap();
        assert_eq!(
            errors,
            [
                r#"`attempts = 3` needs a retry policy, but `retry` is `"none"` by default, which runs each task once; add `retry = "lifo"` or `retry = "fifo"`"#
            ]
        );
        let errors = check(quote!(concurrency = 8, retry = "none", attempts = 2))
            .err()
            .unwrap();
        assert!(errors[0].contains(r#"but `retry = "none"` runs each task once"#));
    }

    #[test]
    fn time_and_threads() {
        let config = check(quote!(
            concurrency = 8,
            retry = "lifo",
            backoff = "50ms..5s",
            timeout = "2s",
            spawn = true
        ))
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            config.backoff,
            Some(Backoff::Exponential {
                first: Nanos(50_000_000),
                max: Nanos(5_000_000_000)
            })
        );
        assert_eq!(config.timeout, Some(Nanos(2_000_000_000)));
        assert!(config.spawn);
        let config = check(quote!(concurrency = 8)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (config.backoff, config.timeout, config.spawn),
            (None, None, false)
        );
        // A timeout needs no retry.
        check(quote!(concurrency = 8, timeout = "1s")).unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[test]
    fn backoff_needs_retry() {
        let errors = check(quote!(concurrency = 8, backoff = "50ms"))
            .err()
            .unwrap();
        assert_eq!(
            errors,
            [
                r#"`backoff` is the delay before a failed task runs again, but `retry` is `"none"` by default, which runs each task once; add `retry = "lifo"` or `retry = "fifo"`"#
            ]
        );
        let errors = check(quote!(concurrency = 8, retry = "none", backoff = "50ms"))
            .err()
            .unwrap();
        assert!(errors[0].contains(r#"but `retry = "none"` runs each task once"#));
        // A misspelt policy is reported, not taken for "none".
        let errors = check(quote!(concurrency = 8, retry = "lifoo", backoff = "50ms"))
            .err()
            .unwrap();
        assert_eq!(errors.len(), 1, "{errors:#?}");
    }

    #[test]
    fn missing_concurrency() {
        let errors = check(quote!(retry = "lifo")).err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("missing key `concurrency`"));
    }

    #[test]
    fn errors_of_both_steps_are_kept() {
        let errors = check(quote!(
            concurrency = 8,
            retry = "lifo",
            retrys = 2,
            attempts = 3,
            attempts = 4
        ))
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        let errors = check(quote!(retry = "fifo", timeout = "1 s", attempts = 3))
            .err()
            .unwrap();
        assert_eq!(errors.len(), 2, "{errors:#?}");
    }

    #[test]
    fn a_key_with_a_mistake_is_not_missing_too() {
        for tokens in [
            quote!(concurency = 8),
            quote!(concurrency = "8"),
            quote!(concurrency = 0),
            quote!(concurrency),
            quote!(concurrency = 8, retry = "lifoo", attempts = 3),
            quote!(concurrency = 8, retyr = "lifo", attempts = 3),
        ] {
            let errors = check(tokens.clone()).err().unwrap();
            assert_eq!(errors.len(), 1, "{tokens}: {errors:#?}");
        }
    }
}
