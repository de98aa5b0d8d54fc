/** A spinner on stderr with bytes and rate while data flows; silent off a terminal. */
import type { Progress } from '../app/deps.js';
import { formatBytes } from '../core/format.js';

export async function createProgress(enabled: boolean, stderr: NodeJS.WriteStream): Promise<Progress> {
  // A terminal that reports no width (some CI agents, `script`) cannot be redrawn in place.
  if (!enabled || !stderr.columns) return { start() {}, bytes() {}, stop() {} };
  const { default: ora } = await import('ora');
  const spinner = ora({ stream: stderr, discardStdin: false });
  let label = '';
  let bytes = 0;
  let since = 0;
  let timer: NodeJS.Timeout | undefined;
  const render = () => {
    const seconds = (Date.now() - since) / 1000;
    const rate = seconds > 0.5 ? ` at ${formatBytes(bytes / seconds)}/s` : '';
    spinner.text = bytes > 0 ? `${label}  ${formatBytes(bytes)}${rate}` : label;
  };
  return {
    start(text) {
      label = text;
      bytes = 0;
      since = Date.now();
      if (!spinner.isSpinning) spinner.start(text);
      render();
      if (!timer) {
        timer = setInterval(render, 250);
        timer.unref();
      }
    },
    bytes(n) {
      bytes += n;
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (spinner.isSpinning) spinner.stop();
    },
  };
}
