/**
 * Off-site copies through the CLI, on a real S3 server (s3rver on loopback, or the service named by
 * BACKUPKIT_TEST_S3_URL): one pass to a local folder and a bucket, restores from the bucket alone,
 * verify and auto from it, clean per storage, copy both ways, and what a failing or vanishing
 * bucket leaves (the local copy, exit 1, nothing listed or open in the bucket).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { s3Env, s3StorageConfig } from '../support/s3.js';
import { type S3TestServer, startS3Server } from '../support/s3server.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';

let server: S3TestServer;
let runs = 0;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

interface SetupOptions {
  storages?: (prefix: string) => Record<string, unknown>;
  target?: Record<string, unknown>;
}

function setup(options: SetupOptions = {}) {
  const dir = tempDir();
  const prefix = `${server.prefix}e2e-${++runs}/`;
  makeSqlite(path.join(dir, 'app.sqlite'));
  makeFiles(path.join(dir, 'uploads'));
  const storages = options.storages?.(prefix) ?? {
    local: { type: 'local', path: './store' },
    offsite: s3StorageConfig(server, prefix),
  };
  const config = writeConfig(dir, {
    storages,
    targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'], ...options.target } },
  });
  const env = s3Env(server);
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env });
  const keys = async () => (await server.keys(prefix)).map((k) => k.slice(prefix.length)).filter((k) => !k.startsWith('.locks/'));
  return { dir, prefix, cli, keys, db: path.join(dir, 'app.sqlite'), store: path.join(dir, 'store'), config, env };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('S3 storage, through the CLI', () => {
  it('backs up to a folder and a bucket in one pass, lists each backup once, and restores from the bucket alone', async () => {
    const { cli, keys, db, store } = setup();
    const before = sqliteRows(db);
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    expect(record.storages).toEqual(['local', 'offsite']);
    expect(await keys()).toEqual([`${record.id}.json`, `${record.id}.zip`]);
    // Nothing but backupkit's own log lines on stderr (cron mails it): no SDK notices.
    expect(backup.stderr).not.toMatch(/Warning/);

    const list = (await cli('--json', 'list')).json();
    expect(list.backups.map((b: { id: string; storages: string[] }) => [b.id, b.storages])).toEqual([[record.id, ['local', 'offsite']]]);
    const offsiteOnly = (await cli('--json', '--storage', 'offsite', 'list')).json();
    expect(offsiteOnly.backups.map((b: { storages: string[] }) => b.storages)).toEqual([['offsite']]);

    // The local copy is gone (a dead disk): the bucket's copy restores, byte for byte the same data.
    rmSync(store, { recursive: true, force: true });
    writeFileSync(db, '');
    const restore = await cli('--json', 'restore', 'app', '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(sqliteRows(db)).toEqual(before);
    const verify = await cli('--json', 'verify');
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json().results).toEqual([{ id: record.id, ok: true, checks: ['archive', 'checksums', 'manifest'], error: null, storage: 'offsite' }]);
    // A test restore reads the bucket's copy too, with ranged reads, into a scratch file.
    const deep = await cli('--json', 'verify', '--deep');
    expect(deep.code, deep.stderr).toBe(0);
    expect(deep.json().results).toEqual([{ id: record.id, ok: true, checks: ['archive', 'checksums', 'manifest', 'restore'], error: null, storage: 'offsite' }]);
  });

  it('uploads a 300 MB archive in parts, and verifies it with ranged reads', async () => {
    const { cli, dir } = setup({ target: { files: ['./big'], compression: { level: 0 } } });
    const big = path.join(dir, 'big');
    // Incompressible, made from a seed so that it needs no 300 MB in memory to check.
    const { mkdirSync, openSync, writeSync, closeSync } = await import('node:fs');
    mkdirSync(big);
    const fd = openSync(path.join(big, 'blob.bin'), 'w');
    const block = Buffer.alloc(1 << 20);
    for (let i = 0; i < 300; i++) {
      createHash('sha512').update(String(i)).digest().copy(block, 0);
      for (let at = 64; at < block.length; at += 64) createHash('sha512').update(block.subarray(at - 64, at)).digest().copy(block, at);
      writeSync(fd, block);
    }
    closeSync(fd);
    const requestsBefore = server.canInjectFaults ? server.faults.requests.length : 0;
    const backup = await cli('--json', '--storage', 'offsite', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    expect(record.size).toBeGreaterThan(300 << 20);
    expect(record.storages).toEqual(['offsite']);
    if (server.canInjectFaults) {
      const parts = server.faults.requests.slice(requestsBefore).filter((r) => r.method === 'PUT' && /partNumber=/.test(r.query));
      expect(parts.length).toBe(Math.ceil(record.size / (5 << 20)));
    }
    const verify = await cli('--json', '--storage', 'offsite', 'verify', record.id);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest'] });
    rmSync(big, { recursive: true });
    const restore = await cli('--json', '--storage', 'offsite', 'restore', 'app', record.id, '--yes', '--no-snapshot', '--only', 'files');
    expect(restore.code, restore.stderr).toBe(0);
    const back = createHash('sha256').update(readFileSync(path.join(big, 'blob.bin'))).digest('hex');
    const entry = (await cli('--json', '--storage', 'offsite', 'inspect', record.id)).json().entries.find((e: { path: string }) => e.path.endsWith('blob.bin'));
    expect(back).toBe(entry.sha256);
  });

  it('auto restores an empty database from the bucket when there is no local storage; verify catches a damaged object', async () => {
    const { cli, db, keys, prefix } = setup({ storages: (prefix) => ({ offsite: s3StorageConfig(server, prefix) }) });
    const before = sqliteRows(db);
    const first = (await cli('--json', 'backup')).json().backups[0];
    const second = (await cli('--json', 'backup')).json().backups[0];
    expect(await keys()).toEqual([`${first.id}.json`, `${first.id}.zip`, `${second.id}.json`, `${second.id}.zip`].sort());
    // Damage the newest archive in the bucket: auto skips it and restores the one before.
    const client = server.client();
    const { GetObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const object = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}${second.id}.zip` }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    bytes[Math.floor(bytes.length / 3)]! ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}${second.id}.zip`, Body: bytes }));
    const verify = await cli('--json', 'verify');
    expect(verify.code).toBe(3);
    expect(verify.json().results.map((r: { id: string; ok: boolean }) => [r.id, r.ok])).toEqual([[second.id, false], [first.id, true]]);

    writeFileSync(db, '');
    const auto = await cli('--json', 'auto');
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.json().results).toEqual([{ target: 'app', action: 'restored', id: first.id }]);
    expect(sqliteRows(db)).toEqual(before);
    expect(auto.stderr).toContain(`skipping ${second.id}`);
  });

  it('cleans each storage by its own rules, and never deletes the newest there', async () => {
    const { cli, keys, store } = setup({
      storages: (prefix) => ({
        local: { type: 'local', path: './store', retention: { keepLast: 1 } },
        offsite: s3StorageConfig(server, prefix, { retention: { keepLast: 3 } }),
      }),
    });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await cli('--json', 'backup')).json().backups[0].id);
    const dry = await cli('--json', 'clean', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = dry.json();
    expect(plan.kept.filter((k: { storage: string }) => k.storage === 'local').map((k: { id: string }) => k.id)).toEqual([ids[3]]);
    expect(plan.kept.filter((k: { storage: string }) => k.storage === 'offsite').map((k: { id: string }) => k.id)).toEqual([ids[3], ids[2], ids[1]]);
    expect(plan.deleted.map((d: { id: string; storage: string }) => `${d.storage}:${d.id}`).sort()).toEqual(
      [`local:${ids[0]}`, `local:${ids[1]}`, `local:${ids[2]}`, `offsite:${ids[0]}`].sort(),
    );
    const clean = await cli('--json', 'clean');
    expect(clean.code, clean.stderr).toBe(0);
    expect(readdirSync(store).filter((n) => n.endsWith('.zip'))).toEqual([`${ids[3]}.zip`]);
    expect((await keys()).filter((k) => k.endsWith('.zip')).sort()).toEqual([`${ids[1]}.zip`, `${ids[2]}.zip`, `${ids[3]}.zip`]);
    // --storage narrows clean to one storage; flags replace every storage's rules.
    const narrowed = await cli('--json', '--storage', 'offsite', 'clean', '--keep-last', '1');
    expect(narrowed.json().deleted.map((d: { storage: string; id: string }) => `${d.storage}:${d.id}`).sort()).toEqual([`offsite:${ids[1]}`, `offsite:${ids[2]}`]);
    expect(readdirSync(store).filter((n) => n.endsWith('.zip'))).toEqual([`${ids[3]}.zip`]);
  });

  it('copies what the destination lacks, both ways, checked by size and SHA-256', async () => {
    const { cli, keys, store } = setup({
      storages: (prefix) => ({ local: { type: 'local', path: './store' }, offsite: s3StorageConfig(server, prefix) }),
      target: { storages: ['local'] },
    });
    const a = (await cli('--json', 'backup')).json().backups[0];
    const b = (await cli('--json', 'backup')).json().backups[0];
    expect(await keys()).toEqual([]);
    const up = await cli('--json', 'copy', '--from', 'local', '--to', 'offsite');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json()).toEqual({
      copied: [
        { id: b.id, from: 'local', to: 'offsite', bytes: b.size },
        { id: a.id, from: 'local', to: 'offsite', bytes: a.size },
      ],
      skipped: [],
    });
    const again = (await cli('--json', 'copy', '--from', 'local', '--to', 'offsite')).json();
    expect(again).toEqual({ copied: [], skipped: [{ id: b.id, reason: 'present' }, { id: a.id, reason: 'present' }] });

    const localSha = sha256(path.join(store, `${a.id}.zip`));
    rmSync(store, { recursive: true, force: true });
    const down = await cli('--json', 'copy', a.id, '--from', 'offsite', '--to', 'local');
    expect(down.code, down.stderr).toBe(0);
    expect(down.json().copied).toEqual([{ id: a.id, from: 'offsite', to: 'local', bytes: a.size }]);
    expect(sha256(path.join(store, `${a.id}.zip`))).toBe(localSha);
    expect(JSON.parse(readFileSync(path.join(store, `${a.id}.json`), 'utf8')).archive.sha256).toBe(localSha);
    expect((await cli('--json', 'verify', a.id, '--storage', 'local')).code).toBe(0);
  });

  it('a bucket that fails mid-upload: the local copy lands, exit 1 names the storage, nothing listed or left open in the bucket', async (ctx) => {
    if (!server.canInjectFaults) ctx.skip();
    const { cli, keys, prefix, store } = setup({ target: { files: ['./uploads', './big'], compression: { level: 0 } } });
    const { mkdirSync, writeFileSync: write } = await import('node:fs');
    mkdirSync(path.join(path.dirname(store), 'big'));
    write(path.join(path.dirname(store), 'big', 'blob.bin'), Buffer.alloc(14 << 20, 7));
    // The second part fails on every attempt.
    server.faults.inject({ match: (r) => r.method === 'PUT' && r.query.get('partNumber') === '2', count: 100, action: { status: 500, code: 'InternalError' } });
    try {
      const backup = await cli('--json', 'backup');
      expect(backup.code).toBe(1);
      const doc = backup.json();
      expect(doc.backups.map((b: { storages: string[] }) => b.storages)).toEqual([['local']]);
      expect(doc.failures).toHaveLength(1);
      expect(doc.failures[0].error).toMatch(/^storage offsite: /);
      expect(doc.failures[0].error).toContain(`s3://${server.bucket}/${prefix}`);
      // The failure reaches the archive's writer once, with the storage's own error.
      expect(backup.stderr).not.toMatch(/multiple times|ERR_MULTIPLE_CALLBACK/);
      expect(readdirSync(store).filter((n) => !n.startsWith('.') && n !== 'history.jsonl')).toEqual([`${doc.backups[0].id}.json`, `${doc.backups[0].id}.zip`]);
      expect(await keys()).toEqual([]);
      expect(await server.openUploads(prefix)).toEqual([]);
      const history = (await cli('--json', 'history')).json().runs;
      expect(history[0]).toMatchObject({ command: 'backup', ok: false, id: doc.backups[0].id });
    } finally {
      server.faults.clear();
    }
  });

  it('a bucket that cannot be reached at all: the local copy still lands (exit 1, naming it), and verify of everything fails', async (ctx) => {
    if (!server.canInjectFaults) ctx.skip();
    const { cli, store } = setup({ storages: (prefix) => ({ local: { type: 'local', path: './store' }, offsite: s3StorageConfig(server, prefix, { }) }) });
    await server.faults.down();
    try {
      const backup = await runCli(['-c', path.join(path.dirname(store), 'backupkit.config.json'), '--json', 'backup'], { cwd: path.dirname(store), env: { ...s3Env(server), AWS_MAX_ATTEMPTS: '1' }, timeoutMs: 100_000 });
      expect(backup.code, backup.stderr).toBe(1);
      const doc = backup.json();
      expect(doc.backups.map((b: { storages: string[] }) => b.storages)).toEqual([['local']]);
      expect(doc.failures[0].error).toMatch(/^storage offsite: /);
      expect(readdirSync(store).filter((n) => n.endsWith('.zip'))).toEqual([`${doc.backups[0].id}.zip`]);
      const verify = await cli('--json', 'verify');
      expect(verify.code).toBe(1);
      expect(verify.json().results.map((r: { storage: string; ok: boolean }) => [r.storage, r.ok])).toEqual([['local', true]]);
    } finally {
      await server.faults.up();
    }
  });

  it('a bucket that fails its reads: verify says so with exit 1 (not a damaged backup, exit 3), checks the local copy, and restore refuses before touching the data', async (ctx) => {
    if (!server.canInjectFaults) ctx.skip();
    const { cli, db, prefix, config } = setup();
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const { id } = backup.json().backups[0];
    const before = sqliteRows(db);
    writeFileSync(db, 'changed since the backup');
    server.faults.inject({ method: 'get', match: (r) => r.path.includes(`${prefix}${id}.zip`), count: 1000, action: { status: 500, code: 'InternalError' } });
    try {
      const env = { ...s3Env(server), AWS_MAX_ATTEMPTS: '1' };
      const verify = await runCli(['-c', config, '--json', 'verify'], { cwd: path.dirname(db), env });
      expect(verify.code, verify.stdout + verify.stderr).toBe(1);
      const results = verify.json().results.map((r: { storage: string; ok: boolean; error: string | null }) => [r.storage, r.ok, r.error]);
      expect(results).toEqual([
        ['local', true, null],
        ['offsite', false, expect.stringMatching(/^storage offsite: GetObject of s3:\/\/.* failed/)],
      ]);
      const restore = await runCli(['-c', config, '--json', '--storage', 'offsite', 'restore', 'app', id, '--yes', '--no-snapshot'], { cwd: path.dirname(db), env });
      expect(restore.code, restore.stderr).toBe(1);
      expect(restore.json().error.message).toMatch(/^storage offsite: /);
      expect(readFileSync(db, 'utf8')).toBe('changed since the backup');
    } finally {
      server.faults.clear();
    }
    const again = await cli('--json', '--storage', 'offsite', 'restore', 'app', id, '--yes', '--no-snapshot');
    expect(again.code, again.stderr).toBe(0);
    expect(sqliteRows(db)).toEqual(before);
  });

  it('a bucket that goes away mid-upload, and a run killed mid-upload: the next run aborts what was left open', async (ctx) => {
    if (!server.canInjectFaults) ctx.skip();
    const { cli, keys, prefix, dir, config, env } = setup({ target: { files: ['./big'], compression: { level: 0 } } });
    const { mkdirSync, writeFileSync: write } = await import('node:fs');
    mkdirSync(path.join(dir, 'big'));
    write(path.join(dir, 'big', 'blob.bin'), Buffer.alloc(40 << 20, 3));
    // Parts after the first hang: the run is killed while its upload is open.
    server.faults.inject({ match: (r) => r.method === 'PUT' && Number(r.query.get('partNumber')) >= 2, count: 1000, action: 'stall' });
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../support/cli.js');
    const child = spawn(process.execPath, [BIN, '-c', config, '--storage', 'offsite', 'backup'], { cwd: dir, env: { ...process.env, CI: 'true', ...env }, stdio: 'ignore' });
    try {
      const deadline = Date.now() + 30_000;
      while ((await server.openUploads(prefix)).length === 0) {
        if (Date.now() > deadline) throw new Error('no upload was opened');
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
    } finally {
      server.faults.clear();
    }
    expect(await server.openUploads(prefix)).toHaveLength(1);
    expect(await keys()).toEqual([]);

    // Down for a moment mid-upload: the SDK's retries carry it through.
    const toggled = (async () => {
      while (!server.faults.requests.some((r) => r.method === 'PUT' && r.query.includes('partNumber=1'))) await new Promise((r) => setTimeout(r, 20));
      await server.faults.down();
      await new Promise((r) => setTimeout(r, 300));
      await server.faults.up();
    })();
    const next = await cli('--json', '--storage', 'offsite', 'backup');
    await toggled;
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/leftover/);
    expect(await server.openUploads(prefix)).toEqual([]);
    const id = next.json().backups[0].id;
    expect(await keys()).toEqual([`${id}.json`, `${id}.zip`]);
  });

  it('an encrypted backup in the bucket restores through ranged reads, and the bucket holds no plaintext', async () => {
    const { execFileSync } = await import('node:child_process');
    const { dir: keysDir } = { dir: tempDir() };
    const identity = path.join(keysDir, 'key.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', identity], { encoding: 'utf8' }).trim();
    const { cli, db, prefix } = setup({
      storages: (prefix) => ({ offsite: s3StorageConfig(server, prefix) }),
      target: { compression: { level: 0 }, encryption: { recipients: [recipient] } },
    });
    const before = sqliteRows(db);
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    expect(record.file).toBe(`${record.id}.zip.age`);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const object = await server.client().send(new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}${record.file}` }));
    const stored = Buffer.from(await object.Body!.transformToByteArray());
    expect(stored.includes(Buffer.from('item 17 '))).toBe(false);
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    writeFileSync(db, '');
    const gets = server.canInjectFaults ? server.faults.requests.length : 0;
    const restore = await cli('--json', '-i', identity, 'restore', 'app', '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(sqliteRows(db)).toEqual(before);
    if (server.canInjectFaults) {
      const ranged = server.faults.requests.slice(gets).filter((r) => r.method === 'GET' && r.path.endsWith('.zip.age'));
      expect(ranged.length).toBeGreaterThan(1);
    }
  });

  it('keeps credentials out of every output, sidecar and error', async () => {
    const { cli, store, keys, prefix } = setup();
    const outputs: string[] = [];
    const run = async (...args: string[]) => {
      const result = await cli(...args);
      outputs.push(result.stdout, result.stderr);
      return result;
    };
    await run('--json', 'backup');
    await run('list');
    await run('-v', 'verify');
    await run('--json', '--storage', 'offsite', 'inspect', 'latest', '--target', 'app');
    // A wrong secret: the error names the storage and bucket, never the key or the secret.
    const bad = await runCli(['-c', writeConfig(tempDir(), { storages: { offsite: s3StorageConfig(server, prefix) }, targets: { app: { driver: 'sqlite', path: path.join(store, '..', 'app.sqlite') } } }), '-v', 'backup'], {
      env: { S3_KEY_ID: server.accessKeyId, S3_SECRET: 'wrong-secret-value-123' },
    });
    outputs.push(bad.stdout, bad.stderr);
    const stored = [
      ...readdirSync(store).filter((n) => n.endsWith('.json')).map((n) => readFileSync(path.join(store, n), 'utf8')),
      ...(await Promise.all((await keys()).filter((k) => k.endsWith('.json')).map(async (k) => {
        const { GetObjectCommand } = await import('@aws-sdk/client-s3');
        const object = await server.client().send(new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}${k}` }));
        return object.Body!.transformToString();
      }))),
    ];
    expect(stored.length).toBeGreaterThanOrEqual(2);
    for (const text of [...outputs, ...stored]) {
      expect(text).not.toContain(server.secretAccessKey);
      expect(text).not.toContain('wrong-secret-value-123');
    }
    if (server.secretAccessKey !== server.accessKeyId) for (const text of [...outputs, ...stored]) expect(text).not.toContain(server.accessKeyId);
  });
});
