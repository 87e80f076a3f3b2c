//! What a volume that a restore creates is made like.
//!
//! An archive's or a bundle's manifest is data from anywhere: its driver and options would reach
//! the host (a bind of any host directory, a mount of any share), so by default the volume is a
//! plain local one with the recorded labels, and the recorded driver and options are named as
//! not applied; `--apply-volume-options` applies them, after showing the plan. A live volume on
//! an engine the user names (`migrate`, `clone`) is the user's own configuration: its driver and
//! options are applied as they are. The tool's own labels are never carried over.

use std::collections::HashMap;

use anyhow::Result;

use crate::archive::VolumeInfo;
use crate::docker::labels;
use crate::error::{Kind, UserError};
use crate::output::{self, Printer};
use crate::redact;

/// The volume a restore creates when its target is missing, and what to say when it does.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVolume {
    /// Driver, options and labels to create it with.
    pub spec: VolumeInfo,
    /// Recorded driver and options left out, for a warning: `driver nfs; options o=..., type=nfs`.
    pub withheld: Option<String>,
    /// Recorded driver and options applied on request, shown before creating.
    pub applied: Option<String>,
}

impl NewVolume {
    /// A plain local volume without labels (an archive without a manifest).
    pub fn plain() -> NewVolume {
        NewVolume {
            spec: VolumeInfo {
                driver: "local".into(),
                ..Default::default()
            },
            withheld: None,
            applied: None,
        }
    }

    /// From what an archive or a bundle records: labels only, unless `apply` (the user's
    /// `--apply-volume-options`). Applying options whose values were redacted when the archive
    /// was written is refused: the real values are not in it.
    pub fn from_record(recorded: &VolumeInfo, apply: bool) -> Result<NewVolume> {
        let driver = if recorded.driver.is_empty() {
            "local"
        } else {
            recorded.driver.as_str()
        };
        let custom = driver != "local" || !recorded.options.is_empty();
        let labels = own_labels_dropped(&recorded.labels);
        if !apply {
            return Ok(NewVolume {
                spec: VolumeInfo {
                    name: recorded.name.clone(),
                    driver: "local".into(),
                    options: HashMap::new(),
                    labels,
                },
                withheld: custom.then(|| describe(driver, &recorded.options)),
                applied: None,
            });
        }
        let hidden: Vec<&str> = sorted_keys(&recorded.options)
            .into_iter()
            .filter(|k| redact::is_redacted(&recorded.options[*k]))
            .collect();
        if !hidden.is_empty() {
            return Err(UserError::new(
                Kind::Usage,
                format!(
                    "--apply-volume-options: the recorded volume option(s) {} hold values hidden \
                     when the backup was written ({})",
                    hidden.join(", "),
                    describe(driver, &recorded.options)
                ),
            )
            .hint(
                "create the volume yourself with its real options (docker volume create --driver \
                 D --opt K=V ...), then restore into it; or restore without \
                 --apply-volume-options into a plain local volume",
            )
            .into());
        }
        Ok(NewVolume {
            spec: VolumeInfo {
                name: recorded.name.clone(),
                driver: driver.into(),
                options: recorded.options.clone(),
                labels,
            },
            withheld: None,
            applied: custom.then(|| describe(driver, &recorded.options)),
        })
    }

    /// Like a volume on an engine the user names (migrate, clone): driver and options as they
    /// are, the tool's own labels left out.
    pub fn like_live(volume: VolumeInfo) -> NewVolume {
        let labels = own_labels_dropped(&volume.labels);
        NewVolume {
            spec: VolumeInfo { labels, ..volume },
            withheld: None,
            applied: None,
        }
    }

    /// A short note for a plan line: `; recorded driver nfs; options ... not applied`.
    pub fn plan_note(&self) -> String {
        match (&self.withheld, &self.applied) {
            (Some(w), _) => format!(", plain local: recorded {w} NOT applied"),
            (None, Some(a)) => format!(", with the recorded {a}"),
            (None, None) => String::new(),
        }
    }

    /// Says, as `target` is about to be created, which recorded driver and options are applied
    /// (the plan, before creating) or left out (a warning).
    pub fn announce(&self, out: Printer, target: &str) {
        if let Some(applied) = &self.applied {
            out.info(&format!(
                "creating volume {target} with the recorded {applied} (--apply-volume-options)"
            ));
        }
        if let Some(withheld) = &self.withheld {
            output::warn(&format!(
                "volume {target} is created as a plain local volume: the recorded {withheld} \
                 are NOT applied (--apply-volume-options applies them)"
            ));
        }
    }
}

/// `driver nfs; options o=addr=nas,password=<redacted>, type=nfs`, values redacted.
pub fn describe(driver: &str, options: &HashMap<String, String>) -> String {
    let listed: Vec<String> = sorted_keys(options)
        .into_iter()
        .map(|k| format!("{k}={}", redact::option(k, &options[k])))
        .collect();
    if listed.is_empty() {
        format!("driver {driver}; no options")
    } else {
        format!("driver {driver}; options {}", listed.join(", "))
    }
}

fn sorted_keys(map: &HashMap<String, String>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn own_labels_dropped(labels: &HashMap<String, String>) -> HashMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !labels::is_internal(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(device: &str) -> VolumeInfo {
        VolumeInfo {
            name: "v".into(),
            driver: "local".into(),
            options: HashMap::from([
                ("type".into(), "none".into()),
                ("o".into(), "bind".into()),
                ("device".into(), device.into()),
            ]),
            labels: HashMap::from([
                ("mine".into(), "kept".into()),
                (labels::HELPER.into(), "scratch".into()),
                (labels::HELPER_VOLUME.into(), "x".into()),
            ]),
        }
    }

    #[test]
    fn a_record_gives_labels_only_by_default() {
        let new = NewVolume::from_record(&bind("/root/.ssh"), false).unwrap();
        assert_eq!(new.spec.driver, "local");
        assert!(new.spec.options.is_empty());
        assert_eq!(
            new.spec.labels,
            HashMap::from([("mine".into(), "kept".into())])
        );
        assert_eq!(
            new.withheld.as_deref(),
            Some("driver local; options device=/root/.ssh, o=bind, type=none")
        );
        assert_eq!(new.applied, None);
        assert!(
            new.plan_note().contains("NOT applied"),
            "{}",
            new.plan_note()
        );
        // A driver alone is named too.
        let nfs = VolumeInfo {
            driver: "some/plugin".into(),
            ..Default::default()
        };
        let new = NewVolume::from_record(&nfs, false).unwrap();
        assert_eq!(new.spec.driver, "local");
        assert_eq!(
            new.withheld.as_deref(),
            Some("driver some/plugin; no options")
        );
        // A plain recorded volume: nothing to say.
        let plain = VolumeInfo {
            driver: "local".into(),
            ..Default::default()
        };
        let new = NewVolume::from_record(&plain, false).unwrap();
        assert_eq!((new.withheld, new.applied), (None, None));
    }

    #[test]
    fn applying_a_record_shows_the_plan() {
        let new = NewVolume::from_record(&bind("/srv/x"), true).unwrap();
        assert_eq!(new.spec.driver, "local");
        assert_eq!(new.spec.options, bind("/srv/x").options);
        assert!(!new.spec.labels.keys().any(|k| labels::is_internal(k)));
        assert_eq!(new.withheld, None);
        assert_eq!(
            new.applied.as_deref(),
            Some("driver local; options device=/srv/x, o=bind, type=none")
        );
    }

    #[test]
    fn redacted_values_are_never_applied() {
        let cifs = VolumeInfo {
            driver: "local".into(),
            options: HashMap::from([
                ("type".into(), "cifs".into()),
                ("o".into(), "username=u,password=<redacted>".into()),
            ]),
            ..Default::default()
        };
        let err = NewVolume::from_record(&cifs, true).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("option(s) o hold values hidden"), "{text}");
        // Without the flag, the plain volume is made and the note names the option, redacted.
        let new = NewVolume::from_record(&cifs, false).unwrap();
        assert_eq!(
            new.withheld.as_deref(),
            Some("driver local; options o=username=u,password=<redacted>, type=cifs")
        );
    }

    #[test]
    fn secrets_in_a_record_are_hidden_in_what_is_said() {
        let mut v = bind("//nas/x");
        v.options
            .insert("o".into(), "username=u,password=SEKRIT".into());
        v.options.insert("password".into(), "SEKRIT2".into());
        let new = NewVolume::from_record(&v, false).unwrap();
        let said = new.withheld.unwrap();
        assert!(!said.contains("SEKRIT"), "{said}");
    }

    #[test]
    fn a_live_volume_keeps_its_driver_and_options() {
        let new = NewVolume::like_live(bind("/srv/x"));
        assert_eq!(new.spec.options, bind("/srv/x").options);
        assert_eq!(
            new.spec.labels,
            HashMap::from([("mine".into(), "kept".into())])
        );
        assert_eq!((new.withheld, new.applied), (None, None));
    }
}
