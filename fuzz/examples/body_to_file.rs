//! Turn a fuzz input into a snapshot file, to reproduce a finding with the real command
//! (`target/release/pyteleport inspect FILE`):
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example body_to_file -- snapshot_body INPUT OUT
//!
//! For `snapshot_body` inputs the sample edit or raw body is turned into a body behind a
//! correct header; `snapshot_bytes` inputs are copied as they are.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, input, out] = &args[..] else {
        eprintln!("usage: body_to_file snapshot_body|snapshot_bytes INPUT OUT");
        std::process::exit(2);
    };
    let data = std::fs::read(input).expect("cannot read the input");
    let file = match target.as_str() {
        "snapshot_bytes" => data,
        "snapshot_body" => pyteleport_fuzz::with_header(&pyteleport_fuzz::body_from_input(&data)),
        _ => panic!("unknown target {target}"),
    };
    std::fs::write(out, file).expect("cannot write the output");
}
