//! A small filesystem of its own (a tmpfs) that a test can fill, to see what a full disk does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tmpfs mounted at a directory, unmounted when dropped. Mounting needs root (the machines
/// CI runs on have it); [`SmallDisk::mount`] says `None` where it is not allowed.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"32m"`) at `path`, creating the directory.
    pub fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| SmallDisk {
            path: path.to_owned(),
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills what is left of it with one file, and returns that file (remove it to free the
    /// space again).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        if let Ok(mut file) = std::fs::File::create(&filler) {
            let chunk = vec![0x5au8; 64 * 1024];
            while file.write_all(&chunk).is_ok() {}
            let _ = file.sync_all();
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
