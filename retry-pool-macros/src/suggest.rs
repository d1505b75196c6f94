//! "Did you mean ...?": the closest of a few known words to a misspelt one.

/// The candidate closest to `word` by edit distance, if it is close enough to be what was
/// meant: within a third of the word's length (at least one edit), as rustc suggests.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let allowed = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|&candidate| (distance(&word, candidate), candidate))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting a swap of two adjacent characters as one edit
/// (`cocnurrency` is one typo, not two).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows are enough.
    let mut before = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &[&str] = &["concurrency", "retry", "attempts", "crate"];

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("lifo", "lifo"), 0);
        assert_eq!(distance("lifoo", "lifo"), 1);
        assert_eq!(distance("fifo", "lifo"), 1);
        assert_eq!(distance("cocnurrency", "concurrency"), 1);
        assert_eq!(distance("", "none"), 4);
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(closest("concurency", WORDS), Some("concurrency"));
        assert_eq!(closest("Concurrency", WORDS), Some("concurrency"));
        assert_eq!(closest("retyr", WORDS), Some("retry"));
        assert_eq!(closest("concurrent", WORDS), Some("concurrency"));
        assert_eq!(closest("attempt", WORDS), Some("attempts"));
        assert_eq!(closest("crates", WORDS), Some("crate"));
        assert_eq!(closest("workers", WORDS), None);
        assert_eq!(closest("x", WORDS), None);
    }
}
