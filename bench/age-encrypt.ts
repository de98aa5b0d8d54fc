/**
 * backupkit's age encryption of one file, as the backup pipeline runs it (src/pipeline/age.ts:
 * typage's header, the payload through Node's ChaCha20-Poly1305), for the age-encrypt pair:
 *   node age-encrypt.js <recipient> <input> <output>
 * The output is an age file that `age -d` opens.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { AgeEncrypt } from '../src/pipeline/age.js';

const [recipient, input, output] = process.argv.slice(2);
if (!recipient || !input || !output) {
  process.stderr.write('usage: age-encrypt.js <recipient> <input> <output>\n');
  process.exit(2);
}
const encrypt = await AgeEncrypt.create({ recipients: [recipient] });
await pipeline(createReadStream(input, { highWaterMark: 1 << 20 }), encrypt, createWriteStream(output, { mode: 0o600 }));
