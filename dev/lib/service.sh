# shellcheck shell=bash
# Shared lifecycle for the local development services (dev/kafka, dev/registry):
# messages, Java/Maven checks, Maven Central downloads, port probes and
# pid-file based start/stop. Sourced, never executed.

STREAMS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STREAMS_DEV_CACHE="${STREAMS_DEV_CACHE:-$HOME/.cache/streams-dev}"

say() { printf '%s: %s\n' "$SERVICE_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$SERVICE_NAME" "$*" >&2; exit 1; }

require_java() {
  command -v java >/dev/null 2>&1 \
    || die "no 'java' on PATH; install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
}

require_mvn() {
  command -v mvn >/dev/null 2>&1 \
    || die "no 'mvn' on PATH; install Maven (Debian: apt-get install maven)"
}

# java_major: prints the feature version of the java on PATH (17, 21, ...).
java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1
}

# mvn_or_die <log file> <mvn args...>: runs Maven in batch mode; on failure
# prints Maven's own error lines and where the full output is.
mvn_or_die() {
  local log="$1"; shift
  if ! mvn -B -ntp "$@" >"$log" 2>&1; then
    say "Maven failed: mvn -B -ntp $*"
    grep -E '^\[(ERROR|FATAL)\]' "$log" | head -n 30 >&2 || tail -n 30 "$log" >&2
    die "download from Maven Central failed (full output: $log)"
  fi
}

# port_open <port>: true if something accepts TCP connections on 127.0.0.1:<port>.
port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# port_owner <port>: a description of the listening process, if one can be found.
port_owner() {
  local out
  out="$(ss -Hltnp "sport = :$1" 2>/dev/null \
    | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n1)"
  printf '%s' "${out:-unknown process}"
}

# pid_running <pid file> <cmdline marker>: true if the pid in the file is alive
# and its command line contains the marker (guards against reused pids).
pid_running() {
  local pidfile="$1" marker="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# stop_pid <pid file> <cmdline marker> <timeout s>: SIGTERM, wait, then SIGKILL.
# Sets STOPPED_CLEANLY=1 when the process ended on SIGTERM alone.
stop_pid() {
  local pidfile="$1" marker="$2" limit="$3" pid waited=0
  STOPPED_CLEANLY=0
  if ! pid_running "$pidfile" "$marker"; then
    rm -f "$pidfile"
    say "not running"
    return 0
  fi
  pid="$(cat "$pidfile")"
  say "stopping (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= limit * 10)); then
      say "still alive after ${limit}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      rm -f "$pidfile"
      say "killed"
      return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  STOPPED_CLEANLY=1
  rm -f "$pidfile"
  say "stopped"
}

# check_ports_free <variable...>: for variables holding port numbers, dies
# naming the owner of the first port in use and the variable that picks it.
check_ports_free() {
  local var port
  for var in "$@"; do
    port="${!var}"
    if port_open "$port"; then
      die "port 127.0.0.1:$port is already taken by $(port_owner "$port"); stop that process or set $var to a free port"
    fi
  done
}

# died_on_start <log file> <what>: the process exited while starting.
died_on_start() {
  say "$2 exited during start-up; last lines of $1:"
  tail -n 40 "$1" >&2 || true
  exit 1
}

# now_ms: wall clock in milliseconds, for start-up timings.
now_ms() { date +%s%3N; }

# Class-data sharing (CDS): a service's first run records the classes it
# loads into an archive when it exits; later runs map that archive and reach
# readiness sooner. STREAMS_DEV_CDS=0 turns this off.
#
# Two rules keep it from ever breaking a start: the JVM dies with SIGBUS when
# it maps a truncated archive, so a recording becomes the archive only after
# a clean stop and after 'java -Xshare:on' has mapped it with the service's
# class path; and each data directory records into its own file, so two
# instances sharing one download cache never write the same file. An archive
# that no longer matches (other jars, other JVM) is ignored by the JVM.

cds_enabled() { [[ "${STREAMS_DEV_CDS:-1}" != 0 ]]; }

# cds_archive <cache dir> <name>: the archive path for the JVM build on PATH.
cds_archive() {
  local build
  build="$(java -version 2>&1 | sed -n 's/.*(build \([^,)]*\).*/\1/p' | tail -n1)"
  build="$(printf '%s' "${build:-unknown}" | tr -c 'A-Za-z0-9._+-' '_')"
  printf '%s/%s-cds-%s.jsa' "$1" "$2" "$build"
}

# cds_opts <archive> <recording>: JVM options to map the archive when it
# exists, or else to record into <recording> at exit; none when disabled.
cds_opts() {
  cds_enabled || return 0
  if [[ -f "$1" ]]; then
    printf '%s\n' "-XX:SharedArchiveFile=$1"
  else
    printf '%s\n' "-XX:ArchiveClassesAtExit=$2"
  fi
  # The JVM's CDS messages (classes it skips while dumping) only clutter the log.
  printf '%s\n' '-Xlog:cds=off' '-Xlog:cds+dynamic=off'
}

# cds_promote <recording> <archive> <class path args...>: after a clean stop,
# turns the recording into the archive if a JVM maps it with that class path.
cds_promote() {
  local recording="$1" archive="$2" tmp
  shift 2
  if ! cds_enabled || [[ -f "$archive" || ! -s "$recording" ]]; then
    rm -f "$recording"
    return 0
  fi
  tmp="$archive.$$.tmp"
  if mv -f "$recording" "$tmp" 2>/dev/null \
    && java -Xshare:on "-XX:SharedArchiveFile=$tmp" -XX:ErrorFile=/dev/null \
      -XX:-CreateCoredumpOnCrash "$@" -version >/dev/null 2>&1 \
    && mv -f "$tmp" "$archive"; then
    say "saved a class-data sharing archive for faster starts: $archive"
  else
    say "warning: the class-data sharing recording did not verify; the next start records again"
  fi
  rm -f "$tmp" "$recording"
}
