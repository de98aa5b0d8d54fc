/** Finding a driver's tools: the target's `bin` folder first, then PATH. */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { DriverContext } from '../core/driver.js';
import { ToolMissingError } from '../core/errors.js';
import type { ToolInfo } from '../core/manifest.js';

export function findTool(name: string, bin: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const dirs = [...(bin ? [bin] : []), ...(env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The tool's path, or a ToolMissingError naming where it looked and how to install it. Given
 * several names (mysqldump or mariadb-dump), the `bin` folder is searched for each of them before
 * PATH is, and the first name found wins within each.
 */
export function requireTool(ctx: Pick<DriverContext, 'bin' | 'env'>, names: string | readonly string[], installHint: string): string {
  const list = typeof names === 'string' ? [names] : names;
  const places = [...(ctx.bin ? [{ bin: ctx.bin, env: {} }] : []), { bin: undefined, env: ctx.env }];
  for (const { bin, env } of places) {
    for (const name of list) {
      const found = findTool(name, bin, env);
      if (found) return found;
    }
  }
  throw new ToolMissingError(`${list.join(' or ')} not found ${ctx.bin ? `in ${ctx.bin} or ` : 'in '}PATH`, {
    hint: `${installHint}\nOr set the target's "bin" option to the folder that holds it.`,
  });
}

/** The first line of `<tool> --version`, e.g. "pg_dump (PostgreSQL) 15.18". */
export async function toolVersion(ctx: DriverContext, tool: string): Promise<string> {
  const { stdout } = await ctx.runner.run({ command: tool, args: ['--version'] }, { signal: ctx.signal });
  return (stdout.split('\n')[0] ?? '').trim();
}

/**
 * The version in a `--version` line: "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> "15.18";
 * MariaDB's "mariadb-dump  Ver 10.19 Distrib 10.11.6-MariaDB, ..." -> "10.11.6-MariaDB" (the
 * release, not the client protocol's number); "mongodump version: 100.7.0" -> "100.7.0". The
 * whole line when it holds no version.
 */
export function versionNumber(line: string): string {
  const distrib = /\bDistrib\s+([^\s,]+)/.exec(line);
  if (distrib) return distrib[1]!;
  return /\b\d+(?:\.\d+)+(?:-[A-Za-z0-9.]+)?/.exec(line)?.[0] ?? line;
}

/** A found tool's name and version, as doctor reports it. */
export async function toolInfo(ctx: DriverContext, tool: string): Promise<ToolInfo> {
  return { name: path.basename(tool), version: versionNumber(await toolVersion(ctx, tool)) };
}
