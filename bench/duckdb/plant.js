// Reads the plant dataset with DuckDB through a glob (hive partitions
// line=/day=): node plant.js DATA OUT writes OUT.lines.csv (defects per
// line) and OUT.days.csv (defects per day and class), to compare with
// the plant API's /api/plant/counts (make duckdb-plant-check DATA=dir
// URL=http://127.0.0.1:8090).
const duckdb = require(process.env.DUCKDB_NODE || './package/duckdb.node');
(async () => {
  const db = await duckdb.open(':memory:');
  const con = await duckdb.connect(db);
  const data = process.argv[2], out = process.argv[3];
  const src = `read_parquet('${data}/defects/*/*/*.parquet', hive_partitioning = true)`;
  await duckdb.query(con, `COPY (SELECT line, count(*) AS n, count(DISTINCT (roll_id, defect_id)) AS ids FROM ${src} GROUP BY line ORDER BY line) TO '${out}.lines.csv' (HEADER)`);
  await duckdb.query(con, `COPY (SELECT CAST(day AS VARCHAR) AS day, class, count(*) AS n FROM ${src} GROUP BY ALL ORDER BY day, class) TO '${out}.days.csv' (HEADER)`);
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
