use std::collections::BTreeMap;

use super::*;

fn cwes(pairs: &[(u32, &[&str])]) -> BTreeMap<u32, BTreeSet<String>> {
    pairs.iter().map(|(cwe, ids)| (*cwe, ids.iter().map(|id| (*id).to_owned()).collect())).collect()
}

fn tools(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn ok(json: &str) -> Findings {
    match parse(json.as_bytes()) {
        Ok(findings) => findings,
        Err(err) => panic!("{err} in {json}"),
    }
}

fn malformed(json: &str) -> String {
    match parse(json.as_bytes()) {
        Err(SarifError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?} for {json}"),
    }
}

/// A log with `per_run[i]` minimal results in run `i`, all by the same tool.
fn log_with_results(per_run: &[usize]) -> String {
    let runs: Vec<String> = per_run
        .iter()
        .map(|&n| {
            let results = vec![r#"{"ruleId":"x"}"#; n].join(",");
            format!(r#"{{"tool":{{"driver":{{"name":"Load"}}}},"results":[{results}]}}"#)
        })
        .collect();
    format!(r#"{{"version":"2.1.0","runs":[{}]}}"#, runs.join(","))
}

// Bandit 1.9.4: runs come before version, rules carry "external/cwe/cwe-N" tags, results carry
// ruleIndex as well as ruleId, and result properties hold Bandit's own fields.
const BANDIT: &str = r#"{
  "runs": [{
    "tool": {"driver": {"name": "Bandit", "organization": "PyCQA", "rules": [
      {"id": "B403", "name": "blacklist", "properties": {"tags": ["security", "external/cwe/cwe-502"], "precision": "high"}},
      {"id": "B404", "name": "blacklist", "properties": {"tags": ["security", "external/cwe/cwe-78"], "precision": "high"}},
      {"id": "B608", "name": "hardcoded_sql_expressions", "properties": {"tags": ["security", "external/cwe/cwe-89"]}},
      {"id": "B602", "name": "subprocess_popen_with_shell_equals_true", "properties": {"tags": ["security", "external/cwe/cwe-78"]}},
      {"id": "B324", "name": "hashlib", "properties": {"tags": ["security", "external/cwe/cwe-327"]}}
    ], "version": "1.9.4"}},
    "invocations": [{"executionSuccessful": true}],
    "properties": {"metrics": {"_totals": {"loc": 20}}},
    "results": [
      {"message": {"text": "pickle"}, "level": "note",
       "locations": [{"physicalLocation": {"region": {"snippet": {"text": "import pickle\n"}, "startLine": 3},
                                          "artifactLocation": {"uri": "vulnerable_app.py"}}}],
       "properties": {"issue_confidence": "HIGH", "issue_severity": "LOW"}, "ruleId": "B403", "ruleIndex": 0},
      {"message": {"text": "subprocess"}, "properties": {"issue_severity": "LOW"}, "ruleId": "B404", "ruleIndex": 1},
      {"message": {"text": "sql"}, "properties": {"issue_severity": "MEDIUM"}, "ruleId": "B608", "ruleIndex": 2},
      {"message": {"text": "shell"}, "properties": {"issue_severity": "HIGH"}, "ruleId": "B602", "ruleIndex": 3}
    ]
  }],
  "version": "2.1.0",
  "$schema": "https://json.schemastore.org/sarif-2.1.0.json"
}"#;

#[test]
fn bandit_rules_by_index_with_external_cwe_tags() {
    let findings = ok(BANDIT);
    assert_eq!(findings.tools, tools(&["Bandit"]));
    assert_eq!(findings.results, 4);
    // B324 (CWE-327) has no result, so its CWE is not reported.
    assert_eq!(findings.cwes, cwes(&[(78, &["B404", "B602"]), (89, &["B608"]), (502, &["B403"])]));
}

// Semgrep 1.185: results come before the tool, carry no ruleIndex, and rule tags are
// "CWE-N: title" next to OWASP tags.
const SEMGREP: &str = r#"{"version":"2.1.0","runs":[{
  "invocations":[{"executionSuccessful":true,"toolExecutionNotifications":[]}],
  "results":[
    {"fingerprints":{"matchBasedId/v1":"requires login"},"message":{"text":"SQL built with string formatting"},
     "properties":{},"ruleId":"sql-string-format"},
    {"message":{"text":"pickle.loads on untrusted data"},"properties":{},"ruleId":"pickle-loads"},
    {"message":{"text":"pickle again"},"properties":{},"ruleId":"pickle-loads"}
  ],
  "tool":{"driver":{"name":"Semgrep OSS","semanticVersion":"1.185.0","rules":[
    {"defaultConfiguration":{"level":"warning"},"id":"pickle-loads","name":"pickle-loads",
     "properties":{"precision":"very-high","tags":["CWE-502: Deserialization of Untrusted Data","security"]}},
    {"id":"requests-verify-false","properties":{"tags":["CWE-295: Improper Certificate Validation","security"]}},
    {"id":"sql-string-format","properties":{"tags":[
      "CWE-89: Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')",
      "OWASP-A03:2021 - Injection","security"]}}
  ]}}
}],"$schema":"https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json"}"#;

#[test]
fn semgrep_rules_by_id_with_titled_cwe_tags() {
    let findings = ok(SEMGREP);
    assert_eq!(findings.tools, tools(&["Semgrep OSS"]));
    assert_eq!(findings.results, 3);
    assert_eq!(findings.cwes, cwes(&[(89, &["sql-string-format"]), (502, &["pickle-loads"])]));
}

// CodeQL: the driver has no rules; query-pack rules sit in tool.extensions, referenced through
// rule.toolComponent.index, or only by ruleId.
const CODEQL: &str = r#"{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{
  "tool":{
    "driver":{"name":"CodeQL","semanticVersion":"2.20.0","notifications":[{"id":"cli/expected-extracted-files"}]},
    "extensions":[{"name":"codeql/javascript-queries","semanticVersion":"1.3.0","rules":[
      {"id":"js/reflected-xss","name":"js/reflected-xss","properties":{"tags":["security","external/cwe/cwe-079","external/cwe/cwe-116"],"precision":"high","security-severity":"7.8"}},
      {"id":"js/sql-injection","properties":{"tags":["security","external/cwe/cwe-089","external/cwe/cwe-090"]}},
      {"id":"js/unused-local-variable","properties":{"tags":["maintainability"]}}
    ]}]
  },
  "results":[
    {"ruleId":"js/reflected-xss","rule":{"id":"js/reflected-xss","index":0,"toolComponent":{"index":0}},
     "message":{"text":"Cross-site scripting"},"partialFingerprints":{"primaryLocationLineHash":"abc:1"},
     "codeFlows":[{"threadFlows":[{"locations":[{"location":{"message":{"text":"source"}}}]}]}]},
    {"ruleId":"js/sql-injection","message":{"text":"SQL"}},
    {"ruleId":"js/unused-local-variable","rule":{"id":"js/unused-local-variable","index":2,"toolComponent":{"index":0}},"message":{"text":"unused"}}
  ]
}]}"#;

#[test]
fn codeql_rules_in_extensions_by_component_index_and_by_id() {
    let findings = ok(CODEQL);
    assert_eq!(findings.tools, tools(&["CodeQL"]));
    assert_eq!(findings.results, 3);
    assert_eq!(
        findings.cwes,
        cwes(&[
            (79, &["js/reflected-xss"]),
            (89, &["js/sql-injection"]),
            (90, &["js/sql-injection"]),
            (116, &["js/reflected-xss"]),
        ])
    );
}

#[test]
fn rule_index_into_extension_wins_over_id() {
    // rule.index points at the extension rule; the driver's rule with the same id must not be used.
    let json = r#"{"version":"2.1.0","runs":[{
      "tool":{"driver":{"name":"CodeQL","rules":[{"id":"dup","properties":{"tags":["external/cwe/cwe-1"]}}]},
              "extensions":[{"name":"pack","rules":[{"id":"dup","properties":{"tags":["external/cwe/cwe-2"]}}]}]},
      "results":[{"ruleId":"dup","rule":{"index":0,"toolComponent":{"index":0}}},
                 {"ruleId":"dup"}]}]}"#;
    assert_eq!(ok(json).cwes, cwes(&[(1, &["dup"]), (2, &["dup"])]));
}

#[test]
fn component_by_name_and_out_of_range_indexes_fall_back_to_id() {
    let json = r#"{"version":"2.1.0","runs":[{
      "tool":{"driver":{"name":"Scanner","rules":[{"id":"a","properties":{"tags":["CWE-10"]}}]},
              "extensions":[{"name":"pack","rules":[{"id":"b","properties":{"tags":["CWE-20"]}}]}]},
      "results":[
        {"rule":{"index":0,"toolComponent":{"name":"pack"}}},
        {"ruleId":"a","ruleIndex":7},
        {"ruleId":"b","rule":{"index":0,"toolComponent":{"index":5}}},
        {"ruleIndex":0}
      ]}]}"#;
    let findings = ok(json);
    assert_eq!(findings.results, 4);
    // The first result has no id of its own: it is recorded under the resolved rule's id.
    assert_eq!(findings.cwes, cwes(&[(10, &["a"]), (20, &["b"])]));
}

// Snyk Code: CWEs in rule properties.cwe, as an array or a single string.
const SNYK: &str = r#"{"$schema":"https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json",
  "version":"2.1.0","runs":[{
  "tool":{"driver":{"name":"SnykCode","semanticVersion":"1.0.0","version":"1.0.0","rules":[
    {"id":"javascript/Sqli","name":"Sqli","shortDescription":{"text":"SQL Injection"},
     "properties":{"tags":["javascript","maintenance","sql"],"categories":["Security"],"precision":"very-high",
                   "cwe":["CWE-89"],"exampleCommitFixes":[{"commitURL":"https://example.invalid","lines":[{"line":"x","lineNumber":1,"lineChange":"removed"}]}]}},
    {"id":"javascript/XSS","properties":{"tags":["javascript"],"cwe":"CWE-79"}},
    {"id":"javascript/NoCwe","properties":{"tags":["javascript"]}}
  ]}},
  "results":[
    {"ruleId":"javascript/Sqli","ruleIndex":0,"level":"error","message":{"text":"SQLi","arguments":["a"]},
     "fingerprints":{"0":"abc","1":"def"},"properties":{"priorityScore":801,"isAutofixable":false}},
    {"ruleId":"javascript/XSS","ruleIndex":1,"message":{"text":"XSS"}},
    {"ruleId":"javascript/NoCwe","ruleIndex":2,"message":{"text":"other"}}
  ]}]}"#;

#[test]
fn snyk_cwe_properties_as_array_or_string() {
    let findings = ok(SNYK);
    assert_eq!(findings.tools, tools(&["SnykCode"]));
    assert_eq!(findings.results, 3);
    assert_eq!(findings.cwes, cwes(&[(79, &["javascript/XSS"]), (89, &["javascript/Sqli"])]));
}

#[test]
fn cwe_property_numbers_and_bare_number_strings() {
    let json = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[
        {"id":"n","properties":{"cwe":[22, "78", "CWE-0094", 0, -5, 100000, "CWE-", true, {"id":1}]}},
        {"id":"s","properties":{"cwe":611}},
        {"id":"t","properties":{"tags":["79", "cwe_352"], "cwe":null}}
      ]}},
      "results":[{"ruleId":"n"},{"ruleId":"s"},{"ruleId":"t"}]}]}"#;
    // A bare "79" is a CWE only where the field says so (cwe), not as a tag.
    assert_eq!(ok(json).cwes, cwes(&[(22, &["n"]), (78, &["n"]), (94, &["n"]), (352, &["t"]), (611, &["s"])]));
}

#[test]
fn relationships_and_taxa_to_the_cwe_taxonomy() {
    let json = r#"{"version":"2.1.0","runs":[{
      "tool":{"driver":{"name":"Checker","rules":[
        {"id":"R1","relationships":[
          {"target":{"id":"79","index":0,"toolComponent":{"name":"CWE","guid":"b9a4e3d6-1234-4f4c-8c5a-000000000000"}},"kinds":["superset"]},
          {"target":{"id":"CWE-80","toolComponent":{"name":"cwe"}}},
          {"target":{"id":"A03","toolComponent":{"name":"OWASP"}}},
          {"target":{"id":"81"}}
        ]},
        {"id":"R2"}
      ]}},
      "taxonomies":[{"name":"CWE","version":"4.13","taxa":[{"id":"79"}]}],
      "results":[
        {"ruleId":"R1"},
        {"ruleId":"R2","taxa":[{"id":"89","toolComponent":{"name":"CWE"}},{"id":"90","toolComponent":{"name":"OWASP"}}]},
        {"taxa":[{"id":"22","toolComponent":{"name":"CWE"}}],"properties":{"tags":["external/cwe/cwe-23"],"cwe":"24"}}
      ]}]}"#;
    let findings = ok(json);
    assert_eq!(findings.results, 3);
    // The last result has no rule at all: its CWEs are kept with no rule id.
    assert_eq!(findings.cwes, cwes(&[(22, &[]), (23, &[]), (24, &[]), (79, &["R1"]), (80, &["R1"]), (89, &["R2"])]));
}

#[test]
fn result_and_rule_cwes_are_unioned() {
    let json = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[
        {"id":"r","properties":{"tags":["CWE-1"]}}]}},
      "results":[{"ruleId":"r","properties":{"tags":["CWE-2"]}},{"ruleId":"r","properties":{"cwe":["3"]}},
                 {"ruleId":"unknown","properties":{"tags":["CWE-4"]}},{"ruleId":""}]}]}"#;
    let findings = ok(json);
    assert_eq!(findings.results, 4);
    assert_eq!(findings.cwes, cwes(&[(1, &["r"]), (2, &["r"]), (3, &["r"]), (4, &["unknown"])]));
}

#[test]
fn runs_of_the_same_tool_are_listed_once_and_summed() {
    let json = r#"{"version":"2.1.0","runs":[
      {"tool":{"driver":{"name":"Bandit","rules":[{"id":"B608","properties":{"tags":["external/cwe/cwe-89"]}}]}},
       "results":[{"ruleId":"B608","ruleIndex":0},{"ruleId":"B608","ruleIndex":0}]},
      {"tool":{"driver":{"name":"Semgrep OSS"}},"results":[]},
      {"tool":{"driver":{"name":"Bandit","rules":[{"id":"B602","properties":{"tags":["external/cwe/cwe-78"]}}]}},
       "results":[{"ruleId":"B602","ruleIndex":0}]},
      {"tool":{"driver":{"name":"Trivy"}},"results":null},
      {"tool":{"driver":{"name":"Checkmarx"}}}
    ]}"#;
    let findings = ok(json);
    assert_eq!(findings.tools, tools(&["Bandit", "Semgrep OSS", "Trivy", "Checkmarx"]));
    assert_eq!(findings.results, 3);
    assert_eq!(findings.cwes, cwes(&[(78, &["B602"]), (89, &["B608"])]));
}

#[test]
fn rule_indexes_are_per_run() {
    // ruleIndex 0 in the second run must resolve against that run's rules, not the first run's.
    let json = r#"{"version":"2.1.0","runs":[
      {"tool":{"driver":{"name":"A","rules":[{"id":"x","properties":{"tags":["CWE-5"]}}]}},"results":[]},
      {"tool":{"driver":{"name":"B","rules":[{"id":"y","properties":{"tags":["CWE-6"]}}]}},"results":[{"ruleIndex":0}]}
    ]}"#;
    assert_eq!(ok(json).cwes, cwes(&[(6, &["y"])]));
}

#[test]
fn empty_runs_is_a_valid_log() {
    assert_eq!(ok(r#"{"version":"2.1.0","runs":[]}"#), Findings::default());
}

#[test]
fn other_versions_are_refused_wherever_version_appears() {
    let first = r#"{"version":"2.0.0","runs":[{"tool":{"driver":{"name":"T"}}}]}"#;
    let last = r#"{"runs":[{"tool":{"driver":{"name":"T"}}}],"version":"2.0.0"}"#;
    // Read no further than the version: what follows it is not examined.
    let truncated = r#"{"version":"1.0.0-beta","runs":[{"#;
    assert_eq!(parse(first.as_bytes()), Err(SarifError::UnsupportedVersion("2.0.0".to_owned())));
    assert_eq!(parse(last.as_bytes()), Err(SarifError::UnsupportedVersion("2.0.0".to_owned())));
    assert_eq!(parse(truncated.as_bytes()), Err(SarifError::UnsupportedVersion("1.0.0-beta".to_owned())));
    assert_eq!(
        SarifError::UnsupportedVersion("2.0.0".to_owned()).to_string(),
        "SARIF version '2.0.0' is not supported: only 2.1.0"
    );
}

#[test]
fn structural_problems_are_malformed_with_the_reason() {
    assert!(malformed(r#"{"version":"2.1.0"}"#).contains("missing field `runs`"));
    assert!(malformed(r#"{"runs":[]}"#).contains("missing field `version`"));
    assert!(malformed(r#"{"version":"2.1.0","runs":{}}"#).contains("expected an array of runs"));
    assert!(malformed(r#"{"version":2.1,"runs":[]}"#).contains("invalid type"));
    assert!(malformed(r#"[{"version":"2.1.0","runs":[]}]"#).contains("expected a SARIF log object"));
    assert!(malformed("").contains("EOF"));
    assert!(malformed(r#"{"version":"2.1.0","runs":[}"#).contains("line 1"));
    assert!(malformed(r#"{"version":"2.1.0","runs":[]} trailing"#).contains("trailing characters"));
    assert!(malformed(r#"{"version":"2.1.0","runs":[],"runs":[]}"#).contains("duplicate field `runs`"));
    assert!(
        malformed(r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":{}}]}"#)
            .contains("expected an array of results")
    );
    assert!(
        malformed(r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleIndex":"0"}]}]}"#)
            .contains("invalid type")
    );
}

#[test]
fn a_run_without_a_driver_name_is_malformed_naming_the_path() {
    let ok_run = r#"{"tool":{"driver":{"name":"T"}}}"#;
    let cases = [
        (r#"{"results":[]}"#, "runs[1].tool is missing"),
        (r#"{"tool":{}}"#, "runs[1].tool.driver is missing"),
        (r#"{"tool":{"driver":{"rules":[]}}}"#, "runs[1].tool.driver.name is missing"),
        (r#"{"tool":{"driver":{"name":null}}}"#, "runs[1].tool.driver.name is missing"),
    ];
    for (run, reason) in cases {
        let json = format!(r#"{{"version":"2.1.0","runs":[{ok_run},{run}]}}"#);
        let got = malformed(&json);
        assert!(got.starts_with(reason), "{got:?} for {run}");
    }
    assert!(malformed(r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":7}}}]}"#).contains("invalid type"));
}

#[test]
fn exactly_max_results_is_accepted() {
    let findings = ok(&log_with_results(&[MAX_RESULTS]));
    assert_eq!(findings.results, 25_000);
    assert_eq!(findings.tools, tools(&["Load"]));
    assert!(findings.cwes.is_empty());
    assert_eq!(ok(&log_with_results(&[10_000, 0, 15_000])).results, 25_000);
}

#[test]
fn more_than_max_results_is_refused_across_runs() {
    let refused = Err(SarifError::TooManyResults { limit: MAX_RESULTS });
    assert_eq!(parse(log_with_results(&[MAX_RESULTS + 1]).as_bytes()), refused);
    assert_eq!(parse(log_with_results(&[12_500, 12_501]).as_bytes()), refused);
    assert_eq!(parse(log_with_results(&[MAX_RESULTS, 1]).as_bytes()), refused);
    assert_eq!(parse_reader(log_with_results(&[1, MAX_RESULTS]).as_bytes()), refused);
    assert_eq!(SarifError::TooManyResults { limit: MAX_RESULTS }.to_string(), "more than 25000 results");
}

#[test]
fn reading_stops_at_the_first_result_over_the_limit() {
    // Garbage after result 25,001 is never reached, which shows the log is not read to the end.
    let mut json = log_with_results(&[MAX_RESULTS + 1]);
    json.truncate(json.len() - "]}]}".len());
    json.push_str(r#",{"ruleId": not json at all"#);
    assert_eq!(parse(json.as_bytes()), Err(SarifError::TooManyResults { limit: MAX_RESULTS }));
}

#[test]
fn parse_reader_agrees_with_parse() {
    for json in [BANDIT, SEMGREP, CODEQL, SNYK] {
        assert_eq!(parse_reader(json.as_bytes()), parse(json.as_bytes()));
        assert!(parse(json.as_bytes()).is_ok());
    }
    let broken = r#"{"version":"2.1.0","runs":[{"tool":{}}]}"#;
    assert_eq!(parse_reader(broken.as_bytes()), parse(broken.as_bytes()));
    assert_eq!(
        parse_reader(&b"{\"version\":\"2.0.0\",\"runs\":[]}"[..]),
        Err(SarifError::UnsupportedVersion("2.0.0".to_owned()))
    );
}

#[test]
fn cwe_of_reads_the_forms_tools_write() {
    let cases: &[(&str, Option<u32>)] = &[
        ("external/cwe/cwe-079", Some(79)),
        ("external/cwe/cwe-502", Some(502)),
        ("EXTERNAL/CWE/CWE-22", Some(22)),
        ("CWE-89: SQL", Some(89)),
        ("CWE-89: Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')", Some(89)),
        ("CWE-89", Some(89)),
        ("cwe-89", Some(89)),
        ("Cwe_89", Some(89)),
        ("cwe-020", Some(20)),
        ("CWE-1004 Sensitive Cookie", Some(1004)),
        ("CWE-99999", Some(99_999)),
        ("CWE-0000079", Some(79)),
        ("  CWE-79  ", Some(79)),
        ("CWE-", None),
        ("CWE-:", None),
        ("CWE-0", None),
        ("CWE-000", None),
        ("CWE-100000", None),
        ("CWE-1000000", None),
        ("CWE-99999999999999999999999", None),
        ("CWE 89", None),
        ("CWE89", None),
        ("79", None),
        ("external/cwe/79", None),
        ("security", None),
        ("OWASP-A03:2021 - Injection", None),
        ("", None),
        ("cwé-79", None),
    ];
    for &(tag, expected) in cases {
        assert_eq!(cwe_of(tag), expected, "{tag:?}");
    }
}

#[test]
fn cwe_property_accepts_bare_numbers_too() {
    let cases: &[(&str, Option<u32>)] = &[
        ("79", Some(79)),
        ("079", Some(79)),
        (" 89 ", Some(89)),
        ("CWE-89", Some(89)),
        ("0", None),
        ("100000", None),
        ("", None),
        ("A03", None),
        ("79a", None),
    ];
    for &(value, expected) in cases {
        assert_eq!(cwe_of_property(value), expected, "{value:?}");
    }
}

#[test]
fn null_runs_are_a_log_of_nothing() {
    // SARIF 2.1.0 §3.13.4: `runs` is null when the tool failed before it could start a run.
    assert_eq!(parse(br#"{"version":"2.1.0","runs":null}"#).unwrap(), Findings::default());
}

#[test]
fn what_an_ingestion_echoes_is_bounded() {
    let run = |tool: &str, cwes: std::ops::Range<u32>| {
        let results: Vec<String> =
            cwes.map(|c| format!(r#"{{"ruleId":"r","properties":{{"cwe":["CWE-{c}"]}}}}"#)).collect();
        format!(r#"{{"tool":{{"driver":{{"name":"{tool}"}}}},"results":[{}]}}"#, results.join(","))
    };
    let log = |runs: Vec<String>| format!(r#"{{"version":"2.1.0","runs":[{}]}}"#, runs.join(","));

    let at_limits = log((0..MAX_TOOLS).map(|i| run(&format!("t{i}"), 1..51)).collect());
    let findings = parse(at_limits.as_bytes()).unwrap();
    assert_eq!((findings.tools.len(), findings.cwes.len()), (MAX_TOOLS, 50));
    let many_cwes = log(vec![run("t", 1..(MAX_CWES as u32 + 1))]);
    assert_eq!(parse(many_cwes.as_bytes()).unwrap().cwes.len(), MAX_CWES);

    let too_many_tools = log((0..=MAX_TOOLS).map(|i| run(&format!("t{i}"), 1..2)).collect());
    assert!(matches!(parse(too_many_tools.as_bytes()), Err(SarifError::OverLimit { limit: MAX_TOOLS, .. })));
    let too_many_cwes = log(vec![run("t", 1..(MAX_CWES as u32 + 2))]);
    assert!(matches!(parse(too_many_cwes.as_bytes()), Err(SarifError::OverLimit { limit: MAX_CWES, .. })));
    let long_name = log(vec![run(&"x".repeat(MAX_TOOL_NAME_CHARS + 1), 1..2)]);
    let many_rules: Vec<String> =
        (0..40).map(|i| format!(r#"{{"ruleId":"r{i}","properties":{{"cwe":"CWE-89"}}}}"#)).collect();
    let many_rules = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"t"}}}},"results":[{}]}}]}}"#,
        many_rules.join(",")
    );
    assert_eq!(parse(many_rules.as_bytes()).unwrap().cwes[&89].len(), MAX_RULES_PER_CWE);
    let err = parse_reader(long_name.as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), format!("characters of a tool's name: at most {MAX_TOOL_NAME_CHARS}"));
}

/// The error of a log both entry points refuse alike.
fn refused(json: &str) -> SarifError {
    let from_slice = parse(json.as_bytes());
    assert_eq!(parse_reader(json.as_bytes()), from_slice);
    match from_slice {
        Err(err) => err,
        Ok(findings) => panic!("expected an error, got {findings:?}"),
    }
}

fn log(runs: &[String]) -> String {
    format!(r#"{{"version":"2.1.0","runs":[{}]}}"#, runs.join(","))
}

/// A run of tool "T" with `rules` and one result naming rule "r".
fn run_with_rules(rules: &[String]) -> String {
    format!(r#"{{"tool":{{"driver":{{"name":"T","rules":[{}]}}}},"results":[{{"ruleId":"r"}}]}}"#, rules.join(","))
}

/// `"CWE-a", …` for every CWE in `cwes`.
fn cwe_tags(cwes: std::ops::Range<u32>) -> String {
    cwes.map(|c| format!(r#""CWE-{c}""#)).collect::<Vec<_>>().join(",")
}

const TOO_MANY_RULES: SarifError =
    SarifError::OverLimit { what: "rules (tool.driver.rules and tool.extensions[].rules, all runs)", limit: MAX_RULES };
const TOO_MANY_CWES_PER_ITEM: SarifError =
    SarifError::OverLimit { what: "CWEs on one rule or result", limit: MAX_CWES_PER_ITEM };
const RULE_ID_TOO_LONG: SarifError = SarifError::OverLimit { what: "characters of a rule id", limit: MAX_ID_CHARS };
const COMPONENT_NAME_TOO_LONG: SarifError =
    SarifError::OverLimit { what: "characters of a tool component's name", limit: MAX_ID_CHARS };
const TOOL_NAME_TOO_LONG: SarifError =
    SarifError::OverLimit { what: "characters of a tool's name", limit: MAX_TOOL_NAME_CHARS };
const TOO_MANY_TOOLS: SarifError =
    SarifError::OverLimit { what: "distinct tools (runs[].tool.driver.name)", limit: MAX_TOOLS };
const TOO_MANY_CWES: SarifError = SarifError::OverLimit { what: "distinct CWEs", limit: MAX_CWES };

#[test]
fn rules_are_capped_across_components_and_runs_even_when_empty() {
    let empty = |n: usize| vec!["{}"; n].join(",");
    let run = |driver: usize, extension: usize| {
        format!(
            r#"{{"tool":{{"driver":{{"name":"T","rules":[{}]}},"extensions":[{{"name":"e","rules":[{}]}}]}}}}"#,
            empty(driver),
            empty(extension)
        )
    };
    let at_limit = ok(&log(&[run(MAX_RULES, 0)]));
    assert_eq!(at_limit, Findings { tools: tools(&["T"]), ..Findings::default() });
    assert_eq!(ok(&log(&[run(40_000, 30_000), run(0, 30_000)])).tools, tools(&["T"]));

    assert_eq!(refused(&log(&[run(MAX_RULES + 1, 0)])), TOO_MANY_RULES);
    assert_eq!(refused(&log(&[run(40_000, 30_000), run(30_000, 1)])), TOO_MANY_RULES);
    // Garbage after rule 100,001 is never reached: the count is kept while the rules are read.
    let cut = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"rules":[{},{{"id": not json"#,
        empty(MAX_RULES + 1)
    );
    assert_eq!(refused(&cut), TOO_MANY_RULES);
    assert_eq!(
        TOO_MANY_RULES.to_string(),
        "rules (tool.driver.rules and tool.extensions[].rules, all runs): at most 100000"
    );
}

#[test]
fn extensions_of_a_run_are_capped() {
    let run =
        |n: usize| format!(r#"{{"tool":{{"driver":{{"name":"T"}},"extensions":[{}]}}}}"#, vec!["{}"; n].join(","));
    assert_eq!(ok(&log(&[run(MAX_EXTENSIONS), run(MAX_EXTENSIONS)])).tools, tools(&["T"]));
    assert_eq!(
        refused(&log(&[run(MAX_EXTENSIONS + 1)])),
        SarifError::OverLimit { what: "extensions of one run's tool (runs[].tool.extensions)", limit: MAX_EXTENSIONS }
    );
}

#[test]
fn cwes_of_one_rule_are_capped_as_they_are_collected() {
    let rule = |tags: &str| format!(r#"{{"id":"r","properties":{{"tags":[{tags}]}}}}"#);
    let at_limit = ok(&log(&[run_with_rules(&[rule(&cwe_tags(1..101))])]));
    assert_eq!(at_limit.cwes.len(), MAX_CWES_PER_ITEM);
    assert!(at_limit.cwes.values().all(|ids| ids.len() == 1 && ids.contains("r")));
    assert_eq!(refused(&log(&[run_with_rules(&[rule(&cwe_tags(1..102))])])), TOO_MANY_CWES_PER_ITEM);

    // The reviewed attack: one rule with a 4 KB id and 60,000 CWE tags is refused while its tags
    // are read, before the id could be copied into any CWE.
    let hostile = format!(r#"{{"properties":{{"tags":[{}]}},"id":"{}"}}"#, cwe_tags(1..60_001), "x".repeat(4_096));
    assert_eq!(refused(&log(&[run_with_rules(&[hostile])])), TOO_MANY_CWES_PER_ITEM);

    // Tags, the cwe property and relationships to the CWE taxonomy count together.
    let mixed = |last: u32| {
        let cwe: Vec<String> = (51..=100).map(|c| c.to_string()).collect();
        format!(
            r#"{{"id":"r","properties":{{"tags":[{}],"cwe":[{}]}},"relationships":[
                {{"target":{{"id":"{last}","toolComponent":{{"name":"CWE"}}}}}},
                {{"target":{{"id":"9999","toolComponent":{{"name":"OWASP"}}}}}}]}}"#,
            cwe_tags(1..51),
            cwe.join(",")
        )
    };
    assert_eq!(ok(&log(&[run_with_rules(&[mixed(100)])])).cwes.len(), MAX_CWES_PER_ITEM);
    assert_eq!(refused(&log(&[run_with_rules(&[mixed(101)])])), TOO_MANY_CWES_PER_ITEM);
    // Distinct CWEs count, not mentions: the same 100 named three ways are 100.
    let repeated = format!(r#"{{"id":"r","properties":{{"tags":[{0},{0}],"cwe":[{0}]}}}}"#, cwe_tags(1..101));
    assert_eq!(ok(&log(&[run_with_rules(&[repeated])])).cwes.len(), MAX_CWES_PER_ITEM);
}

#[test]
fn own_cwes_of_one_result_are_capped() {
    let result = |tags: std::ops::Range<u32>, taxa: std::ops::Range<u32>| {
        let taxa: Vec<String> = taxa.map(|c| format!(r#"{{"id":"{c}","toolComponent":{{"name":"CWE"}}}}"#)).collect();
        let json = format!(
            r#"{{"tool":{{"driver":{{"name":"T"}}}},"results":[{{"ruleId":"r","properties":{{"tags":[{}]}},"taxa":[{}]}}]}}"#,
            cwe_tags(tags),
            taxa.join(",")
        );
        log(&[json])
    };
    assert_eq!(ok(&result(1..61, 61..101)).cwes.len(), MAX_CWES_PER_ITEM);
    assert_eq!(refused(&result(1..61, 61..102)), TOO_MANY_CWES_PER_ITEM);
    assert_eq!(refused(&result(1..102, 0..0)), TOO_MANY_CWES_PER_ITEM);
}

#[test]
fn rule_ids_are_capped_in_characters_wherever_they_appear() {
    let long = "r".repeat(MAX_ID_CHARS + 1);
    // Characters, not bytes: 1,024 two-byte characters are within the limit.
    let wide = "é".repeat(MAX_ID_CHARS);
    let driver_rule = |id: &str| {
        log(&[format!(
            r#"{{"tool":{{"driver":{{"name":"T","rules":[{{"id":"{id}","properties":{{"tags":["CWE-79"]}}}}]}}}},"results":[{{"ruleIndex":0}}]}}"#
        )])
    };
    let result = |fields: &str| log(&[format!(r#"{{"tool":{{"driver":{{"name":"T"}}}},"results":[{{{fields}}}]}}"#)]);

    assert_eq!(ok(&driver_rule(&wide)).cwes, cwes(&[(79, &[wide.as_str()])]));
    assert_eq!(refused(&driver_rule(&long)), RULE_ID_TOO_LONG);
    assert_eq!(refused(&result(&format!(r#""ruleId":"{long}""#))), RULE_ID_TOO_LONG);
    assert_eq!(refused(&result(&format!(r#""rule":{{"id":"{long}"}}"#))), RULE_ID_TOO_LONG);
    // Refused even where a ruleId would have been preferred to it.
    assert_eq!(refused(&result(&format!(r#""ruleId":"r","rule":{{"id":"{long}"}}"#))), RULE_ID_TOO_LONG);
    assert_eq!(
        ok(&result(&format!(r#""ruleId":"{wide}","properties":{{"cwe":"89"}}"#))).cwes,
        cwes(&[(89, &[wide.as_str()])])
    );
}

#[test]
fn tool_component_names_are_capped_in_characters() {
    let long = "n".repeat(MAX_ID_CHARS + 1);
    let with_names = |driver: &str, extension: &str| {
        log(&[format!(r#"{{"tool":{{"driver":{{"name":"{driver}"}},"extensions":[{{"name":"{extension}"}}]}}}}"#)])
    };
    // The driver's name is the tool's name, which is echoed: it has the stricter of the two limits.
    assert_eq!(refused(&with_names(&long, "pack")), TOOL_NAME_TOO_LONG);
    let driver_at_limit = "d".repeat(MAX_TOOL_NAME_CHARS);
    assert_eq!(ok(&with_names(&driver_at_limit, "pack")).tools, vec![driver_at_limit.clone()]);
    assert_eq!(refused(&with_names(&"d".repeat(MAX_TOOL_NAME_CHARS + 1), "pack")), TOOL_NAME_TOO_LONG);

    assert_eq!(ok(&with_names("T", &"e".repeat(MAX_ID_CHARS))).tools, tools(&["T"]));
    assert_eq!(refused(&with_names("T", &long)), COMPONENT_NAME_TOO_LONG);
    let by_name = format!(
        r#"{{"tool":{{"driver":{{"name":"T"}}}},"results":[{{"rule":{{"index":0,"toolComponent":{{"name":"{long}"}}}}}}]}}"#
    );
    assert_eq!(refused(&log(&[by_name])), COMPONENT_NAME_TOO_LONG);
}

#[test]
fn the_first_tool_over_the_limit_stops_the_parse() {
    let run = |i: usize| format!(r#"{{"tool":{{"driver":{{"name":"tool {i}"}}}}}}"#);
    assert_eq!(ok(&log(&(0..MAX_TOOLS).map(run).collect::<Vec<_>>())).tools.len(), MAX_TOOLS);
    // Runs of a tool already named are not new tools.
    let same_again: Vec<String> = (0..MAX_TOOLS).chain(0..MAX_TOOLS).map(run).collect();
    assert_eq!(ok(&log(&same_again)).tools.len(), MAX_TOOLS);

    assert_eq!(refused(&log(&(0..=MAX_TOOLS).map(run).collect::<Vec<_>>())), TOO_MANY_TOOLS);
    assert_eq!(refused(&log(&(0..80_000).map(run).collect::<Vec<_>>())), TOO_MANY_TOOLS);
    // Nothing after the 21st distinct tool is read.
    let runs: Vec<String> = (0..=MAX_TOOLS).map(run).collect();
    let cut = format!(r#"{{"version":"2.1.0","runs":[{},{{"tool": not json"#, runs.join(","));
    assert_eq!(refused(&cut), TOO_MANY_TOOLS);
}

#[test]
fn distinct_cwes_across_rules_are_capped() {
    // Eleven rules of 91 CWEs each: 1,001 distinct CWEs, none of them over the per-rule cap.
    let rules_log = |rules: u32, per_rule: u32| {
        let rules: Vec<String> = (0..rules)
            .map(|i| {
                format!(
                    r#"{{"id":"r{i}","properties":{{"tags":[{}]}}}}"#,
                    cwe_tags(1 + i * per_rule..1 + (i + 1) * per_rule)
                )
            })
            .collect();
        let results: Vec<String> = (0..rules.len()).map(|i| format!(r#"{{"ruleId":"r{i}"}}"#)).collect();
        log(&[format!(
            r#"{{"tool":{{"driver":{{"name":"T","rules":[{}]}}}},"results":[{}]}}"#,
            rules.join(","),
            results.join(",")
        )])
    };
    assert_eq!(ok(&rules_log(10, 100)).cwes.len(), MAX_CWES);
    assert_eq!(refused(&rules_log(11, 91)), TOO_MANY_CWES);
}

#[test]
fn an_unsupported_version_is_quoted_only_in_part() {
    for unit in ["v", "é", "🦀"] {
        let version = unit.repeat(10_000);
        let Err(SarifError::UnsupportedVersion(quoted)) =
            parse(format!(r#"{{"version":"{version}","runs":[]}}"#).as_bytes())
        else {
            panic!("expected UnsupportedVersion for {unit:?}");
        };
        assert_eq!(quoted.chars().count(), MAX_VERSION_CHARS + 1);
        assert_eq!(quoted, format!("{}…", unit.repeat(MAX_VERSION_CHARS)));
    }
    let at_limit = "9".repeat(MAX_VERSION_CHARS);
    assert_eq!(
        parse(format!(r#"{{"version":"{at_limit}","runs":[]}}"#).as_bytes()),
        Err(SarifError::UnsupportedVersion(at_limit))
    );
}

#[test]
fn a_malformed_reason_does_not_echo_the_log() {
    for unit in ["x", "ü", "🦀"] {
        let json = format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"T"}}}},"results":[{{"ruleIndex":"{}"}}]}}]}}"#,
            unit.repeat(1_000_000)
        );
        let reason = malformed(&json);
        assert!(reason.chars().count() <= MAX_REASON_CHARS + 1, "{} characters", reason.chars().count());
        assert!(reason.starts_with(r#"invalid type: string ""#), "{reason}");
        assert!(reason.ends_with('…'), "{reason}");
    }
    // Short reasons are whole, position included.
    assert!(malformed(r#"{"version":"2.1.0","runs":[}"#).ends_with("line 1 column 28"));
}

#[test]
fn clip_cuts_on_character_boundaries() {
    assert_eq!(clip("", 3), "");
    assert_eq!(clip("abc", 3), "abc");
    assert_eq!(clip("abcd", 3), "abc…");
    assert_eq!(clip("éèê", 3), "éèê");
    assert_eq!(clip("éèêë", 3), "éèê…");
    assert_eq!(clip("🦀🦀🦀🦀", 2), "🦀🦀…");
    assert_eq!(clip("abc", 0), "…");
}

#[test]
fn indexes_written_as_whole_floats_are_indexes_and_fractions_are_refused() {
    let log = |index: &str| {
        format!(
            r#"{{"version": "2.1.0", "runs": [{{"tool": {{"driver": {{"name": "T", "rules": [{{"id": "r", "properties": {{"tags": ["external/cwe/cwe-089"]}}}}]}}}},
                "results": [{{"ruleIndex": {index}, "rule": {{"index": {index}}}}}]}}]}}"#
        )
    };
    let whole = parse(log("0.0").as_bytes()).unwrap();
    assert_eq!(whole.cwes.len(), 1, "ruleIndex 0.0 names rule 0");
    assert!(parse(log("0.5").as_bytes()).is_err());
}

#[test]
fn references_are_objects_not_arrays_of_their_fields() {
    let with = |reference: &str| {
        format!(
            r#"{{"version": "2.1.0", "runs": [{{"tool": {{"driver": {{"name": "T"}}}}, "results": [{reference}]}}]}}"#
        )
    };
    assert!(parse(with(r#"{"rule": {"id": "r", "toolComponent": {"index": 0}}}"#).as_bytes()).is_ok());
    for array in [
        r#"{"rule": ["r", 0, null]}"#,
        r#"{"rule": {"toolComponent": [null, 0]}}"#,
        r#"{"taxa": [{"id": 79, "toolComponent": ["CWE", null]}]}"#,
    ] {
        assert!(parse(with(array).as_bytes()).is_err(), "{array}");
    }
}
