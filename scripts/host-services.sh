#!/usr/bin/env bash
# host-services.sh - start/stop/status of the build-host services set up by
# scripts/provision-host.sh:
#
#   dockerd   Docker daemon (BuildKit builder); starts its own containerd
#   registry  Debian's docker-registry on ${ORCH_REGISTRY} (127.0.0.1:5000)
#   mirror    python3 -m http.server serving ${ORCH_MIRROR_DIR} on
#             127.0.0.1:${ORCH_MIRROR_PORT}
#
# Usage: host-services.sh {start|stop|restart|status} [dockerd|registry|mirror ...]
#        (no service names = all of them; started in the order above,
#        stopped in reverse order)
#
# Every service is started detached (setsid nohup) with its log in
# ${ORCH_HOST_LOG_DIR} and its pid file in ${ORCH_HOST_RUN_DIR}. A dockerd
# that already answers is left alone, even if it was not started by this
# script (status says so). `stop` only signals the pid from our own pid file,
# after checking the process is the expected program.
#
# The registry's and the mirror's ports: a port held by a process this script did
# not start (the distro's docker-registry service, another server, anything) is an
# error naming that process (pid, command) and the fix; it is never stopped.
#
# A dockerd that answers but whose default bridge is gone (`ip link show docker0`
# fails while `docker network inspect bridge` still lists it: containers on the
# default network then fail with "adding interface veth... to bridge docker0
# failed") is a broken engine: `start` restarts it if this script started it
# (its pid file), says so and checks the bridge is back; a dockerd it did not
# start is an error naming the fix, never restarted. `status` reports it.
#
# Environment (same defaults as provision-host.sh):
#   ORCH_HOST_STATE    state dir                  (/var/lib/orchestrator-host)
#   ORCH_HOST_ETC      config dir                 (/etc/orchestrator-host)
#   ORCH_HOST_LOG_DIR  logs                       (/var/log/orchestrator-host)
#   ORCH_HOST_RUN_DIR  pid files                  (/run/orchestrator-host)
#   ORCH_MIRROR_DIR    mirror document root       (/srv/orchestrator-mirror)
#   ORCH_MIRROR_PORT   mirror port on 127.0.0.1   (8700)
#   ORCH_REGISTRY      registry host:port         (127.0.0.1:5000)
set -euo pipefail

ORCH_HOST_STATE=${ORCH_HOST_STATE:-/var/lib/orchestrator-host}
ORCH_HOST_ETC=${ORCH_HOST_ETC:-/etc/orchestrator-host}
ORCH_HOST_LOG_DIR=${ORCH_HOST_LOG_DIR:-/var/log/orchestrator-host}
ORCH_HOST_RUN_DIR=${ORCH_HOST_RUN_DIR:-/run/orchestrator-host}
ORCH_MIRROR_DIR=${ORCH_MIRROR_DIR:-/srv/orchestrator-mirror}
ORCH_MIRROR_PORT=${ORCH_MIRROR_PORT:-8700}
ORCH_REGISTRY=${ORCH_REGISTRY:-127.0.0.1:5000}
REGISTRY_CONFIG=${ORCH_REGISTRY_CONFIG:-${ORCH_HOST_ETC}/registry.yml}
# dockerd runs on the containerd image store (multi-platform images, OCI indexes, registry
# build cache with the default `docker` buildx driver). Its own config file, so a host's
# /etc/docker/daemon.json is neither needed nor touched.
DOCKERD_CONFIG=${ORCH_DOCKERD_CONFIG:-${ORCH_HOST_ETC}/dockerd.json}

# Daemons need the sbin dirs (containerd, runc, iptables) whatever the caller's PATH.
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

ALL_SERVICES=(dockerd registry mirror)
CMD=()

say() { printf '[host-services] %s\n' "$*"; }
die() { printf '[host-services] ERROR: %s\n' "$*" >&2; exit 1; }

pidfile() { printf '%s/%s.pid\n' "$ORCH_HOST_RUN_DIR" "$1"; }
logfile() { printf '%s/%s.log\n' "$ORCH_HOST_LOG_DIR" "$1"; }

# Program name expected in /proc/<pid>/cmdline for each service (guards
# against signalling an unrelated process that reused a stale pid).
expected_prog() {
    case $1 in
        dockerd) echo dockerd ;;
        registry) echo docker-registry ;;
        mirror) echo http.server ;;
    esac
}

healthy() {
    case $1 in
        dockerd) timeout 10 docker info >/dev/null 2>&1 ;;
        registry) curl -fsS -m 5 -o /dev/null "http://${ORCH_REGISTRY}/v2/" 2>/dev/null ;;
        mirror) curl -fsS -m 5 -o /dev/null "http://127.0.0.1:${ORCH_MIRROR_PORT}/" 2>/dev/null ;;
    esac
}

# The interface of dockerd's default `bridge` network when dockerd lists that network but the
# interface does not exist on this host (printed; status 0); status 1 when the bridge is whole
# or this cannot be told here: no `ip`, a daemon elsewhere (DOCKER_HOST not a unix socket), a
# rootless daemon (its bridge lives in its own network namespace), no `bridge` network
# (dockerd --bridge=none).
bridge_gone() {
    local name
    command -v ip >/dev/null || return 1
    [[ -z ${DOCKER_HOST:-} || ${DOCKER_HOST} == unix://* ]] || return 1
    [[ $(timeout 10 docker info --format '{{json .SecurityOptions}}' 2>/dev/null) != *rootless* ]] || return 1
    name=$(timeout 10 docker network inspect bridge \
        --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null) || return 1
    [[ -n $name && $name != "<no value>" ]] || name=docker0
    ip link show "$name" >/dev/null 2>&1 && return 1
    printf '%s\n' "$name"
}

bridge_gone_why() {
    # shellcheck disable=SC2016 # the backquotes are text: the commands that show it
    printf 'its bridge network interface %s is gone (`ip link show %s` fails while `docker network inspect bridge` lists it), so containers on the default network cannot start\n' "$1" "$1"
}

# A dockerd host-services started (pid $1) whose bridge $2 is gone: restart it, saying so; the
# fresh start checks the bridge is back (and dies if not).
restart_broken_dockerd() {
    local pid=$1 name=$2
    say "dockerd: $(bridge_gone_why "$name"); restarting dockerd (pid $pid), which host-services started"
    stop_one dockerd
    start_one dockerd
    say "dockerd: restarted; bridge $name is back"
}

# The TCP port a service listens on (none for dockerd).
service_port() {
    case $1 in
        registry) echo "${ORCH_REGISTRY##*:}" ;;
        mirror) echo "$ORCH_MIRROR_PORT" ;;
    esac
}

# The processes listening on TCP port $1, one a line: a pid, or `?` for a listener whose
# process ss cannot name (another user's, when not root). Nothing without ss.
port_holders() {
    local line pids
    command -v ss >/dev/null || return 0
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        pids=$(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2 || true)
        if [[ -n $pids ]]; then printf '%s\n' "$pids"; else echo '?'; fi
    done < <(ss -Hltnp "sport = :$1" 2>/dev/null || true) | sort -u
}

# Dies when the port service $1 needs is held by a process host-services did not start
# (its own are found by managed_pid before this is asked): names the process and the fix.
check_port_free() {
    local svc=$1 port holder who setting hint
    port=$(service_port "$svc")
    [[ -n $port ]] || return 0
    case $svc in
        registry) setting="ORCH_REGISTRY=$ORCH_REGISTRY" ;;
        *) setting="ORCH_MIRROR_PORT=$ORCH_MIRROR_PORT" ;;
    esac
    while IFS= read -r holder; do
        hint=""
        [[ $svc == registry ]] && hint=" (the distro's registry: systemctl disable --now docker-registry)"
        if [[ $holder == '?' ]]; then
            who="a process ss cannot name (run \`ss -ltnp\` as root to see it)"
        else
            who="pid $holder ($(tr '\0' ' ' <"/proc/$holder/cmdline" 2>/dev/null | sed 's/ *$//' || true))"
            [[ $svc == registry ]] || hint=" (kill $holder, if it is yours)"
        fi
        die "$svc: port $port ($setting) is held by $who, which host-services did not start; it is left alone: stop it yourself$hint or set ${setting%%=*} to a free loopback port, then re-run"
    done < <(port_holders "$port")
}

start_timeout() {
    case $1 in
        dockerd) echo 60 ;;
        *) echo 20 ;;
    esac
}

# Prints the pid from our pid file if that process is alive and is the
# expected program; returns 1 otherwise.
managed_pid() {
    local pf pid
    pf=$(pidfile "$1")
    [[ -r $pf ]] || return 1
    pid=$(<"$pf")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(expected_prog "$1")" || return 1
    echo "$pid"
}

write_dockerd_config() {
    printf '%s\n' '{"features": {"containerd-snapshotter": true}}' >"$DOCKERD_CONFIG"
}

# Sets the global array CMD to the service's command line.
service_cmd() {
    case $1 in
        dockerd)
            command -v dockerd >/dev/null || die "dockerd not installed (run provision-host.sh)"
            mkdir -p "$(dirname "$DOCKERD_CONFIG")"
            [[ -r $DOCKERD_CONFIG ]] || write_dockerd_config
            CMD=(dockerd --config-file "$DOCKERD_CONFIG")
            ;;
        registry)
            command -v docker-registry >/dev/null || die "docker-registry not installed (run provision-host.sh)"
            [[ -r $REGISTRY_CONFIG ]] || die "registry config $REGISTRY_CONFIG missing (run provision-host.sh)"
            CMD=(docker-registry serve "$REGISTRY_CONFIG")
            ;;
        mirror)
            [[ -d $ORCH_MIRROR_DIR ]] || die "mirror dir $ORCH_MIRROR_DIR missing (run provision-host.sh)"
            # The distro python, not a pyenv shim.
            local py=/usr/bin/python3
            [[ -x $py ]] || py=$(command -v python3) || die "python3 not found"
            CMD=("$py" -m http.server "$ORCH_MIRROR_PORT" --bind 127.0.0.1 --directory "$ORCH_MIRROR_DIR")
            ;;
    esac
}

wait_healthy() {
    local svc=$1 pid=$2 deadline
    deadline=$((SECONDS + $(start_timeout "$svc")))
    until healthy "$svc"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$svc (pid $pid) exited; last log lines:"
            tail -n 30 "$(logfile "$svc")" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            say "$svc (pid $pid) not healthy after $(start_timeout "$svc")s; last log lines:"
            tail -n 30 "$(logfile "$svc")" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

start_one() {
    local svc=$1 pid name
    if pid=$(managed_pid "$svc"); then
        if healthy "$svc" || wait_healthy "$svc" "$pid"; then
            if [[ $svc == dockerd ]] && name=$(bridge_gone); then
                restart_broken_dockerd "$pid" "$name"
                return 0
            fi
            say "$svc: already running (pid $pid), skipped"
            return 0
        fi
        die "$svc: pid $pid is running but not healthy"
    fi
    check_port_free "$svc"
    if healthy "$svc"; then
        if [[ $svc == dockerd ]] && name=$(bridge_gone); then
            die "dockerd: $(bridge_gone_why "$name"); this dockerd was not started by host-services (no live pid in $(pidfile dockerd)), so it is left alone: restart it yourself (e.g. \`systemctl restart docker\`, or stop it and run \`$0 start dockerd\`), then re-run"
        fi
        say "$svc: already answering (not started by host-services), skipped"
        return 0
    fi
    service_cmd "$svc"
    mkdir -p "$ORCH_HOST_LOG_DIR" "$ORCH_HOST_RUN_DIR"
    # setsid: own session, so the service outlives the calling shell/job;
    # nohup + redirections: no tty, no inherited pipes.
    printf '\n==== %s starting %s: %s\n' "$(date -u +%FT%TZ)" "$svc" "${CMD[*]}" >>"$(logfile "$svc")"
    setsid nohup "${CMD[@]}" >>"$(logfile "$svc")" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$(pidfile "$svc")"
    if wait_healthy "$svc" "$pid"; then
        say "$svc: started (pid $pid, log $(logfile "$svc"))"
    else
        die "$svc: failed to start"
    fi
    if [[ $svc == dockerd ]] && name=$(bridge_gone); then
        die "dockerd: started (pid $pid) but $(bridge_gone_why "$name"); see $(logfile dockerd)"
    fi
}

stop_one() {
    local svc=$1 pid i
    if ! pid=$(managed_pid "$svc"); then
        rm -f "$(pidfile "$svc")"
        if healthy "$svc"; then
            say "$svc: running but not started by host-services (no pid file), left alone"
        else
            say "$svc: not running, skipped"
        fi
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # dockerd may take a while (it stops containers and its containerd).
    for ((i = 0; i < 80; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$svc: pid $pid ignored SIGTERM for 40s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$(pidfile "$svc")"
    say "$svc: stopped (pid $pid)"
}

status_one() {
    local svc=$1 pid state
    local name broken=""
    if healthy "$svc"; then state=up; else state=down; fi
    if [[ $svc == dockerd && $state == up ]] && name=$(bridge_gone); then
        state=broken
        broken=": $(bridge_gone_why "$name")"
    fi
    if pid=$(managed_pid "$svc"); then
        say "$svc: $state (pid $pid, log $(logfile "$svc"))$broken${broken:+; \`$0 start dockerd\` restarts it}"
    elif [[ $state != down ]]; then
        say "$svc: $state (not started by host-services)$broken${broken:+; restart it yourself}"
    else
        say "$svc: down"
    fi
    [[ $state == up ]]
}

main() {
    local action=${1:-}
    [[ $# -gt 0 ]] && shift
    local services=("$@") svc rc=0
    ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
    for svc in "${services[@]}"; do
        case $svc in
            dockerd | registry | mirror) ;;
            docker) die "unknown service 'docker' (did you mean dockerd?)" ;;
            *) die "unknown service '$svc' (expected: ${ALL_SERVICES[*]})" ;;
        esac
    done
    case $action in
        start)
            for svc in "${services[@]}"; do start_one "$svc"; done
            ;;
        stop)
            for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_one "${services[i]}"; done
            ;;
        restart)
            for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_one "${services[i]}"; done
            for svc in "${services[@]}"; do start_one "$svc"; done
            ;;
        status)
            for svc in "${services[@]}"; do status_one "$svc" || rc=1; done
            return "$rc"
            ;;
        *)
            echo "usage: $0 {start|stop|restart|status} [dockerd|registry|mirror ...]" >&2
            return 2
            ;;
    esac
}

main "$@"
