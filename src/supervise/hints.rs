//! What a crashed process's last lines say about a known cause (old apps on today's
//! runtimes): one `help:` line added to the crash-loop, flapping, `--exit-on-crash` and
//! "never listened" messages. A pure table from the tail lines to an optional hint.

/// Python 2 modules renamed or gone in Python 3: importing one on Python 3 means Python 2 code.
const PY2_MODULES: &[&str] = &[
    "urllib2",
    "BaseHTTPServer",
    "SimpleHTTPServer",
    "CGIHTTPServer",
    "ConfigParser",
    "StringIO",
    "cStringIO",
    "cPickle",
    "httplib",
    "urlparse",
    "Queue",
    "SocketServer",
    "cookielib",
    "Cookie",
    "HTMLParser",
    "commands",
    "thread",
    "Tkinter",
];

/// The hint for the last lines `lines` (oldest first) of a process that exited, if a known
/// cause shows; the most recent cause wins. `declared` is the runtime the app declares
/// (never suggested again); `python27_installed` is asked only for a Python 2 hint (whether
/// to mention `pyenv install 2.7.18`).
pub(crate) fn hint(
    lines: &[String],
    declared: Option<&str>,
    python27_installed: impl FnOnce() -> bool,
) -> Option<String> {
    for (i, raw) in lines.iter().enumerate().rev() {
        let line = raw.trim();
        if python2(line, &lines[..i]) {
            return Some(python2_hint(declared, python27_installed()));
        }
        if let Some(h) = perl(line).or_else(|| ruby(line)).or_else(|| node(line)) {
            return Some(h);
        }
        if unresolved_localhost(line, &lines[i.saturating_sub(8)..i]) {
            return Some(LOCALHOST.to_string());
        }
    }
    None
}

/// What to do about Python 2 code run by Python 3, given what the app declares.
fn python2_hint(declared: Option<&str>, installed: bool) -> String {
    let missing = " (no Python 2.7 is installed here: `pyenv install 2.7.18`)";
    let py2 = declared
        .and_then(crate::platform::runtime::parse_runtime)
        .filter(|(l, v)| {
            *l == crate::platform::runtime::Lang::Python && v.is_some_and(|v| v.major == 2)
        });
    match (declared, py2) {
        (Some(d), Some(_)) if !installed => format!(
            "help: this is Python 2 code and the app declares `{d}`, but no Python 2.7 is installed here, so Python 3 ran it: `pyenv install 2.7.18`, then run again"
        ),
        (Some(d), Some(_)) => format!(
            "help: this is Python 2 code; the app declares `{d}` and its `python` is Python 2.7, but its command ran a Python 3 (`python3`?): call `python`"
        ),
        (Some(d), None) => format!(
            "help: this is Python 2 code: the app declares `{d}`; declare `runtime: python27` instead, or run with `--runtime python27`{}",
            if installed { "" } else { missing }
        ),
        (None, _) => format!(
            "help: this is Python 2 code: add `runtime: python27` to stackato.yml, or run with `--runtime python27`{}",
            if installed { "" } else { missing }
        ),
    }
}

/// Whether `line` (with the lines before it) is Python 3 refusing Python 2 code.
fn python2(line: &str, before: &[String]) -> bool {
    if line.starts_with("SyntaxError: Missing parentheses in call to 'print'")
        || line.starts_with("SyntaxError: Missing parentheses in call to 'exec'")
    {
        return true;
    }
    // `print >>sys.stderr, "x"` runs on Python 3 and fails at `>>`.
    if line.contains("Did you mean \"print(<message>, file=<output_stream>)\"") {
        return true;
    }
    if let Some(rest) = line.strip_prefix("ModuleNotFoundError: No module named '") {
        let module = rest.split(['\'', '.']).next().unwrap_or("");
        return PY2_MODULES.contains(&module);
    }
    if line.starts_with("SyntaxError:") {
        // The offending source line is shown a line or two above (under a caret line).
        return before.iter().rev().take(3).any(|l| py2_source(l.trim()));
    }
    false
}

/// A Python 2 statement: `print "x"`, `print x` at the end, `except E, e:`, `raise E, "x"`.
pub(crate) fn py2_source(l: &str) -> bool {
    if let Some(rest) = l.strip_prefix("print ") {
        let rest = rest.trim_start();
        return !rest.starts_with('(') || rest.contains("),");
    }
    if let Some(rest) = l.strip_prefix("except ") {
        let rest = rest.trim_end_matches(':');
        return !rest.starts_with('(') && rest.contains(',') && !rest.contains(" as ");
    }
    if let Some(rest) = l.strip_prefix("raise ") {
        return !rest.contains('(') && rest.contains(',');
    }
    l.contains(" <> ") || l.starts_with("exec \"")
}

/// `Can't locate CGI.pm in @INC` → install the module.
fn perl(line: &str) -> Option<String> {
    let at = line.find("Can't locate ")?;
    let rest = &line[at + "Can't locate ".len()..];
    let file = rest.split_whitespace().next()?;
    if !rest.contains("in @INC") {
        return None;
    }
    let module = file.strip_suffix(".pm")?.replace('/', "::");
    let debian = if module == "CGI" {
        "libcgi-pm-perl".to_string()
    } else {
        format!("lib{}-perl", module.to_lowercase().replace("::", "-"))
    };
    Some(format!(
        "help: Perl module {module} is missing: install it with `requirements: cpan: [{module}]` in stackato.yml, a cpanfile, or Debian's package (`apt-get install {debian}`)"
    ))
}

fn ruby(line: &str) -> Option<String> {
    if line.contains("cannot load such file -- webrick")
        || line.contains("Could not find a server")
        || line.contains("Couldn't find handler for")
    {
        return Some(
            "help: Ruby 3 no longer ships WEBrick, the server rackup and Sinatra fell back on: add `gem 'webrick'` to the Gemfile (or a server such as puma)".into(),
        );
    }
    if line.contains("config.ru not found") {
        return Some(
            "help: rackup needs a config.ru: add one (`require './app'` then `run Sinatra::Application`), or set `web:` to the command that starts the app (`ruby app.rb`)".into(),
        );
    }
    None
}

fn node(line: &str) -> Option<String> {
    let at = line.find("Cannot find module '")?;
    let rest = &line[at + "Cannot find module '".len()..];
    let module = rest.split('\'').next()?;
    if module.is_empty() || module.starts_with('.') || module.starts_with('/') {
        return None;
    }
    Some(format!(
        "help: Node module {module} is missing: add it to package.json's \"dependencies\" (`npm install --save {module}`) so staging installs it"
    ))
}

/// What to do when an app calls another by its router name.
const LOCALHOST: &str = "help: `<app>.localhost` names resolve in browsers and curl, not through the C library an app's code uses: call the other app at http://127.0.0.1:<router port>/ with a `Host: <app>.localhost` header (the router's URLs are in each app's VCAP_APPLICATION.uris)";

/// Whether `line` is a failed name lookup of a `*.localhost` name (the name on that line or
/// on one of the lines just `before` it, as Python's tracebacks put it).
fn unresolved_localhost(line: &str, before: &[String]) -> bool {
    const FAILED: &[&str] = &[
        "name or service not known",
        "temporary failure in name resolution",
        "no address associated with hostname",
        "getaddrinfo enotfound",
        "could not resolve host",
        "nodename nor servname",
    ];
    let l = line.to_ascii_lowercase();
    FAILED.iter().any(|f| l.contains(f))
        && std::iter::once(line)
            .chain(before.iter().map(String::as_str))
            .any(|x| x.to_ascii_lowercase().contains(".localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_another_app_by_its_router_name() {
        for tail in [
            "Error: getaddrinfo ENOTFOUND blog.localhost",
            "requests.exceptions.ConnectionError: HTTPConnectionPool(host='blog.localhost', port=4100): Max retries exceeded (Caused by NewConnectionError('[Errno -2] Name or service not known'))",
            "  File \"app.py\", line 3, in <module>\n    urlopen('http://blog.localhost:4100/')\nurllib.error.URLError: <urlopen error [Errno -2] Name or service not known>",
            "curl: (6) Could not resolve host: api.localhost",
        ] {
            let got = h(tail).unwrap_or_default();
            assert!(got.contains("Host: <app>.localhost"), "{tail}: {got}");
        }
        assert_eq!(
            h("socket.gaierror: [Errno -2] Name or service not known"),
            None
        );
        assert_eq!(h("connecting to db.localhost:5432 refused"), None);
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    fn h(text: &str) -> Option<String> {
        hint(&lines(text), None, || true)
    }

    #[test]
    fn python2_print() {
        let t = "  File \"/home/app/app.py\", line 3\n    print \"hello\"\n    ^^^^^^^^^^^^^\nSyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?";
        let got = h(t).unwrap();
        assert!(got.contains("runtime: python27"), "{got}");
        assert!(got.contains("--runtime python27"), "{got}");
        assert!(!got.contains("pyenv install"), "{got}");
        let got = hint(&lines(t), None, || false).unwrap();
        assert!(got.contains("pyenv install 2.7.18"), "{got}");
    }

    #[test]
    fn python2_hint_never_suggests_the_declared_key_again() {
        let t = "    print \"hello\"\nSyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?";
        let got = hint(&lines(t), Some("python27"), || false).unwrap();
        assert!(!got.contains("add `runtime"), "{got}");
        assert!(got.contains("declares `python27`"), "{got}");
        assert!(got.contains("pyenv install 2.7.18"), "{got}");
        let got = hint(&lines(t), Some("python27"), || true).unwrap();
        assert!(!got.contains("add `runtime"), "{got}");
        assert!(got.contains("python3"), "{got}");
        let got = hint(&lines(t), Some("python3.12"), || true).unwrap();
        assert!(got.contains("instead"), "{got}");
    }

    #[test]
    fn python2_except_and_bare_print() {
        let t = "  File \"app.py\", line 9\n    except Exception, e:\n           ^^^^^^^^^^^^\nSyntaxError: multiple exception types must be parenthesized";
        assert!(h(t).unwrap().contains("python27"));
        // Python 3.8's message for `print "x"` inside a statement it cannot name.
        let t = "  File \"app.py\", line 2\n    print \"x\" % y\n              ^\nSyntaxError: invalid syntax";
        assert!(h(t).unwrap().contains("python27"));
        // A Python 3 syntax error is not Python 2.
        let t = "  File \"app.py\", line 2\n    def f(:\n          ^\nSyntaxError: invalid syntax";
        assert_eq!(h(t), None);
        let t = "  File \"app.py\", line 2\n    print(\"x\"\nSyntaxError: '(' was never closed";
        assert_eq!(h(t), None);
    }

    #[test]
    fn python2_modules() {
        let t = "Traceback (most recent call last):\n  File \"/home/app/app.py\", line 1, in <module>\n    import urllib2\nModuleNotFoundError: No module named 'urllib2'";
        assert!(h(t).unwrap().contains("python27"));
        let t = "ModuleNotFoundError: No module named 'BaseHTTPServer'";
        assert!(h(t).unwrap().contains("python27"));
        let t = "TypeError: unsupported operand type(s) for >>: 'builtin_function_or_method' and '_io.TextIOWrapper'. Did you mean \"print(<message>, file=<output_stream>)\"?";
        assert!(h(t).unwrap().contains("python27"));
        let t = "ModuleNotFoundError: No module named 'flask'";
        assert_eq!(h(t), None);
    }

    #[test]
    fn perl_missing_module() {
        let t = "Can't locate CGI.pm in @INC (you may need to install the CGI module) (@INC contains: /etc/perl /usr/share/perl5) at index.cgi line 3.\nBEGIN failed--compilation aborted at index.cgi line 3.";
        let got = h(t).unwrap();
        assert!(got.contains("libcgi-pm-perl"), "{got}");
        assert!(got.contains("cpan: [CGI]"), "{got}");
        let t = "Can't locate Dancer/Plugin/Database.pm in @INC (you may need to install the Dancer::Plugin::Database module) (@INC contains: /etc/perl) at app.pl line 2.";
        let got = h(t).unwrap();
        assert!(got.contains("cpan: [Dancer::Plugin::Database]"), "{got}");
        assert!(got.contains("libdancer-plugin-database-perl"), "{got}");
    }

    #[test]
    fn ruby_webrick_and_config_ru() {
        let t = "/usr/lib/ruby/3.1.0/rubygems/core_ext/kernel_require.rb:85:in `require': cannot load such file -- webrick (LoadError)";
        assert!(h(t).unwrap().contains("gem 'webrick'"));
        let t = "/usr/share/rubygems-integration/all/gems/rack-2.2.22/lib/rack/handler.rb:45:in `pick': Couldn't find handler for: thin, falcon, puma, HTTP, webrick. (LoadError)\n\tfrom /usr/share/rubygems-integration/all/gems/sinatra-3.0.5/lib/sinatra/base.rb:1516:in `run!'";
        assert!(h(t).unwrap().contains("gem 'webrick'"));
        let t = "configuration config.ru not found";
        assert!(h(t).unwrap().contains("config.ru"));
    }

    #[test]
    fn node_missing_module() {
        let t = "node:internal/modules/cjs/loader:1080\n  throw err;\n  ^\n\nError: Cannot find module 'express'\nRequire stack:\n- /home/app/server.js";
        let got = h(t).unwrap();
        assert!(got.contains("npm install --save express"), "{got}");
        assert_eq!(h("Error: Cannot find module '/home/app/web.js'"), None);
    }

    #[test]
    fn nothing_known() {
        assert_eq!(h("listening on 8080\nKilled"), None);
        assert_eq!(h(""), None);
    }
}
