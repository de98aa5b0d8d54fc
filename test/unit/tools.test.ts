/** Finding a driver's tools: the target's `bin` folder before PATH, for each of several names. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ToolMissingError } from '../../src/core/errors.js';
import { requireTool, versionNumber } from '../../src/drivers/tools.js';
import { tempDir } from '../support/cli.js';

function folderWith(root: string, name: string, tools: string[]): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  for (const tool of tools) writeFileSync(path.join(dir, tool), '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

describe('requireTool', () => {
  it('searches the bin folder for every name before PATH, and PATH in name order', () => {
    const root = tempDir();
    const bin = folderWith(root, 'bin', ['mysqldump']);
    const first = folderWith(root, 'first', ['mysqldump']);
    const second = folderWith(root, 'second', ['mariadb-dump']);
    const env = { PATH: [first, second].join(path.delimiter) };
    const names = ['mariadb-dump', 'mysqldump'];
    expect(requireTool({ bin, env }, names, 'install it')).toBe(path.join(bin, 'mysqldump'));
    expect(requireTool({ bin: undefined, env }, names, 'install it')).toBe(path.join(second, 'mariadb-dump'));
    expect(requireTool({ bin: undefined, env }, 'mysqldump', 'install it')).toBe(path.join(first, 'mysqldump'));
  });

  it('names every tool it looked for, where, and how to install one', () => {
    const root = tempDir();
    const bin = folderWith(root, 'bin', []);
    const call = () => requireTool({ bin, env: { PATH: root } }, ['mariadb-dump', 'mysqldump'], 'apt-get install mariadb-client');
    expect(call).toThrow(ToolMissingError);
    expect(call).toThrow(`mariadb-dump or mysqldump not found in ${bin} or PATH`);
    try {
      call();
    } catch (error) {
      expect((error as ToolMissingError).hint).toBe(`apt-get install mariadb-client\nOr set the target's "bin" option to the folder that holds it.`);
    }
  });
});

describe('versionNumber', () => {
  it.each([
    ['pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)', '15.18'],
    ['pg_restore (PostgreSQL) 16.4', '16.4'],
    ['mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)', '10.11.19-MariaDB'],
    ['mysqldump  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)', '8.4.3'],
    ['mongodump version: 100.7.0', '100.7.0'],
    ['Python 3.11.2', '3.11.2'],
    ['some tool, no version', 'some tool, no version'],
  ])('%s -> %s', (line, version) => {
    expect(versionNumber(line)).toBe(version);
  });
});
