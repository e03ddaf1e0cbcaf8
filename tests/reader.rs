//! The stackato.yml / manifest.yml reader, key family by key family, through the real binary:
//! `config --json` shows the normalised manifest (as the client's `debug-manifest`), `check`
//! shows the problems with `file:line:col`.

use crate::common::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// name, instances, mem/memory, disk/disk_quota: raw text kept, aliases folded.

#[test]
fn sizes_and_counts_keep_their_raw_text() {
    let d = yml("name: myapp\ninstances: 010\nmem: 256M\nmemory: 512M\ndisk: 1G\ndisk_quota: 2G\n");
    let a = only_app(d.path());
    assert_eq!(a["name"], "myapp");
    assert_eq!(
        a["instances"], "010",
        "instances must stay the text `010`, not 10 or 8"
    );
    assert_eq!(a["memory"], "256M", "mem wins over memory");
    assert_eq!(a["disk_quota"], "2G", "disk_quota wins over disk");
    for gone in ["mem", "disk"] {
        assert!(a.get(gone).is_none(), "`{gone}` must be folded away: {a:#}");
    }
    assert_eq!(a["path"], canon_str(d.path(), ""));
}

#[test]
fn memory_and_disk_aliases_alone() {
    let d = yml("name: a\nmemory: 1.5G\ndisk: 512\n");
    let a = only_app(d.path());
    assert_eq!(a["memory"], "1.5G");
    assert_eq!(a["disk_quota"], "512");
}

#[test]
fn versions_and_env_values_are_not_retyped() {
    let d = yml(concat!(
        "name: a\n",
        "min_version:\n  client: 1.10\n  server: 2.4.3\n",
        "env:\n  FOO: yes\n  OCT: 010\n  VER: 1.10\n  OFF: off\n"
    ));
    let a = only_app(d.path());
    assert_eq!(
        a["stackato"]["min_version"],
        json!({"client": "1.10", "server": "2.4.3"})
    );
    let env = &a["stackato"]["env"];
    assert_eq!(env["FOO"], json!({"default": "yes"}));
    assert_eq!(env["OCT"], json!({"default": "010"}));
    assert_eq!(env["VER"], json!({"default": "1.10"}));
    assert_eq!(env["OFF"], json!({"default": "off"}));
}

#[test]
fn bad_min_version_is_an_error_at_the_value() {
    let d = yml("name: a\nmin_version:\n  client: 1.5a\n  other: 1\n");
    let r = check(d.path());
    r.code(2);
    r.diag("stackato.yml:3:11: error:", &["min_version:client", "1.5a"]);
    r.diag("stackato.yml:4:3: error:", &["min_version:other"]);
}

// ---------------------------------------------------------------------------------------------
// framework

#[test]
fn framework_scalar_becomes_a_name_mapping() {
    let a = only_app(yml("name: a\nframework: python\n").path());
    assert_eq!(a["framework"], json!({"name": "python"}));
    assert!(a.get("runtime").is_none());
    // Any framework selects the legacy buildpack, which forces war unpacking.
    assert_eq!(a["stackato"]["force-war-unpacking"], "yes");
}

#[test]
fn framework_type_mapping_moves_runtime_up() {
    let d = yml("name: a\nframework:\n  type: python\n  runtime: python27\n  start-file: app.py\n");
    let a = only_app(d.path());
    assert_eq!(
        a["framework"],
        json!({"name": "python", "start-file": "app.py"})
    );
    assert_eq!(a["runtime"], "python27");
}

#[test]
fn framework_name_mapping_is_kept() {
    let d = yml("name: a\nframework:\n  name: node\n  document-root: public\n");
    let a = only_app(d.path());
    assert_eq!(
        a["framework"],
        json!({"name": "node", "document-root": "public"})
    );
}

#[test]
fn framework_false_war_unpacking_is_an_error() {
    let r = check(yml("name: a\nframework: node\nforce-war-unpacking: no\n").path());
    r.code(2);
    r.diag(
        "stackato.yml:3:22: error:",
        &["Legacy-based application needs force-war-unpacking"],
    );
}

// ---------------------------------------------------------------------------------------------
// services

#[test]
fn services_name_to_type() {
    let d = yml("name: a\nservices:\n  db: mysql\n  cache: redis\n");
    let a = only_app(d.path());
    assert_eq!(
        a["services"],
        json!({"db": {"type": "mysql"}, "cache": {"type": "redis"}})
    );
    let r = check(d.path());
    r.code(0).stderr_lacks("warning");
}

#[test]
fn services_legacy_type_to_name_is_read_with_a_deprecation_warning() {
    let d = yml("name: a\nservices:\n  mysql: mydb\n");
    let a = only_app(d.path());
    assert_eq!(a["services"], json!({"mydb": {"type": "mysql"}}));
    let r = check(d.path());
    r.code(0);
    r.diag("stackato.yml:3:3: warning:", &["Deprecated", "mydb"]);
}

#[test]
fn services_mapping_form_keeps_its_keys() {
    let d = yml(concat!(
        "name: a\nservices:\n",
        "  db: {type: postgresql, plan: free, tags: [main]}\n",
        "  other: {label: mysql, type: redis}\n",
    ));
    let a = only_app(d.path());
    assert_eq!(
        a["services"]["db"],
        json!({"type": "postgresql", "plan": "free", "tags": ["main"]})
    );
    // label wins over type (and vendor).
    assert_eq!(a["services"]["other"]["type"], "mysql");
}

#[test]
fn services_cf_v2_list_binds_by_name() {
    let d = yml("name: a\nservices: [db1, db2]\n");
    let a = only_app(d.path());
    let s = a["services"].as_object().expect("services mapping");
    assert_eq!(
        s.keys().collect::<Vec<_>>(),
        ["db1", "db2"],
        "service names in order: {a:#}"
    );
    for (k, v) in s {
        assert!(
            v.get("type").is_none(),
            "{k}: the list form names existing services, no type: {v}"
        );
    }
}

#[test]
fn services_with_no_known_type_are_an_error() {
    let r = check(yml("name: a\nservices:\n  foo: bar\n").path());
    r.code(2);
    r.diag("stackato.yml:3:8: error:", &["Neither [foo] nor [bar]"]);
}

#[test]
fn services_name_substitution_in_keys() {
    let d = yml("name: myapp\nservices:\n  ${name}-db: mysql\n  ${name}-cache: memcached\n");
    let a = only_app(d.path());
    assert_eq!(
        a["services"],
        json!({"myapp-db": {"type": "mysql"}, "myapp-cache": {"type": "memcached"}})
    );
}

// ---------------------------------------------------------------------------------------------
// env

#[test]
fn env_scalar_becomes_default() {
    let a = only_app(yml("name: a\nenv:\n  DJANGO_SETTINGS_MODULE: settings.production\n").path());
    assert_eq!(
        a["stackato"]["env"],
        json!({"DJANGO_SETTINGS_MODULE": {"default": "settings.production"}})
    );
}

#[test]
fn env_attribute_form_passes_through() {
    let d = yml(concat!(
        "name: a\nenv:\n",
        "  MODE:\n    default: fast\n    choices: [fast, slow]\n    prompt: Which mode?\n    scope: runtime\n",
        "  TOKEN:\n    required: yes\n    hidden: true\n    inherit: y\n",
    ));
    let a = only_app(d.path());
    assert_eq!(
        a["stackato"]["env"],
        json!({
            "MODE": {"default": "fast", "choices": ["fast", "slow"], "prompt": "Which mode?", "scope": "runtime"},
            "TOKEN": {"required": "yes", "hidden": "true", "inherit": "y"},
        })
    );
}

#[test]
fn env_illegal_attribute_is_an_error_naming_the_key_path() {
    let r = check(yml("name: a\nenv:\n  VAR:\n    default: 1\n    x: 2\n").path());
    r.code(2);
    r.diag("stackato.yml:5:5: error:", &["env:VAR:x"]);
}

#[test]
fn env_attributes_without_default_or_required_are_an_error() {
    let r = check(yml("name: a\nenv:\n  VAR:\n    prompt: give it\n").path());
    r.code(2);
    r.diag("stackato.yml:3:3: error:", &["VAR", "default"]);
}

// ---------------------------------------------------------------------------------------------
// processes, command, workers

#[test]
fn processes_web_command() {
    let a = only_app(yml("name: a\nprocesses:\n  web: python app.py --port $PORT\n").path());
    assert_eq!(
        a["stackato"]["processes"],
        json!({"web": "python app.py --port $PORT"})
    );
    assert!(
        a.get("urls").is_none(),
        "a web app keeps the default URL: {a:#}"
    );
}

#[test]
fn null_web_with_a_framework_is_a_worker_without_urls() {
    let d = yml("name: w\nframework: python\nprocesses:\n  web: ~\ncommand: python worker.py\n");
    let a = only_app(d.path());
    assert_eq!(a["stackato"]["processes"], json!({"web": null}));
    assert_eq!(a["command"], "python worker.py");
    assert_eq!(a["urls"], json!([]));
}

#[test]
fn null_web_without_command_is_an_error() {
    let r = check(yml("name: w\nprocesses:\n  web: ~\n").path());
    r.code(2);
    r.diag("stackato.yml:1:7: error:", &["worker", "command"]);
}

#[test]
fn legacy_standalone_is_a_worker() {
    let a = only_app(yml("name: w\nframework: standalone\ncommand: ./run.sh\n").path());
    assert_eq!(a["framework"], json!({"name": "standalone"}));
    assert_eq!(a["urls"], json!([]));
    assert_eq!(a["command"], "./run.sh");
}

#[test]
fn legacy_worker_asking_for_a_url_is_an_error() {
    let r = check(
        yml("name: w\nframework: standalone\ncommand: ./run.sh\nurl: w.example.com\n").path(),
    );
    r.code(2);
    r.diag(
        "stackato.yml:4:",
        &[
            "error:",
            "Legacy-based worker application requesting an url mapping",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// hooks, cron, ignores

#[test]
fn hooks_string_and_list_keep_the_dash_prefix() {
    let d = yml(concat!(
        "name: a\nhooks:\n",
        "  pre-running: \"-echo hi\"\n",
        "  post-staging:\n    - \"-python manage.py syncdb\"\n    - echo done\n",
    ));
    let a = only_app(d.path());
    assert_eq!(
        a["stackato"]["hooks"],
        json!({
            "pre-running": "-echo hi",
            "post-staging": ["-python manage.py syncdb", "echo done"],
        })
    );
}

#[test]
fn cron_string_and_list() {
    let a = only_app(yml("name: a\ncron: \"*/5 * * * * echo hi\"\n").path());
    assert_eq!(a["stackato"]["cron"], "*/5 * * * * echo hi");
    let a =
        only_app(yml("name: a\ncron:\n  - \"*/5 * * * * echo hi\"\n  - 0 1 * * * echo b\n").path());
    assert_eq!(
        a["stackato"]["cron"],
        json!(["*/5 * * * * echo hi", "0 1 * * * echo b"])
    );
}

#[test]
fn ignores_list_and_empty_list() {
    let a = only_app(yml("name: a\nignores: [.git, dev.db, \"*.log\"]\n").path());
    assert_eq!(a["stackato"]["ignores"], json!([".git", "dev.db", "*.log"]));
    let a = only_app(yml("name: a\nignores: []\n").path());
    assert_eq!(a["stackato"]["ignores"], json!([]));
}

#[test]
fn ignores_scalar_is_an_error() {
    let r = check(yml("name: a\nignores: foo\n").path());
    r.code(2);
    r.diag("stackato.yml:2:10: error:", &["ignores", "sequence"]);
}

// ---------------------------------------------------------------------------------------------
// URLs

#[test]
fn url_and_urls_are_merged_in_order() {
    let d =
        yml("name: a\nurl: one.example.com\nurls:\n  - two.example.com\n  - three.example.com\n");
    let a = only_app(d.path());
    assert_eq!(
        a["urls"],
        json!(["one.example.com", "two.example.com", "three.example.com"])
    );
}

#[test]
fn host_and_subdomain_use_the_domain() {
    let d = yml("name: a\nhost: h1\nsubdomain: h2\ndomain: example.com\n");
    let a = only_app(d.path());
    assert_eq!(a["urls"], json!(["h1.example.com", "h2.example.com"]));
}

#[test]
fn host_without_domain_uses_the_target_base() {
    let d = yml("name: a\nhost: h1\n");
    let r = run_with(
        d.path(),
        &["config", "--json"],
        &[("STACKATO_TARGET", "https://api.example.org")],
    );
    r.code(0);
    assert_eq!(app_of(&r.json(), "a")["urls"], json!(["h1.example.org"]));
}

#[test]
fn domain_alone_uses_the_app_name() {
    let a = only_app(yml("name: myapp\ndomain: example.com\n").path());
    assert_eq!(a["urls"], json!(["myapp.example.com"]));
}

#[test]
fn no_route_empties_the_url_list() {
    let a = only_app(yml("name: a\nurl: a.example.com\nno-route: true\n").path());
    assert_eq!(a["urls"], json!([]));
}

#[test]
fn explicit_empty_url_list_stays_empty() {
    let a = only_app(yml("name: a\nurl: []\n").path());
    assert_eq!(a["urls"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// applications, depends-on

#[test]
fn applications_mapping_is_keyed_by_path_and_becomes_keyed_by_name() {
    let d = app(&[(
        "manifest.yml",
        "applications:\n  web:\n    name: front\n    mem: 128M\n  worker:\n    name: back\n",
    )]);
    let doc = config_json(d.path());
    let a = apps(&doc);
    assert_eq!(a.keys().collect::<Vec<_>>(), ["front", "back"]);
    assert_eq!(a["front"]["path"], canon_str(d.path(), "web"));
    assert_eq!(a["front"]["memory"], "128M");
    assert_eq!(a["back"]["path"], canon_str(d.path(), "worker"));
    assert!(
        doc["manifest_file"]
            .as_str()
            .unwrap_or("")
            .ends_with("manifest.yml")
    );
}

#[test]
fn applications_list_with_names_and_optional_paths() {
    let d = app(&[(
        "manifest.yml",
        "applications:\n- name: one\n  mem: 64M\n- name: two\n  path: sub\n",
    )]);
    let doc = config_json(d.path());
    assert_eq!(app_of(&doc, "one")["path"], canon_str(d.path(), ""));
    assert_eq!(app_of(&doc, "one")["memory"], "64M");
    assert_eq!(app_of(&doc, "two")["path"], canon_str(d.path(), "sub"));
}

#[test]
fn applications_without_name_are_errors() {
    let d = app(&[("manifest.yml", "applications:\n  web:\n    mem: 1G\n")]);
    let r = check(d.path());
    r.code(2);
    r.diag(
        "manifest.yml:3:5: error:",
        &["Application @ path \"web\" has no name"],
    );

    let d = app(&[("manifest.yml", "applications:\n- name: a\n- mem: 1G\n")]);
    let r = check(d.path());
    r.code(2);
    r.diag("manifest.yml:3:3: error:", &["Application <1> has no name"]);
}

#[test]
fn stackato_app_next_to_applications() {
    let d = app(&[(
        "stackato.yml",
        "name: first\napp-dir: n1\nmem: 256M\napplications:\n  n2:\n    name: second\n",
    )]);
    let doc = config_json(d.path());
    assert_eq!(apps(&doc).keys().collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(app_of(&doc, "first")["path"], canon_str(d.path(), "n1"));
    assert_eq!(app_of(&doc, "second")["path"], canon_str(d.path(), "n2"));
    // The top-level keys describe the stackato.yml app only.
    assert!(app_of(&doc, "second").get("memory").is_none(), "{doc:#}");
}

#[test]
fn depends_on_by_path_in_the_v1_mapping_becomes_names() {
    let d = app(&[
        ("web/app.py", ""),
        ("worker/w.py", ""),
        (
            "manifest.yml",
            concat!(
                "applications:\n",
                "  web:\n    name: front\n    depends-on: ./worker\n",
                "  worker:\n    name: back\n",
                "  .:\n    name: root\n    depends-on: [web, worker]\n",
            ),
        ),
    ]);
    let doc = config_json(d.path());
    assert_eq!(app_of(&doc, "front")["depends-on"], json!(["back"]));
    assert_eq!(app_of(&doc, "root")["depends-on"], json!(["front", "back"]));
    assert!(app_of(&doc, "back").get("depends-on").is_none());
}

#[test]
fn depends_on_by_name_in_the_v2_list() {
    let d = app(&[(
        "manifest.yml",
        "applications:\n- name: api\n  depends-on: db-loader\n- name: db-loader\n  path: loader\n",
    )]);
    let doc = config_json(d.path());
    assert_eq!(app_of(&doc, "api")["depends-on"], json!(["db-loader"]));
}

#[test]
fn depends_on_an_unknown_application_is_an_error() {
    let d = app(&[(
        "manifest.yml",
        "applications:\n- name: a\n- name: b\n  depends-on: [a, nope]\n",
    )]);
    let r = check(d.path());
    r.code(2);
    r.diag(
        "manifest.yml:4:19: error:",
        &["unknown application", "nope"],
    );
}

#[test]
fn dependency_cycles_are_an_error() {
    let d = app(&[(
        "manifest.yml",
        "applications:\n- name: a\n  depends-on: b\n- name: b\n  depends-on: c\n- name: c\n  depends-on: a\n",
    )]);
    let r = check(d.path());
    r.code(2);
    let line = r.diag("manifest.yml:", &["error:", "Circular dependency"]);
    for n in ["a", "b", "c"] {
        assert!(line.contains(n), "the cycle names every app: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// inherit

#[test]
fn inherit_a_single_file_under_the_including_one() {
    let d = app(&[
        (
            "stackato.yml",
            "name: child\ninherit: base.yml\nmem: 128M\n",
        ),
        ("base.yml", "mem: 512M\ninstances: 3\nenv:\n  A: base\n"),
    ]);
    let a = only_app(d.path());
    assert_eq!(a["name"], "child");
    assert_eq!(a["memory"], "128M", "the including file wins");
    assert_eq!(a["instances"], "3");
    assert_eq!(a["stackato"]["env"], json!({"A": {"default": "base"}}));
    let doc = config_json(d.path());
    assert!(
        doc["manifest"].get("inherit").is_none() && a.get("inherit").is_none(),
        "inherit is consumed: {doc:#}"
    );
}

#[test]
fn inherit_list_is_recursive_and_earlier_entries_win() {
    let d = app(&[
        (
            "stackato.yml",
            "name: child\ninherit:\n  - first.yml\n  - second.yml\nhooks:\n  post-staging:\n    - echo child\n",
        ),
        (
            "first.yml",
            concat!(
                "inherit: base/deep.yml\nmem: 128M\nenv:\n  A: first\n",
                "hooks:\n  pre-staging: [echo first-pre]\n  post-staging: [echo first1, echo first2]\n",
            ),
        ),
        (
            "second.yml",
            "mem: 512M\ninstances: 3\nenv:\n  A: second\n  B: second\n",
        ),
        ("base/deep.yml", "env:\n  A: deep\n  C: deep\ndisk: 1G\n"),
    ]);
    let a = only_app(d.path());
    assert_eq!(a["memory"], "128M", "first.yml wins over second.yml");
    assert_eq!(a["instances"], "3", "second.yml still contributes");
    assert_eq!(a["disk_quota"], "1G", "first.yml's own inherit is followed");
    let env = &a["stackato"]["env"];
    assert_eq!(
        env["A"],
        json!({"default": "first"}),
        "first wins over its base and second"
    );
    assert_eq!(env["B"], json!({"default": "second"}));
    assert_eq!(env["C"], json!({"default": "deep"}));
    assert_eq!(
        a["stackato"]["hooks"]["post-staging"],
        json!(["echo child"]),
        "lists are replaced, never appended"
    );
    assert_eq!(
        a["stackato"]["hooks"]["pre-staging"],
        json!(["echo first-pre"])
    );
}

#[test]
fn inherit_of_a_missing_file_is_an_error_at_the_inherit_line() {
    let r = check(yml("name: x\ninherit: missing.yml\n").path());
    r.code(2);
    r.diag("stackato.yml:2:10: error:", &["missing.yml"]);
}

#[test]
fn inherit_cycles_are_an_error() {
    let d = app(&[
        ("stackato.yml", "name: x\ninherit: a.yml\n"),
        ("a.yml", "inherit: b.yml\n"),
        ("b.yml", "mem: 1G\ninherit: a.yml\n"),
    ]);
    let r = check(d.path());
    r.code(2);
    r.diag("b.yml:2:10: error:", &["cycle", "a.yml", "b.yml"]);

    let r = check(yml("name: x\ninherit: stackato.yml\n").path());
    r.code(2);
    r.diag("stackato.yml:2:10: error:", &["cycle"]);
}

#[test]
fn errors_in_inherited_files_point_into_those_files() {
    let d = app(&[
        ("stackato.yml", "name: a\ninherit: base.yml\n"),
        ("base.yml", "env:\n  X: ${nope}\nmem: lots\n"),
    ]);
    let r = check(d.path());
    r.code(2);
    r.diag("base.yml:2:6: error:", &["Unknown symbol", "nope"]);
    r.diag("base.yml:3:6: error:", &["memory", "lots"]);
}

// ---------------------------------------------------------------------------------------------
// app-dir

#[test]
fn app_dir_becomes_an_absolute_path() {
    let d = app(&[
        ("stackato.yml", "name: a\napp-dir: sub/../web\n"),
        ("web/app.py", ""),
    ]);
    let a = only_app(d.path());
    assert_eq!(a["path"], canon_str(d.path(), "web"));
    assert!(a.get("app-dir").is_none());
}

// ---------------------------------------------------------------------------------------------
// ${...} symbols

#[test]
fn name_symbol_in_values_and_keys() {
    let d = yml(concat!(
        "name: myapp\n",
        "services:\n  ${name}-db: mysql\n",
        "env:\n  APP: ${name}\n  TWICE: ${name}/${ name }\n  SHELL_VAR: $HOME/x\n",
    ));
    let a = only_app(d.path());
    assert_eq!(a["services"], json!({"myapp-db": {"type": "mysql"}}));
    let env = &a["stackato"]["env"];
    assert_eq!(env["APP"]["default"], "myapp");
    assert_eq!(env["TWICE"]["default"], "myapp/myapp");
    assert_eq!(
        env["SHELL_VAR"]["default"], "$HOME/x",
        "shell $VAR is not a symbol"
    );
}

#[test]
fn target_base_from_the_environment() {
    let d = yml("name: a\nurl: ${name}.${target-base}\nenv:\n  U: ${target-url}\n");
    let r = run_with(
        d.path(),
        &["config", "--json"],
        &[("STACKATO_TARGET", "https://api.foo.example.net:8443")],
    );
    r.code(0);
    let a = app_of(&r.json(), "a").clone();
    assert_eq!(a["urls"], json!(["a.foo.example.net"]));
    assert_eq!(
        a["stackato"]["env"]["U"]["default"], "https://api.foo.example.net",
        "the port is dropped from ${{target-url}}"
    );
}

#[test]
fn target_flag_wins_over_the_environment() {
    let d = yml("name: a\nurl: ${name}.${target-base}\n");
    let r = run_with(
        d.path(),
        &["--target", "https://api.flag.org", "config", "--json"],
        &[("STACKATO_TARGET", "https://api.env.org")],
    );
    r.code(0);
    assert_eq!(app_of(&r.json(), "a")["urls"], json!(["a.flag.org"]));
}

#[test]
fn random_word_is_hex_and_stable_across_runs() {
    let d = yml("name: a\nenv:\n  R: ${random-word}\n  S: x-${random-word}\n");
    let first = only_app(d.path());
    let second = only_app(d.path());
    let w = first["stackato"]["env"]["R"]["default"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        (4..=5).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_hexdigit()),
        "random-word is 4-5 hex digits, got {w:?}"
    );
    assert_eq!(first["stackato"]["env"]["S"]["default"], format!("x-{w}"));
    assert_eq!(
        first, second,
        "the same project gives the same ${{random-word}}"
    );
}

#[test]
fn custom_top_level_key_is_a_symbol_with_a_warning() {
    let d = yml("name: a\nsite: example.org\nurl: www.${site}\n");
    let a = only_app(d.path());
    assert_eq!(a["urls"], json!(["www.example.org"]));
    let doc = config_json(d.path());
    assert_eq!(doc["manifest"]["properties"]["site"], "example.org");
    let r = check(d.path());
    r.code(0);
    r.diag("stackato.yml:2:1: warning:", &["Unknown key", "site"]);
}

#[test]
fn properties_are_symbols_without_warnings() {
    let d = yml("name: a\nproperties:\n  site: example.org\nurl: www.${site}\n");
    let a = only_app(d.path());
    assert_eq!(a["urls"], json!(["www.example.org"]));
    check(d.path()).code(0).stderr_lacks("warning");
}

#[test]
fn unknown_symbol_is_an_error_pointing_at_the_reference() {
    let r = check(yml("name: a\nenv:\n  X: \"pre ${nope} post\"\n").path());
    r.code(2);
    r.diag(
        "stackato.yml:3:11: error:",
        &["Unknown symbol in manifest: nope"],
    );

    // In a mapping key too.
    let r = check(yml("name: a\nservices:\n  ${nope}-db: mysql\n").path());
    r.code(2);
    r.diag("stackato.yml:3:3: error:", &["Unknown symbol", "nope"]);
}

#[test]
fn circular_symbols_are_an_error() {
    let r = check(yml("name: a\nfoo: ${bar}\nbar: ${foo}\nurl: ${foo}\n").path());
    r.code(2);
    r.diag("stackato.yml:", &["error:", "Circular symbol definition"]);

    let r = check(yml("name: a\nfoo: x${foo}\nurl: ${foo}\n").path());
    r.code(2);
    r.diag(
        "stackato.yml:2:7: error:",
        &["Circular symbol definition", "foo"],
    );
}

#[test]
fn ask_without_a_terminal_is_a_clear_error() {
    let r = check(yml("name: a\nenv:\n  PW: ${ask Password}\n").path());
    r.code(2);
    r.diag("stackato.yml:3:7: error:", &["${ask Password}", "terminal"]);
}

// ---------------------------------------------------------------------------------------------
// Finding the manifest

#[test]
fn stackato_yml_is_preferred_over_manifest_yml() {
    let d = app(&[
        ("stackato.yml", "name: from-stackato\n"),
        ("manifest.yml", "applications:\n- name: from-manifest\n"),
    ]);
    let doc = config_json(d.path());
    assert_eq!(apps(&doc).keys().collect::<Vec<_>>(), ["from-stackato"]);
    assert_eq!(doc["manifest_file"], canon_str(d.path(), "stackato.yml"));
}

#[test]
fn manifest_yml_is_found_in_a_parent_directory() {
    let d = app(&[
        (
            "manifest.yml",
            "applications:\n- name: top\n  path: deeper/still\n",
        ),
        ("deeper/still/app.py", ""),
    ]);
    let inner = d.path().join("deeper/still");
    let r = run(&inner, &["config", "--json"]);
    r.code(0);
    let doc = r.json();
    assert_eq!(doc["manifest_file"], canon_str(d.path(), "manifest.yml"));
    assert_eq!(
        app_of(&doc, "top")["path"],
        canon_str(d.path(), "deeper/still")
    );
}

#[test]
fn stackato_yml_is_not_searched_in_parent_directories() {
    let d = app(&[("stackato.yml", "name: top\n"), ("sub/app.py", "")]);
    let r = run(&d.path().join("sub"), &["check"]);
    r.code(3);
    r.stderr_has("no manifest found");
}

#[test]
fn manifest_flag_names_the_file() {
    let d = app(&[
        ("stackato.yml", "name: default\n"),
        ("ci/other.yml", "name: other\n"),
    ]);
    let r = run(
        d.path(),
        &["--manifest", "ci/other.yml", "config", "--json"],
    );
    r.code(0);
    let doc = r.json();
    assert_eq!(apps(&doc).keys().collect::<Vec<_>>(), ["other"]);
    assert_eq!(doc["manifest_file"], canon_str(d.path(), "ci/other.yml"));
    // The app lives next to the manifest that describes it.
    assert_eq!(app_of(&doc, "other")["path"], canon_str(d.path(), "ci"));

    let r = run(d.path(), &["check", "--manifest", "ci/missing.yml"]);
    r.code(3);
    r.stderr_has("missing.yml");
}

#[test]
fn dash_c_names_the_app_directory() {
    let d = app(&[("proj/stackato.yml", "name: elsewhere\n")]);
    let elsewhere = app(&[]);
    let dir = d.path().join("proj");
    let dir = dir.to_str().unwrap_or_default();
    let r = run(elsewhere.path(), &["-C", dir, "config", "--json"]);
    r.code(0);
    let doc = r.json();
    assert_eq!(apps(&doc).keys().collect::<Vec<_>>(), ["elsewhere"]);
    assert_eq!(
        doc["manifest_file"],
        canon_str(d.path(), "proj/stackato.yml")
    );

    let r = run(elsewhere.path(), &["--path", dir, "check"]);
    r.code(0).stdout_has("valid");
}

#[test]
fn no_manifest_check_exits_3() {
    let d = app(&[("app.py", "")]);
    let r = run(d.path(), &["check"]);
    r.code(3);
    r.stderr_has("no manifest found");
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.dump());
}

#[test]
fn no_manifest_config_warns_and_exits_0() {
    let d = app(&[("app.py", "")]);
    let r = run(d.path(), &["config"]);
    r.code(0);
    r.stderr_has("No manifest");

    let r = run(d.path(), &["config", "--json"]);
    r.code(0);
    r.stderr_has("No manifest");
    assert_eq!(r.json()["manifest"]["applications"], json!({}));
}

// ---------------------------------------------------------------------------------------------
// check: exit codes, --strict, unknown keys

#[test]
fn check_valid_manifest_exits_0_and_says_so() {
    let d = yml("name: hello\nmem: 128M\n");
    let r = run(d.path(), &["check"]);
    r.code(0);
    r.stdout_has("valid").stdout_has("hello");
    assert!(r.stderr.is_empty(), "no diagnostics: {}", r.dump());
    run(d.path(), &["check", "--strict"]).code(0);
}

#[test]
fn check_strict_exits_1_on_warnings_only() {
    let d = yml("name: a\nservces:\n  db: mysql\n");
    run(d.path(), &["check"]).code(0);
    let r = run(d.path(), &["check", "--strict", "--format", "short"]);
    r.code(1);
    r.diag("stackato.yml:2:1: warning:", &["servces"]);
}

#[test]
fn check_strict_still_exits_2_on_errors() {
    let d = yml("name: a\nservces: x\ninstances: many\n");
    let r = run(d.path(), &["check", "--strict", "--format", "short"]);
    r.code(2);
    r.diag("stackato.yml:3:12: error:", &["instances", "many"]);
    r.diag("stackato.yml:2:1: warning:", &["servces"]);
}

#[test]
fn unknown_keys_warn_with_did_you_mean() {
    let d = yml("name: a\nservces:\n  db: mysql\nhooks:\n  post_staging: echo hi\n");
    let r = run(d.path(), &["check"]);
    r.code(0);
    r.stderr_has("Unknown key \"servces\"")
        .stderr_has("stackato.yml:2:1")
        .stderr_has("did you mean `services`?");
    r.stderr_has("Unknown key \"hooks:post_staging\"")
        .stderr_has("stackato.yml:5:3")
        .stderr_has("did you mean `post-staging`?");
    let r = check(d.path());
    assert_eq!(r.short_lines("warning").len(), 2, "{}", r.dump());
}

#[test]
fn instances_below_one_warn() {
    let d = yml("name: a\ninstances: 0\n");
    let a = only_app(d.path());
    assert_eq!(
        a["instances"], "0",
        "kept raw; the minimum is applied at push"
    );
    let r = run(d.path(), &["check", "--strict", "--format", "short"]);
    r.code(1);
    r.diag("stackato.yml:2:12: warning:", &["instances"]);
}

#[test]
fn config_for_an_unknown_app_is_a_usage_error() {
    let d = yml("name: a\n");
    let r = run(d.path(), &["config", "--app", "b"]);
    r.code(64);
    r.stderr_has("\"b\"");
}

#[test]
fn command_line_mistakes_exit_64() {
    let d = yml("name: a\n");
    run(d.path(), &["--bogus", "check"]).code(64);
    run(d.path(), &["check", "--format", "weird"]).code(64);
    run(d.path(), &["--color", "sometimes", "check"]).code(64);
    run(d.path(), &["frobnicate"]).code(64);
    run(d.path(), &[]).code(64);
    run(d.path(), &["--help"]).code(0).stdout_has("check");
}

// ---------------------------------------------------------------------------------------------
// Product bugs found while writing these tests (kept, ignored until fixed).

#[test]
fn manifest_target_key_overrides_the_target_symbols() {
    let d = yml(
        "name: a\ntarget: https://api.mine.example.com\nurl: ${name}.${target-base}\nenv:\n  U: ${target-url}\n",
    );
    let a = only_app(d.path());
    assert_eq!(a["urls"], json!(["a.mine.example.com"]));
    assert_eq!(
        a["stackato"]["env"]["U"]["default"],
        "https://api.mine.example.com"
    );
}

#[test]
fn top_level_stackato_keys_next_to_applications_are_defaults() {
    // Documented choice (README): without `name:`, top-level keys beside `applications:` are
    // defaults for every app, as in Cloud Foundry; an app's own value wins.
    let d = app(&[(
        "manifest.yml",
        "mem: 128M\napplications:\n- name: a\n- name: b\n  mem: 64M\n",
    )]);
    let doc = config_json(d.path());
    assert_eq!(app_of(&doc, "a")["memory"], "128M");
    assert_eq!(app_of(&doc, "b")["memory"], "64M");
    assert!(app_of(&doc, "a").get("name").is_some_and(|n| n == "a"));
}

#[test]
fn unknown_top_level_key_is_a_default_for_every_application() {
    let d = app(&[(
        "manifest.yml",
        "site: example.org\napplications:\n- name: a\n- name: b\n  site: other.org\n",
    )]);
    let doc = config_json(d.path());
    assert_eq!(app_of(&doc, "a")["site"], "example.org");
    assert_eq!(
        app_of(&doc, "b")["site"],
        "other.org",
        "the entry's own value wins"
    );
}

// ---------------------------------------------------------------------------------------------
// timeout: the platform's maximum (spec §4.6).

#[test]
fn a_timeout_above_the_platforms_maximum_warns_at_the_key_with_a_hint() {
    // Profile 2 (an old min_version): at most 180 s.
    let d = yml("name: slow\nmin_version:\n  client: 1.4.3\ntimeout: 600\n");
    let r = check(d.path());
    r.code(0);
    r.diag(
        "stackato.yml:4:10: warning:",
        &["timeout 600 s", "maximum of 180 s", "profile 2"],
    );
    let r = run(d.path(), &["check"]);
    r.code(0);
    r.stderr_has("help: Stackato 2.x waits at most 180 s");
    r.stderr_has("lower `timeout:`");
    // The same value is within 3.x's 1800 s.
    let d = yml("name: slow\ntimeout: 600\n");
    check(d.path()).code(0).stderr_lacks("warning");
    // Above 1800 under profile 3.
    let d = yml("name: slow\ntimeout: 1801\n");
    let r = check(d.path());
    r.code(0);
    r.diag(
        "stackato.yml:2:10: warning:",
        &["timeout 1801 s", "maximum of 1800 s", "profile 3"],
    );
    // At the maximum: silent; --strict makes the warning count.
    check(yml("name: slow\ntimeout: 1800\n").path())
        .code(0)
        .stderr_lacks("warning");
    run(d.path(), &["check", "--strict"]).code(1);
}

// ---------------------------------------------------------------------------------------------
// config --upload-files: what a push would upload, and what `ignores:` dropped.

/// The app of the upload tests: `a.py`, `x.log`, `tmp/t`, `sub/b.py`, `.git/HEAD`, and our
/// own state directory, with `ignores` (None: the key is absent).
fn upload_app(ignores: Option<&str>) -> tempfile::TempDir {
    let yml = match ignores {
        Some(list) => format!("name: web\nignores: {list}\n"),
        None => "name: web\n".to_string(),
    };
    app(&[
        ("stackato.yml", &yml),
        ("a.py", "print(1)\n"),
        ("x.log", "log\n"),
        ("tmp/t", "t\n"),
        ("sub/b.py", "b\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".stackato-local/services/db/data", "state\n"),
    ])
}

fn upload_of(dir: &std::path::Path) -> serde_json::Value {
    let r = run(dir, &["config", "--upload-files", "--json"]);
    r.code(0);
    r.json()["applications"]["web"].clone()
}

fn dropped(upload: &serde_json::Value) -> Vec<(String, String)> {
    upload["dropped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["path"].as_str().unwrap_or_default().to_string(),
                        d["pattern"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn upload_files_with_the_default_list() {
    let d = upload_app(None);
    let u = upload_of(d.path());
    assert_eq!(
        u["files"],
        json!(["a.py", "stackato.yml", "sub/b.py", "tmp/t"]),
        "sorted relative paths, never .stackato-local/"
    );
    assert_eq!(u["ignores_default"], json!(true));
    assert_eq!(
        dropped(&u),
        vec![
            (".git".to_string(), ".git/".to_string()),
            ("x.log".to_string(), "*.log".to_string())
        ]
    );
    assert!(!u.to_string().contains(".stackato-local"), "{u:#}");
}

#[test]
fn upload_files_with_ignores_replacing_the_default_list() {
    let d = upload_app(Some(r#"["*.log", "tmp/"]"#));
    let u = upload_of(d.path());
    assert_eq!(
        u["files"],
        json!([".git/HEAD", "a.py", "stackato.yml", "sub/b.py"]),
        "ignores: replaces the default list, so .git is uploaded"
    );
    assert_eq!(
        dropped(&u),
        vec![
            ("tmp".to_string(), "tmp/".to_string()),
            ("x.log".to_string(), "*.log".to_string())
        ]
    );
    let r = run(d.path(), &["config", "--upload-files"]);
    r.code(0)
        .stdout_has("upload: 4 files")
        .stdout_has("    .git/HEAD\n")
        .stdout_has("tmp/   by tmp/")
        .stdout_has("x.log  by *.log")
        .stdout_has("`ignores:` (it replaces the default list)");
    assert!(!r.stdout.contains(".stackato-local"), "{}", r.dump());
}

#[test]
fn upload_files_reports_links_outside_the_app_and_special_files() {
    let d = upload_app(None);
    let outside = tempfile::tempdir().expect("a dir outside the app");
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "s").expect("write outside");
    std::os::unix::fs::symlink(&secret, d.path().join("creds")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), d.path().join("shared")).expect("symlink");
    std::os::unix::fs::symlink("a.py", d.path().join("inside")).expect("symlink");
    nix::unistd::mkfifo(
        &d.path().join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let u = upload_of(d.path());
    assert_eq!(
        u["files"],
        json!(["a.py", "inside", "stackato.yml", "sub/b.py", "tmp/t"]),
        "a link inside the app is uploaded (its contents), nothing under the outside dir link"
    );
    assert_eq!(
        u["unsafe_links"],
        json!([
            {"path": "creds", "target": secret.display().to_string()},
            {"path": "shared", "target": outside.path().display().to_string()},
        ])
    );
    let msg = u["refusal"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(
            "Can't deploy application containing links 'creds,shared' that reach outside its root"
        ),
        "{msg}"
    );
    assert_eq!(u["refusal"]["override"], json!("--copy-unsafe-links"));
    assert_eq!(
        u["skipped"],
        json!([{"path": "pipe", "why": "FIFO (named pipe)"}])
    );
    run(d.path(), &["config", "--upload-files"])
        .code(0)
        .stdout_has(&format!("creds -> {}", secret.display()))
        .stdout_has("--copy-unsafe-links")
        .stdout_has("pipe  FIFO (named pipe)");
}

#[test]
fn upload_files_of_an_unknown_app_is_a_usage_error() {
    let d = upload_app(None);
    run(d.path(), &["config", "--upload-files", "--app", "nope"])
        .code(64)
        .stderr_has("no application named \"nope\"");
}

#[test]
fn check_warns_at_urls_the_router_cannot_serve_or_an_earlier_app_has() {
    let d = yml(
        "applications:\n  - name: front\n    path: front\n    urls: [shop.example.com]\n  - name: back\n    path: back\n    urls:\n      - shop.example.org\n      - \"*.example.net\"\n      - bücher.example.com\n",
    );
    std::fs::create_dir_all(d.path().join("front")).unwrap();
    std::fs::create_dir_all(d.path().join("back")).unwrap();
    let r = run(d.path(), &["check", "--format", "short"]);
    r.code(0);
    let w = r.short_lines("warning");
    assert_eq!(w.len(), 3, "{}", r.dump());
    r.diag(
        "stackato.yml:7:5: warning:",
        &["shop.localhost", "URL of back", "goes to front"],
    );
    r.diag(
        "stackato.yml:7:5: warning:",
        &["*.example.net", "cannot serve"],
    );
    r.diag(
        "stackato.yml:7:5: warning:",
        &["bücher.example.com", "cannot serve"],
    );
    run(d.path(), &["check", "--strict"]).code(1);
}

/// A hostile manifest as large as the reader takes (tens of thousands of URLs): `check`
/// still answers (its routes are not compared each with each).
#[test]
fn check_answers_on_a_manifest_with_tens_of_thousands_of_urls() {
    let mut text = String::from("applications:\n");
    for a in 0..2 {
        text.push_str(&format!("  - name: a{a}\n    path: a{a}\n    urls:\n"));
        for i in 0..60_000 {
            text.push_str(&format!("      - h{a}x{i}.example.com\n"));
        }
    }
    let d = yml(&text);
    std::fs::create_dir_all(d.path().join("a0")).unwrap();
    std::fs::create_dir_all(d.path().join("a1")).unwrap();
    let mut c = crate::common::cmd(d.path());
    c.args(["check", "--format", "short"]);
    let r = crate::common::run_deadline(c, "check");
    r.code(0).stdout_has("valid, 2 applications");
}
