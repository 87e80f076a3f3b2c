fn main() {
    std::process::exit(docker_volume_backup::main());
}
