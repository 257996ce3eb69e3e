//! librice's own command-line programs: building them, and running `stund`.

use std::env;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::net::free_port;
use crate::process::{ChildGuard, TestDir};

/// The workspace package whose binaries [`bin_path`] builds and returns.
pub const EXAMPLES_PACKAGE: &str = "librice-examples";

/// How long `stund` may take to print its `listening on ADDR` line.
const STUND_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports [`Stund::start`] tries.
const STUND_START_ATTEMPTS: usize = 3;

/// The path of the binary `name` of the `librice-examples` package (`stund`,
/// `stunclient`, ...), built for the profile of the running test.
///
/// The first call in a test process runs `$CARGO build -q -p librice-examples --bins`
/// (`cargo` when `CARGO` is unset) once, with the target directory and profile of the
/// running test executable (`<target>/<profile>/deps/<test>`), falling back to
/// `CARGO_TARGET_DIR` (or `<workspace>/target`) and the dev profile. Panics if the build
/// fails (quoting cargo's errors) or the package has no binary `name`.
pub fn bin_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let bin_dir = match BUILT.get_or_init(build_examples) {
        Ok(dir) => dir,
        Err(why) => panic!("{why}"),
    };
    let path = bin_dir.join(format!("{name}{}", env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{EXAMPLES_PACKAGE} has no binary `{name}`: {} does not exist after building it",
        path.display()
    );
    path
}

/// Builds the examples and returns the directory that holds the binaries.
fn build_examples() -> Result<PathBuf, String> {
    let (target_dir, profile_dir) = build_layout();
    let profile = match profile_dir.as_str() {
        "debug" => "dev",
        other => other,
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package lives in a directory of the workspace");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "-q",
            "-p",
            EXAMPLES_PACKAGE,
            "--bins",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "building {EXAMPLES_PACKAGE} failed ({}): {cmd:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join(profile_dir))
}

/// The target directory and profile directory name ("debug", "release", ...) of the
/// running test executable.
fn build_layout() -> (PathBuf, String) {
    let exe = env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        let profile_dir = deps.parent()?;
        let profile = profile_dir.file_name()?.to_str()?.to_owned();
        Some((profile_dir.parent()?.to_path_buf(), profile))
    });
    from_exe.unwrap_or_else(|| {
        let target = env::var_os("CARGO_TARGET_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        );
        (target, "debug".to_owned())
    })
}

/// librice's `stund` serving STUN on one address over UDP and TCP, killed when dropped.
///
/// Its command-line contract: `stund ADDR` binds UDP and TCP on `ADDR`, prints one line
/// `listening on ADDR` to stdout once both are bound, and serves until killed.
#[derive(Debug)]
pub struct Stund {
    process: ChildGuard,
    addr: SocketAddr,
}

impl Stund {
    /// Starts `stund` on a free port of `ip` and waits for its `listening on` line.
    /// Retries with another port if it exits first (the port was taken); panics, quoting
    /// its logs, if it does not come up or announces an address other than the one asked.
    pub fn start(dir: &TestDir, ip: IpAddr) -> Stund {
        let stund = bin_path("stund");
        let mut failures = Vec::new();
        for _ in 0..STUND_START_ATTEMPTS {
            let addr = SocketAddr::new(ip, free_port(ip));
            let mut process =
                ChildGuard::spawn(Command::new(&stund).arg(addr.to_string()), dir, "stund");
            let line = process.wait_for_stdout_line(STUND_READY_TIMEOUT, |line| {
                line.starts_with("listening on ")
            });
            match line {
                Some(line) => {
                    let announced = line["listening on ".len()..].trim();
                    assert_eq!(
                        announced.parse::<SocketAddr>().ok(),
                        Some(addr),
                        "stund announced `{line}` when asked to listen on {addr}: {}",
                        process.report()
                    );
                    return Stund { process, addr };
                }
                None if process.try_status().is_some() => failures.push(process.report()),
                None => panic!(
                    "stund printed no `listening on` line within {STUND_READY_TIMEOUT:?}: {}",
                    process.report()
                ),
            }
        }
        panic!(
            "stund did not start in {STUND_START_ATTEMPTS} attempts:\n{}",
            failures.join("\n\n")
        );
    }

    /// The address it serves on, over UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running process, for its log paths and [`ChildGuard::report`].
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}
