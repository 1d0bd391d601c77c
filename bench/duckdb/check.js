// Reads a webinspect Parquet file with DuckDB (a reader other than ours):
// node check.js DEFECTS.parquet OUT.csv writes the row count, distinct IDs,
// MD extent, summed area and classes to OUT.csv and the schema DuckDB sees
// to OUT.csv.schema. `make duckdb-check ROLL=dir` fetches DuckDB's Node
// binding from npm (checksum verified) and compares it with our CSV export.
const duckdb = require(process.env.DUCKDB_NODE || './package/duckdb.node');
(async () => {
  const db = await duckdb.open(':memory:');
  const con = await duckdb.connect(db);
  const file = process.argv[2], out = process.argv[3];
  await duckdb.query(con, `COPY (SELECT count(*) AS defects, count(DISTINCT defect_id) AS ids, min(md_start_m) AS md_min, max(md_end_m) AS md_max, round(sum(area_mm2), 3) AS area, string_agg(DISTINCT class, '|' ORDER BY class) AS classes FROM read_parquet('${file}')) TO '${out}' (HEADER)`);
  await duckdb.query(con, `COPY (SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${file}'))) TO '${out}.schema' (HEADER)`);
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
