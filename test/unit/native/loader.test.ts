import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, resetNativeLoader } from '../../../lib/backend/native/loader.js';

describe('native loader', () => {
  const saved = process.env.DMA_IOMMU_NATIVE_PATH;
  afterEach(() => {
    if (saved === undefined) delete process.env.DMA_IOMMU_NATIVE_PATH;
    else process.env.DMA_IOMMU_NATIVE_PATH = saved;
    resetNativeLoader();
  });

  it('finds the built addon through bindings and memoises it', () => {
    resetNativeLoader();
    const r = loadNative();
    expect(r).toMatchObject({ ok: true, path: expect.stringMatching(/dma_iommu\.node$/) });
    expect(loadNative()).toBe(r);
  });

  it('DMA_IOMMU_NATIVE_PATH: a missing file is "not built"', () => {
    process.env.DMA_IOMMU_NATIVE_PATH = '/nonexistent/dma_iommu.node';
    resetNativeLoader();
    expect(loadNative()).toMatchObject({ ok: false, state: 'not-built', message: expect.stringContaining('/nonexistent/dma_iommu.node') });
  });

  it('DMA_IOMMU_NATIVE_PATH: a file that is not a loadable addon is "broken", with the loader message kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-loader-'));
    const bogus = join(dir, 'bogus.node');
    writeFileSync(bogus, 'not an ELF file');
    process.env.DMA_IOMMU_NATIVE_PATH = bogus;
    resetNativeLoader();
    const r = loadNative();
    expect(r).toMatchObject({ ok: false, state: 'broken' });
    expect((r as { message: string }).message).toMatch(/failed to load: .*(invalid ELF|too short|file)/i);
    const notAddon = join(dir, 'plain.js');
    writeFileSync(notAddon, 'module.exports = { hello: 1 };');
    process.env.DMA_IOMMU_NATIVE_PATH = notAddon;
    resetNativeLoader();
    expect(loadNative()).toMatchObject({ ok: false, state: 'broken', message: expect.stringContaining('is not the dma_iommu addon') });
  });

  it('DMA_IOMMU_NATIVE_PATH: the real binary loads from its path', () => {
    resetNativeLoader();
    const real = loadNative();
    if (!real.ok) throw new Error(real.message);
    process.env.DMA_IOMMU_NATIVE_PATH = real.path;
    resetNativeLoader();
    expect(loadNative()).toMatchObject({ ok: true, path: real.path });
  });
});
