/** history: past runs from history.jsonl, newest first. */
import type { HistoryEntry } from '../storage/state.js';
import { type AppDeps, selectTargets } from './deps.js';

export async function readHistory(deps: AppDeps, targets: string[], options: { failed: boolean; limit: number | undefined }): Promise<HistoryEntry[]> {
  const wanted = targets.length > 0 ? new Set(selectTargets(deps, targets).map((t) => t.name)) : undefined;
  const runs = (await deps.state.readHistory())
    .filter((r) => (!wanted || (r.target !== null && wanted.has(r.target))) && (!options.failed || !r.ok))
    .reverse();
  return options.limit === undefined ? runs : runs.slice(0, options.limit);
}
