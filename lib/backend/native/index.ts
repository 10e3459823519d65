/**
 * The native backends (iommufd, VFIO type1) and the factory that picks one.
 *
 * createNativeBackend('auto'): iommufd when /dev/iommu and at least one vfio-pci device cdev are
 * usable; else type1 when /dev/vfio/vfio and a group node are usable; else no backend, with every
 * probe step and the reason (the caller falls back to the simulator).
 */
import type { IommuBackend, ProbeStep } from '../contract.js';
import { createIommufdBackend } from './iommufd-ops.js';
import { type ProbeOptions, probe } from './probe.js';
import { createType1Backend } from './type1-ops.js';
import { DEFAULT_PATHS } from './sysfs.js';

export type NativeKind = 'iommufd' | 'vfio-type1' | 'auto';

export interface NativeBackendResult {
  readonly backend?: IommuBackend;
  readonly steps: ProbeStep[];
  readonly reason: string;
}

export function createNativeBackend(kind: NativeKind = 'auto', options: ProbeOptions = {}): NativeBackendResult {
  const r = probe(options);
  const steps = r.steps;
  const paths = options.paths ?? DEFAULT_PATHS;
  if (!r.addon) return { steps, reason: steps[0]?.detail ?? 'the native addon is not available' };
  const addon = r.addon;
  const tried: string[] = [];
  const build = (which: 'iommufd' | 'vfio-type1'): IommuBackend | undefined => {
    const info = which === 'iommufd' ? r.iommufd : r.type1;
    if (!info.usable) {
      tried.push(`${which}: ${info.why}`);
      return undefined;
    }
    const reason =
      which === 'iommufd'
        ? `iommufd: /dev/iommu and VFIO device cdevs usable (${info.devices.join(', ')})`
        : `vfio-type1: /dev/vfio/vfio and VFIO group nodes usable (${info.devices.join(', ')})${kind === 'auto' ? `; iommufd not usable: ${r.iommufd.why}` : ''}`;
    const opts = { addon, paths, reason, memoryInfo: r.memoryInfo, kmsg: r.kmsg };
    try {
      const b = which === 'iommufd' ? createIommufdBackend(opts) : createType1Backend(opts);
      steps.push({ check: `${which} backend`, ok: true, detail: 'opened' });
      return b;
    } catch (e) {
      const msg = (e as Error).message;
      steps.push({ check: `${which} backend`, ok: false, detail: msg });
      tried.push(`${which}: ${msg}`);
      return undefined;
    }
  };
  let backend: IommuBackend | undefined;
  if (kind === 'iommufd' || kind === 'auto') backend = build('iommufd');
  if (!backend && (kind === 'vfio-type1' || kind === 'auto')) backend = build('vfio-type1');
  if (backend) return { backend, steps, reason: backend.reason };
  return { steps, reason: tried.join('; ') };
}

export { NativeBackend } from './backend.js';
export { IommufdOps, createIommufdBackend } from './iommufd-ops.js';
export { Type1Ops, createType1Backend } from './type1-ops.js';
export { probe, type ProbeResult } from './probe.js';
export { loadNative, type LoadResult } from './loader.js';
export { parseFaultLine, type ParsedFault } from './kmsg.js';
export type { NativeAddon } from './addon-types.js';
