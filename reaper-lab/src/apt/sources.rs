//! Parsing of the machine's apt sources (deb822 `.sources` and one-line
//! `.list` files) into mirror URIs, so that temporary sources for other
//! suites (sid, bookworm-backports, arm64) reuse the mirror the machine is
//! configured with. No mirror host name is ever written into the repository.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One `deb` source: a stanza of a `.sources` file or a line of a `.list`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// Where the host keeps its apt sources.
const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_PARTS: &str = "/etc/apt/sources.list.d";

/// Parses a deb822 `.sources` file. Stanzas without `deb` in `Types:` or
/// with `Enabled: no` are skipped.
pub fn parse_deb822(text: &str) -> Vec<Source> {
    text.split("\n\n").filter_map(parse_deb822_stanza).collect()
}

fn parse_deb822_stanza(stanza: &str) -> Option<Source> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in stanza.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation line (e.g. an inline Signed-By key): append.
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let words = |key: &str| -> Vec<String> {
        get(key)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    if !words("types").iter().any(|t| t == "deb") || get("enabled") == Some("no") {
        return None;
    }
    let source = Source {
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        signed_by: get("signed-by")
            .filter(|v| v.starts_with('/'))
            .map(str::to_string),
    };
    (!source.uris.is_empty()).then_some(source)
}

/// Parses a one-line `sources.list`: `deb [opt=val ...] URI SUITE COMPONENT...`.
pub fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines().filter_map(parse_one_line_entry).collect()
}

fn parse_one_line_entry(line: &str) -> Option<Source> {
    let line = line.split('#').next()?.trim();
    let rest = line.strip_prefix("deb")?;
    if !rest.starts_with([' ', '\t']) {
        return None; // `deb-src`
    }
    let mut rest = rest.trim_start();
    let mut signed_by = None;
    if let Some(options) = rest.strip_prefix('[') {
        let (options, after) = options.split_once(']')?;
        for option in options.split_whitespace() {
            if let Some(value) = option.strip_prefix("signed-by=") {
                signed_by = Some(value.to_string());
            }
        }
        rest = after.trim_start();
    }
    let mut words = rest.split_whitespace().map(str::to_string);
    let uri = words.next()?;
    let suite = words.next()?;
    Some(Source {
        uris: vec![uri],
        suites: vec![suite],
        components: words.collect(),
        signed_by,
    })
}

/// The mirror URIs that serve `codename` itself (not `-security` or
/// `-updates` only), in configuration order, without duplicates. Falls back to
/// URIs ending in `/debian` when no source names the codename.
pub fn mirror_uris(sources: &[Source], codename: &str) -> Vec<String> {
    let serves_codename = |s: &&Source| s.suites.iter().any(|suite| suite == codename);
    let looks_debian = |s: &&Source| {
        s.uris
            .iter()
            .any(|u| u.trim_end_matches('/').ends_with("/debian"))
    };
    let mut chosen: Vec<&Source> = sources.iter().filter(serves_codename).collect();
    if chosen.is_empty() {
        chosen = sources.iter().filter(looks_debian).collect();
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in chosen.iter().flat_map(|s| s.uris.iter()) {
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    uris
}

/// The keyring of the first source that serves `codename`, if it names one.
pub fn signed_by(sources: &[Source], codename: &str) -> Option<String> {
    sources
        .iter()
        .find(|s| s.suites.iter().any(|suite| suite == codename))
        .and_then(|s| s.signed_by.clone())
}

/// Reads every apt source configured on this machine.
pub fn host_sources() -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    if let Ok(text) = std::fs::read_to_string(SOURCES_LIST) {
        sources.extend(parse_one_line(&text));
    }
    let parts = Path::new(SOURCES_PARTS);
    let mut entries: Vec<_> = match std::fs::read_dir(parts) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    for path in entries {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let parse: fn(&str) -> Vec<Source> = match ext {
            "sources" => parse_deb822,
            "list" => parse_one_line,
            _ => continue,
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading apt source file {}", path.display()))?;
        sources.extend(parse(&text));
    }
    Ok(sources)
}

/// The Debian codename of this machine (`VERSION_CODENAME` in os-release).
pub fn host_codename() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release")
        .context("reading /etc/os-release to learn this machine's Debian codename")?;
    parse_codename(&text).context(
        "/etc/os-release has no VERSION_CODENAME; the VM harness needs a Debian-based host",
    )
}

fn parse_codename(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The host's Debian mirror URIs and keyring, or an error telling the user
/// how to configure one.
pub fn host_mirror() -> Result<(Vec<String>, Option<String>)> {
    let codename = host_codename()?;
    let sources = host_sources()?;
    let uris = mirror_uris(&sources, &codename);
    if uris.is_empty() {
        bail!(
            "no apt source for the Debian suite {codename:?} in {SOURCES_LIST} or \
             {SOURCES_PARTS}/*.sources; add the Debian mirror you use there"
        );
    }
    Ok((uris, signed_by(&sources, &codename)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# http://snapshot.example.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Enabled: no
";

    #[test]
    fn deb822_stanzas_are_parsed_and_disabled_ones_skipped() {
        let sources = parse_deb822(DEB822);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uris, ["http://mirror.example.org/debian"]);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert_eq!(sources[1].suites, ["bookworm-security"]);
    }

    #[test]
    fn deb822_inline_keys_are_not_taken_as_a_keyring_path() {
        let text = "Types: deb\nURIs: http://a.example/debian\nSuites: sid\n\
                    Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n";
        let sources = parse_deb822(text);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].signed_by, None);
    }

    #[test]
    fn one_line_sources_with_options_and_comments() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://a.example/debian bookworm main contrib
deb-src http://a.example/debian bookworm main
deb http://b.example/debian-security bookworm-security main # trailing
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uris, ["http://a.example/debian"]);
        assert_eq!(sources[0].suites, ["bookworm"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/k.gpg")
        );
        assert_eq!(sources[1].suites, ["bookworm-security"]);
    }

    #[test]
    fn mirror_uris_prefer_sources_serving_the_codename() {
        let mut sources = parse_deb822(DEB822);
        sources.extend(parse_one_line(
            "deb http://mirror.example.org/debian bookworm main",
        ));
        assert_eq!(
            mirror_uris(&sources, "bookworm"),
            ["http://mirror.example.org/debian"]
        );
        assert_eq!(
            signed_by(&sources, "bookworm").as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
    }

    #[test]
    fn mirror_uris_fall_back_to_debian_looking_uris() {
        let sources = parse_one_line(
            "deb http://x.example/debian/ trixie main\ndeb http://y.example/other trixie main",
        );
        assert_eq!(
            mirror_uris(&sources, "bookworm"),
            ["http://x.example/debian/"]
        );
    }

    #[test]
    fn codename_from_os_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n";
        assert_eq!(parse_codename(text).as_deref(), Some("bookworm"));
        assert_eq!(parse_codename("ID=debian\n"), None);
    }
}
