/** Seeding and fingerprinting PostgreSQL databases on the test cluster. */
import pg from 'pg';
import { inject } from 'vitest';

export function pgInfo() {
  return inject('pg');
}

export async function sql<T extends pg.QueryResultRow = any>(database: string, text: string, params: unknown[] = []): Promise<T[]> {
  const info = pgInfo();
  const client = new pg.Client({ host: info.host, port: info.port, user: info.user, password: info.password, database });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

let counter = 0;
/** A fresh, uniquely named database; dropped by nobody (the cluster is thrown away). */
export async function createDatabase(prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${++counter}_${Date.now() % 100000}`;
  await sql('postgres', `CREATE DATABASE "${name}"`);
  return name;
}

/** Tables of every type the round trips must carry; unicode, jsonb, bytea, numeric, arrays, NULLs. */
export async function seedVariedTypes(database: string, rows = 500): Promise<void> {
  await sql(
    database,
    `
    CREATE SCHEMA sales;
    CREATE TABLE public.customers (
      id serial PRIMARY KEY,
      name text NOT NULL,
      bio text,
      profile jsonb,
      avatar bytea,
      balance numeric(20,6),
      joined timestamptz,
      tags text[],
      scores int[]
    );
    CREATE TABLE public.events (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), kind text, at timestamptz DEFAULT now(), payload json);
    CREATE TABLE sales.orders (id int PRIMARY KEY, customer_id int, total numeric, note text);
    INSERT INTO customers (name, bio, profile, avatar, balance, joined, tags, scores)
    SELECT
      CASE i % 4 WHEN 0 THEN 'Zoë Ångström ' || i WHEN 1 THEN '山田太郎 ' || i WHEN 2 THEN 'Ολυμπία 😀 ' || i ELSE 'plain ' || i END,
      CASE WHEN i % 7 = 0 THEN NULL ELSE repeat('line with ''quotes'' and \\ backslash ' || i || E'\\n', i % 5) END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('i', i, 'nested', jsonb_build_object('ok', i % 2 = 0, 'list', jsonb_build_array(1, 'two', 3.5, null))) END,
      CASE WHEN i % 6 = 0 THEN NULL ELSE decode(md5(i::text) || md5((i * 7)::text), 'hex') END,
      CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 1234.567891)::numeric(20,6) END,
      timestamptz '2026-01-01 00:00:00+00' + (i || ' hours')::interval + (i % 1000 || ' microseconds')::interval,
      CASE WHEN i % 3 = 0 THEN NULL ELSE ARRAY['a' || i, 'b,c', NULL, 'd"e'] END,
      ARRAY[i, i * 2, -i]
    FROM generate_series(1, ${rows}) AS i;
    INSERT INTO events (customer_id, kind, payload)
    SELECT 1 + i % ${rows}, 'kind' || (i % 3), json_build_object('n', i) FROM generate_series(1, ${rows * 2}) AS i;
    INSERT INTO sales.orders SELECT i, 1 + i % ${rows}, i * 10.5, CASE WHEN i % 2 = 0 THEN NULL ELSE 'note ' || i END FROM generate_series(1, ${rows}) AS i;
  `,
  );
}

/** Every user table's row count and an md5 over its rows in a fixed order: equal fingerprints, equal data. */
export async function fingerprint(database: string): Promise<Record<string, { count: number; md5: string | null }>> {
  const tables = await sql<{ schema: string; name: string }>(
    database,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const out: Record<string, { count: number; md5: string | null }> = {};
  for (const t of tables) {
    const q = `"${t.schema.replaceAll('"', '""')}"."${t.name.replaceAll('"', '""')}"`;
    const [row] = await sql<{ count: string; md5: string | null }>(
      database,
      `SELECT count(*) AS count, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS md5 FROM ${q} AS x`,
    );
    out[`${t.schema}.${t.name}`] = { count: Number(row!.count), md5: row!.md5 };
  }
  return out;
}

export function pgTargetConfig(database: string, extra: Record<string, unknown> = {}) {
  const info = pgInfo();
  return {
    driver: 'pg_dump',
    url: `postgres://${info.user}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${database}`,
    bin: info.binDir,
    ...extra,
  };
}
