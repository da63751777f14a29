//! The wheel ships the supervisor binary, python/pyteleport/_bin/pyteleport (included by
//! pyproject.toml), which maturin does not build: without this, a build from a clean
//! source tree (`pip install ./python_shim`) would make a package with no supervisor.
//! So, when maturin builds the extension, make sure that file is there and no older
//! than the supervisor's sources, building it (`cargo build -p pyteleport-cli`, into a
//! target directory of its own: the outer build holds the lock on target/) if not, and
//! fail the build with a clear message if that cannot be done. Plain cargo builds of
//! the workspace (clippy, tests) need no binary and skip all this.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the supervisor binary is built from, relative to the workspace root.
const SOURCES: &[&str] = &["Cargo.toml", "Cargo.lock", "src", "cli", "ptrace"];

fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut t = meta.modified().ok();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            t = t.max(newest(&entry.path()));
        }
    }
    t
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF"
}

fn fail(msg: &str) -> ! {
    eprintln!("error: the pyteleport wheel needs its supervisor binary: {msg}");
    std::process::exit(1);
}

fn main() {
    let shim = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = shim.parent().expect("python_shim lives in the workspace").to_path_buf();
    let bin = shim.join("python").join("pyteleport").join("_bin").join("pyteleport");
    println!("cargo:rerun-if-changed={}", bin.display());
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(s).display());
    }
    // Set by maturin for the cargo it runs; not by plain cargo builds of the workspace.
    println!("cargo:rerun-if-env-changed=PYO3_ENVIRONMENT_SIGNATURE");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    if std::env::var_os("PYO3_ENVIRONMENT_SIGNATURE").is_none() && std::env::var_os("PYTHON_SYS_EXECUTABLE").is_none() {
        return;
    }
    let sources = SOURCES.iter().filter_map(|s| newest(&root.join(s))).max();
    let fresh = is_elf(&bin) && std::fs::metadata(&bin).and_then(|m| m.modified()).ok() >= sources;
    if fresh {
        return;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target").join("wheel-supervisor");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "-p", "pyteleport-cli", "--bin", "pyteleport", "--target-dir"]).arg(&target_dir).current_dir(&root);
    // What cargo tells this build script is not meant for the build it starts.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("DEP_")
            || ["OUT_DIR", "TARGET", "HOST", "PROFILE", "OPT_LEVEL", "DEBUG", "NUM_JOBS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MANIFEST_DIR"]
                .contains(&k.as_str())
        {
            cmd.env_remove(&k);
        }
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("`cargo build --release -p pyteleport-cli` failed ({s}); see its errors above")),
        Err(e) => fail(&format!("cannot run cargo to build it: {e}")),
    }
    let built = target_dir.join("release").join("pyteleport");
    let copied = std::fs::create_dir_all(bin.parent().expect("a file in _bin")).and_then(|()| {
        let _ = std::fs::remove_file(&bin);
        std::fs::copy(&built, &bin)
    });
    if let Err(e) = copied {
        fail(&format!("cannot copy {} to {}: {e}", built.display(), bin.display()));
    }
    if !is_elf(&bin) {
        fail(&format!("{} is not an executable", bin.display()));
    }
}
