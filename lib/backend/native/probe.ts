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

  // The two kernel interfaces: the container node, then which vfio-pci devices are usable through it.
  const kernelInterface = (node: string, absent: string, via: 'iommufd' | 'vfio-type1', name: string, nodeOf: (d: (typeof vfio)[number]) => string) => {
    const path = p(paths, node);
    const ok = existsSync(path) && canReadWrite(path);
    step(`/${node}`, ok, existsSync(path) ? (ok ? 'present, read/write' : `present but not readable and writable by this user (fix: \`${nodeFix(path)}\`)`) : absent);
    const usable: string[] = [];
    const why: string[] = [];
    const shown: string[] = [];
    for (const d of vfio) {
      const reason = whyNotUsable(paths, d, via);
      if (reason) why.push(`${d.bdf}: ${reason}`);
      else (usable.push(d.bdf), shown.push(`${d.bdf} (${nodeOf(d)})`));
    }
    step(name, usable.length > 0, usable.length > 0 ? `usable: ${shown.join(', ')}` : why.join('; ') || 'no vfio-pci device');
    return { node, ok, usable, why };
  };
  const viaIommufd = kernelInterface('dev/iommu', 'absent (kernel without CONFIG_IOMMUFD, or module not loaded)', 'iommufd', 'VFIO device cdevs', (d) => `${d.vfioDev}`);
  const viaType1 = kernelInterface('dev/vfio/vfio', 'absent (kernel without CONFIG_VFIO_CONTAINER, or vfio not loaded)', 'vfio-type1', 'VFIO group nodes', (d) => `/dev/vfio/${d.iommuGroup}`);

  const k = kmsgReadable(addon);
  step('kernel log', k.ok, k.detail);

  let memoryInfo: MemoryInfo = { physicalIsReal: false, why: 'the native addon is not loaded' };
  if (addon) memoryInfo = probePhysical(addon);
  step('pagemap PFNs', memoryInfo.physicalIsReal, memoryInfo.physicalIsReal ? '/proc/self/pagemap gives real PFNs: physical addresses are real' : (memoryInfo.why ?? 'not readable'));

  const limit = dmaEntryLimit(paths);
  step('dma_entry_limit', limit !== null, limit !== null ? `vfio_iommu_type1 allows ${limit} mappings per container` : 'vfio_iommu_type1 not loaded (limit unknown; default 65535)');

  const noAddon = addon ? '' : 'the native addon is not available; ';
  const summary = (r: ReturnType<typeof kernelInterface>, missing: string) => ({
    usable: addon !== null && r.ok && r.usable.length > 0,
    why: `${noAddon}${!r.ok ? `/${r.node} is not usable; ` : ''}${r.usable.length === 0 ? `no usable ${missing} (${r.why.join('; ') || 'no vfio-pci device'})` : ''}`.replace(/; $/, ''),
    devices: r.usable,
  });
  const iommufd = summary(viaIommufd, 'device cdev');
  const type1 = summary(viaType1, 'group node');
  return { steps, addon, iommufd, type1, kmsg: k.ok, memoryInfo };
}
