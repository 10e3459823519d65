/**
 * Pacing for tests that make DMA fault on purpose, where the platform's fault source drops
 * records past a rate (BackendCapabilities.faultRateLimit: the kernel log, whose VT-d records are
 * rate-limited to 3 faults per 5 s). Before each expected fault, `paceFault` waits until the
 * source's window has room. The first call of a test file waits one whole window, because faults
 * made by earlier files in the same guest count against the same kernel budget.
 */
import type { BackendCapabilities } from '../../lib/backend/contract.js';

const recent: number[] = [];
let seeded = false;

export async function paceFault(capabilities: BackendCapabilities): Promise<void> {
  const limit = capabilities.faultRateLimit;
  if (!limit) return;
  const window = limit.intervalMs + 500;
  if (!seeded) {
    seeded = true;
    const now = Date.now();
    for (let i = 0; i < limit.faults; i++) recent.push(now);
  }
  for (;;) {
    const now = Date.now();
    while (recent.length && now - recent[0] > window) recent.shift();
    if (recent.length < limit.faults) break;
    await new Promise((r) => setTimeout(r, window - (now - recent[0]) + 50));
  }
  recent.push(Date.now());
}
