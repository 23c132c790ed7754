import path from 'node:path';
import { registerTypeScript } from '../typescript';
import { exampleAgentsPath } from './project-paths';

/** What the demo reads from the example shop (`examples/shop/store.ts`) that the example agents write to. */
interface ExampleShop {
  countPurchaseOrders(): number;
  countRefunds(): number;
  formatUsd(dollars: number): string;
  getCreditLimit(customerId: string): number;
  openShop(file?: string): string;
  refundsFor(orderId: string): { id: string; amount: number; status: string }[];
}

/**
 * The example shop, loaded at run time from the package's examples (TypeScript, outside the
 * compiled sources): the same module instance the example agents load, so both see one database.
 */
export function exampleShop(): ExampleShop {
  registerTypeScript();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(exampleAgentsPath(), 'shop', 'store')) as ExampleShop;
}
