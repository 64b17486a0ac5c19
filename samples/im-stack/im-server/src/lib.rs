//! im-server: the client API of the im-stack sample. It keeps no state of its own:
//! users and messages live in im-store, notifications go through push-service.
//!
//! - [`Config`]: settings, from the environment only.
//! - [`backend`]: the calls to im-store and push-service.
//! - [`app`]: the HTTP/JSON routes.
//!
//! 1.0.0 and 1.1.0 share this code; [`Edition`] selects the 1.1.0 additions (read
//! receipts, the `IM_READ_RECEIPTS` setting), and the `v1_1` feature picks the edition of
//! the program, so tests can exercise both in one build.

pub mod app;
pub mod backend;

use im_common::client::split_url;
use im_common::settings::{self, Env};

/// Which version of the program the code behaves as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    V1_0,
    V1_1,
}

impl Edition {
    /// The edition of this build: 1.1.0 with the `v1_1` feature.
    pub const CURRENT: Edition = if cfg!(feature = "v1_1") {
        Edition::V1_1
    } else {
        Edition::V1_0
    };

    pub fn version(self) -> &'static str {
        match self {
            Edition::V1_0 => "1.0.0",
            Edition::V1_1 => "1.1.0",
        }
    }
}

/// The program's version: 1.1.0 with the `v1_1` feature, 1.0.0 without.
pub const VERSION: &str = if cfg!(feature = "v1_1") {
    "1.1.0"
} else {
    "1.0.0"
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `IM_LISTEN`, default `127.0.0.1:8080`.
    pub listen: String,
    /// `IM_DOMAIN`, required.
    pub domain: String,
    /// `IM_MAX_USERS`, default 100.
    pub max_users: u32,
    /// `IM_ADMIN_SECRET`, required.
    pub admin_secret: String,
    /// `IM_STORE_URL`, default `http://127.0.0.1:7070`.
    pub store_url: String,
    /// `IM_PUSH_URL`, default `http://127.0.0.1:7080`.
    pub push_url: String,
    /// `IM_READ_RECEIPTS` (1.1.0 only), default true; always false for 1.0.0.
    pub read_receipts: bool,
}

impl Config {
    /// Reads the settings of `edition` from `env`.
    pub fn from_env(env: Env, edition: Edition) -> Result<Config, im_common::Error> {
        let get = |name, default| settings::or_default(None, None, name, env, default);
        let url = |name, default| -> Result<String, im_common::Error> {
            let s = get(name, default);
            split_url(&s.value).map_err(|e| im_common::Error::Invalid {
                name: s.name.clone(),
                value: s.value.clone(),
                reason: e.to_string(),
            })?;
            Ok(s.value.trim_end_matches('/').to_string())
        };
        let read_receipts = match edition {
            Edition::V1_0 => false,
            Edition::V1_1 => {
                let s = get("IM_READ_RECEIPTS", "true");
                match s.value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(im_common::Error::Invalid {
                            name: s.name,
                            value: s.value,
                            reason: "use `true` or `false`".to_string(),
                        })
                    }
                }
            }
        };
        Ok(Config {
            listen: get("IM_LISTEN", "127.0.0.1:8080").value,
            domain: settings::required(None, None, "IM_DOMAIN", env)?.value,
            max_users: get("IM_MAX_USERS", "100").parse()?,
            admin_secret: settings::required(None, None, "IM_ADMIN_SECRET", env)?.value,
            store_url: url("IM_STORE_URL", "http://127.0.0.1:7070")?,
            push_url: url("IM_PUSH_URL", "http://127.0.0.1:7080")?,
            read_receipts,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{service} at `{url}` is unreachable")]
    Unreachable {
        service: &'static str,
        url: String,
        #[source]
        source: im_common::Error,
    },
    #[error("{service} answered {status}: {message}")]
    Backend {
        service: &'static str,
        status: u16,
        message: String,
    },
    #[error("{service} sent an unexpected response: {reason}")]
    BadResponse {
        service: &'static str,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_settings_with_defaults() {
        let e = env(&[
            ("IM_DOMAIN", "example.org"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_STORE_URL", "http://s:1/"),
        ]);
        let c = Config::from_env(&e, Edition::V1_1).unwrap();
        assert_eq!(
            c,
            Config {
                listen: "127.0.0.1:8080".into(),
                domain: "example.org".into(),
                max_users: 100,
                admin_secret: "s".into(),
                store_url: "http://s:1".into(),
                push_url: "http://127.0.0.1:7080".into(),
                read_receipts: true,
            }
        );
        let e = env(&[
            ("IM_DOMAIN", "d"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_READ_RECEIPTS", "false"),
        ]);
        assert!(!Config::from_env(&e, Edition::V1_1).unwrap().read_receipts);
        let e = env(&[
            ("IM_DOMAIN", "d"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_READ_RECEIPTS", "true"),
        ]);
        assert!(!Config::from_env(&e, Edition::V1_0).unwrap().read_receipts);
    }

    #[test]
    fn setting_errors_name_the_variable() {
        let e = env(&[("IM_ADMIN_SECRET", "s")]);
        assert_eq!(
            Config::from_env(&e, Edition::V1_0).unwrap_err().to_string(),
            "setting `IM_DOMAIN` is required"
        );
        let e = env(&[
            ("IM_DOMAIN", "d"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_READ_RECEIPTS", "yes"),
        ]);
        assert_eq!(
            Config::from_env(&e, Edition::V1_1).unwrap_err().to_string(),
            "setting `IM_READ_RECEIPTS` has invalid value `yes`: use `true` or `false`"
        );
        let e = env(&[
            ("IM_DOMAIN", "d"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_PUSH_URL", "push:7080"),
        ]);
        assert_eq!(
            Config::from_env(&e, Edition::V1_0).unwrap_err().to_string(),
            "setting `IM_PUSH_URL` has invalid value `push:7080`: invalid url `push:7080`: only http:// URLs are supported"
        );
        let e = env(&[
            ("IM_DOMAIN", "d"),
            ("IM_ADMIN_SECRET", "s"),
            ("IM_MAX_USERS", "-1"),
        ]);
        assert_eq!(
            Config::from_env(&e, Edition::V1_0).unwrap_err().to_string(),
            "setting `IM_MAX_USERS` has invalid value `-1`: invalid digit found in string"
        );
    }
}
