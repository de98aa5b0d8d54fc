/**
 * The readers of real pg_dump output. The row counters: every table's count must equal count(*) in
 * the database, in both formats, whatever the chunking, for names and values chosen to trip a reader
 * (quotes, dots and spaces in names, newlines and `\.` in values, a zero-column table, partitions,
 * a large object, a COPY line longer than a line head, a function body holding a COPY line). The
 * custom-format compressor: pg_restore must read back from its output exactly what it reads from
 * pg_dump's uncompressed archive.
 */
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { PgCustomCompressor } from '../../src/drivers/postgres/pgcompress.js';
import { PgCustomCounter, PgPlainCounter, type RowCounter } from '../../src/drivers/postgres/pgcount.js';
import { PgCustomReader } from '../../src/drivers/postgres/pgcustom.js';
import { pgDumpArgs } from '../../src/drivers/postgres/pgdump.js';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { createDatabase, fingerprint, pgInfo, pgTargetConfig, sql } from '../support/pgdb.js';
import { through } from '../support/streams.js';
import { replaceEntry } from '../support/tamper.js';

const run = promisify(execFile);

async function pgDump(database: string, args: string[]): Promise<Buffer> {
  const info = pgInfo();
  const { stdout } = await run(path.join(info.binDir, 'pg_dump'), args, {
    encoding: 'buffer',
    maxBuffer: 1 << 30,
    env: { ...process.env, PGPASSWORD: info.password },
  });
  return stdout;
}

/**
 * pg_restore's reading of a custom-format archive, as a SQL script: schema, rows and large objects.
 * The random key of the `\restrict` lines that recent releases write is left out.
 */
function pgRestoreScript(archive: Buffer, ...args: string[]): string {
  const result = spawnSync(path.join(pgInfo().binDir, 'pg_restore'), ['-f', '-', ...args], { input: archive, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`pg_restore failed: ${result.stderr}`);
  return result.stdout.replace(/^\\(un)?restrict .*$/gm, '\\$1restrict');
}

const compress = (dump: Buffer, level: number, chunk: number) => through(dump, chunk, new PgCustomCompressor(level));

function feed(counter: RowCounter, dump: Buffer, chunk: number): RowCounter {
  for (let at = 0; at < dump.length; at += chunk) counter.write(dump.subarray(at, at + chunk));
  return counter;
}

const WIDE_COLUMNS = 60;

let database: string;
let expected: { name: string; count: number }[];
const dumps: Record<'custom' | 'plain' | 'compressed', Buffer> = { custom: Buffer.alloc(0), plain: Buffer.alloc(0), compressed: Buffer.alloc(0) };

beforeAll(async () => {
  database = await createDatabase('counts');
  const wide = Array.from({ length: WIDE_COLUMNS }, (_, i) => `"a rather long column name number ${i}" int DEFAULT ${i}`).join(', ');
  await sql(
    database,
    `
    CREATE SCHEMA "My Schema.x";
    CREATE TABLE "My Schema.x"."Odd ""name"" here" (id int, body text);
    INSERT INTO "My Schema.x"."Odd ""name"" here"
      SELECT i, CASE i % 5 WHEN 0 THEN E'two\\nlines' WHEN 1 THEN '\\.' WHEN 2 THEN E'tab\\there' WHEN 3 THEN NULL ELSE E'back\\\\slash' END
      FROM generate_series(1, 777) AS i;
    CREATE TABLE public.nulls_first (note text, id int);
    INSERT INTO public.nulls_first SELECT NULL, i FROM generate_series(1, 300) AS i;
    CREATE TABLE public.empty (id int);
    CREATE TABLE public.nocols ();
    INSERT INTO public.nocols DEFAULT VALUES; INSERT INTO public.nocols DEFAULT VALUES; INSERT INTO public.nocols DEFAULT VALUES;
    CREATE TABLE public.measures (at date, v int) PARTITION BY RANGE (at);
    CREATE TABLE public.measures_2025 PARTITION OF public.measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.measures_2026 PARTITION OF public.measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO public.measures SELECT DATE '2025-06-01' + (i % 400), i FROM generate_series(1, 1000) AS i;
    CREATE TABLE public.wide (${wide});
    INSERT INTO public.wide SELECT FROM generate_series(1, 50);
    CREATE TABLE public.big (id int, payload text);
    INSERT INTO public.big SELECT i, repeat(md5(i::text), 1 + i % 7) FROM generate_series(1, 20000) AS i;
    CREATE FUNCTION public.tricky() RETURNS text LANGUAGE sql AS $body$
SELECT '
COPY public.big (id, payload) FROM stdin;
1	not a row
\\.
'::text
$body$;
    SELECT lo_from_bytea(0, decode(repeat('0a', 5000), 'hex'));
  `,
  );
  const tables = await sql<{ name: string }>(
    database,
    `SELECT format('%s.%s', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  );
  expected = [];
  for (const { name } of tables) {
    const dot = name.indexOf('.', name.startsWith('My Schema.x') ? 'My Schema.x'.length : 0);
    const [schema, table] = [name.slice(0, dot), name.slice(dot + 1)];
    const [row] = await sql<{ n: string }>(database, `SELECT count(*) AS n FROM "${schema}"."${table.replaceAll('"', '""')}"`);
    expected.push({ name, count: Number(row!.n) });
  }
  const sorted = (list: { name: string; count: number }[]) => [...list].sort((a, b) => (a.name < b.name ? -1 : 1));
  expected = sorted(expected);
  dumps.custom = await pgDump(database, pgDumpArgs({ ...pgTargetConfig(database) }));
  dumps.plain = await pgDump(database, pgDumpArgs({ ...pgTargetConfig(database), format: 'plain' }));
  // As pg_dump compresses on its own (and as archives made before held it).
  dumps.compressed = await pgDump(database, pgDumpArgs(pgTargetConfig(database)).filter((a) => a !== '--compress=0'));
});

const byName = (counts: { name: string; count: number }[]) => [...counts].sort((a, b) => (a.name < b.name ? -1 : 1));

describe('pg_dump row counters', () => {
  it('the database holds what the test means it to', () => {
    expect(expected).toContainEqual({ name: 'My Schema.x.Odd "name" here', count: 777 });
    expect(expected).toContainEqual({ name: 'public.nocols', count: 3 });
    expect(expected).toContainEqual({ name: 'public.empty', count: 0 });
    expect(expected).toHaveLength(8);
  });

  for (const format of ['custom', 'plain'] as const) {
    const make = () => (format === 'custom' ? new PgCustomCounter() : new PgPlainCounter());

    it.each([1, 7, 1000, 65536, 1 << 30])(`${format}: counts every table exactly, in chunks of %i bytes`, (chunk) => {
      const counter = feed(make(), dumps[format], chunk);
      expect(counter.error).toBeUndefined();
      expect(counter.complete).toBe(true);
      expect(byName(counter.counts())).toEqual(expected);
    });

    it(`${format}: a dump cut short is not complete`, () => {
      const counter = feed(make(), dumps[format].subarray(0, dumps[format].length - 200), 4096);
      expect(counter.complete).toBe(false);
    });
  }

  it('custom: says why it cannot count a dump pg_dump compressed itself', async () => {
    const counter = feed(new PgCustomCounter(), dumps.compressed, 65536);
    expect(counter.complete).toBe(false);
    expect(counter.error?.message).toContain('compressed');
  });

  it('custom: refuses what is not a pg_dump archive', () => {
    const counter = feed(new PgCustomCounter(), Buffer.from('PGDMX and some more bytes to read'), 4);
    expect(counter.error?.message).toContain('not a pg_dump');
    expect(counter.complete).toBe(false);
  });

  for (const format of ['custom', 'plain'] as const) {
    it(`${format}: the manifest's counts are the database's, and the data comes back`, async () => {
      const dir = tempDir();
      const config = writeConfig(dir, { storage: { path: './backups' }, targets: { db: pgTargetConfig(database, { format }) } });
      const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
      const backup = await cli('--json', 'backup', 'db');
      expect(backup.code, backup.stderr).toBe(0);
      const id = backup.json().backups[0].id;
      const units = (await cli('--json', 'inspect', id)).json().units;
      expect(byName(units.map((u: { name: string; count: number }) => ({ name: u.name, count: u.count })))).toEqual(expected);
      expect(units.every((u: { kind: string }) => u.kind === 'table')).toBe(true);
      if (format === 'custom') {
        // pg_dump's own compressed format, in an entry stored as it is: verify need not inflate it.
        const zip = path.join(dir, 'backups', `${id}.zip`);
        const entry = spawnSync('unzip', ['-p', zip, 'db/dump.pgc'], { maxBuffer: 1 << 30 }).stdout;
        expect(pgRestoreScript(entry)).toBe(pgRestoreScript(dumps.custom));
        expect(pgRestoreScript(entry, '--list')).toMatch(/Compression: (6|gzip)/);
        const method = spawnSync('/usr/bin/python3', ['-c', 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("db/dump.pgc").compress_type)', zip], { encoding: 'utf8' });
        expect(method.stdout.trim()).toBe('0');
      }

      const copy = `${database}_${format}`;
      const restore = await cli('--json', 'restore', 'db', id, '--into', copy, '--yes');
      expect(restore.code, restore.stderr).toBe(0);
      expect(await fingerprint(copy)).toEqual(await fingerprint(database));
      const [blob] = await sql<{ size: number }>(copy, `SELECT sum(length(lo_get(oid)))::int AS size FROM pg_largeobject_metadata`);
      expect(blob!.size).toBe(5000);
    });
  }

  it.each([
    ['compressed by pg_dump, stored', 'stored'],
    ['uncompressed, deflated in the zip', 'deflated'],
  ] as const)('restores an archive made before: the dump %s', async (_how, method) => {
    const dir = tempDir();
    const config = writeConfig(dir, { storage: { path: './backups' }, targets: { db: pgTargetConfig(database) } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const id = (await cli('--json', 'backup', 'db')).json().backups[0].id;
    const dump = method === 'stored' ? dumps.compressed : dumps.custom;
    const file = path.join(dir, 'old.pgc');
    writeFileSync(file, dump);
    replaceEntry(path.join(dir, 'backups', `${id}.zip`), path.join(dir, 'backups', `${id}.json`), 'db/dump.pgc', file, method);
    expect((await cli('--json', 'verify', id)).json().results[0].ok).toBe(true);
    const entry = (await cli('--json', 'inspect', id)).json().entries.find((e: { path: string }) => e.path === 'db/dump.pgc');
    expect(entry.size).toBe(dump.length);

    const copy = `${database}_old_${method}`;
    const restore = await cli('--json', 'restore', 'db', id, '--into', copy, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(await fingerprint(copy)).toEqual(await fingerprint(database));
  });
});

describe('pg_dump custom-format compressor', () => {
  it.each([
    [6, 7],
    [6, 4096],
    [6, 1 << 30],
    [1, 65536],
    [9, 65536],
  ])('at level %i, in chunks of %i bytes: pg_restore reads back exactly what pg_dump wrote', async (level, chunk) => {
    const compressed = await compress(dumps.custom, level, chunk);
    expect(pgRestoreScript(compressed)).toBe(pgRestoreScript(dumps.custom));
    expect(compressed.length).toBeLessThan(dumps.custom.length / 2);
    expect(pgRestoreScript(compressed, '--list')).toMatch(new RegExp(`Compression: (${level}|gzip)`));
  });

  it('reads a TOC that ends in the last bytes of a dump (no data: a schema-only dump)', async () => {
    const schema = await pgDump(database, [...pgDumpArgs(pgTargetConfig(database)), '--schema-only']);
    const pieces = [schema.subarray(0, schema.length - 10), schema.subarray(schema.length - 10)];
    const compressed = await through(pieces, 0, new PgCustomCompressor(6));
    expect(pgRestoreScript(compressed, '--list')).toMatch(/Compression: (6|gzip)/);
    expect(pgRestoreScript(compressed)).toBe(pgRestoreScript(schema));
    const counter = new PgCustomCounter();
    for (const piece of pieces) counter.write(piece);
    counter.end();
    expect(counter.error).toBeUndefined();
    expect(counter.complete).toBe(true);
  });

  it('marks the data compressed in a header of archive version 1.15 on (a byte naming the method)', async () => {
    // PostgreSQL 16 and later: the header's compression int becomes one byte; nothing else here moves.
    let toc = { end: 0, compressionAt: 0, intSize: 0 };
    const listener = { head: (_b: Buffer, t: typeof toc) => (toc = t), block: () => {}, blob: () => {}, data: () => {}, dataEnd: () => {}, blobsEnd: () => {} };
    new PgCustomReader(listener).write(dumps.custom);
    expect(dumps.custom[6]).toBe(14);
    const v115 = Buffer.concat([dumps.custom.subarray(0, toc.compressionAt), Buffer.from([0]), dumps.custom.subarray(toc.compressionAt + 1 + toc.intSize)]);
    v115[6] = 15;
    const [before, after] = [await compress(dumps.custom, 6, 65536), await compress(v115, 6, 65536)];
    const shift = toc.intSize; // the header is that many bytes shorter
    const head = Buffer.from(v115.subarray(0, toc.end - shift));
    head[toc.compressionAt] = 1;
    expect(after.subarray(0, toc.end - shift).equals(head)).toBe(true);
    expect(after.subarray(toc.end - shift).equals(before.subarray(toc.end))).toBe(true);
  });

  it('hands the dump on unchanged at level 0', async () => {
    expect((await compress(dumps.custom, 0, 65536)).equals(dumps.custom)).toBe(true);
    expect(pgRestoreScript(dumps.custom, '--list')).toMatch(/Compression: (0|none)/);
  });

  it('hands on unchanged what it does not know: another archive version, a dump already compressed, not an archive', async () => {
    const future = Buffer.from(dumps.custom);
    future[6] = 99; // archive version 1.99
    expect((await compress(future, 6, 4096)).equals(future)).toBe(true);
    expect((await compress(dumps.compressed, 6, 4096)).equals(dumps.compressed)).toBe(true);
    const text = Buffer.from('-- not an archive at all\n');
    expect((await compress(text, 6, 4096)).equals(text)).toBe(true);
  });

  it('fails, saying why, on an archive that goes wrong after its TOC', async () => {
    let tocEnd = 0;
    const listener = { head: (_b: Buffer, toc: { end: number }) => (tocEnd = toc.end), block: () => {}, blob: () => {}, data: () => {}, dataEnd: () => {}, blobsEnd: () => {} };
    new PgCustomReader(listener).write(dumps.custom);
    const broken = Buffer.from(dumps.custom);
    broken[tocEnd] = 7; // no such block type
    await expect(compress(broken, 6, 65536)).rejects.toThrow(/could not compress pg_dump's output: .*block type 7/);
  });
});
