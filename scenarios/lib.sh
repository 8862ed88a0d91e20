# Shared by the build scenarios (sourced, with the contractor binary as $1): a scratch folder
# with its own config and state, the apt proxy fixture, assertions, and cleanup that runs
# however the scenario ends.
set -euo pipefail
contractor=$1
source_dir=${CONTRACTOR_SOURCE_DIR:?run through scripts/run-vm-test}
work=$(mktemp -d "${TMPDIR:-/tmp}/contractor-scenario.XXXXXX")
# Config and build logs of this scenario only; the image cache stays shared.
export XDG_CONFIG_HOME=$work/config XDG_STATE_HOME=$work/state
mkdir -p "$XDG_CONFIG_HOME/contractor"
# No provisioned layers and no ready workers unless a scenario asks for them
# (scenarios/build-layers, scenarios/ready-worker): each scenario provisions and boots as if for
# the first time, and leaves no layer in the shared cache and no idle VM taking CPU from the
# scenarios after it.
printf 'cache:\n  max-size: 0\npool: 0\n' > "$XDG_CONFIG_HOME/contractor/config.yaml"
runs=${XDG_CACHE_HOME:-$HOME/.cache}/contractor/runs
background_pids=()

cleanup() {
  local pid
  for pid in ${background_pids[@]+"${background_pids[@]}"}; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Whatever a failed scenario left (its assertions have run by now).
  "$contractor" gc >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Ends the keepers of ready workers (step 8) that hold a lease in $runs, by the pid in the
# lease, and waits for each: on SIGTERM a keeper removes its worker. For the scenarios and
# benchmarks that turn `pool` on, before lib.sh's cleanup (whose gc leaves a live keeper's
# worker alone).
stop_keepers() {
  local lease pid
  for lease in "$runs"/contractor-worker-*/lease.json; do
    [[ -f $lease ]] || continue
    [[ $(json_get "$lease" 'r["kind"]') == ready ]] || continue
    pid=$(json_get "$lease" 'r["owner"]')
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == contractor-mana* ]]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

# Worker VMs of contractor and their run folders; empty when everything was cleaned up.
leftovers() {
  virsh -c qemu:///session list --all --name 2>/dev/null | grep '^contractor-worker-' || true
  ls "$runs" 2>/dev/null | grep '^contractor-worker-' || true
}

assert_no_leftovers() {
  local left
  left=$(leftovers)
  [[ -z $left ]] || fail "left behind: $left"
}

# Serves the .debs for PACKAGE... on 127.0.0.1 (tests/fixtures/apt-proxy.py) and points the
# user config's `proxy` at it: the worker's apt goes through contractor's gateway to it.
start_apt_proxy() {
  local packages=${XDG_CACHE_HOME:-$HOME/.cache}/contractor-test/packages
  "$source_dir/tests/fixtures/fetch-test-packages" "$contractor" "$packages" "$@"
  /usr/bin/python3 "$source_dir/tests/fixtures/apt-proxy.py" "$packages" "$work/proxy.port" \
    "$work/proxy.log" &
  background_pids+=($!)
  local tries=0
  until [[ -f $work/proxy.port ]]; do
    tries=$((tries + 1))
    [[ $tries -lt 100 ]] || fail "the apt proxy fixture did not start"
    sleep 0.1
  done
  echo "proxy: http://127.0.0.1:$(cat "$work/proxy.port")" >> "$XDG_CONFIG_HOME/contractor/config.yaml"
  touch "$work/proxy.log"
}

# Starts tests/fixtures/net-servers.py on 127.0.0.1 (an HTTP server, another one that must
# never be reached, a TCP echo server and a recorder) and sets http_port, other_port,
# echo_port and recorder_port. Their logs are in $work/net/.
start_net_servers() {
  mkdir -p "$work/net"
  /usr/bin/python3 "$source_dir/tests/fixtures/net-servers.py" "$work/net" &
  background_pids+=($!)
  local tries=0
  until [[ -f $work/net/ports.json ]]; do
    tries=$((tries + 1))
    [[ $tries -lt 100 ]] || fail "the network servers fixture did not start"
    sleep 0.1
  done
  http_port=$(json_get "$work/net/ports.json" 'r["http"]')
  other_port=$(json_get "$work/net/ports.json" 'r["other"]')
  echo_port=$(json_get "$work/net/ports.json" 'r["echo"]')
  recorder_port=$(json_get "$work/net/ports.json" 'r["recorder"]')
}

# The worker image as a file beside the spec, as the requirements' smoke scenario has it.
worker_image_file() {
  "$contractor" image build worker --output "$1" > /dev/null
}

# A value from a JSON file: json_get FILE PYTHON-EXPRESSION-ON-r
json_get() {
  /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"
}

# The nested scenarios share one manager VM (scenario-nested-manager-start creates it, -destroy
# removes it): its state as JSON, and the workers running inside it.
manager_status() {
  "$contractor" manager status --json
}
manager_workers() {
  "$contractor" manager status --json | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
agent = r.get("agent") or {}
names = [w["name"] for w in agent.get("workers") or []] + agent.get("run_folders", [])
print("\n".join(sorted(set(names))))'
}

# Waits until FILE has a line matching REGEX, while PID runs; at most SECONDS.
wait_for_line() {
  local file=$1 regex=$2 pid=$3 seconds=$4 tries=0
  until grep -qE "$regex" "$file" 2>/dev/null; do
    tries=$((tries + 1))
    [[ $tries -lt $((seconds * 10)) ]] || fail "no line matching '$regex' in $file within $seconds s"
    kill -0 "$pid" 2>/dev/null || { cat "$file"; fail "contractor ended before '$regex'"; }
    sleep 0.1
  done
}

# The foreign image (AnyBuildOS: GPT, GRUB for UEFI, systemd, cloud-init), made by
# images/foreign/build-foreign-image and kept in the test user's cache under the script's
# digest, so a changed script builds a new one; prints its path. The first build takes a few
# minutes.
foreign_image() {
  local images=${CONTRACTOR_IMAGES_DIR:-$source_dir/images}
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/contractor/test-images digest image
  mkdir -p "$cache"
  digest=$(sha256sum < "$images/foreign/build-foreign-image" | cut -c1-16)
  image=$cache/foreign-$digest.qcow2
  if [[ ! -f $image ]]; then
    echo "building the foreign image (a few minutes, cached afterwards)" >&2
    rm -f "$cache"/foreign-*.qcow2 "$cache"/foreign-*.qcow2.partial
    "$images/foreign/build-foreign-image" "$image.partial" >&2
    mv "$image.partial" "$image"
  fi
  echo "$image"
}

# Runs a shell COMMAND in the shared manager VM as its user `contractor`, with OpenSSH and the
# pinned host key from manager.json (nested scenarios).
manager_ssh() {
  local record
  record=$(manager_status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["directory"])')/manager.json
  /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("[127.0.0.1]:%s %s" % (r["ssh_port"], r["host_key"]))' "$record" > "$work/manager_known_hosts"
  ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$work/manager_known_hosts" -i "$(dirname "$record")/client_key" \
    -p "$(json_get "$record" 'r["ssh_port"]')" contractor@127.0.0.1 "$1"
}
