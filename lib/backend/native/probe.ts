/**
 * What exists on this machine for the native backends, step by step (each a ProbeStep): the
 * addon, IOMMU groups, vfio-pci devices, /dev/iommu and the device cdevs (iommufd), /dev/vfio/vfio
 * and the group nodes (type1), the kernel log (faults), pagemap (real PAs), dma_entry_limit.
 * Only looks: nothing is opened that would claim a device.
 */
import { closeSync, constants as fsc, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import type { MemoryInfo, ProbeStep } from '../contract.js';
import type { NativeAddon } from './addon-types.js';
import { loadNative } from './loader.js';
import { probePhysical } from './memory.js';
import { DEFAULT_PATHS, type DetectedIommu, type SysPaths, canReadWrite, detectIommu, dmaEntryLimit, listPciDevices, p, whyNotUsable } from './sysfs.js';

export interface ProbeOptions {
  readonly paths?: SysPaths;
  /** Use this addon instead of loading one (tests); null = behave as if it were not built. */
  readonly addon?: NativeAddon | null;
}

export interface ProbeResult {
  readonly steps: ProbeStep[];
  readonly addon: NativeAddon | null;
  readonly iommufd: { readonly usable: boolean; readonly why: string; readonly devices: string[] };
  readonly type1: { readonly usable: boolean; readonly why: string; readonly devices: string[] };
  readonly kmsg: boolean;
  readonly memoryInfo: MemoryInfo;
}

function kmsgReadable(addon: NativeAddon | null): { ok: boolean; detail: string } {
  try {
    if (addon) {
      addon.kmsgOpen().close();
    } else {
      closeSync(openSync('/dev/kmsg', fsc.O_RDONLY | fsc.O_NONBLOCK));
    }
    return { ok: true, detail: '/dev/kmsg is readable: DMA faults logged by the IOMMU driver are reported' };
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).message;
    return { ok: false, detail: `/dev/kmsg is not readable (${code}; needs root/CAP_SYSLOG when kernel.dmesg_restrict=1): no fault reports (faultSource 'none')` };
  }
}

/** The command that makes a device node usable by the current user. */
/** What `info` says about the IOMMU model: its units, and what a user of this model must know. */
export function iommuDetail(paths: SysPaths, iommu: DetectedIommu): string {
  if (iommu.units.length === 0) return 'none in /sys/class/iommu';
  const base = `${iommu.model} (${iommu.units.join(', ')}${iommu.emulated ? ', emulated by QEMU' : ''})`;
  if (iommu.model === 'virtio') {
    const param = (mod: string) => {
      try {
        return readFileSync(p(paths, 'sys/module', mod, 'parameters/allow_unsafe_interrupts'), 'utf8').trim();
      } catch {
        return 'not loaded';
      }
    };
    return `${base}: no interrupt remapping, so VFIO and iommufd attach a device only with allow_unsafe_interrupts=1 (vfio_iommu_type1: ${param('vfio_iommu_type1')}, iommufd: ${param('iommufd')}); device MSIs are not isolated`;
  }
  if (iommu.model === 'amd' && iommu.emulated) return `${base}: QEMU's amd-iommu logs no DMA fault, so blocked DMA is not reported (faultSource 'none')`;
  return base;
}

export function nodeFix(node: string): string {
  return `sudo chown "$USER" ${node}`;
}

export function probe(options: ProbeOptions = {}): ProbeResult {
  const paths = options.paths ?? DEFAULT_PATHS;
  const steps: ProbeStep[] = [];
  const step = (check: string, ok: boolean, detail: string) => steps.push({ check, ok, detail });

  let addon: NativeAddon | null = null;
  if (options.addon !== undefined) {
    addon = options.addon;
    step('native addon', addon !== null, addon ? 'provided' : 'not built');
  } else {
    const r = loadNative();
    if (r.ok) addon = r.addon;
    step('native addon', r.ok, r.ok ? `loaded ${r.path}` : `${r.state}: ${r.message}`);
  }

  let groups = 0;
  try {
    groups = readdirSync(p(paths, 'sys/kernel/iommu_groups')).length;
  } catch {
    /* none */
  }
  step('IOMMU groups', groups > 0, groups > 0 ? `${groups} group(s) in /sys/kernel/iommu_groups` : 'no IOMMU groups: no IOMMU enabled (e.g. intel_iommu=on missing) or no devices behind one');
  const iommu = detectIommu(paths);
  step('IOMMU', iommu.model !== 'unknown', iommuDetail(paths, iommu));

  const pci = listPciDevices(paths);
  const vfio = pci.filter((d) => d.driver === 'vfio-pci');
  step('vfio-pci devices', vfio.length > 0, vfio.length > 0 ? vfio.map((d) => `${d.bdf} (group ${d.iommuGroup})`).join(', ') : 'no PCI device is bound to vfio-pci');

  // iommufd
  const devIommu = p(paths, 'dev/iommu');
  const iommuOk = existsSync(devIommu) && canReadWrite(devIommu);
  step('/dev/iommu', iommuOk, existsSync(devIommu) ? (iommuOk ? 'present, read/write' : `present but not readable and writable by this user (fix: \`${nodeFix(devIommu)}\`)`) : 'absent (kernel without CONFIG_IOMMUFD, or module not loaded)');
  const cdevOk: string[] = [];
  const cdevWhy: string[] = [];
  for (const d of vfio) {
    const why = whyNotUsable(paths, d, 'iommufd');
    if (why) cdevWhy.push(`${d.bdf}: ${why}`);
    else cdevOk.push(d.bdf);
  }
  step('VFIO device cdevs', cdevOk.length > 0, cdevOk.length > 0 ? `usable: ${cdevOk.map((b) => `${b} (${pci.find((x) => x.bdf === b)?.vfioDev})`).join(', ')}` : cdevWhy.join('; ') || 'no vfio-pci device');

  // type1
  const devVfio = p(paths, 'dev/vfio/vfio');
  const vfioOk = existsSync(devVfio) && canReadWrite(devVfio);
  step('/dev/vfio/vfio', vfioOk, existsSync(devVfio) ? (vfioOk ? 'present, read/write' : `present but not readable and writable by this user (fix: \`${nodeFix(devVfio)}\`)`) : 'absent (kernel without CONFIG_VFIO_CONTAINER, or vfio not loaded)');
  const grpOk: string[] = [];
  const grpWhy: string[] = [];
  for (const d of vfio) {
    const why = whyNotUsable(paths, d, 'vfio-type1');
    if (why) grpWhy.push(`${d.bdf}: ${why}`);
    else grpOk.push(d.bdf);
  }
  step('VFIO group nodes', grpOk.length > 0, grpOk.length > 0 ? `usable: ${grpOk.map((b) => `${b} (/dev/vfio/${pci.find((x) => x.bdf === b)?.iommuGroup})`).join(', ')}` : grpWhy.join('; ') || 'no vfio-pci device');

  const k = kmsgReadable(addon);
  step('kernel log', k.ok, k.detail);

  let memoryInfo: MemoryInfo = { physicalIsReal: false, why: 'the native addon is not loaded' };
  if (addon) memoryInfo = probePhysical(addon);
  step('pagemap PFNs', memoryInfo.physicalIsReal, memoryInfo.physicalIsReal ? '/proc/self/pagemap gives real PFNs: physical addresses are real' : (memoryInfo.why ?? 'not readable'));

  const limit = dmaEntryLimit(paths);
  step('dma_entry_limit', limit !== null, limit !== null ? `vfio_iommu_type1 allows ${limit} mappings per container` : 'vfio_iommu_type1 not loaded (limit unknown; default 65535)');

  const noAddon = addon ? '' : 'the native addon is not available; ';
  const iommufd = {
    usable: addon !== null && iommuOk && cdevOk.length > 0,
    why: `${noAddon}${!iommuOk ? '/dev/iommu is not usable; ' : ''}${cdevOk.length === 0 ? `no usable device cdev (${cdevWhy.join('; ') || 'no vfio-pci device'})` : ''}`.replace(/; $/, ''),
    devices: cdevOk,
  };
  const type1 = {
    usable: addon !== null && vfioOk && grpOk.length > 0,
    why: `${noAddon}${!vfioOk ? '/dev/vfio/vfio is not usable; ' : ''}${grpOk.length === 0 ? `no usable group node (${grpWhy.join('; ') || 'no vfio-pci device'})` : ''}`.replace(/; $/, ''),
    devices: grpOk,
  };
  return { steps, addon, iommufd, type1, kmsg: k.ok, memoryInfo };
}
