//! `--notify`, `--notify-on`, `--ping` of the commands that report their runs, as a
//! [`notify::Plan`]: what the run works on and where its results go, for the summary.

use crate::cli::{Command, NotifyArgs, NotifyOn};
use crate::notify::Plan;

/// The plan of the command's notifications; `None` for a command that has none or none asked.
pub fn plan(command: &Command) -> Option<Plan> {
    let (name, args, what, r#where): (&str, &NotifyArgs, Vec<String>, Vec<String>) = match command {
        Command::Save(a) => {
            let mut what = a.volumes.clone();
            if a.select.all {
                what.push("--all".into());
            }
            what.extend(a.select.project.iter().map(|p| format!("--project {p}")));
            what.extend(a.select.filter.iter().map(|f| format!("--filter {f}")));
            let mut r#where = a.to.clone();
            r#where.extend(a.output.clone());
            if r#where.is_empty() {
                r#where.push("./backups".into());
            }
            ("save", &a.notify, what, r#where)
        }
        Command::ComposeExport(a) => {
            let what = a.compose.project_name.iter().cloned().collect();
            let r#where = a
                .output
                .iter()
                .cloned()
                .chain(a.split.iter().map(|p| p.display().to_string()))
                .collect();
            ("compose-export", &a.notify, what, r#where)
        }
        Command::DbDump(a) => {
            let r#where = a.output.iter().cloned().collect();
            ("db-dump", &a.notify, vec![a.container.clone()], r#where)
        }
        Command::Prune(a) => {
            let what = a.volume.iter().cloned().collect();
            ("prune", &a.notify, what, vec![a.destination.clone()])
        }
        _ => return None,
    };
    let plan = Plan {
        command: name.to_string(),
        what,
        r#where,
        notify: args.notify.clone(),
        failure_only: args.notify_on == NotifyOn::Failure,
        ping: args.ping.clone(),
    };
    (!plan.is_empty()).then_some(plan)
}
