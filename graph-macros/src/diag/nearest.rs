//! Suggestions for misspelt names: the known name nearest to what the user wrote.

/// The known name nearest to `name` by edit distance, if it is close enough to be a likely typo.
///
/// Ties go to the shorter name, then to the first in alphabetical order, so the suggestion does
/// not depend on the order of `known` (a `HashMap`'s keys, say) and is the same in every build.
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.len() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, k)| (d, k.len(), k))
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_only() {
        let known = ["softmax", "sum", "sqrt", "silu"];
        assert_eq!(nearest("sofmax", known), Some("softmax".into()));
        assert_eq!(nearest("sqrtt", known), Some("sqrt".into()));
        assert_eq!(nearest("banana", known), None);
    }

    #[test]
    fn nearest_breaks_ties_alphabetically() {
        // `xb` is one edit from both, and both are two letters long.
        let mut known = ["xa", "xc", "xbbb"];
        assert_eq!(nearest("xb", known.iter().copied()), Some("xa".into()));
        known.reverse();
        assert_eq!(nearest("xb", known.iter().copied()), Some("xa".into()));
    }
}
