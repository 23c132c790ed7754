/**
 * A procurement agent: finds the cheapest supplier for a SKU and places the purchase order.
 *
 * The incident it is built from: an agent asked to "get the best price" kept re-running the same
 * price comparison, turn after turn, never satisfied, each turn re-reading a long supplier
 * catalogue into its context. Nothing failed, so nothing alerted; the model bill did. In
 * `policies/procurement-agent.yaml` the loop detector ends a run that repeats an identical call,
 * and the cost budget ends one that varies its calls just enough to look new.
 */
import { z } from 'zod';
import { defineAgent, defineTool } from '../src/agents';
import { exampleModel } from './model';
import { asToolError } from './shop/as-tool-error';
import { cancelPurchaseOrder, comparePrices as compareShopPrices, createPurchaseOrder as createShopPurchaseOrder } from './shop/store';

const sku = z.string().regex(/^[A-Z0-9][A-Z0-9-]{1,39}$/, 'must be a SKU such as CHAIR-ERGO-01').describe('Stock-keeping unit, e.g. CHAIR-ERGO-01');
const quantity = z.int().positive().max(100_000).describe('Units to buy');

export const comparePrices = defineTool({
  name: 'compare_prices',
  description: "Asks every supplier for a SKU's price at a quantity and returns the cheapest (volume prices apply from a minimum quantity).",
  input: z.strictObject({ sku, quantity }),
  risk: 'low',
  timeout: '20s',
  run: (args, ctx) => asToolError(() => compareShopPrices({ ...args, idempotencyKey: ctx.idempotencyKey })),
});

export const createPurchaseOrder = defineTool({
  name: 'create_purchase_order',
  description: "Places a purchase order with a supplier at that supplier's quoted unit price. Cancelled if the run is rolled back.",
  input: z.strictObject({ sku, quantity, supplier: z.string().min(1).max(100).describe('Supplier name exactly as compare_prices returned it') }),
  risk: 'medium',
  timeout: '30s',
  run: (args, ctx) =>
    asToolError(() => {
      const { purchaseOrder, created } = createShopPurchaseOrder({ ...args, idempotencyKey: ctx.idempotencyKey });
      ctx.log.info({ purchaseOrderId: purchaseOrder.id, total: purchaseOrder.total, created }, created ? 'purchase order placed' : 'purchase order already placed for this call');
      return { purchaseOrderId: purchaseOrder.id, supplier: purchaseOrder.supplier, unitPrice: purchaseOrder.unitPrice, total: purchaseOrder.total, status: purchaseOrder.status };
    }),
  compensate: (_args, result, ctx) => {
    const purchaseOrder = asToolError(() => cancelPurchaseOrder(result.purchaseOrderId));
    ctx.log.info({ purchaseOrderId: purchaseOrder.id, status: purchaseOrder.status }, 'purchase order cancelled');
  },
});

export const procurementAgent = defineAgent({
  name: 'procurement-agent',
  description: 'Buys office supplies for the example shop at the best quoted price.',
  instructions: [
    'You are a procurement agent. You buy the requested quantity of a SKU from the cheapest supplier.',
    'Call compare_prices once for the SKU and quantity, then call create_purchase_order with the supplier it names.',
    'Prices do not change within a run: do not compare the same SKU and quantity again.',
    'When the order is placed, report the purchase order id, supplier and total in one sentence.',
  ].join('\n'),
  model: exampleModel(),
  tools: [comparePrices, createPurchaseOrder],
});
