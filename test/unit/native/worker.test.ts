import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../../lib/backend/native/loader.js';

const r = loadNative();
const path = r.ok ? r.path : '';

// CommonJS worker body: load the addon, allocate, open fds, leak some on purpose, then exit.
const body = (leak: boolean) => `
const { parentPort, workerData } = require('node:worker_threads');
const a = require(workerData.path);
const m = a.allocMemory(1n << 20n, a.constants.MEM_POPULATE, true);
new Uint8Array(m.buffer).fill(7);
const h = a.open('/dev/null', a.constants.O_RDONLY, 'file');
const k = (() => { try { return a.kmsgOpen(); } catch { return null; } })();
const s = a.stats();
if (!${leak}) { m.free(); h.close(); if (k) k.close(); }
parentPort.postMessage({ stats: s, after: a.stats(), sum: new Uint8Array(m.buffer ?? new ArrayBuffer(0)).length });
`;

const require = createRequire(import.meta.url);

function openFds(): number {
  return require('node:fs').readdirSync('/proc/self/fd').length;
}

function run(leak: boolean): Promise<{ stats: { openHandles: number; externalBytes: number }; after: { openHandles: number } }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(body(leak), { eval: true, workerData: { path } });
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe.runIf(r.ok)('native addon in worker threads', () => {
  it('loads per worker with its own state, and worker exit closes what it leaked', async () => {
    const before = openFds();
    const clean = await run(false);
    expect(clean.stats.openHandles).toBeGreaterThanOrEqual(1);
    expect(clean.stats.externalBytes).toBe(1 << 20);
    expect(clean.after.openHandles).toBe(0);
    for (let i = 0; i < 8; i++) await run(true);
    await new Promise((res) => setTimeout(res, 100));
    expect(openFds()).toBeLessThanOrEqual(before + 1); // the cleanup hook closed every leaked fd
    // the main thread's instance is unaffected
    const main = (r as { addon: { stats(): { openHandles: number } } }).addon.stats();
    expect(main.openHandles).toBe(0);
  });
});

describe.runIf(r.ok)('native addon at process exit', () => {
  it('exits cleanly with live handles, mapped views and pending finalizers (cleanup hook)', async () => {
    const { spawnSync } = await import('node:child_process');
    const src = `
      const a = require(${JSON.stringify(path)});
      const ms = [];
      for (let i = 0; i < 16; i++) { const m = a.allocMemory(1n << 20n, 0, true); new Uint8Array(m.buffer).fill(i); ms.push(m); }
      const h = a.open('/dev/null', a.constants.O_RDONLY, 'file');
      globalThis.keep = [ms, h, a.allocMemory(1n << 30n, 0, false)];
      setTimeout(() => process.exit(3), 10);
    `;
    const out = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8', timeout: 30_000 });
    expect(out.signal).toBeNull();
    expect(out.status).toBe(3);
    expect(out.stderr).toBe('');
  });
});
