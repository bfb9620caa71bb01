//! The CSV rows: plain functions of domain types, no I/O.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::{Assignment, ProgressRow, ProgressSummary, Source, TeamId, User};

/// A CSV column: its header and how a row's cell is written (`F`, a function of the row). Each export's
/// columns are one table, so a header can never drift from the cells under it.
type Column<F> = (&'static str, F);

/// The header of a column table, as a constant.
const fn headers<F, const N: usize>(table: &[Column<F>; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].0;
        i += 1;
    }
    out
}

/// What an `assignments` row is written from.
struct AssignmentCells<'a> {
    a: &'a Assignment,
    p: ProgressSummary,
}

type AssignmentColumn = Column<fn(&AssignmentCells<'_>) -> String>;

/// New columns go at the end, so spreadsheets and scripts that read by position keep working.
const ASSIGNMENT_TABLE: [AssignmentColumn; 25] = [
    ("assignmentId", |c| c.a.id.to_string()),
    ("contentArea", |c| c.a.target.content_area.to_string()),
    ("targetType", |c| c.a.target.target_type.to_string()),
    ("targetId", |c| c.a.target.target_id.clone()),
    ("targetTitle", |c| c.a.target_title.clone()),
    ("targetPath", |c| c.a.target_path.clone()),
    ("assigneeType", |c| c.a.assignee.assignee_type.to_string()),
    ("assigneeId", |c| c.a.assignee.assignee_id.clone()),
    ("assigneeName", |c| c.a.assignee_name.clone()),
    ("deadline", |c| c.a.deadline.to_string()),
    ("isMandatory", |c| c.a.is_mandatory.to_string()),
    ("note", |c| c.a.note.clone().unwrap_or_default()),
    ("isActive", |c| c.a.is_active.to_string()),
    ("itemCount", |c| c.a.item_count.to_string()),
    ("createdAt", |c| time(c.a.created_at)),
    ("createdBy", |c| c.a.created_by.clone()),
    ("updatedAt", |c| time(c.a.updated_at)),
    ("totalUsers", |c| c.p.total_users.to_string()),
    ("completedUsers", |c| c.p.completed_users.to_string()),
    ("inProgressUsers", |c| c.p.in_progress_users.to_string()),
    ("notStartedUsers", |c| c.p.not_started_users.to_string()),
    ("overdueUsers", |c| c.p.overdue_users.to_string()),
    ("completionRate", |c| ratio(c.p.completion_rate)),
    ("averageProgress", |c| ratio(c.p.average_progress)),
    ("expiredUsers", |c| c.p.expired_users.to_string()),
];

pub const ASSIGNMENT_COLUMNS: [&str; 25] = headers(&ASSIGNMENT_TABLE);

/// What a `progress` row (one learner on one assignment) is written from.
struct ProgressCells<'a> {
    a: &'a Assignment,
    row: &'a ProgressRow,
    user: Option<&'a User>,
    source: &'static str,
    team: String,
    status: String,
}

type ProgressColumn = Column<fn(&ProgressCells<'_>) -> String>;

/// New columns go at the end, so spreadsheets and scripts that read by position keep working.
const PROGRESS_TABLE: [ProgressColumn; 24] = [
    ("assignmentId", |c| c.a.id.to_string()),
    ("targetTitle", |c| c.a.target_title.clone()),
    ("targetPath", |c| c.a.target_path.clone()),
    ("assigneeType", |c| c.a.assignee.assignee_type.to_string()),
    ("assigneeName", |c| c.a.assignee_name.clone()),
    ("deadline", |c| c.a.deadline.to_string()),
    ("isMandatory", |c| c.a.is_mandatory.to_string()),
    ("isActive", |c| c.a.is_active.to_string()),
    ("userId", |c| c.row.user_id.to_string()),
    ("userName", |c| c.user.map(|u| u.name.clone()).unwrap_or_default()),
    ("userEmail", |c| c.user.map(|u| u.email.clone()).unwrap_or_default()),
    ("source", |c| c.source.to_owned()),
    ("teamName", |c| c.team.clone()),
    ("status", |c| c.status.clone()),
    ("completedItems", |c| c.row.completed_tracked(&c.a.units).to_string()),
    ("totalItems", |c| c.a.item_count.to_string()),
    ("progress", |c| ratio(c.row.progress(&c.a.units, c.a.item_count))),
    ("averageScore", |c| c.row.average_score(&c.a.units).map(|s| format!("{s:.2}")).unwrap_or_default()),
    ("startedAt", |c| opt_time(c.row.started_at)),
    ("completedAt", |c| opt_time(c.row.completed_at)),
    ("removedAt", |c| opt_time(c.row.removed_at)),
    ("dueOn", |c| c.row.due_on(c.a.deadline).to_string()),
    ("exemptReason", |c| c.row.exemption.as_ref().map(|e| e.reason.clone()).unwrap_or_default()),
    ("validUntil", |c| c.row.expires_on().map(|d| d.to_string()).unwrap_or_default()),
];

pub const PROGRESS_COLUMNS: [&str; 24] = headers(&PROGRESS_TABLE);

/// What a `compliance` row (one learner on one active, mandatory assignment) is written from.
struct ComplianceCells<'a> {
    a: &'a Assignment,
    row: &'a ProgressRow,
    user: Option<&'a User>,
    team_name: String,
    status: String,
}

type ComplianceColumn = Column<fn(&ComplianceCells<'_>) -> String>;

/// The auditor's evidence: who had to complete what by when, and what they did.
const COMPLIANCE_TABLE: [ComplianceColumn; 17] = [
    ("userId", |c| c.row.user_id.to_string()),
    ("userName", |c| c.user.map(|u| u.name.clone()).unwrap_or_default()),
    ("userEmail", |c| c.user.map(|u| u.email.clone()).unwrap_or_default()),
    ("teamId", |c| c.user.and_then(|u| u.team_id).map(|t| t.to_string()).unwrap_or_default()),
    ("teamName", |c| c.team_name.clone()),
    ("assignmentId", |c| c.a.id.to_string()),
    ("contentArea", |c| c.a.target.content_area.to_string()),
    ("targetPath", |c| c.a.target_path.clone()),
    ("deadline", |c| c.a.deadline.to_string()),
    ("dueOn", |c| c.row.due_on(c.a.deadline).to_string()),
    ("status", |c| c.status.clone()),
    ("progress", |c| ratio(c.row.progress(&c.a.units, c.a.item_count))),
    ("completedAt", |c| opt_time(c.row.completed_at)),
    ("averageScore", |c| c.row.average_score(&c.a.units).map(|s| format!("{s:.2}")).unwrap_or_default()),
    ("validUntil", |c| c.row.expires_on().map(|d| d.to_string()).unwrap_or_default()),
    ("exemptReason", |c| c.row.exemption.as_ref().map(|e| e.reason.clone()).unwrap_or_default()),
    ("recertifiedCycles", |c| c.row.cycles.len().to_string()),
];

pub const COMPLIANCE_COLUMNS: [&str; 17] = headers(&COMPLIANCE_TABLE);

/// Where a spreadsheet may start a cell or a row inside one of ours: a line break, or a list separator
/// (`,` here; `;` or tab where the locale's separator is one of those). A spreadsheet importing with
/// another separator than ours reads our quoting its own way, and LibreOffice Calc then ends a row at a
/// line break inside a cell: what follows becomes a cell of its own (`tests/tests/e2e/audit_and_exports.rs`
/// opens the exports in it with each separator).
const CELL_BOUNDARIES: [char; 5] = ['\r', '\n', ',', ';', '\t'];
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

/// Whether a cell starting at `rest` could be read as a formula: its first character after spaces and
/// quotes (which some spreadsheets drop before parsing) is one of `=`, `+`, `-`, `@`. At a cell's start
/// every kind of whitespace is skipped; after a boundary, not the boundaries themselves (each is
/// checked on its own).
fn formula_at(rest: &str, skipped: impl Fn(char) -> bool) -> bool {
    rest.trim_start_matches(|c: char| c == '"' || skipped(c)).starts_with(FORMULA_STARTS)
}

/// Every place a spreadsheet could start a formula in this cell gets a `'`, which spreadsheets show as
/// text; nothing is removed, so the value stays readable: `=1+1` reads `'=1+1`, a note `x;=1` reads
/// `x;'=1`, one whose second line starts with `=` has that line start with `'=`. Dangerous: a first
/// character of tab or CR, or a formula start (`=`, `+`, `-`, `@`, after any whitespace or quotes) at the
/// cell's start or right after a line break or separator (`CELL_BOUNDARIES`).
pub fn neutralise(cell: String) -> String {
    let inside = |c: char| c.is_whitespace() && !CELL_BOUNDARIES.contains(&c);
    // Where a `'` goes (byte offsets; every boundary is one ASCII byte). No allocation for a safe cell.
    let mut marks = Vec::new();
    if cell.starts_with(['\t', '\r']) || formula_at(&cell, char::is_whitespace) {
        marks.push(0);
    }
    for (at, _) in cell.match_indices(CELL_BOUNDARIES) {
        if formula_at(&cell[at + 1..], inside) {
            marks.push(at + 1);
        }
    }
    if marks.is_empty() {
        return cell;
    }
    let mut out = String::with_capacity(cell.len() + marks.len());
    let mut from = 0;
    for at in marks {
        out.push_str(&cell[from..at]);
        out.push('\'');
        from = at;
    }
    out.push_str(&cell[from..]);
    out
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_default()
}

fn ratio(x: f64) -> String {
    format!("{:.4}", x)
}

/// One `assignments` row, in [`ASSIGNMENT_COLUMNS`] order, every cell [neutralised](neutralise).
pub fn assignment_record(a: &Assignment, now: DateTime<Utc>) -> Vec<String> {
    let p = a.aggregates.summary(a.item_count, a.deadline, now.date_naive());
    let row = AssignmentCells { a, p };
    ASSIGNMENT_TABLE.iter().map(|(_, cell)| neutralise(cell(&row))).collect()
}

/// One `progress` row, in [`PROGRESS_COLUMNS`] order, every cell [neutralised](neutralise).
pub fn progress_record(
    a: &Assignment,
    row: &ProgressRow,
    user: Option<&User>,
    team_names: &HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let (source, team) = match &row.source {
        Source::Individual => ("individual", String::new()),
        Source::Organization => ("organization", String::new()),
        Source::Team { team_id } => ("team", team_names.get(team_id).cloned().unwrap_or_default()),
    };
    let source = if a.new_starters_only { "new_starters" } else { source };
    let cells = ProgressCells { a, row, user, source, team, status: status(a, row, now) };
    PROGRESS_TABLE.iter().map(|(_, cell)| neutralise(cell(&cells))).collect()
}

/// One `compliance` row, in [`COMPLIANCE_COLUMNS`] order, every cell [neutralised](neutralise).
pub fn compliance_record(
    a: &Assignment,
    row: &ProgressRow,
    user: Option<&User>,
    team_names: &HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let team_name = user.and_then(|u| u.team_id).and_then(|t| team_names.get(&t).cloned()).unwrap_or_default();
    let cells = ComplianceCells { a, row, user, team_name, status: status(a, row, now) };
    COMPLIANCE_TABLE.iter().map(|(_, cell)| neutralise(cell(&cells))).collect()
}

fn status(a: &Assignment, row: &ProgressRow, now: DateTime<Utc>) -> String {
    serde_json::to_value(row.status(&a.units, a.item_count, a.deadline, now.date_naive()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let out = neutralise(bad.to_owned());
            assert!(out.starts_with('\''), "{out:?}");
            assert_eq!(&out[1..], bad, "the value itself is kept");
        }
        for fine in ["SQL Injection", "2026-04-15", "0.5000", "", "a=b", "x; y=1+1", "line\nnext", "a,b\tc"] {
            assert_eq!(neutralise(fine.to_owned()), fine);
        }
        for hidden in [" =1+1", " \u{a0}@SUM(A1)", "  -2"] {
            let out = neutralise(hidden.to_owned());
            assert_eq!(out, format!("'{hidden}"), "a formula behind leading whitespace is neutralised too");
        }
        // Inside the cell: after a line break or a separator, where another reading starts a cell.
        for (inner, out) in [
            ("x;=1+1", "x;'=1+1"),
            ("x, -1", "x,' -1"),
            ("a\r=1", "a\r'=1"),
            ("a\r\n=1", "a\r\n'=1"),
            ("a\n\"=1", "a\n'\"=1"),
            ("a\n\t=1", "a\n\t'=1"),
            ("\t=1", "'\t'=1"),
            ("\n=1", "'\n'=1"),
            ("=1;+2\n@3", "'=1;'+2\n'@3"),
        ] {
            assert_eq!(neutralise(inner.to_owned()), out, "{inner:?}");
        }
    }

    /// How a spreadsheet splits a line on its list separator: a `"` toggles quoting, the separator
    /// splits only outside quotes, a field's surrounding quotes go and doubled quotes become one.
    fn split_like_a_spreadsheet(line: &str, separator: char) -> Vec<String> {
        let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    cell.push(c);
                }
                c if c == separator && !quoted => cells.push(std::mem::take(&mut cell)),
                c => cell.push(c),
            }
        }
        cells.push(cell);
        cells
            .into_iter()
            .map(|c| match c.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(inner) => inner.replace("\"\"", "\""),
                None => c,
            })
            .collect()
    }

    /// What a spreadsheet in a locale whose list separator is `;` (or tab) makes of one line of our CSV
    /// if it honours double quotes: no cell it gets may start (after whitespace) with a formula
    /// character. LibreOffice Calc does not honour them across a line break inside a cell; what it
    /// makes of that is the end-to-end test's (`exports_open_in_a_real_spreadsheet_…`, in Calc).
    #[test]
    fn no_cell_becomes_a_formula_whatever_the_separator() {
        let values = ["x;=1+1", " =1+1", "\t=1", "a\t=2", "=cmd|' /C calc'!A0", "ok", "x,@y", "-1;+2", "q\";=1"];
        let record: Vec<String> = values.iter().map(|v| neutralise((*v).to_owned())).collect();
        let mut w = crate::sink::csv_writer(Vec::new());
        w.write_record(&record).unwrap();
        let bytes = w.into_inner().unwrap();
        let line = std::str::from_utf8(&bytes).unwrap().trim_end_matches(['\r', '\n']);
        for separator in [',', ';', '\t'] {
            let cells = split_like_a_spreadsheet(line, separator);
            for cell in &cells {
                assert!(
                    !cell.trim_start().starts_with(['=', '+', '-', '@']),
                    "separator {separator:?}: cell {cell:?} would be a formula"
                );
            }
            if separator != ',' {
                assert_eq!(cells.len(), 1, "every {separator:?} is inside quotes: {cells:?}");
            }
        }
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(first.iter().collect::<Vec<_>>(), record, "RFC 4180 readers get the values back");
    }

    #[test]
    fn header_and_rows_have_the_same_width() {
        let csv_line = |cells: &[&str]| {
            let mut w = crate::sink::csv_writer(Vec::new());
            w.write_record(cells).unwrap();
            String::from_utf8(w.into_inner().unwrap()).unwrap()
        };
        assert_eq!(
            csv_line(&["a,b", "say \"hi\"", "x"]),
            "\"a,b\",\"say \"\"hi\"\"\",\"x\"\n",
            "RFC 4180 quoting, every field quoted"
        );
        assert_eq!(ASSIGNMENT_COLUMNS.len(), 25);
        assert_eq!(PROGRESS_COLUMNS.len(), 24);
    }
}
