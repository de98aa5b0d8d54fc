/** verify: check archives (every backup in the storage when no refs are given). */
import { errorMessage } from '../core/errors.js';
import { newestFirst } from '../core/manifest.js';
import { checkArchive, type CheckName } from '../pipeline/verify.js';
import { type AppDeps, recordRun } from './deps.js';
import { resolveRef } from './refs.js';

export interface VerifyResult {
  id: string;
  ok: boolean;
  checks: CheckName[];
  error: string | null;
}

export async function verifyBackups(deps: AppDeps, refs: string[], options: { target: string | undefined }): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  const items: { id: string; target: string | null; run: () => ReturnType<typeof checkArchive> }[] = [];
  if (refs.length === 0) {
    const sidecars = (await deps.storage.listSidecars()).filter((s) => !options.target || s.target === options.target).sort(newestFirst);
    for (const sidecar of sidecars) {
      items.push({ id: sidecar.id, target: sidecar.target, run: () => checkArchive(deps.storage.archivePath(sidecar.id), sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n) }) });
    }
  } else {
    for (const ref of refs) {
      try {
        const resolved = await resolveRef(deps, ref, options.target);
        items.push({
          id: resolved.sidecar?.id ?? ref,
          target: resolved.sidecar?.target ?? null,
          run: () => checkArchive(resolved.file, resolved.sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n) }),
        });
      } catch (error) {
        results.push({ id: ref, ok: false, checks: [], error: errorMessage(error) });
      }
    }
  }
  for (const item of items) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = deps.now();
    deps.progress.start(`verifying ${item.id}`);
    const checked = await item.run().finally(() => deps.progress.stop());
    const id = checked.manifest?.id ?? item.id;
    results.push({ id, ok: checked.ok, checks: checked.checks, error: checked.error });
    if (!checked.ok) deps.log.error({ id }, `${id}: ${checked.error}`);
    await recordRun(deps, { command: 'verify', target: item.target ?? checked.manifest?.target ?? null, id, started, error: checked.ok ? undefined : checked.error });
  }
  return results;
}
