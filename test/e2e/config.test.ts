/** Config and usage errors: exit 2, naming the file, the key path and what to do. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';

async function withConfig(config: unknown, args: string[] = ['list'], env: Record<string, string | undefined> = {}) {
  const dir = tempDir();
  const file = typeof config === 'string' ? path.join(dir, 'backupkit.config.json') : writeConfig(dir, config);
  if (typeof config === 'string') writeFileSync(file, config);
  return { file, dir, result: await runCli(['-c', file, ...args], { cwd: dir, env }) };
}

describe('config errors', () => {
  it('names a misspelt key with its path and suggests the right spelling', async () => {
    const { file, result } = await withConfig({ targets: { app: { driver: 'sqlite', pth: './a.sqlite' } } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain('targets.app.pth: unknown key (did you mean "path"?)');
    expect(result.stderr).toContain('targets.app.path: required');
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('names the array index of a value of the wrong type', async () => {
    const { result } = await withConfig({ targets: { crm: { driver: 'pg_dump', database: 'crm', tables: ['users', 3] } } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('targets.crm.tables[1]: expected string, received number');
  });

  it('suggests the driver a misspelt driver name meant', async () => {
    const { result } = await withConfig({ targets: { crm: { driver: 'pgdump', database: 'crm' } } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('targets.crm.driver: unknown driver "pgdump" (did you mean "pg_dump"?)');
  });

  it('fills ${VAR} and ${VAR:-default}, and names an unset variable', async () => {
    const config = { storage: { path: '${BK_STORE:-./default-store}' }, targets: { crm: { driver: 'pg_dump', url: '${BK_TEST_URL}' } } };
    const unset = await withConfig(config, ['list'], { BK_TEST_URL: undefined });
    expect(unset.result.code).toBe(2);
    expect(unset.result.stderr).toContain('targets.crm.url: environment variable BK_TEST_URL is not set');
    const set = await withConfig(config, ['--json', 'list'], { BK_TEST_URL: 'postgres://u@h/db' });
    expect(set.result.code, set.result.stderr).toBe(0);
    expect(set.result.json().stats.count).toBe(0);
    expect(set.result.stdout).not.toContain('default-store');
  });

  it('rejects a bad target name, a bad duration and a bad URL', async () => {
    const { result } = await withConfig({
      defaults: { timeout: '5 minutes' },
      targets: { 'bad name': { driver: 'sqlite', path: 'x' }, crm: { driver: 'pg_dump', url: 'mysql://x/y' } },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('defaults.timeout');
    expect(result.stderr).toContain('targets.bad name: invalid target name');
    expect(result.stderr).toContain('targets.crm.url: expected a postgres:// or postgresql:// URL');
  });

  it('reports unreadable JSON with the file, and a missing file', async () => {
    const { file, result } = await withConfig('{ "targets": ');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    const dir = tempDir();
    const missing = await runCli(['-c', 'nope.json', 'list'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.json: the config file does not exist');
  });

  it('finds backupkit.config.json by searching from the current folder', async () => {
    const dir = tempDir();
    writeConfig(dir, { targets: { app: { driver: 'sqlite', path: './a.sqlite' } } });
    const found = await runCli(['--json', 'list'], { cwd: dir });
    expect(found.code, found.stderr).toBe(0);
    const empty = tempDir();
    const none = await runCli(['list'], { cwd: empty });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no config file found');
  });

  it('prints errors as one JSON document with --json', async () => {
    const { result } = await withConfig({ targets: { app: { driver: 'sqlite' } } }, ['--json', 'list']);
    expect(result.code).toBe(2);
    const doc = result.json();
    expect(Object.keys(doc)).toEqual(['error']);
    expect(doc.error.code).toBe(2);
    expect(doc.error.message).toContain('targets.app.path');
  });
});

describe('usage errors', () => {
  it('stops quietly, exit 0, when the reader of its output closes the pipe early', () => {
    // `head -c 1` takes one byte and closes the pipe while help is still being written.
    const out = execFileSync('bash', ['-c', `node "${BIN}" --help | head -c 1 >/dev/null; echo "exit \${PIPESTATUS[0]}"`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim()).toBe('exit 0');
  });

  it('exits 2 for an unknown command, option or target', async () => {
    const { file, dir } = await withConfig({ targets: { app: { driver: 'sqlite', path: './a.sqlite' } } });
    const cli = (...args: string[]) => runCli(['-c', file, ...args], { cwd: dir });
    expect((await cli('bakup')).code).toBe(2);
    expect((await cli('bakup')).stderr).toContain('backup');
    expect((await cli('list', '--bogus')).code).toBe(2);
    const target = await cli('--json', 'backup', 'ap');
    expect(target.code).toBe(2);
    expect(target.json().error.message).toContain('unknown target "ap" (did you mean "app"?)');
    expect((await cli('list', '--limit', 'zero')).code).toBe(2);
  });

  it('names the package that provides a missing tool (exit 1)', async () => {
    const { file, dir } = await withConfig({ targets: { crm: { driver: 'pg_dump', database: 'crm', bin: './nothing-here' } } });
    const result = await runCli(['-c', file, 'backup', 'crm'], { cwd: dir, env: { PATH: '/nonexistent' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('pg_dump not found');
    expect(result.stdout + result.stderr).toContain('apt-get install postgresql-client');
  });

  it('gives install hints for every platform when the MongoDB tools are missing (exit 1)', async () => {
    const { file, dir } = await withConfig({ targets: { m: { driver: 'mongodump', uri: 'mongodb://127.0.0.1:1', database: 'x' } } });
    const result = await runCli(['-c', file, 'backup', 'm'], { cwd: dir, env: { PATH: '/nonexistent' } });
    expect(result.code).toBe(1);
    for (const platform of ['Debian/Ubuntu', 'RHEL', 'macOS', 'Windows']) expect(result.stderr).toContain(platform);
    expect(result.stderr).toContain('mongodb-database-tools');
  });

  it('answers --help quickly and --version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes');
    const version = await runCli(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
