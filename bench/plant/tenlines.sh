#!/bin/bash
# Ten lines, one plant: N engines (webinspect run on the simulator, narrow
# web) publish to one plant service through one NATS JetStream server
# (webinspect nats, its own process); K times, at random moments, a line
# engine, the plant service or the NATS server is killed with SIGKILL and
# started again a second later. Then, with nothing killed for SETTLE
# seconds, the plant's record → queryable latency over the last SETTLE-40
# seconds is read (/api/plant/latency), and over all the plant service
# took since its last start. At the end the lines stop, and the
# plant dataset, read by DuckDB through a glob, is compared with the union
# of the lines' roll maps (webinspect export --format csv) by line, roll,
# defect ID and position; the plant API's counts with DuckDB's.
#
#   bench/plant/tenlines.sh BIN DUCKDB_NODE [N=10] [KILLS=20] [WORKDIR] [SETTLE=120]
# LINE_ARGS (environment): more flags for each line's run, e.g.
# "--defects 3000" (defects on its 10 km web; default one per 10 m).
# BIN: a built webinspect; DUCKDB_NODE: duckdb.node from the npm package
# @duckdb/node-bindings-linux-x64@1.5.6-r.1 (see the Makefile's duckdb-check).
set -u
B=$(realpath "$1"); DUCK=$(realpath "$2"); N=${3:-10}; KILLS=${4:-20}; D=${5:-$(mktemp -d)}; SETTLE=${6:-120}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$D"; cd "$D"; rm -rf pd ns rolls* *.log *.pid
startnats() { "$B" nats --listen 127.0.0.1:14222 --store ns >> nats.log 2>&1 & echo $! > nats.pid; }
startplant() { "$B" plant --data pd --nats nats://127.0.0.1:14222 --listen 127.0.0.1:18090 >> plant.log 2>&1 & echo $! > plant.pid; }
startline() { "$B" run --plant nats://127.0.0.1:14222 --line L$1 --listen 127.0.0.1:$((18100 + $1)) --rolls rolls$1 --width 300mm --seed $1 ${LINE_ARGS:-} >> line$1.log 2>&1 & echo $! > line$1.pid; }
startnats; sleep 1; startplant; sleep 2
for i in $(seq 1 $N); do startline $i; done
RANDOM=7; kl=0; kp=0; kn=0
for k in $(seq 1 $KILLS); do
  sleep $((3 + RANDOM % 6))
  case $((RANDOM % 3)) in
  0) kill -9 $(cat plant.pid); kp=$((kp + 1)); sleep 1; startplant ;;
  1) kill -9 $(cat nats.pid); kn=$((kn + 1)); sleep 1; startnats ;;
  *) i=$((1 + RANDOM % N)); kill -9 $(cat line$i.pid); kl=$((kl + 1)); sleep 1; startline $i ;;
  esac
done
sleep $SETTLE
# The window leaves out the first 40 s after the last kill: records the
# killed plant had taken but not written come back after its AckWait (30 s).
curl -s "127.0.0.1:18090/api/plant/latency?window=$((SETTLE - 40))s" > latency.json
curl -s "127.0.0.1:18090/api/plant/latency" > latency.all.json
uptime > load.txt
for i in $(seq 1 $N); do kill $(cat line$i.pid); done   # the lines stop: their rolls close
for i in $(seq 1 $N); do while kill -0 $(cat line$i.pid) 2>/dev/null; do sleep 0.5; done; done
sleep 8                                                   # the publishers are gone; the plant drains
curl -s 127.0.0.1:18090/api/plant/counts > counts.json
kill $(cat plant.pid); while kill -0 $(cat plant.pid) 2>/dev/null; do sleep 0.5; done
kill $(cat nats.pid); while kill -0 $(cat nats.pid) 2>/dev/null; do sleep 0.5; done
for i in $(seq 1 $N); do for r in $(ls rolls$i | grep -v '^images$'); do
  "$B" export rolls$i/$r --format csv 2>/dev/null | awk -F, -v l=L$i 'NR>1 {printf "%s,%s,%s,%.3f,%.1f\n", l,$1,$2,$3,$5}'
done; done | sort > lines.csv
cat > q.js <<'JS'
const duckdb = require(process.env.DUCKDB_NODE);
(async () => {
  const db = await duckdb.open(':memory:'); const con = await duckdb.connect(db);
  await duckdb.query(con, `COPY (SELECT line, roll_id, defect_id, printf('%.3f', md_start_m), printf('%.1f', cd_start_mm) FROM read_parquet('pd/defects/*/*/*.parquet', hive_partitioning = true)) TO 'plant.csv' (HEADER false)`);
})().catch((e) => { console.error(e); process.exit(1); });
JS
DUCKDB_NODE="$DUCK" node q.js && sort plant.csv > plant.sorted
DUCKDB_NODE="$DUCK" node "$HERE/../duckdb/plant.js" pd duck > /dev/null
echo "lines: $N, kills: $KILLS ($kl line engines, $kp plant service, $kn NATS server)"
echo "record -> queryable over the last $((SETTLE - 40)) s (nothing killed for $SETTLE s): $(cat latency.json); $(cat load.txt)"
echo "record -> queryable, all the plant took since its last start (kill recovery included): $(cat latency.all.json)"
echo "defects in the lines' roll maps: $(wc -l < lines.csv); in the plant dataset: $(wc -l < plant.sorted), distinct: $(sort -u plant.sorted | wc -l)"
# Positions compare within 2 mm MD and 0.2 mm CD (the CSV export rounds).
if join -t, -j1 <(awk -F, '{print $1"/"$2"/"$3","$4","$5}' lines.csv | sort) <(awk -F, '{print $1"/"$2"/"$3","$4","$5}' plant.sorted | sort) |
   awk -F, -v n1=$(wc -l < lines.csv) -v n2=$(wc -l < plant.sorted) '{ if (($2-$4)^2 > 4e-6 || ($3-$5)^2 > 0.04) bad++; m++ } END { exit !(m == n1 && m == n2 && !bad) }'; then
  echo "plant dataset == union of the roll maps (line, roll, defect ID; MD, CD positions)"
else echo "DIFFERENT:"; diff lines.csv plant.sorted | head; fi
echo "DuckDB per line:"; cat duck.lines.csv; echo "plant API: $(cat counts.json | head -c 400)"
