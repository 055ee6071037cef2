#!/bin/bash
# Installs what the test suite needs on a fresh Debian 12 machine, then the npm packages.
# Debian packages: PyTorch (CPU) and numpy for the tiny-lm and nanogpt templates' tests,
# regex for nanogpt's tokenizer, OpenBLAS so that torch is not ten times slower, git for
# the task repositories, Chromium for the dashboard's browser tests, SLURM and munge for
# a single-node cluster, bubblewrap for the sandbox, Optuna for the tune researcher,
# PostgreSQL (15 on Debian 12; the swarm's tests start throwaway clusters with its initdb
# and pg_ctl, run as the postgres user the package creates; the package's own cluster is
# not used) and git's daemon (in the git package) for a swarm's remote over git://.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(git python3 python3-torch python3-numpy python3-regex libopenblas0-pthread chromium slurm-wlm slurmdbd munge mariadb-server faketime bubblewrap python3-optuna postgresql)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
