/**
 * age encryption: byte-level interoperability with the stock `age` CLI both ways (around the
 * 64 KiB chunk boundary and the empty file), ranged reads of the plaintext, tampering and
 * truncation caught, and encrypted round trips through the CLI on real engines (pg_dump with
 * recipients, sqlite with a passphrase, mongo-json), with the plaintext absent from what is stored.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeOf } from '../../src/core/errors.js';
import { AgeEncrypt, openDecrypted } from '../../src/pipeline/age.js';
import { openLocalArchive } from '../../src/storage/local.js';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { databaseName, mongoFingerprint, mongoInfo, seedShop, withClient } from '../support/mongodb.js';
import { createDatabase, fingerprint, pgTargetConfig, seedVariedTypes, sql } from '../support/pgdb.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';

const SIZES = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 200_000];

function keyPair(dir: string, name = 'key.txt'): { file: string; recipient: string } {
  const file = path.join(dir, name);
  execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
  return { file, recipient: execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim() };
}

async function encrypt(data: Buffer, keys: { recipients: string[] } | { passphrase: string }): Promise<Buffer> {
  const stream = await AgeEncrypt.create(keys);
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
  // In uneven writes from one reused buffer: the stream must copy what it keeps.
  const buffer = Buffer.alloc(10_007);
  for (let at = 0; at < data.length; at += buffer.length) {
    const n = data.copy(buffer, 0, at);
    await new Promise<void>((resolve) => stream.write(buffer.subarray(0, n), () => resolve()));
    buffer.fill(0);
  }
  stream.end();
  await done;
  return Buffer.concat(out);
}

async function decrypted(file: string, identity: string) {
  return openDecrypted(await openLocalArchive(file), { identities: [{ source: identity, text: readFileSync(identity, 'utf8') }], passphrases: [] }, undefined, file);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('age format, against the age CLI', () => {
  it.each(SIZES)('backupkit encrypts %i bytes that age -d decrypts, and decrypts what age -e encrypts', async (size) => {
    const dir = tempDir();
    const { file: identity, recipient } = keyPair(dir);
    const data = randomBytes(size);
    const ours = path.join(dir, 'ours.age');
    writeFileSync(ours, await encrypt(data, { recipients: [recipient] }));
    expect(execFileSync('age', ['-d', '-i', identity, ours]).equals(data)).toBe(true);

    const plain = path.join(dir, 'plain.bin');
    writeFileSync(plain, data);
    const theirs = path.join(dir, 'theirs.age');
    execFileSync('age', ['-e', '-r', recipient, '-o', theirs, plain]);
    const reader = await decrypted(theirs, identity);
    expect(reader.size).toBe(size);
    expect((await readAll(reader.stream(0, reader.size))).equals(data)).toBe(true);
    // Ranges across the chunk boundaries, by stream and by positional read.
    for (const [from, to] of [[0, 10], [65_530, 65_546], [size - 3, size], [1, size - 1]] as const) {
      const a = Math.max(0, Math.min(from, size));
      const b = Math.max(a, Math.min(to, size));
      expect((await readAll(reader.stream(a, b))).equals(data.subarray(a, b))).toBe(true);
      const buffer = Buffer.alloc(b - a);
      expect(await reader.read(buffer, 0, b - a, a)).toBe(b - a);
      expect(buffer.equals(data.subarray(a, b))).toBe(true);
    }
  });

  it('a passphrase file opens with age -d and with backupkit', async () => {
    const dir = tempDir();
    const data = randomBytes(70_000);
    const file = path.join(dir, 'p.age');
    writeFileSync(file, await encrypt(data, { passphrase: 'correct horse battery staple' }));
    const reader = await openDecrypted(await openLocalArchive(file), { identities: [], passphrases: ['correct horse battery staple'] }, undefined, file);
    expect((await readAll(reader.stream(0, reader.size))).equals(data)).toBe(true);
    const wrong = await openDecrypted(await openLocalArchive(file), { identities: [], passphrases: ['wrong'] }, undefined, file).then(() => undefined, (e: unknown) => e);
    expect(exitCodeOf(wrong)).toBe(ExitCode.usage);
  });

  it('a flipped byte or a truncated file fails authentication (exit 3); a wrong identity is exit 2', async () => {
    const dir = tempDir();
    const { file: identity, recipient } = keyPair(dir);
    const { file: other } = keyPair(dir, 'other.txt');
    const data = randomBytes(200_000);
    const sealed = await encrypt(data, { recipients: [recipient] });
    const flipped = Buffer.from(sealed);
    flipped[sealed.length - 70_000]! ^= 0x01;
    writeFileSync(path.join(dir, 'flipped.age'), flipped);
    const reader = await decrypted(path.join(dir, 'flipped.age'), identity);
    expect(exitCodeOf(await readAll(reader.stream(0, reader.size)).then(() => undefined, (e: unknown) => e))).toBe(ExitCode.verification);
    // Cut at a chunk boundary: what is left looks whole but its last chunk lacks the final flag.
    writeFileSync(path.join(dir, 'cut.age'), sealed.subarray(0, sealed.length - (200_000 - 3 * 65_536) - 16));
    const cut = await decrypted(path.join(dir, 'cut.age'), identity);
    expect(exitCodeOf(await readAll(cut.stream(0, cut.size)).then(() => undefined, (e: unknown) => e))).toBe(ExitCode.verification);
    writeFileSync(path.join(dir, 'ok.age'), sealed);
    const error = await decrypted(path.join(dir, 'ok.age'), other).then(() => undefined, (e: unknown) => e);
    expect(exitCodeOf(error)).toBe(ExitCode.usage);
  });
});

describe('encrypted backups through the CLI', () => {
  it('pg_dump with two recipients: either identity restores, the stored bytes hide the data, age and pg_restore open the archive', async () => {
    const dir = tempDir();
    const alice = keyPair(dir, 'alice.txt');
    const bob = keyPair(dir, 'bob.txt');
    const stranger = keyPair(dir, 'stranger.txt');
    const database = await createDatabase('enc');
    await seedVariedTypes(database, 200);
    await sql(database, `INSERT INTO public.customers (name, bio) VALUES ('MARKER-4471-SECRET-ROW', 'a marker row')`);
    const recipientsFile = path.join(dir, 'recipients.txt');
    writeFileSync(recipientsFile, `# the ops team\n${alice.recipient}\n\n${bob.recipient}\n`);
    const config = writeConfig(dir, {
      storage: { path: './store' },
      // Stored (level 0), so that the zip inside holds the marker row as it is.
      targets: { crm: pgTargetConfig(database, { format: 'plain', compression: { level: 0 }, encryption: { recipientsFile: './recipients.txt' } }) },
    });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const before = await fingerprint(database);
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    expect(record).toMatchObject({ encrypted: true, file: `${record.id}.zip.age`, units: Object.keys(before).length });
    const store = path.join(dir, 'store');
    const sidecarText = readFileSync(path.join(store, `${record.id}.json`), 'utf8');
    const sidecar = JSON.parse(sidecarText);
    expect(Object.keys(sidecar).sort()).toEqual(
      ['archive', 'createdAt', 'driver', 'durationMs', 'encrypted', 'encryption', 'files', 'format', 'id', 'note', 'parts', 'tags', 'target', 'units'],
    );
    expect(sidecar.encryption).toEqual({ type: 'age', recipients: [alice.recipient, bob.recipient] });
    expect(sidecarText).not.toContain('customers');
    expect(sidecarText).not.toContain(database);
    const stored = readFileSync(path.join(store, record.file));
    expect(stored.includes(Buffer.from('MARKER-4471-SECRET-ROW'))).toBe(false);
    expect(stored.includes(Buffer.from('customers'))).toBe(false);

    // No lock-in: the stock tools alone open it.
    const zip = path.join(dir, 'plain.zip');
    execFileSync('age', ['-d', '-i', bob.file, '-o', zip, path.join(store, record.file)]);
    expect(execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).split('\n')).toContain('db/dump.sql');
    expect(readFileSync(zip).includes(Buffer.from('MARKER-4471-SECRET-ROW'))).toBe(true);

    // Plain verify needs no key; with one it checks everything.
    expect((await cli('--json', 'verify')).json().results[0]).toMatchObject({ ok: true, checks: ['archive'] });
    expect((await cli('--json', '-i', alice.file, 'verify')).json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest'] });
    const clear = (await cli('--json', 'inspect', record.id)).json();
    expect(clear.entries).toBeUndefined();
    const full = (await cli('--json', '-i', bob.file, 'inspect', record.id)).json();
    expect(full.units.map((u: { name: string }) => u.name)).toEqual(Object.keys(before));

    // No identity, the wrong one: exit 2, saying which option gives it and whose keys it wants.
    await sql(database, 'DELETE FROM public.events');
    const none = await cli('restore', 'crm', '--yes', '--no-snapshot');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--identity');
    const wrong = await cli('-i', stranger.file, 'restore', 'crm', '--yes', '--no-snapshot');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(alice.recipient);
    // Either recipient's identity restores; BACKUPKIT_IDENTITY_FILE works like --identity.
    const restored = await runCli(['-c', config, 'restore', 'crm', '--yes', '--no-snapshot'], { cwd: dir, env: { BACKUPKIT_IDENTITY_FILE: bob.file } });
    expect(restored.code, restored.stderr).toBe(0);
    expect(await fingerprint(database)).toEqual(before);

    // A flipped byte: verify without a key says so (exit 3), restore refuses before touching the database.
    const flipped = Buffer.from(stored);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    writeFileSync(path.join(store, record.file), flipped);
    expect((await cli('verify')).code).toBe(3);
    await sql(database, 'DELETE FROM public.events');
    const damaged = await fingerprint(database);
    const refused = await cli('-i', alice.file, 'restore', 'crm', '--yes', '--no-snapshot');
    expect(refused.code).toBe(3);
    expect(await fingerprint(database)).toEqual(damaged);
  });

  it('sqlite and files with a passphrase: round trip, truncation caught, the passphrase in no output', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'));
    makeFiles(path.join(dir, 'uploads'));
    const config = writeConfig(dir, {
      storage: { path: './store' },
      targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'], encryption: { passphrase: '${BK_PASSPHRASE}' } } },
    });
    const env = { BK_PASSPHRASE: 'plover-kestrel-avocet-9' };
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env });
    const before = sqliteRows(path.join(dir, 'app.sqlite'));
    const backup = await cli('--json', '-v', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    expect(JSON.parse(readFileSync(path.join(dir, 'store', `${record.id}.json`), 'utf8')).encryption).toEqual({ type: 'age', passphrase: true });
    writeFileSync(path.join(dir, 'app.sqlite'), '');
    const restore = await cli('--json', '-v', 'restore', 'app', '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(sqliteRows(path.join(dir, 'app.sqlite'))).toEqual(before);
    for (const text of [backup.stdout, backup.stderr, restore.stdout, restore.stderr, ...readdirSync(path.join(dir, 'store')).filter((n) => !n.startsWith('.')).map((n) => readFileSync(path.join(dir, 'store', n), 'latin1'))]) {
      expect(text).not.toContain(env.BK_PASSPHRASE);
    }
    const file = path.join(dir, 'store', record.file);
    writeFileSync(file, readFileSync(file).subarray(0, record.size - 100));
    const verify = await cli('--json', 'verify');
    expect(verify.code).toBe(3);
    expect(verify.json().results[0].error).toMatch(/truncated/);
  });

  it('mongo-json with a recipient: round trip of every document', async () => {
    const dir = tempDir();
    const key = keyPair(dir);
    const database = databaseName('encjson');
    await seedShop(database, 2_000);
    const config = writeConfig(dir, {
      storage: { path: './store' },
      targets: { shop: { driver: 'mongo-json', uri: mongoInfo().uri, database, encryption: { recipients: [key.recipient], identityFile: './key.txt' } } },
    });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const before = await mongoFingerprint(database);
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    await withClient((client) => client.db(database).collection('items').deleteMany({}));
    // encryption.identityFile: an unattended restore needs no flag.
    const restore = await cli('--json', 'restore', 'shop', '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(await mongoFingerprint(database)).toEqual(before);
  });
});
