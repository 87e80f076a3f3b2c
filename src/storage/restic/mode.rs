//! Unix modes as restic stores them: Go's `io/fs.FileMode` bits (what restic writes; rustic
//! 0.13's own mapping drops the type bits of character devices).

const PERM: u32 = 0o777;
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_FIFO: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A Unix `st_mode` (type and permission bits) as a Go FileMode.
pub fn go_mode(mode: u32) -> u32 {
    let mut go = mode & PERM;
    go |= match mode & 0o170_000 {
        0o140_000 => GO_SOCKET,
        0o120_000 => GO_SYMLINK,
        0o060_000 => GO_DEVICE,
        0o040_000 => GO_DIR,
        0o020_000 => GO_DEVICE | GO_CHARDEV,
        0o010_000 => GO_FIFO,
        _ => 0,
    };
    for (unix, g) in [
        (0o4000, GO_SETUID),
        (0o2000, GO_SETGID),
        (0o1000, GO_STICKY),
    ] {
        if mode & unix != 0 {
            go |= g;
        }
    }
    go
}

/// A Go FileMode as a Unix `st_mode`.
pub fn unix_mode(go: u32) -> u32 {
    let mut mode = go & PERM;
    mode |= if go & GO_SOCKET != 0 {
        0o140_000
    } else if go & GO_SYMLINK != 0 {
        0o120_000
    } else if go & GO_CHARDEV != 0 {
        0o020_000
    } else if go & GO_DEVICE != 0 {
        0o060_000
    } else if go & GO_DIR != 0 {
        0o040_000
    } else if go & GO_FIFO != 0 {
        0o010_000
    } else {
        0o100_000
    };
    for (unix, g) in [
        (0o4000, GO_SETUID),
        (0o2000, GO_SETGID),
        (0o1000, GO_STICKY),
    ] {
        if go & g != 0 {
            mode |= unix;
        }
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for m in [
            0o100644, 0o104755, 0o042775, 0o041777, 0o120777, 0o020666, 0o060660, 0o010600,
        ] {
            assert_eq!(unix_mode(go_mode(m)), m, "{m:o}");
        }
        assert_eq!(go_mode(0o040755), GO_DIR | 0o755);
        assert_eq!(go_mode(0o020620), GO_DEVICE | GO_CHARDEV | 0o620);
    }
}
