//! Settings from command-line flags, falling back to environment variables, then defaults.

use std::str::FromStr;

use crate::{Error, Result};

/// Parsed command line: `--name value` / `--name=value` flags, `--version`, `--help`, and
/// positional words.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args {
    values: Vec<(String, String)>,
    pub positionals: Vec<String>,
    pub version: bool,
    pub help: bool,
}

impl Args {
    /// Parses `args` (without the program name); `value_flags` lists the accepted flags
    /// that take a value, without the leading `--`.
    pub fn parse(args: impl IntoIterator<Item = String>, value_flags: &[&str]) -> Result<Args> {
        let mut out = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--version" | "-V" => out.version = true,
                "--help" | "-h" => out.help = true,
                _ if arg.starts_with("--") => {
                    let body = &arg[2..];
                    let (name, inline) = match body.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (body, None),
                    };
                    if !value_flags.contains(&name) {
                        return Err(Error::Usage(format!("unknown flag `--{name}`")));
                    }
                    let value = match inline {
                        Some(v) => v,
                        None => args.next().ok_or_else(|| {
                            Error::Usage(format!("flag `--{name}` needs a value"))
                        })?,
                    };
                    out.values.push((name.to_string(), value));
                }
                _ => out.positionals.push(arg),
            }
        }
        Ok(out)
    }

    /// The last value given for `--name`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A setting's value and where it came from (`--data-dir` or `STORE_DATA_DIR`), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

impl Setting {
    /// Parses the value, naming the setting in the error.
    pub fn parse<T: FromStr>(&self) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.value.parse().map_err(|e: T::Err| Error::Invalid {
            name: self.name.clone(),
            value: self.value.clone(),
            reason: e.to_string(),
        })
    }
}

/// Reads environment variables; empty values count as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Looks a setting up: `--flag` first (if given), then the environment variable `env`.
pub fn lookup(
    args: Option<&Args>,
    flag: Option<&str>,
    env_name: &str,
    env: Env,
) -> Option<Setting> {
    if let (Some(args), Some(flag)) = (args, flag) {
        if let Some(v) = args.flag(flag) {
            return Some(Setting {
                name: format!("--{flag}"),
                value: v.to_string(),
            });
        }
    }
    env(env_name).map(|value| Setting {
        name: env_name.to_string(),
        value,
    })
}

/// Like [`lookup`], with a default value.
pub fn or_default(
    args: Option<&Args>,
    flag: Option<&str>,
    env_name: &str,
    env: Env,
    default: &str,
) -> Setting {
    lookup(args, flag, env_name, env).unwrap_or_else(|| Setting {
        name: env_name.to_string(),
        value: default.to_string(),
    })
}

/// Like [`lookup`], failing when the setting is absent.
pub fn required(
    args: Option<&Args>,
    flag: Option<&str>,
    env_name: &str,
    env: Env,
) -> Result<Setting> {
    lookup(args, flag, env_name, env).ok_or_else(|| Error::Missing {
        name: match flag {
            Some(f) if args.is_some() => format!("{env_name}` or `--{f}"),
            _ => env_name.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Result<Args> {
        Args::parse(words.iter().map(|s| s.to_string()), &["listen", "data-dir"])
    }

    #[test]
    fn flags_override_environment() {
        let a = args(&["--listen", "127.0.0.1:1", "--data-dir=/d", "write", "3"]).unwrap();
        assert_eq!(a.positionals, vec!["write", "3"]);
        let env = |n: &str| (n == "STORE_LISTEN").then(|| "0.0.0.0:9".to_string());
        let s = lookup(Some(&a), Some("listen"), "STORE_LISTEN", &env).unwrap();
        assert_eq!(
            (s.name.as_str(), s.value.as_str()),
            ("--listen", "127.0.0.1:1")
        );
        let none = Args::default();
        let s = lookup(Some(&none), Some("listen"), "STORE_LISTEN", &env).unwrap();
        assert_eq!(
            (s.name.as_str(), s.value.as_str()),
            ("STORE_LISTEN", "0.0.0.0:9")
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let env = |_: &str| None;
        assert_eq!(
            args(&["--port", "1"]).unwrap_err().to_string(),
            "unknown flag `--port`"
        );
        assert_eq!(
            args(&["--listen"]).unwrap_err().to_string(),
            "flag `--listen` needs a value"
        );
        let err = required(
            Some(&Args::default()),
            Some("data-dir"),
            "STORE_DATA_DIR",
            &env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `STORE_DATA_DIR` or `--data-dir` is required"
        );
        let s = Setting {
            name: "IM_MAX_USERS".into(),
            value: "many".into(),
        };
        let err = s.parse::<u32>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `IM_MAX_USERS` has invalid value `many`: invalid digit found in string"
        );
    }
}
