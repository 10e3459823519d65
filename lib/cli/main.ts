/**
 * `dma-iommu` command dispatcher: info, selftest, vm.
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'vm': {
      const { vmCommand } = await import('../vm/cli.js');
      return vmCommand(rest);
    }
    case 'info': {
      const { infoCommand } = await import('./info.js');
      return infoCommand(rest);
    }
    case 'selftest': {
      const { selftestCommand } = await import('./selftest.js');
      return selftestCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`dma-iommu: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

const USAGE = `Usage: dma-iommu <command> [options]

Commands:
  info [--json] [--backend NAME]
      Which backend is used and why, devices, IOMMU groups, domain types, IOVA ranges.
      --json always prints one JSON object: { "ok": true, ... } (exit 0), or { "ok": false,
      "error": { "code", "message", "argument" } } when the backend cannot be had (exit 1).
  selftest [--backend NAME] [--device BDF] [--fault-timeout MS] [--json]
      Run the whole WDK lifecycle (device, domain, map, DMA round trip, blocked DMA fault, teardown).
      --fault-timeout: how long to wait for the blocked DMA's fault, 1..2147483647 ms (default 10000).

  NAME (as in DMA_IOMMU_BACKEND): auto, sim, simulated, native, iommufd, vfio-type1, type1.
  vm run [--kernel type1|iommufd] [--devices N] [--timeout S] -- COMMAND...
      Run COMMAND inside a QEMU guest with an emulated Intel VT-d IOMMU and edu DMA devices.
  vm info [--json]
      What the VM harness has cached and would use.
`;
