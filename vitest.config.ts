import { defineConfig } from 'vitest/config';

// The projects:
//  - unit:     host tests (unit, property, conformance on the simulator). `npm test`.
//  - vm-host:  tests that boot guests through `dma-iommu vm` (harness behaviour). Part of `npm run test:vm`.
//  - vm-guest: tests that must run INSIDE a guest (real kernel, real IOMMU). Run through `vm run`.
//    vm-guest-bridge (`--topology bridge`) and vm-guest-hotplug (`--hotplug`) need guests of their own.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts', 'test/contract/**/*.test.ts', 'test/sweep/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'vm-host',
          include: ['test/vm/host/**/*.test.ts'],
          testTimeout: 1_800_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'vm-guest',
          include: ['test/vm/guest/**/*.test.ts'],
          exclude: ['test/vm/guest/bridge/**', 'test/vm/guest/hotplug-*.test.ts'],
          testTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // guest tests that need `--topology bridge` (one IOMMU group shared by two edu devices)
        test: {
          name: 'vm-guest-bridge',
          include: ['test/vm/guest/bridge/**/*.test.ts'],
          testTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // guest tests that need hot-plug slots and QMP (`--hotplug`)
        test: {
          name: 'vm-guest-hotplug',
          include: ['test/vm/guest/hotplug-*.test.ts'],
          testTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
