#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

// Deflate runs on libuv's thread pool (four threads by default): give it one per core, plus one for
// file I/O. The pool reads this once, when first used, so it is set before anything else loads.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 1));

// What backupkit keeps alive is small (a few blocks and a batch of documents), but a dump can make
// garbage fast: mongo-json allocates several hundred MB on the way through 200,000 documents. After
// a full collection V8 lets the heap grow by a factor it picks between 1.1 and 4 (sized for
// servers); this fixes the factor at 1.5, which keeps mongo-json's peak about 25 MB lower at the
// same speed. V8 reads the flag each time it sets the next limit, after every full collection.
setFlagsFromString('--heap-growing-percent=50');
await import('../dist/main.js');
