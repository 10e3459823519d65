/**
 * The README's VM commands (placed `vm` in test/support/readme-commands.ts), run exactly as written from
 * the checkout, each booting its own guest: `npx dma-iommu vm run ... -- npx ...` and `-- npm run ...`
 * inside the guest (npm's writable state on the guest's tmpfs, nothing fetched), plus the variants the
 * README states next to them (the other kernel). ~1 min of guest time per line under TCG.
 */
import { describe, expect, it } from 'vitest';
import { placedReadmeCommands, readReadme, runAndCheck } from '../../support/readme-commands.js';

const runs = placedReadmeCommands(readReadme()).flatMap((c) => {
  if (c.placement.run !== 'vm') return [];
  const variants = (c.placement.variants ?? []).map(([from, to]) => c.text.replace(from, to));
  return [c.text, ...variants].map((text) => ({ text, placement: c.placement }));
});

describe('README VM commands', () => {
  it('there are some (the README shows guest commands)', () => {
    expect(runs.length).toBeGreaterThanOrEqual(3);
  });

  it.each(runs.map((r) => [r.text, r]))('runs as written: %s', async (_text, r) => {
    await runAndCheck(r.text, r.placement, 900_000);
  });
});
