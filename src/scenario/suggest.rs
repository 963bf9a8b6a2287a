//! "Did you mean" suggestions for misspelt names.

/// Levenshtein edit distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `name`, if it is close: the same ignoring case, or at most
/// max(2, len/3) edits away.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_lowercase()), *k))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .map(|(_, k)| k)
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected one of ..." messages.
pub fn improve_serde_message(message: &str) -> String {
    for prefix in ["unknown field `", "unknown variant `"] {
        let Some(start) = message.find(prefix) else {
            continue;
        };
        let rest = &message[start + prefix.len()..];
        let Some(end) = rest.find('`') else {
            continue;
        };
        let name = &rest[..end];
        let Some(expected) = rest.find("expected") else {
            continue;
        };
        let known: Vec<&str> = rest[expected..].split('`').skip(1).step_by(2).collect();
        if let Some(k) = closest(name, &known) {
            return format!("{message} (did you mean `{k}`?)");
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let states = ["transfusion_independent", "transfusion_dependent", "dead"];
        assert_eq!(
            closest("transfusion_dependant", &states),
            Some("transfusion_dependent")
        );
        assert_eq!(closest("Dead", &states), Some("dead"));
        assert_eq!(closest("relapse", &states), None);
        let m = improve_serde_message(
            "unknown variant `webull`, expected one of `exponential`, `weibull`, `gompertz`",
        );
        assert!(m.ends_with("(did you mean `weibull`?)"), "{m}");
    }
}
