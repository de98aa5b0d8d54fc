/**
 * doctor's checks of what a backup needs before it starts: the target's config, its tools, its
 * database. Each resolves with an outcome or throws; the caller bounds its time.
 */
import { statSync } from 'node:fs';
import type { TargetConfig } from '../../config/load.js';
import { formatPath } from '../../config/paths.js';
import { type AppDeps, driverContext } from '../deps.js';
import type { Outcome } from '../doctor.js';
import { formatSpan } from './backups.js';

/**
 * The config resolved for the target (driver, storages, schedule, maxAge), and what the schema
 * cannot see: a `bin` folder or a `files` entry that does not exist.
 */
export function configCheck(deps: Pick<AppDeps, 'config'>, target: TargetConfig): Outcome {
  const problems: string[] = [];
  const at = (...keys: (string | number)[]) => formatPath(['targets', target.name, ...keys]);
  const kind = (file: string) => {
    try {
      return statSync(file).isDirectory() ? 'folder' : 'file';
    } catch {
      return undefined;
    }
  };
  if (target.bin !== undefined && kind(target.bin) !== 'folder') problems.push(`${at('bin')}: ${target.bin} is not a folder`);
  target.files.forEach((file, index) => {
    if (!kind(file)) problems.push(`${at('files', index)}: ${file} does not exist`);
  });
  if (problems.length > 0) {
    return { ok: false, detail: problems.join('; '), hint: `Fix ${problems.length === 1 ? 'it' : 'them'} in ${deps.config.file}, or create what is missing.` };
  }
  const parts = [
    `driver ${target.driver.name}`,
    `storages ${target.storages.join(', ')}`,
    ...(target.files.length > 0 ? [`${target.files.length} files entr${target.files.length === 1 ? 'y' : 'ies'}`] : []),
    ...(target.encryption ? ['encrypted'] : []),
    ...(target.schedule ? [`schedule "${target.schedule}"`] : []),
    ...(target.maxAgeMs !== undefined ? [`maxAge ${formatSpan(target.maxAgeMs, { exact: true })}`] : []),
  ];
  return { ok: true, detail: parts.join('; ') };
}

/** The dump and restore tools, found as backup and restore find them, with their versions. */
export async function toolsCheck(deps: AppDeps, target: TargetConfig, signal: AbortSignal): Promise<Outcome> {
  const ctx = driverContext(deps, target, signal, target.name);
  const { driver } = target;
  if (driver.tools) {
    const tools = await driver.tools(ctx, target.options);
    return { ok: true, detail: tools.map((t) => `${t.name} ${t.version}`).join(', ') };
  }
  await driver.checkTools?.(ctx, target.options, 'dump');
  await driver.checkTools?.(ctx, target.options, 'restore');
  return { ok: true, detail: driver.checkTools ? 'found' : 'none needed' };
}

/** The database answers, as the driver connects for a backup. */
export async function databaseCheck(deps: AppDeps, target: TargetConfig, signal: AbortSignal): Promise<Outcome> {
  if (!target.driver.ping) return { ok: true, detail: `not checked: the ${target.driver.name} driver cannot ping` };
  const detail = await target.driver.ping(driverContext(deps, target, signal, target.name), target.options);
  return { ok: true, detail };
}
