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
  info [--json] [--backend auto|sim|native]
      Which backend is used and why, devices, IOMMU groups, domain types, IOVA ranges.
  selftest [--backend auto|sim|native] [--device BDF] [--json]
      Run the whole WDK lifecycle (device, domain, map, DMA round trip, blocked DMA fault, teardown).
  vm run [--kernel type1|iommufd] [--devices N] [--timeout S] -- COMMAND...
      Run COMMAND inside a QEMU guest with an emulated Intel VT-d IOMMU and edu DMA devices.
  vm info
      What the VM harness has cached and would use.
`;
