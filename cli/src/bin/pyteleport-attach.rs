fn main() {
    // `pyteleport-attach ARGS` is `pyteleport attach ARGS`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.insert(1, "attach".into());
    std::process::exit(pyteleport_cli::main(args));
}
