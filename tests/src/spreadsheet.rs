//! CSV as a real spreadsheet reads it: LibreOffice Calc (Debian's `libreoffice-calc-nogui`, installed by
//! `infra/local/stack.sh install-spreadsheet`), headless, importing each file with a given list separator
//! and saving it as flat ODS, whose cells say which ones it took as formulas (`table:formula`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The list separators spreadsheets import CSV with, by locale: `,` (English), `;` (many European
/// locales), tab.
pub const SEPARATORS: [char; 3] = [',', ';', '\t'];

/// A folder of its own under the system's temp folder, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The formulas LibreOffice Calc makes of each CSV file of `files` (name, content) when it opens it with
/// `separator` as the list separator, `"` as the text delimiter, UTF-8: per file, every cell it took as
/// a formula (as Calc writes it, `of:=…`). One Calc process for all files, with a profile of its own, so
/// tests may run it side by side.
pub fn formulas(files: &[(&str, &str)], separator: char) -> Vec<(String, Vec<String>)> {
    let dir = std::env::temp_dir().join(format!("spreadsheet-{}", uuid::Uuid::new_v4()));
    let scratch = Scratch(dir);
    let out = scratch.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut paths = Vec::new();
    for (name, content) in files {
        let path = scratch.0.join(format!("{name}.csv"));
        std::fs::write(&path, content).unwrap();
        paths.push(path);
    }
    // CSV filter options: separator, text delimiter (34 = `"`), character set (76 = UTF-8), first line 1.
    let filter = format!("CSV:{},34,76,1", u32::from(separator));
    let profile = format!("-env:UserInstallation=file://{}", scratch.0.join("profile").display());
    let mut command = Command::new("soffice");
    command.args([profile.as_str(), "--headless", "--norestore"]);
    command.arg(format!("--infilter={filter}")).args(["--convert-to", "fods", "--outdir"]).arg(&out).args(&paths);
    let ran = command.output().unwrap_or_else(|e| {
        panic!("soffice (LibreOffice Calc) could not run ({e}): run infra/local/stack.sh install-spreadsheet")
    });
    assert!(ran.status.success(), "{command:?}: {}", String::from_utf8_lossy(&ran.stderr));
    files.iter().map(|(name, _)| (name.to_string(), formulas_of(&out.join(format!("{name}.fods"))))).collect()
}

fn formulas_of(fods: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(fods).unwrap_or_else(|e| panic!("{}: {e}", fods.display()));
    xml.split("table:formula=\"").skip(1).map(|rest| rest.split('"').next().unwrap_or_default().to_owned()).collect()
}
