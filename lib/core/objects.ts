/**
 * Handles the interface gives out. They are opaque, as in the WDK: their state lives in the
 * platform that created them (so a handle cannot be forged or used on another platform), and
 * each prints as a short tag for logs. Only the structures the WDK defines with public fields
 * (the PDO's identity, the logical-address token) expose fields.
 */
import { inspect } from 'node:util';
import type { PciDeviceInfo } from '../backend/contract.js';

let nextSerial = 1;

abstract class Handle {
  /** A process-unique number, for logs. */
  readonly serial = nextSerial++;
  /** The short tag the handle prints as (`IOMMU_DMA_DOMAIN #3`). */
  protected abstract get tag(): string;
  /** The handle as a short tag in brackets, for logs: `[IOMMU_DMA_DOMAIN #3]`. */
  toString(): string {
    return `[${this.tag}]`;
  }
  /** The handle in JSON: its tag (handles carry no other public state). */
  toJSON(): unknown {
    return this.toString();
  }
  /** What `util.inspect` and `console.log` print: the tag. */
  [inspect.custom](): string {
    return this.toString();
  }
}

/** PIOMMU_DMA_DOMAIN. */
export class IommuDmaDomain extends Handle {
  protected get tag(): string {
    return `IOMMU_DMA_DOMAIN #${this.serial}`;
  }
}

/** PIOMMU_DMA_DEVICE (from CreateDevice). */
export class IommuDmaDevice extends Handle {
  /** @param PhysicalDeviceObject - the PDO the device was created for. */
  constructor(readonly PhysicalDeviceObject: PhysicalDeviceObject) {
    super();
  }
  protected get tag(): string {
    return `IOMMU_DMA_DEVICE #${this.serial} ${this.PhysicalDeviceObject.bdf}`;
  }
}

/** PIOMMU_DMA_PASID_DEVICE (from CreatePasidDevice). */
export class IommuDmaPasidDevice extends Handle {
  constructor(
    /** The device whose PASID this is. */
    readonly DmaDevice: IommuDmaDevice,
    /** The PASID (address space ID) of the tagged DMA, as `CreatePasidDevice` returned it. */
    readonly Asid: number,
  ) {
    super();
  }
  protected get tag(): string {
    return `IOMMU_DMA_PASID_DEVICE #${this.serial} ${this.DmaDevice.PhysicalDeviceObject.bdf} pasid ${this.Asid}`;
  }
}

/** PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN: a reserved logical range. */
export class LogicalAddressToken extends Handle {
  constructor(
    /** First logical address of the reserved range (page-aligned, bytes). */
    readonly LogicalAddressBase: bigint,
    /** Length of the reserved range in bytes (a multiple of 4 KiB). */
    readonly Size: bigint,
  ) {
    super();
  }
  protected get tag(): string {
    return `IOMMU_DMA_LOGICAL_ADDRESS_TOKEN #${this.serial} 0x${this.LogicalAddressBase.toString(16)}+0x${this.Size.toString(16)}`;
  }
  /** The token in JSON: its tag, which includes base and size. */
  override toJSON(): string {
    return this.toString();
  }
}

/** The fields of a PciDeviceInfo a PhysicalDeviceObject carries (all of them; the type check below says so). */
const PCI_INFO_FIELDS = ['bdf', 'vendorId', 'deviceId', 'classCode', 'iommuGroup', 'requesterId', 'driver', 'usable', 'whyNotUsable', 'maxPasidLog2'] as const;
const allPciInfoFields: Exclude<keyof PciDeviceInfo, (typeof PCI_INFO_FIELDS)[number]> extends never ? true : never = true;
void allPciInfoFields;

/**
 * A PCI function standing in for a WDK physical device object (PDO), from `enumerateDevices()`.
 * The same object is returned for the same BDF for the life of the platform. It carries the
 * PciDeviceInfo fields (declared once, in lib/backend/contract.ts; merged into this class's type).
 */
export class PhysicalDeviceObject extends Handle {
  readonly #info: PciDeviceInfo;
  constructor(info: PciDeviceInfo) {
    super();
    this.#info = { ...info };
    const self = this as unknown as Record<string, unknown>;
    for (const k of PCI_INFO_FIELDS) if (info[k] !== undefined) self[k] = info[k];
  }
  protected get tag(): string {
    return `PDO ${this.bdf} ${this.vendorId.toString(16).padStart(4, '0')}:${this.deviceId.toString(16).padStart(4, '0')}`;
  }
  /** The PDO in JSON: its tag (`pdo`) and every field of the device's identity. */
  override toJSON(): PciDeviceInfo & {
    /** The PDO's tag (`[PDO 0000:00:03.0 1234:11e8]`). */
    pdo: string;
  } {
    return { pdo: this.toString(), ...this.#info };
  }
}
// Declaration merging: the PciDeviceInfo fields are typed by this interface and set in the constructor.
export interface PhysicalDeviceObject extends PciDeviceInfo {}
