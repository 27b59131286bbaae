#!/usr/bin/env bash
# Make sure a Python 3.11 with venv support exists (Debian splits venv into its own package).
set -euo pipefail
python="${1:-python3}"
if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "Installing Python 3.11 and venv support with apt-get..."
    apt_get=(apt-get); [ "$(id -u)" -eq 0 ] || apt_get=(sudo apt-get)
    "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq python3 python3-venv python3-dev >/dev/null
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
    echo "IoTFlow needs Python 3.11; $python is $version. Set PYTHON=/path/to/python3.11." >&2
    exit 1
fi
