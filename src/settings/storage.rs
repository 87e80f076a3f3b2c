//! The `--s3-*` flags into `S3Options`, and back into flags (for schedules).

use crate::cli::StorageArgs;
use crate::storage::S3Options;

/// The S3 settings the `--s3-*` flags give; the environment fills in the rest when a bucket
/// is opened.
pub fn s3_options(a: &StorageArgs) -> S3Options {
    S3Options {
        endpoint: a.s3_endpoint.clone(),
        region: a.s3_region.clone(),
        profile: a.s3_profile.clone(),
        path_style: match (a.s3_path_style, a.s3_virtual_host) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        part_size: a.s3_part_size,
    }
}

/// The flags that give `opts` again (for schedules, which run without the environment they
/// were made in).
pub fn to_args(opts: &S3Options) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, v) in [
        ("--s3-endpoint", &opts.endpoint),
        ("--s3-region", &opts.region),
        ("--s3-profile", &opts.profile),
    ] {
        if let Some(v) = v {
            args.extend([flag.to_string(), v.clone()]);
        }
    }
    match opts.path_style {
        Some(true) => args.push("--s3-path-style".into()),
        Some(false) => args.push("--s3-virtual-host".into()),
        None => {}
    }
    if let Some(size) = opts.part_size {
        args.extend(["--s3-part-size".to_string(), size.to_string()]);
    }
    args
}
