//! The `stackato-local` binary: parse arguments, run, exit with the documented code.

fn main() {
    std::process::exit(stackato_local::main());
}
