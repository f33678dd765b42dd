//! Paths in a workflow: where a relative path resolves, and whether an input exists.
//!
//! # The rule
//!
//! An action's spec names its path parameters ([`ActionSpec::input_path`],
//! [`ActionSpec::output_path`]). After variables are substituted, a relative local path in
//! one of them is resolved against a folder, lexically (`a/../b` is `b`):
//!
//! - written in the workflow (`path: ../data/in.csv`, or a variable's declared default):
//!   the **workflow file's folder**, as docker compose and Cargo do;
//! - starting with a variable whose value was given with `--var` or `SLUICE_VAR_` (`path:
//!   ${input}`, `path: ${dir}/in.csv`): the **current folder**, since a person typed it in
//!   a shell; such a path is left as typed (unless [`LoadOptions::var_dir`] names another
//!   folder). The start of the path decides: `data/${region}.csv` is always the workflow's
//!   folder, `${dir}/in.csv` follows where `dir` came from.
//!
//! Absolute paths, `-` (standard input or output) and locations with a scheme
//! (`memory://`, `file://`, `s3://`) are left as written. In a writer's path with
//! `{attribute}` placeholders, braces of the folder put in front are escaped (`{{`), so
//! placeholders keep working under any folder. Nodes of subgraphs follow the same rule:
//! they are in the same file.
//!
//! Loading a workflow from text without a folder ([`LoadOptions::default`]) resolves
//! nothing: relative paths stay relative to the current folder of the process.
//!
//! # Inputs checked before the run
//!
//! A plain local input path (a path or a `file://` URL without `*`, `?` or `[`) must exist,
//! as a file or a folder: a missing one is an error ([`MISSING_INPUT`]) naming the node, the
//! parameter and the resolved path. A zip member (`data/x.zip!/a.shp`) needs its local
//! archive, and a member named without a glob must be in it. What depends on the run is
//! not checked: a glob (which
//! files match is decided when the run lists them), `-`, and locations of other stores
//! (`memory://` is filled by the same process, `s3://` needs the network).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::diag::{DiagExt, Diags};
use super::vars::VarSources;
use super::yaml::Node;
use crate::action::ActionSpec;

/// The [`Diagnostic::code`](crate::error::Diagnostic::code) of an input file or folder that
/// does not exist.
pub const MISSING_INPUT: &str = "missing-input";

/// How a workflow is loaded: the folders its relative paths resolve against.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The folder relative paths written in the workflow resolve against: the workflow
    /// file's folder. `None` leaves them as written (relative to the current folder).
    pub base_dir: Option<PathBuf>,
    /// The folder relative paths from `--var` or `SLUICE_VAR_` values resolve against.
    /// `None` (what the command line uses) leaves them as typed: relative to the current
    /// folder of the process, where the person typed them.
    pub var_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// Paths written in the workflow resolve against `dir` (made absolute against the
    /// current folder); paths from variables given by the caller stay relative to the
    /// current folder.
    pub fn relative_to(dir: impl AsRef<Path>) -> LoadOptions {
        let dir = dir.as_ref();
        let base = match std::env::current_dir() {
            Ok(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir.to_path_buf(),
        };
        LoadOptions {
            base_dir: Some(normalize(&base)),
            var_dir: None,
        }
    }

    /// For a workflow read from `file`: its folder (see [`LoadOptions::relative_to`]).
    pub fn for_file(file: &Path) -> LoadOptions {
        match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => LoadOptions::relative_to(p),
            _ => LoadOptions::relative_to("."),
        }
    }
}

/// Where a path's relative part came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Written in the workflow (or a variable's default).
    Workflow,
    /// A variable given with `--var` (or the environment): the variable's name.
    Caller,
}

/// Resolves and checks the path parameters of nodes.
pub(crate) struct Paths<'a> {
    options: &'a LoadOptions,
    vars: &'a VarSources,
    /// The variables that have a value.
    values: &'a BTreeMap<String, String>,
}

impl<'a> Paths<'a> {
    pub(crate) fn new(
        options: &'a LoadOptions,
        vars: &'a VarSources,
        values: &'a BTreeMap<String, String>,
    ) -> Paths<'a> {
        Paths {
            options,
            vars,
            values,
        }
    }

    /// Rewrites the relative paths of `params` (variables applied) in place. `written` is
    /// the node's `with` block as the file has it (variables not applied).
    pub(crate) fn resolve(
        &self,
        spec: &ActionSpec,
        params: &mut serde_json::Value,
        written: Option<&Node>,
    ) {
        let roles = [
            (spec.input_path, false),
            (spec.output_path, spec.output_placeholders),
        ];
        for (param, placeholders) in roles {
            let Some(param) = param else { continue };
            let Some(serde_json::Value::String(value)) = params.get_mut(param) else {
                continue;
            };
            let Some(base) = self.base(self.origin(written, param)) else {
                continue;
            };
            if let Some(resolved) = resolve_location(value, base, placeholders) {
                *value = resolved;
            }
        }
    }

    /// Reports an input that does not exist (see the module documentation for what is
    /// checked). `params` are resolved; `with` is the substituted block, for positions.
    pub(crate) fn check_input(
        &self,
        spec: &ActionSpec,
        params: &serde_json::Value,
        with: &Node,
        written: Option<&Node>,
        node: &str,
        d: &mut Diags,
    ) {
        let Some(param) = spec.input_path else { return };
        let Some(location) = params.get(param).and_then(|v| v.as_str()) else {
            return;
        };
        // A variable with no value was reported: the path is not known.
        if let Some(w) = written.and_then(|w| w.get(param)) {
            let mut names = std::collections::BTreeSet::new();
            super::vars::mentioned(w, &mut names);
            if names.iter().any(|n| !self.values.contains_key(n)) {
                return;
            }
        }
        // A zip member: the archive must exist, and a member named without a glob must be
        // in it.
        let (archive, member) = match crate::store::archive::split(location) {
            Some((zip, member)) => (zip, Some(member)),
            None => (location, None),
        };
        let (scheme, rest) = crate::store::split_scheme(archive);
        if rest.contains(['*', '?', '[']) || !matches!(scheme, "" | "file://") {
            return;
        }
        let Some(Ok(local)) = crate::store::local_path(archive) else {
            return;
        };
        let missing = match std::fs::metadata(&local) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("input not found: {}", local.display())
            }
            Ok(m) if m.is_file() && member.is_some_and(|m| !m.contains(['*', '?', '['])) => {
                match crate::store::list(location) {
                    Err(e) if e.is_not_found() => format!(
                        "input not found: {} has no member {}",
                        local.display(),
                        member.unwrap_or_default()
                    ),
                    _ => return,
                }
            }
            _ => return,
        };
        let as_written = with.get(param).and_then(|v| v.as_str()).unwrap_or(location);
        let origin = self.origin(written, param);
        let help = if !scheme.is_empty() || Path::new(as_written).is_absolute() {
            None
        } else {
            Some(match (origin, self.base(origin)) {
                (Origin::Workflow, Some(_)) => {
                    "a relative path in a workflow is resolved against the workflow's folder"
                }
                (Origin::Caller, _) => {
                    "a relative path given with --var or SLUICE_VAR_ is resolved against the \
                     current folder"
                }
                (Origin::Workflow, None) => {
                    "a relative path is resolved against the current folder"
                }
            })
        };
        let diag = d
            .error(with.locate(param, None), missing)
            .node(node)
            .param(param);
        diag.code = Some(MISSING_INPUT);
        if let Some(h) = help {
            diag.help(h);
        }
    }

    /// Where the relative part of parameter `param` came from: a value that starts with a
    /// variable given by the caller is the caller's.
    fn origin(&self, written: Option<&Node>, param: &str) -> Origin {
        let text = written
            .and_then(|w| w.get(param))
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        match leading_variable(text) {
            Some(name) if given(&self.vars.cli, name) || given(&self.vars.env, name) => {
                Origin::Caller
            }
            _ => Origin::Workflow,
        }
    }

    fn base(&self, origin: Origin) -> Option<&Path> {
        match origin {
            Origin::Workflow => self.options.base_dir.as_deref(),
            Origin::Caller => self.options.var_dir.as_deref(),
        }
    }
}

fn given(map: &BTreeMap<String, String>, name: &str) -> bool {
    map.contains_key(name)
}

/// The variable a value starts with (`${dir}/a.csv` gives `dir`; `$${x}` is no variable).
fn leading_variable(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix("${")?;
    let end = rest.find('}')?;
    Some(rest[..end].trim())
}

/// `location` resolved against `base`, or `None` to leave it as written (absolute, `-`, a
/// URL, empty). With `placeholders`, braces in `base` are escaped.
fn resolve_location(location: &str, base: &Path, placeholders: bool) -> Option<String> {
    if location.trim().is_empty() || location == crate::store::STDIO {
        return None;
    }
    let (scheme, _) = crate::store::split_scheme(location);
    let path = Path::new(location);
    if !scheme.is_empty() || path.is_absolute() || path.has_root() {
        return None;
    }
    let folder = location.ends_with('/') || location.ends_with(std::path::MAIN_SEPARATOR);
    let mut text = normalize(&base.join(path)).to_string_lossy().into_owned();
    if folder && !text.ends_with(std::path::MAIN_SEPARATOR) {
        text.push(std::path::MAIN_SEPARATOR);
    }
    if placeholders {
        let prefix = base.to_string_lossy();
        if prefix.contains(['{', '}']) {
            // Only the folder put in front is escaped; the written part keeps its braces.
            let written = normalize(path).to_string_lossy().into_owned();
            let escaped = prefix.replace('{', "{{").replace('}', "}}");
            return Some(format!(
                "{}{}{}",
                escaped.trim_end_matches(std::path::MAIN_SEPARATOR),
                std::path::MAIN_SEPARATOR,
                written
            ));
        }
    }
    Some(text)
}

/// `p` with `.` dropped and `..` applied to the part before it, without touching the disk.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_folder_and_others_stay() {
        let base = Path::new("/srv/flows");
        let r = |l: &str| resolve_location(l, base, false);
        assert_eq!(r("in.csv").as_deref(), Some("/srv/flows/in.csv"));
        assert_eq!(r("../data/in.csv").as_deref(), Some("/srv/data/in.csv"));
        assert_eq!(r("./data/").as_deref(), Some("/srv/flows/data/"));
        assert_eq!(r("data/*.csv").as_deref(), Some("/srv/flows/data/*.csv"));
        for kept in [
            "/abs/in.csv",
            "-",
            "memory://t/a.csv",
            "file://x.csv",
            "s3://b/k",
            "",
        ] {
            assert_eq!(r(kept), None, "{kept}");
        }
    }

    #[test]
    fn placeholders_survive_a_folder_with_braces() {
        let plain = resolve_location("out/{city}.csv", Path::new("/srv/flows"), true);
        assert_eq!(plain.as_deref(), Some("/srv/flows/out/{city}.csv"));
        let braces = resolve_location("out/{city}.csv", Path::new("/srv/{x}"), true);
        assert_eq!(braces.as_deref(), Some("/srv/{{x}}/out/{city}.csv"));
        // A path without placeholders (parquet_writer) keeps the folder as it is.
        let literal = resolve_location("a.parquet", Path::new("/srv/{x}"), false);
        assert_eq!(literal.as_deref(), Some("/srv/{x}/a.parquet"));
    }

    #[test]
    fn the_leading_variable_decides() {
        assert_eq!(leading_variable("${dir}/a.csv"), Some("dir"));
        assert_eq!(leading_variable(" ${ in }"), Some("in"));
        assert_eq!(leading_variable("data/${region}.csv"), None);
        assert_eq!(leading_variable("$${x}"), None);
    }

    #[test]
    fn a_value_from_the_command_line_or_the_environment_is_the_callers() {
        let with = crate::workflow::yaml::parse("a: ${in}\nb: ${dir}/x.csv\nc: d/${in}\n").unwrap();
        let mut vars = VarSources::default();
        vars.cli.insert("in".into(), "mine.csv".into());
        let values = BTreeMap::new();
        let options = LoadOptions::default();
        let paths = Paths::new(&options, &vars, &values);
        assert_eq!(paths.origin(Some(&with), "a"), Origin::Caller);
        assert_eq!(paths.origin(Some(&with), "b"), Origin::Workflow);
        assert_eq!(paths.origin(Some(&with), "c"), Origin::Workflow);
        vars.env.insert("dir".into(), "/data".into());
        let paths = Paths::new(&options, &vars, &values);
        assert_eq!(paths.origin(Some(&with), "b"), Origin::Caller);
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("../x")), Path::new("../x"));
        assert_eq!(normalize(Path::new("a/../../x")), Path::new("../x"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
    }
}
