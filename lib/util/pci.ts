/**
 * The PCI configuration-space registers and bits the package touches (PCI Local Bus 3.0 type-0
 * header): one definition for the simulator's config space, the edu driver and the type1 backend.
 * The bottom layer: imports nothing of the package.
 */
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_CAP_LIST = 0x10;
