//! Durations written as strings in the attribute (`timeout = "2s"`, `backoff = "50ms..5s"`),
//! checked at compile time.
//!
//! The grammar, with no spaces anywhere:
//!
//! ```text
//! duration    = number unit
//! number      = digits [ "." digits ]        whole or decimal: "250", "1.5"
//! digits      = digit { digit | "_" }        "_" separates digits, as in Rust: "1_000"
//! unit        = "ns" | "us" | "ms" | "s" | "m" | "h"
//! backoff     = duration                     fixed: the same delay after every failure
//!             | duration ".." duration       exponential: from the first, doubling up to
//!                                            the second, with jitter
//! ```
//!
//! A decimal must come to a whole number of nanoseconds (`"1.5s"`, `"0.25ms"`; not
//! `"0.5ns"`), and a duration must fit in 64 bits of nanoseconds (about 584 years).

use std::fmt;

/// The units, smallest first, with their length in nanoseconds.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 60 * 60 * 1_000_000_000),
];

/// A duration checked at compile time, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(pub(crate) u64);

impl Nanos {
    /// The coarsest `Duration` constructor that is exact, with its argument:
    /// `("from_secs", 2)` for 2s, `("from_millis", 1500)` for 1.5s.
    pub(crate) fn constructor(self) -> (&'static str, u64) {
        let Nanos(nanos) = self;
        [
            ("from_secs", 1_000_000_000),
            ("from_millis", 1_000_000),
            ("from_micros", 1_000),
        ]
        .into_iter()
        .find(|&(_, unit)| nanos % unit == 0)
        .map_or(("from_nanos", nanos), |(name, unit)| (name, nanos / unit))
    }
}

impl fmt::Display for Nanos {
    /// In the largest unit that shows it whole: `50ms`, `5s`, `1500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Nanos(nanos) = *self;
        if nanos == 0 {
            return f.write_str("0s");
        }
        let (unit, length) = UNITS
            .iter()
            .rev()
            .find(|&&(_, length)| nanos % length == 0)
            .copied()
            .unwrap_or(("ns", 1));
        write!(f, "{}{unit}", nanos / length)
    }
}

/// What is wrong with a duration string. Shown after the accepted forms.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Not a duration at all, with a guess at what was meant (`"2 seconds"`: `"2s"`).
    Malformed { suggestion: Option<String> },
    /// A number without its unit: `"10"`.
    NoUnit { number: String },
    /// `"-1s"`.
    Negative,
    /// `"0.5ns"`: a decimal that is not a whole number of nanoseconds.
    TooPrecise,
    /// More than `u64::MAX` nanoseconds.
    TooLong,
}

impl Problem {
    /// The message for `text`, given the accepted forms (`expected a duration such as ...`).
    pub(crate) fn message(&self, text: &str, forms: &str) -> String {
        match self {
            Problem::TooPrecise => {
                format!("\"{text}\" is finer than a nanosecond, the finest a duration can be")
            }
            Problem::TooLong => {
                format!("\"{text}\" is too long: a duration must be under about 584 years")
            }
            _ => match self.hint() {
                Some(hint) => format!("{forms}; {hint}"),
                None => forms.to_owned(),
            },
        }
    }

    /// What to add after "expected a duration such as ...", if anything.
    fn hint(&self) -> Option<String> {
        match self {
            Problem::Malformed {
                suggestion: Some(suggestion),
            } => Some(format!("did you mean \"{suggestion}\"?")),
            Problem::Malformed { suggestion: None } => None,
            Problem::NoUnit { number } => Some(format!(
                "\"{number}\" has no unit: did you mean \"{number}ms\" or \"{number}s\"?"
            )),
            Problem::Negative => Some("a duration cannot be negative".to_owned()),
            Problem::TooPrecise | Problem::TooLong => None,
        }
    }
}

/// Parses one duration, such as `"250ms"` or `"1.5s"`.
pub(crate) fn parse(text: &str) -> Result<Nanos, Problem> {
    if let Some(positive) = text.strip_prefix('-') {
        // Only a reason to give when the rest is a duration: `"-x"` is just malformed.
        return match parse(positive) {
            Ok(_) | Err(Problem::TooPrecise | Problem::TooLong) => Err(Problem::Negative),
            Err(problem) => Err(problem),
        };
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let Some((whole, fraction)) = split_number(number) else {
        return Err(Problem::Malformed {
            suggestion: suggestion(text),
        });
    };
    let Some(&(_, length)) = UNITS.iter().find(|&&(name, _)| name == unit) else {
        return Err(if unit.is_empty() {
            Problem::NoUnit {
                number: number.to_owned(),
            }
        } else {
            Problem::Malformed {
                suggestion: suggestion(text),
            }
        });
    };
    to_nanos(&whole, &fraction, length)
}

/// `"1_000.5"` as its whole and fractional digits, `_` removed; `None` unless it is a
/// number of the grammar.
fn split_number(number: &str) -> Option<(String, String)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |part: &str| {
        let starts_with_digit = part.starts_with(|c: char| c.is_ascii_digit());
        (starts_with_digit && part.chars().all(|c| c.is_ascii_digit() || c == '_'))
            .then(|| part.replace('_', ""))
    };
    let whole = digits(whole)?;
    let fraction = match fraction {
        Some(fraction) => digits(fraction)?,
        None => String::new(),
    };
    Some((whole, fraction))
}

/// `whole.fraction` units of `length` nanoseconds each, if that is a whole number of
/// nanoseconds that fits in a `u64`.
fn to_nanos(whole: &str, fraction: &str, length: u64) -> Result<Nanos, Problem> {
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    // A `u64` has 20 digits, and a unit at most 13.
    if whole.len() > 20 {
        return Err(Problem::TooLong);
    }
    if fraction.len() > 13 {
        return Err(Problem::TooPrecise);
    }
    let whole: u128 = whole.parse().unwrap_or(0);
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = fraction.parse().unwrap_or(0);
    let length = u128::from(length);
    if (fraction * length) % scale != 0 {
        return Err(Problem::TooPrecise);
    }
    let nanos = whole * length + fraction * length / scale;
    u64::try_from(nanos)
        .map(Nanos)
        .map_err(|_| Problem::TooLong)
}

/// What a malformed duration was probably meant to be: `"2 seconds"`, `"2sec"` and `"2 s"`
/// are `"2s"`.
fn suggestion(text: &str) -> Option<String> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    split_number(number)?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = match unit.as_str() {
        "ns" | "nsec" | "nsecs" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => "ns",
        "us" | "µs" | "μs" | "usec" | "usecs" | "micro" | "micros" | "microsecond"
        | "microseconds" => "us",
        "ms" | "msec" | "msecs" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        _ => return None,
    };
    let candidate = format!("{number}{unit}");
    parse(&candidate).is_ok().then_some(candidate)
}

/// What `backoff = "..."` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backoff {
    /// `"50ms"`: the same delay after every failure.
    Fixed(Nanos),
    /// `"50ms..5s"`: from the first, doubling after each further failure up to the max,
    /// with jitter.
    Exponential { first: Nanos, max: Nanos },
}

/// What is wrong with a backoff string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BackoffProblem {
    /// One of its durations (`text`), as a fixed delay or as one end of the range.
    Duration { text: String, problem: Problem },
    /// `"..5s"`, `"50ms.."`.
    MissingEnd,
    /// `"50ms..=5s"`: the one range there is, written another way.
    Inclusive { suggestion: String },
    /// `"5s..50ms"`.
    Shrinks { first: Nanos, max: Nanos },
    /// `"0ms..5s"`: doubling 0 stays 0.
    StartsAtZero,
}

impl BackoffProblem {
    fn duration(text: &str, problem: Problem) -> Self {
        BackoffProblem::Duration {
            text: text.to_owned(),
            problem,
        }
    }
}

/// Parses `"50ms"` or `"50ms..5s"`.
pub(crate) fn parse_backoff(text: &str) -> Result<Backoff, BackoffProblem> {
    let Some((first, max)) = text.split_once("..") else {
        return parse(text)
            .map(Backoff::Fixed)
            .map_err(|problem| BackoffProblem::duration(text, problem));
    };
    if let Some(max) = max.strip_prefix('=') {
        return Err(BackoffProblem::Inclusive {
            suggestion: format!("{first}..{max}"),
        });
    }
    if first.is_empty() || max.is_empty() {
        return Err(BackoffProblem::MissingEnd);
    }
    let first = parse(first).map_err(|problem| BackoffProblem::duration(first, problem))?;
    let max = parse(max).map_err(|problem| BackoffProblem::duration(max, problem))?;
    if first.0 == 0 {
        return Err(BackoffProblem::StartsAtZero);
    }
    if max < first {
        return Err(BackoffProblem::Shrinks { first, max });
    }
    Ok(Backoff::Exponential { first, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> u64 {
        parse(text)
            .unwrap_or_else(|problem| panic!("{text}: {problem:?}"))
            .0
    }

    #[test]
    fn units() {
        assert_eq!(nanos("7ns"), 7);
        assert_eq!(nanos("7us"), 7_000);
        assert_eq!(nanos("250ms"), 250_000_000);
        assert_eq!(nanos("2s"), 2_000_000_000);
        assert_eq!(nanos("1m"), 60_000_000_000);
        assert_eq!(nanos("1h"), 3_600_000_000_000);
        assert_eq!(nanos("0ms"), 0);
        assert_eq!(nanos("007s"), 7_000_000_000);
    }

    #[test]
    fn decimals_and_separators() {
        assert_eq!(nanos("1.5s"), 1_500_000_000);
        assert_eq!(nanos("0.25ms"), 250_000);
        assert_eq!(nanos("2.000s"), 2_000_000_000);
        assert_eq!(nanos("1_000ms"), 1_000_000_000);
        assert_eq!(nanos("0.001us"), 1);
        assert_eq!(parse("0.5ns"), Err(Problem::TooPrecise));
        assert_eq!(parse("1.0000000000001s"), Err(Problem::TooPrecise));
    }

    #[test]
    fn limits() {
        assert_eq!(nanos("18446744073709551615ns"), u64::MAX);
        assert_eq!(parse("18446744073709551616ns"), Err(Problem::TooLong));
        assert_eq!(parse("99999999999999999999999999h"), Err(Problem::TooLong));
        assert_eq!(nanos("5124095h"), 5_124_095 * 3_600_000_000_000);
        assert_eq!(parse("5124096h"), Err(Problem::TooLong));
    }

    #[test]
    fn malformed() {
        for text in [
            "", "fast", "s", ".5s", "1.s", "1..5s", "_1s", "1e3ms", "+1s", " 1s", "1s ", "1 s",
            "1sec", "1S", "1ms2", "1m30s",
        ] {
            assert!(
                matches!(parse(text), Err(Problem::Malformed { .. })),
                "{text:?}: {:?}",
                parse(text)
            );
        }
        assert_eq!(
            parse("10"),
            Err(Problem::NoUnit {
                number: "10".to_owned()
            })
        );
        assert_eq!(parse("-1s"), Err(Problem::Negative));
        assert_eq!(parse("-0.5ns"), Err(Problem::Negative));
        assert!(matches!(parse("-fast"), Err(Problem::Malformed { .. })));
    }

    #[test]
    fn suggestions() {
        for (text, meant) in [
            ("2 seconds", "2s"),
            ("2sec", "2s"),
            ("2 s", "2s"),
            ("1.5 Seconds", "1.5s"),
            ("250 millis", "250ms"),
            ("3min", "3m"),
            ("1hr", "1h"),
            ("5µs", "5us"),
        ] {
            assert_eq!(
                parse(text),
                Err(Problem::Malformed {
                    suggestion: Some(meant.to_owned())
                }),
                "{text}"
            );
        }
        assert_eq!(parse("fast"), Err(Problem::Malformed { suggestion: None }));
        assert_eq!(
            parse("2 fortnights"),
            Err(Problem::Malformed { suggestion: None })
        );
    }

    #[test]
    fn backoffs() {
        assert_eq!(parse_backoff("50ms"), Ok(Backoff::Fixed(Nanos(50_000_000))));
        assert_eq!(
            parse_backoff("50ms..5s"),
            Ok(Backoff::Exponential {
                first: Nanos(50_000_000),
                max: Nanos(5_000_000_000)
            })
        );
        assert_eq!(
            parse_backoff("1s..1s"),
            Ok(Backoff::Exponential {
                first: Nanos(1_000_000_000),
                max: Nanos(1_000_000_000)
            })
        );
        assert_eq!(
            parse_backoff("5s..50ms"),
            Err(BackoffProblem::Shrinks {
                first: Nanos(5_000_000_000),
                max: Nanos(50_000_000)
            })
        );
        assert_eq!(parse_backoff("0ms..5s"), Err(BackoffProblem::StartsAtZero));
        assert_eq!(parse_backoff("..5s"), Err(BackoffProblem::MissingEnd));
        assert_eq!(parse_backoff("50ms.."), Err(BackoffProblem::MissingEnd));
        assert_eq!(
            parse_backoff("50ms..=5s"),
            Err(BackoffProblem::Inclusive {
                suggestion: "50ms..5s".to_owned()
            })
        );
        assert_eq!(
            parse_backoff("50ms..5"),
            Err(BackoffProblem::Duration {
                text: "5".to_owned(),
                problem: Problem::NoUnit {
                    number: "5".to_owned()
                }
            })
        );
        assert!(matches!(
            parse_backoff("50ms...5s"),
            Err(BackoffProblem::Duration {
                problem: Problem::Malformed { .. },
                ..
            })
        ));
    }

    #[test]
    fn display_and_constructor() {
        assert_eq!(Nanos(50_000_000).to_string(), "50ms");
        assert_eq!(Nanos(1_500_000_000).to_string(), "1500ms");
        assert_eq!(Nanos(120_000_000_000).to_string(), "2m");
        assert_eq!(Nanos(0).to_string(), "0s");
        assert_eq!(Nanos(2_000_000_000).constructor(), ("from_secs", 2));
        assert_eq!(Nanos(1_500_000_000).constructor(), ("from_millis", 1500));
        assert_eq!(Nanos(1_500).constructor(), ("from_nanos", 1500));
        assert_eq!(Nanos(2_000).constructor(), ("from_micros", 2));
        assert_eq!(Nanos(0).constructor(), ("from_secs", 0));
    }
}
