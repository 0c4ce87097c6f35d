//! `/init` of the aarch64 test VM (.ci/aarch64.sh): runs every program in /tests, in name
//! order, with the arguments given after `--` on the kernel command line, prints each one's
//! exit status, then exits (the kernel then panics and qemu, run with -no-reboot, stops).
use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut tests: Vec<_> = std::fs::read_dir("/tests")
        .expect("/tests")
        .map(|e| e.expect("entry").path())
        .collect();
    tests.sort();
    for t in tests {
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        println!("QLINEAR-VM start {name}");
        let code = match Command::new(&t).args(&args).current_dir("/tmp").status() {
            Ok(s) => s.code().unwrap_or(-1),
            Err(e) => {
                println!("QLINEAR-VM could not run {name}: {e}");
                -1
            }
        };
        println!("QLINEAR-VM exit {name} {code}");
    }
    println!("QLINEAR-VM done");
}
