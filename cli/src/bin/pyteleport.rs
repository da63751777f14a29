fn main() {
    std::process::exit(pyteleport_cli::main(std::env::args_os().collect()));
}
