/**
 * The simulated PCI bus: the present devices by BDF, IOMMU group and BAR numbering for new ones,
 * hot-plug and surprise removal, and the group rule (a device without its own domain uses the
 * one a group mate is attached to).
 */
import type { IovaRange } from '../contract.js';
import type { SimDomain } from './domain.js';
import type { EduHost } from './edu-model.js';
import { type SimDeviceSpec, SimDevice } from './machine.js';
import { describe, ERR, fail, normalizeBdf, parseBdf } from './util.js';

export interface BusContext {
  readonly reservedRegions: readonly IovaRange[];
  readonly defaultDomainTypes: number;
  readonly eduHost: (dev: SimDevice) => EduHost;
}

export class SimBus {
  /** Present devices by BDF. */
  readonly devices = new Map<string, SimDevice>();
  readonly #ctx: BusContext;
  #nextGroup = 1;
  #nextBar = 0xfd000000;

  constructor(specs: readonly SimDeviceSpec[], ctx: BusContext) {
    this.#ctx = ctx;
    for (const s of specs) if (typeof s?.iommuGroup === 'number' && s.iommuGroup >= this.#nextGroup) this.#nextGroup = s.iommuGroup + 1;
    for (const s of specs) {
      const dev = this.#create(s, specs);
      if (this.devices.has(dev.bdf)) throw new RangeError(`duplicate device ${dev.bdf}`);
      this.devices.set(dev.bdf, dev);
    }
  }

  #create(spec: SimDeviceSpec, siblings: readonly SimDeviceSpec[]): SimDevice {
    const p = spec !== null && typeof spec === 'object' && typeof spec.bdf === 'string' ? parseBdf(spec.bdf) : null;
    const multifunction =
      p !== null &&
      siblings.some((o) => {
        const q = typeof o?.bdf === 'string' ? parseBdf(o.bdf) : null;
        return q !== null && q.segment === p.segment && q.bus === p.bus && q.dev === p.dev && q.fn !== p.fn;
      });
    const group = this.#nextGroup;
    const dev = new SimDevice(spec, {
      machineReserved: this.#ctx.reservedRegions,
      defaultDomainTypes: this.#ctx.defaultDomainTypes,
      group,
      bar0Address: this.#nextBar,
      multifunction,
      eduHost: this.#ctx.eduHost,
    });
    if (dev.iommuGroup === group) this.#nextGroup++;
    if (dev.iommuGroup !== null && dev.iommuGroup >= this.#nextGroup) this.#nextGroup = dev.iommuGroup + 1;
    if (dev.model.barSize(0) > 0) this.#nextBar += 0x100000;
    return dev;
  }

  /** Hot-plug: EEXIST when the BDF is present. */
  add(spec: SimDeviceSpec): SimDevice {
    if (spec === null || typeof spec !== 'object' || typeof spec.bdf !== 'string') throw new TypeError('spec must be an object with a bdf string');
    const bdf = normalizeBdf(spec.bdf);
    if (bdf === null) fail(ERR.EINVAL, 'sysfs', `malformed PCI address '${spec.bdf}'`);
    if (this.devices.has(bdf)) fail(ERR.EEXIST, 'sysfs', `${bdf} is already present`);
    const dev = this.#create(spec, [...[...this.devices.values()].map((d) => ({ bdf: d.bdf })), spec]);
    this.devices.set(dev.bdf, dev);
    return dev;
  }

  /** The present device `bdf` (EINVAL malformed, ENOENT absent; TypeError not a string). */
  lookup(bdf: unknown, syscall: string): SimDevice {
    if (typeof bdf !== 'string') throw new TypeError(`bdf must be a string, got ${describe(bdf)}`);
    const n = normalizeBdf(bdf);
    if (n === null) fail(ERR.EINVAL, syscall, `malformed PCI address '${bdf}'`);
    const d = this.devices.get(n);
    if (d === undefined) fail(ERR.ENOENT, syscall, `no device ${n}`);
    return d;
  }

  /** The domain translating the device's requests: its own, or its group's. */
  groupDomain(dev: SimDevice): SimDomain | null {
    if (dev.domain !== null) return dev.domain;
    if (dev.iommuGroup === null) return null;
    for (const d of this.devices.values()) {
      if (d !== dev && d.iommuGroup === dev.iommuGroup && d.domain !== null) return d.domain;
    }
    return null;
  }

  /** Present devices in BDF order. */
  sorted(): SimDevice[] {
    return [...this.devices.values()].sort((a, b) => (a.bdf < b.bdf ? -1 : 1));
  }
}
