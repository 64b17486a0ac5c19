//! A published version: parsed once, where it is read, and ordered by semantic versioning
//! everywhere after (`1.10.0` after `1.9.0`, `2.0.0-rc.1` before `2.0.0`).
//!
//! The text is kept as it was written (always a valid semantic version: publish normalizes
//! `v1.1` to `1.1.0` before a record exists), so paths and messages show what the vendor
//! published. A version is safe in a path: semantic versions are made of ASCII letters,
//! digits, `.`, `-` and `+`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    semver: semver::Version,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, semver::Error> {
        Ok(Version {
            semver: semver::Version::parse(text)?,
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }

    /// Whether this version is in the series a short version names: `1.1` names `1.1.0`,
    /// `1.1.7` and `1.1.0-rc.1`, not `1.10.0`; `1` names every `1.x.y`.
    pub fn in_series(&self, short: &str) -> bool {
        let mut mine = [self.semver.major, self.semver.minor, self.semver.patch].into_iter();
        let mut parts = 0;
        for part in short.split('.') {
            parts += 1;
            if parts > 3 || part.parse::<u64>().ok() != mine.next() {
                return false;
            }
        }
        parts < 3
    }
}

/// The one answer to "which version did you mean", used by every command that takes a
/// version (vendor and site): `asked` exactly (a leading `v` is allowed), else the newest of
/// the series it names (`1.1`: the newest 1.1.x; `2`: the newest 2.x.y); with nothing
/// asked, the newest of all. `None` when nothing matches.
pub fn pick<'a>(
    asked: Option<&str>,
    versions: impl IntoIterator<Item = &'a Version>,
) -> Option<&'a Version> {
    let versions = versions.into_iter();
    let Some(asked) = asked else {
        return versions.max();
    };
    let asked = asked.trim();
    let asked = asked.strip_prefix(['v', 'V']).unwrap_or(asked);
    let mut exact = None;
    let mut newest_in_series: Option<&Version> = None;
    for v in versions {
        if v.as_str() == asked {
            exact = Some(v);
        } else if v.in_series(asked) && newest_in_series.is_none_or(|n| v > n) {
            newest_in_series = Some(v);
        }
    }
    exact.or(newest_in_series)
}

impl FromStr for Version {
    type Err = semver::Error;
    fn from_str(s: &str) -> Result<Version, semver::Error> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Version {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

// Ordered by precedence, then by the text, so that the order agrees with equality (`1.0.0`
// and `1.0.0+build` have the same precedence but are different versions).
impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.semver
            .cmp_precedence(&other.semver)
            .then_with(|| self.semver.cmp(&other.semver))
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.text == other.text
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.text.hash(h)
    }
}

impl PartialEq<str> for Version {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Version {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl PartialEq<Version> for str {
    fn eq(&self, other: &Version) -> bool {
        self == other.text
    }
}

impl PartialEq<Version> for &str {
    fn eq(&self, other: &Version) -> bool {
        *self == other.text
    }
}

impl PartialEq<Version> for String {
    fn eq(&self, other: &Version) -> bool {
        *self == other.text
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a semantic version ({e})"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_are_ordered_by_semantic_versioning_not_by_text() {
        let mut all: Vec<Version> = [
            "1.10.0",
            "1.9.0",
            "2.0.0",
            "2.0.0-rc.1",
            "2.0.0-alpha",
            "1.9.0+b2",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        all.sort();
        let text: Vec<&str> = all.iter().map(|x| x.as_str()).collect();
        assert_eq!(
            text,
            [
                "1.9.0",
                "1.9.0+b2",
                "1.10.0",
                "2.0.0-alpha",
                "2.0.0-rc.1",
                "2.0.0"
            ]
        );
    }

    #[test]
    fn a_short_version_names_its_series_only() {
        assert!(v("1.1.7").in_series("1.1"));
        assert!(v("1.1.0-rc.1").in_series("1.1"));
        assert!(v("1.1.7").in_series("1"));
        assert!(!v("1.10.0").in_series("1.1"));
        assert!(
            !v("1.1.7").in_series("1.1.7"),
            "a whole version is not a series"
        );
        assert!(!v("1.1.7").in_series("1.1.x"));
        assert!(!v("1.1.7").in_series(""));
    }

    #[test]
    fn a_version_is_picked_exactly_else_the_newest_of_its_series() {
        let all: Vec<Version> = ["1.0.0", "1.1.0", "1.1.3", "1.10.0", "2.0.0-rc.1"]
            .iter()
            .map(|s| v(s))
            .collect();
        let pick = |asked| pick(asked, &all).map(|x| x.as_str());
        assert_eq!(pick(Some("1.1.0")), Some("1.1.0"));
        assert_eq!(pick(Some("v1.1.0")), Some("1.1.0"));
        assert_eq!(pick(Some("1.1")), Some("1.1.3"));
        assert_eq!(pick(Some("V1")), Some("1.10.0"));
        assert_eq!(pick(Some("2")), Some("2.0.0-rc.1"));
        assert_eq!(pick(None), Some("2.0.0-rc.1"));
        assert_eq!(pick(Some("1.2")), None);
        assert_eq!(pick(Some("1.1.0-rc")), None);
        assert_eq!(pick(Some("")), None);
    }

    #[test]
    fn text_that_is_not_a_version_is_refused_when_read() {
        let e = serde_json::from_str::<Version>("\"../../etc\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("`../../etc` is not a semantic version"),
            "{e}"
        );
        assert_eq!(
            serde_json::to_string(&v("1.2.3-rc.1")).unwrap(),
            "\"1.2.3-rc.1\""
        );
    }
}
