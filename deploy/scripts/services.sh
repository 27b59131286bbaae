# Helpers for the run and test scripts: install missing services, find ports.

apt_install() {
    local apt_get=(apt-get)
    [ "$(id -u)" -eq 0 ] || apt_get=(sudo apt-get)
    echo "Installing $* with apt-get..."
    "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "$@" >/dev/null
}

# ensure_package COMMAND PACKAGE: install PACKAGE when COMMAND is not found.
ensure_package() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || apt_install "$2"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

first_free_port() {
    local port="$1"
    while port_open "$port"; do port=$((port + 1)); done
    echo "$port"
}

redis_answers() {
    port_open "$1" && [ "$(printf 'PING\r\n' | timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; cat >&3; head -c 5 <&3" 2>/dev/null)" = "+PONG" ]
}
