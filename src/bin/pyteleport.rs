fn main() {
    std::process::exit(pyteleport::cli::main(std::env::args_os().collect()));
}
