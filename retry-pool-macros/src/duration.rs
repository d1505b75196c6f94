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
//!
//! rate        = count "/" ( rate-unit | duration )   "100/s", "5/10s"
//! count       = digits                       at least 1
//! rate-unit   = "ms" | "s" | "m" | "h"
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

/// The units a rate may be given per: `"100/s"`.
const RATE_UNITS: &[&str] = &["ms", "s", "m", "h"];

/// What is wrong with a rate string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RateProblem {
    /// Not `count/unit` at all.
    Malformed,
    /// `"0/s"`: nothing could ever start.
    Zero,
    /// A count too large for a `u32`.
    TooMany,
    /// `"100/d"`: a unit that is not one of `RATE_UNITS`, with the closest if any.
    UnknownUnit {
        unit: String,
        suggestion: Option<&'static str>,
    },
    /// `"100/10 s"`, `"100/0s"`: the window, as a duration, is wrong.
    Window {
        text: String,
        problem: Option<Problem>,
    },
}

impl RateProblem {
    /// The message for the rate `text`.
    pub(crate) fn message(&self, text: &str) -> String {
        const FORMS: &str = "expected a rate such as `\"100/s\"` (at most 100 attempt starts in any second) or `\"5/10s\"`: a count, `/`, and a unit (`ms`, `s`, `m`, `h`) or a duration";
        match self {
            RateProblem::Malformed => format!("{FORMS}, not \"{text}\""),
            RateProblem::Zero => format!(
                "a rate of \"{text}\" would never start a task: allow at least 1 start per window"
            ),
            RateProblem::TooMany => format!(
                "\"{text}\" allows too many starts: at most {} per window",
                u32::MAX
            ),
            RateProblem::UnknownUnit { unit, suggestion } => match suggestion {
                Some(known) => format!(
                    "unknown unit `{unit}` in \"{text}\"; did you mean `{known}`? A rate is per `ms`, `s`, `m` or `h`"
                ),
                None => format!(
                    "unknown unit `{unit}` in \"{text}\"; a rate is per `ms`, `s`, `m` or `h`, or per a duration such as `10s`"
                ),
            },
            RateProblem::Window {
                text: window,
                problem,
            } => match problem {
                Some(problem) => format!(
                    "the window of \"{text}\" is not a duration: {}",
                    problem.message(window, "expected a duration such as `10s`")
                ),
                None => format!(
                    "the window of \"{text}\" is empty: give it a length, such as `\"100/s\"`"
                ),
            },
        }
    }
}

/// Parses `"100/s"` or `"5/10s"`: at most `count` starts in any window of that length.
pub(crate) fn parse_rate(text: &str) -> Result<(u32, Nanos), RateProblem> {
    let Some((count, window)) = text.split_once('/') else {
        return Err(RateProblem::Malformed);
    };
    let digits = count.replace('_', "");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || count.starts_with('_') {
        return Err(RateProblem::Malformed);
    }
    let count: u32 = digits.parse().map_err(|_| RateProblem::TooMany)?;
    if count == 0 {
        return Err(RateProblem::Zero);
    }
    let per = if window.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        parse(window).map_err(|problem| RateProblem::Window {
            text: window.to_owned(),
            problem: Some(problem),
        })?
    } else {
        let Some(&(_, length)) = UNITS
            .iter()
            .find(|&&(name, _)| name == window && RATE_UNITS.contains(&name))
        else {
            let suggestion = rate_unit_suggestion(window);
            return Err(RateProblem::UnknownUnit {
                unit: window.to_owned(),
                suggestion,
            });
        };
        Nanos(length)
    };
    if per.0 == 0 {
        return Err(RateProblem::Window {
            text: window.to_owned(),
            problem: None,
        });
    }
    Ok((count, per))
}

/// The rate unit meant by `unit`, such as `s` for `sec` or `second`.
fn rate_unit_suggestion(unit: &str) -> Option<&'static str> {
    let lower = unit.to_ascii_lowercase();
    let named = match lower.trim_end_matches('s') {
        "sec" | "second" => Some("s"),
        "min" | "minute" => Some("m"),
        "hr" | "hour" => Some("h"),
        "milli" | "millisecond" | "msec" => Some("ms"),
        _ => None,
    };
    named.or_else(|| RATE_UNITS.iter().copied().find(|known| lower == *known))
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

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100/s"), Ok((100, Nanos(1_000_000_000))));
        assert_eq!(parse_rate("5/10s"), Ok((5, Nanos(10_000_000_000))));
        assert_eq!(parse_rate("1_000/m"), Ok((1000, Nanos(60_000_000_000))));
        assert_eq!(parse_rate("3/ms"), Ok((3, Nanos(1_000_000))));
        assert_eq!(parse_rate("0/s"), Err(RateProblem::Zero));
        assert_eq!(parse_rate("100"), Err(RateProblem::Malformed));
        assert_eq!(parse_rate("x/s"), Err(RateProblem::Malformed));
        assert_eq!(parse_rate("99999999999/s"), Err(RateProblem::TooMany));
        assert_eq!(
            parse_rate("100/sec"),
            Err(RateProblem::UnknownUnit {
                unit: "sec".into(),
                suggestion: Some("s")
            })
        );
        assert_eq!(
            parse_rate("100/d"),
            Err(RateProblem::UnknownUnit {
                unit: "d".into(),
                suggestion: None
            })
        );
        assert!(matches!(
            parse_rate("100/0s"),
            Err(RateProblem::Window { problem: None, .. })
        ));
        assert!(matches!(
            parse_rate("100/1x"),
            Err(RateProblem::Window {
                problem: Some(_),
                ..
            })
        ));
    }
}
