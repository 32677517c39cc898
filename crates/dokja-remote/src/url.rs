//! The small part of URL syntax dokja needs: `http(s)://host[:port]/path`, joining a file
//! name to a folder URL and following a redirect's `Location`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with '/'.
    pub path: String,
}

/// Longest URL accepted (a redirect's Location comes from the server).
const MAX_URL_LEN: usize = 8192;

pub fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        if s.len() > MAX_URL_LEN {
            return Err(format!("longer than {MAX_URL_LEN} bytes"));
        }
        if s.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err("contains spaces or control characters".into());
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) if sch.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((sch, rest)) if sch.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            _ => return Err("only http:// and https:// URLs are read".into()),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        if authority.contains('@') {
            return Err("credentials in URLs are not accepted".into());
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("unexpected {after:?} after host")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("bad port {p:?}"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    fn default_port(&self) -> u16 {
        match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `host[:port]` as sent in the Host header.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The folder this URL is in (itself when it ends with '/'), query dropped.
    pub fn folder(&self) -> Url {
        let path = self.path.split('?').next().unwrap_or("/");
        let cut = path.rfind('/').map_or(0, |i| i + 1);
        Url {
            path: path[..cut].to_string(),
            ..self.clone()
        }
    }

    /// The last path segment, percent-decoded ("" for a folder URL).
    pub fn file_name(&self) -> String {
        let path = self.path.split('?').next().unwrap_or("");
        percent_decode(&path[path.rfind('/').map_or(0, |i| i + 1)..])
    }

    /// File `name` (one plain segment) in this URL's folder.
    pub fn join(&self, name: &str) -> Url {
        let mut url = self.folder();
        url.path.push_str(&percent_encode(name));
        url
    }

    /// Where a redirect's `Location` (absolute, or an absolute path) points.
    pub fn resolve(&self, location: &str) -> Result<Url, String> {
        if is_url(location) {
            Url::parse(location)
        } else if location.starts_with("//") {
            let scheme = match self.scheme {
                Scheme::Http => "http:",
                Scheme::Https => "https:",
            };
            Url::parse(&format!("{scheme}{location}"))
        } else if location.starts_with('/') {
            Url::parse(&format!("{}{location}", self.origin()))
        } else {
            Url::parse(&format!(
                "{}{}{location}",
                self.origin(),
                self.folder().path
            ))
        }
    }

    fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let u = Url::parse("http://127.0.0.1:8080/models/a/").unwrap();
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, 8080);
        assert_eq!(u.file_name(), "");
        assert_eq!(
            u.join("model-00001 of 2.safetensors").to_string(),
            "http://127.0.0.1:8080/models/a/model-00001%20of%202.safetensors"
        );
        let f = Url::parse("https://Example.org/x/m%20y.gguf?download=1").unwrap();
        assert_eq!(f.port, 443);
        assert_eq!(f.file_name(), "m y.gguf");
        assert_eq!(f.folder().to_string(), "https://example.org/x/");
        assert_eq!(
            f.resolve("/cdn/blob").unwrap().to_string(),
            "https://example.org/cdn/blob"
        );
        assert_eq!(
            f.resolve("http://other:81/z").unwrap().to_string(),
            "http://other:81/z"
        );
        let v6 = Url::parse("http://[::1]:9/a").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.authority(), "[::1]:9");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(Url::parse("ftp://x/y").is_err());
        assert!(Url::parse("http://user:pw@x/y").is_err());
        assert!(Url::parse("http://:80/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert!(Url::parse("http://x/a b").is_err());
    }
}
