//! Finding the line of a dotted key in a TOML file, so errors can say `file:line`.

/// A figment error path as a dotted key, with array indices in brackets:
/// `["experiments", "0", "share"]` → `experiments[0].share`.
pub fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The 1-based line where `key` is set in `text`: a `key = …` line under its table header,
/// an inline table holding it, or the table's own header.
pub fn line(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    let mut counts = std::collections::HashMap::<String, usize>::new();
    let mut header_line = None;
    let mut best = None;
    for (n, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|x| x.split("]]").next()) {
            let name = h.trim().to_owned();
            let i = counts.entry(name.clone()).or_default();
            table = format!("{name}[{i}]");
            *i += 1;
        } else if let Some(h) = t.strip_prefix('[').and_then(|x| x.split(']').next()) {
            table = h.trim().to_owned();
        } else if let Some((k, _)) = t.split_once('=') {
            let full = if table.is_empty() { k.trim().to_owned() } else { format!("{table}.{}", k.trim()) };
            if full == key {
                return Some(n + 1);
            }
            // A key inside an inline table (`limits = { deadline-ms = 0 }`) or below it.
            if key.starts_with(&format!("{full}.")) {
                best = Some(n + 1);
            }
            continue;
        } else {
            continue;
        }
        if table == key || key.starts_with(&format!("{table}.")) {
            header_line = Some(n + 1);
        }
    }
    best.or(header_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[plugins]\ndir = \"x\"\n\n[plugins.scorer]\nfile = \"a.wasm\"\nlimits = { deadline-ms = 0 }\n\n[[experiments]]\nname = \"a\"\n\n[[experiments]]\nname = \"b\"\nshare = 2\n";

    #[test]
    fn keys_are_found_under_their_tables() {
        assert_eq!(line(TEXT, "plugins.dir"), Some(2));
        assert_eq!(line(TEXT, "plugins.scorer.file"), Some(5));
        assert_eq!(line(TEXT, "plugins.scorer.limits.deadline-ms"), Some(6));
        assert_eq!(line(TEXT, "experiments[1].share"), Some(13));
        assert_eq!(line(TEXT, "experiments[0].role"), Some(8), "a missing key points at its table");
        assert_eq!(line(TEXT, "server.listen"), None);
    }

    #[test]
    fn figment_paths_become_dotted_keys() {
        let path: Vec<String> = ["experiments", "0", "share"].map(String::from).to_vec();
        assert_eq!(dotted(&path), "experiments[0].share");
    }
}
