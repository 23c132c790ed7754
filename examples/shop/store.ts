import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WardenError } from '../../src/errors';

/**
 * A small shop the example agents act on: customers, orders, refunds, supplier quotes and
 * purchase orders in one SQLite file. It stands in for the payment and ERP systems a real agent
 * would call, so a demo's effects are rows you can count rather than log lines.
 *
 * Money is stored in integer cents (a float column would drift) and crosses this module's
 * boundary in dollars, rounded to the cent.
 */

/** A refused shop operation (unknown order, refund above what was paid). Tools turn it into `ToolError`. */
export class ShopError extends WardenError {
  override name = 'ShopError';
}

export interface Customer {
  id: string;
  name: string;
  email: string;
  creditLimit: number;
}

export interface Order {
  id: string;
  customerId: string;
  amount: number;
  status: string;
  placedAt: string;
}

export type RefundStatus = 'issued' | 'reversed';

export interface Refund {
  id: string;
  orderId: string;
  amount: number;
  reason: string;
  note: string | null;
  idempotencyKey: string;
  status: RefundStatus;
  createdAt: string;
  reversedAt: string | null;
}

export interface Quote {
  sku: string;
  supplier: string;
  unitPrice: number;
  /** The smallest order the supplier quotes this price for. */
  minQuantity: number;
}

export type PurchaseOrderStatus = 'open' | 'cancelled';

export interface PurchaseOrder {
  id: string;
  sku: string;
  quantity: number;
  supplier: string;
  unitPrice: number;
  total: number;
  idempotencyKey: string;
  status: PurchaseOrderStatus;
  createdAt: string;
  cancelledAt: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  credit_limit_cents INTEGER NOT NULL CHECK (credit_limit_cents >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
  id TEXT PRIMARY KEY NOT NULL,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  status TEXT NOT NULL,
  placed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY NOT NULL,
  order_id TEXT NOT NULL REFERENCES orders (id),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  reason TEXT NOT NULL,
  note TEXT,
  idempotency_key TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('issued', 'reversed')),
  created_at TEXT NOT NULL,
  reversed_at TEXT
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (order_id);
CREATE TABLE IF NOT EXISTS quotes (
  sku TEXT NOT NULL,
  supplier TEXT NOT NULL,
  unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents > 0),
  min_quantity INTEGER NOT NULL DEFAULT 1 CHECK (min_quantity >= 1),
  PRIMARY KEY (sku, supplier)
);
CREATE TABLE IF NOT EXISTS price_checks (
  idempotency_key TEXT PRIMARY KEY NOT NULL,
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  checked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS purchase_orders (
  id TEXT PRIMARY KEY NOT NULL,
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  supplier TEXT NOT NULL,
  unit_price_cents INTEGER NOT NULL,
  total_cents INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('open', 'cancelled')),
  created_at TEXT NOT NULL,
  cancelled_at TEXT
);
`;

const SEED_CUSTOMERS: [id: string, name: string, email: string, creditLimitCents: number][] = [
  ['CUST-001', 'Ada Moreau', 'ada.moreau@example.com', 200_000],
  ['CUST-002', 'Bilal Rahman', 'bilal.rahman@example.com', 50_000],
  ['CUST-003', 'Chen Wei', 'chen.wei@example.com', 500_000],
  ['CUST-004', 'Dana Okafor', 'dana.okafor@example.com', 100_000],
];

const SEED_ORDERS: [id: string, customerId: string, amountCents: number, status: string, placedAt: string][] = [
  ['ORD-1001', 'CUST-001', 12_900, 'delivered', '2025-05-02T10:14:00.000Z'],
  ['ORD-1002', 'CUST-002', 6_450, 'delivered', '2025-05-03T16:40:00.000Z'],
  ['ORD-1003', 'CUST-003', 124_900, 'delivered', '2025-05-04T09:05:00.000Z'],
  ['ORD-1004', 'CUST-004', 48_000, 'shipped', '2025-05-06T13:22:00.000Z'],
  ['ORD-1005', 'CUST-001', 3_599, 'delivered', '2025-05-07T08:51:00.000Z'],
  ['ORD-1006', 'CUST-002', 79_900, 'delivered', '2025-05-08T19:30:00.000Z'],
];

const SEED_QUOTES: [sku: string, supplier: string, unitPriceCents: number, minQuantity: number][] = [
  ['CHAIR-ERGO-01', 'Northwind Supply', 18_900, 1],
  ['CHAIR-ERGO-01', 'Contoso Office', 17_950, 100],
  ['CHAIR-ERGO-01', 'Fabrikam Furnishings', 18_400, 1],
  ['PAPER-A4-80G', 'Northwind Supply', 2_490, 1],
  ['PAPER-A4-80G', 'Contoso Office', 2_240, 50],
  ['PAPER-A4-80G', 'Litware Paper', 2_310, 1],
  ['TONER-58A', 'Northwind Supply', 7_100, 1],
  ['TONER-58A', 'Contoso Office', 6_890, 10],
  ['TONER-58A', 'Fabrikam Furnishings', 7_450, 1],
];

/**
 * Where the shop lives unless `openShop` is given a path: `$WARDEN_SHOP_DB`, else
 * `$WARDEN_HOME/shop.db`, else `.warden/shop.db` under the working directory.
 */
export function defaultShopPath(): string {
  return process.env.WARDEN_SHOP_DB ?? path.join(process.env.WARDEN_HOME ?? '.warden', 'shop.db');
}

let current: { file: string; db: Database.Database } | null = null;

/**
 * Opens the shop file this process uses from now on, creating and seeding it if it is new, and
 * returns its path. Tools open the default file on first use, so only tests and demos that want
 * another file (a temp file, `:memory:`) call this. Closes the shop opened before.
 */
export function openShop(file: string = defaultShopPath()): string {
  closeShop();
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  try {
    // The worker writes while a demo or the CLI counts rows from another process.
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA);
    seed(db);
  } catch (err) {
    db.close();
    throw err;
  }
  current = { file, db };
  return file;
}

/** Closes the shop file if one is open. The next shop function call opens the default file again. */
export function closeShop(): void {
  current?.db.close();
  current = null;
}

/** The path of the open shop file, or null when none is open yet. */
export function shopPath(): string | null {
  return current?.file ?? null;
}

function db(): Database.Database {
  if (!current) openShop();
  if (!current) throw new ShopError('the shop database could not be opened');
  return current.db;
}

function seed(db: Database.Database): void {
  // IMMEDIATE takes the write lock first, so two processes opening a new file seed it once.
  db.transaction(() => {
    const row = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM customers').get();
    if ((row?.n ?? 0) > 0) return;
    const customer = db.prepare('INSERT INTO customers (id, name, email, credit_limit_cents) VALUES (?, ?, ?, ?)');
    for (const c of SEED_CUSTOMERS) customer.run(...c);
    const order = db.prepare('INSERT INTO orders (id, customer_id, amount_cents, status, placed_at) VALUES (?, ?, ?, ?, ?)');
    for (const o of SEED_ORDERS) order.run(...o);
    const quote = db.prepare('INSERT INTO quotes (sku, supplier, unit_price_cents, min_quantity) VALUES (?, ?, ?, ?)');
    for (const q of SEED_QUOTES) quote.run(...q);
  }).immediate();
}

const toCents = (dollars: number): number => Math.round(dollars * 100);
const toDollars = (cents: number): number => cents / 100;
const now = (): string => new Date().toISOString();
/** `$1,249.00`: for messages people and models read. */
export const formatUsd = (dollars: number): string => `$${dollars.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

interface CustomerRow {
  id: string;
  name: string;
  email: string;
  credit_limit_cents: number;
}

interface OrderRow {
  id: string;
  customer_id: string;
  amount_cents: number;
  status: string;
  placed_at: string;
}

interface RefundRow {
  id: string;
  order_id: string;
  amount_cents: number;
  reason: string;
  note: string | null;
  idempotency_key: string;
  status: RefundStatus;
  created_at: string;
  reversed_at: string | null;
}

interface QuoteRow {
  sku: string;
  supplier: string;
  unit_price_cents: number;
  min_quantity: number;
}

interface PurchaseOrderRow {
  id: string;
  sku: string;
  quantity: number;
  supplier: string;
  unit_price_cents: number;
  total_cents: number;
  idempotency_key: string;
  status: PurchaseOrderStatus;
  created_at: string;
  cancelled_at: string | null;
}

const customerOf = (r: CustomerRow): Customer => ({ id: r.id, name: r.name, email: r.email, creditLimit: toDollars(r.credit_limit_cents) });
const orderOf = (r: OrderRow): Order => ({ id: r.id, customerId: r.customer_id, amount: toDollars(r.amount_cents), status: r.status, placedAt: r.placed_at });
const refundOf = (r: RefundRow): Refund => ({
  id: r.id,
  orderId: r.order_id,
  amount: toDollars(r.amount_cents),
  reason: r.reason,
  note: r.note,
  idempotencyKey: r.idempotency_key,
  status: r.status,
  createdAt: r.created_at,
  reversedAt: r.reversed_at,
});
const quoteOf = (r: QuoteRow): Quote => ({ sku: r.sku, supplier: r.supplier, unitPrice: toDollars(r.unit_price_cents), minQuantity: r.min_quantity });
const purchaseOrderOf = (r: PurchaseOrderRow): PurchaseOrder => ({
  id: r.id,
  sku: r.sku,
  quantity: r.quantity,
  supplier: r.supplier,
  unitPrice: toDollars(r.unit_price_cents),
  total: toDollars(r.total_cents),
  idempotencyKey: r.idempotency_key,
  status: r.status,
  createdAt: r.created_at,
  cancelledAt: r.cancelled_at,
});

// ---- customers ------------------------------------------------------------------------------

/** A customer, or undefined for an unknown id. */
export function getCustomer(customerId: string): Customer | undefined {
  const row = db().prepare<[string], CustomerRow>('SELECT * FROM customers WHERE id = ?').get(customerId);
  return row && customerOf(row);
}

/** A customer's credit limit in dollars. Throws `ShopError` for an unknown customer. */
export function getCreditLimit(customerId: string): number {
  const customer = getCustomer(customerId);
  if (!customer) throw new ShopError(`no customer ${customerId}`);
  return customer.creditLimit;
}

/** Sets a customer's credit limit and returns the limit before and after. Throws `ShopError` for an unknown customer. */
export function setCreditLimit(customerId: string, newLimit: number): { previousLimit: number; newLimit: number } {
  if (!(newLimit >= 0)) throw new ShopError(`a credit limit cannot be ${newLimit}`);
  return db()
    .transaction(() => {
      const previousLimit = getCreditLimit(customerId);
      db().prepare('UPDATE customers SET credit_limit_cents = ? WHERE id = ?').run(toCents(newLimit), customerId);
      return { previousLimit, newLimit: toDollars(toCents(newLimit)) };
    })
    .immediate();
}

// ---- orders and refunds ---------------------------------------------------------------------

/** An order, or undefined for an unknown id. */
export function getOrder(orderId: string): Order | undefined {
  const row = db().prepare<[string], OrderRow>('SELECT * FROM orders WHERE id = ?').get(orderId);
  return row && orderOf(row);
}

/** Every refund of an order, reversed ones included, oldest first. */
export function refundsFor(orderId: string): Refund[] {
  return db().prepare<[string], RefundRow>('SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at, id').all(orderId).map(refundOf);
}

/** How many refunds the shop holds, optionally only those with a status. */
export function countRefunds(status?: RefundStatus): number {
  const row =
    status === undefined
      ? db().prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM refunds').get()
      : db().prepare<[RefundStatus], { n: number }>('SELECT COUNT(*) AS n FROM refunds WHERE status = ?').get(status);
  return row?.n ?? 0;
}

function issuedCents(orderId: string): number {
  const row = db().prepare<[string], { cents: number }>("SELECT COALESCE(SUM(amount_cents), 0) AS cents FROM refunds WHERE order_id = ? AND status = 'issued'").get(orderId);
  return row?.cents ?? 0;
}

/** What may still be refunded on an order: its amount less the refunds issued and not reversed. */
export function refundableAmount(orderId: string): number {
  const order = getOrder(orderId);
  if (!order) throw new ShopError(`no order ${orderId}`);
  return toDollars(toCents(order.amount) - issuedCents(orderId));
}

export interface RefundRequest {
  orderId: string;
  amount: number;
  reason: string;
  note?: string;
  /** One key per intended refund; the same key again returns the first refund instead of paying twice. */
  idempotencyKey: string;
}

/**
 * Issues a refund, or returns the refund already issued under the same idempotency key
 * (`created: false`): that is what keeps a retried activity from refunding twice. Throws
 * `ShopError` for an unknown order or when the order's refunds would add up to more than it cost.
 */
export function issueRefund(request: RefundRequest): { refund: Refund; created: boolean } {
  const cents = toCents(request.amount);
  return db()
    .transaction(() => {
      // The key is checked first: the refund it already made counts toward the order's total.
      const existing = db().prepare<[string], RefundRow>('SELECT * FROM refunds WHERE idempotency_key = ?').get(request.idempotencyKey);
      if (existing) return { refund: refundOf(existing), created: false };
      const order = getOrder(request.orderId);
      if (!order) throw new ShopError(`no order ${request.orderId}`);
      if (cents <= 0) throw new ShopError(`a refund must be a positive amount, not ${formatUsd(request.amount)}`);
      const issued = issuedCents(order.id);
      const left = toCents(order.amount) - issued;
      if (cents > left) {
        throw new ShopError(
          `a refund of ${formatUsd(toDollars(cents))} would exceed order ${order.id}: it cost ${formatUsd(order.amount)}, ` +
            `${formatUsd(toDollars(issued))} is already refunded, at most ${formatUsd(toDollars(left))} is left`,
        );
      }
      const n = db().prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM refunds').get()?.n ?? 0;
      const id = `RF-${5001 + n}`;
      db()
        .prepare('INSERT INTO refunds (id, order_id, amount_cents, reason, note, idempotency_key, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, order.id, cents, request.reason, request.note ?? null, request.idempotencyKey, 'issued', now());
      const row = db().prepare<[string], RefundRow>('SELECT * FROM refunds WHERE id = ?').get(id);
      if (!row) throw new ShopError(`refund ${id} vanished after insert`);
      return { refund: refundOf(row), created: true };
    })
    .immediate();
}

/** Marks a refund reversed (the money is taken back). Reversing it again changes nothing. Throws `ShopError` for an unknown refund. */
export function reverseRefund(refundId: string): Refund {
  return db()
    .transaction(() => {
      db().prepare("UPDATE refunds SET status = 'reversed', reversed_at = ? WHERE id = ? AND status = 'issued'").run(now(), refundId);
      const row = db().prepare<[string], RefundRow>('SELECT * FROM refunds WHERE id = ?').get(refundId);
      if (!row) throw new ShopError(`no refund ${refundId}`);
      return refundOf(row);
    })
    .immediate();
}

// ---- suppliers and purchase orders ----------------------------------------------------------

/** Every supplier's quote for a SKU, cheapest first. */
export function quotesFor(sku: string): Quote[] {
  return db().prepare<[string], QuoteRow>('SELECT * FROM quotes WHERE sku = ? ORDER BY unit_price_cents, supplier').all(sku).map(quoteOf);
}

/** The SKUs suppliers quote for. */
export function knownSkus(): string[] {
  return db().prepare<[], { sku: string }>('SELECT DISTINCT sku FROM quotes ORDER BY sku').all().map((r) => r.sku);
}

export interface PriceComparison {
  sku: string;
  quantity: number;
  /** Quotes whose minimum quantity the order meets. */
  eligible: number;
  cheapest: { supplier: string; unitPrice: number; total: number } | null;
}

/**
 * Asks every supplier for a price and returns the cheapest for this quantity. Each comparison is
 * logged once per idempotency key (supplier price requests are what a looping agent wastes);
 * `countPriceChecks` counts them. Throws `ShopError` for a SKU no supplier quotes.
 */
export function comparePrices(request: { sku: string; quantity: number; idempotencyKey: string }): PriceComparison {
  const quotes = quotesFor(request.sku);
  if (quotes.length === 0) throw new ShopError(`no supplier quotes ${request.sku}; known SKUs: ${knownSkus().join(', ')}`);
  db()
    .prepare('INSERT OR IGNORE INTO price_checks (idempotency_key, sku, quantity, checked_at) VALUES (?, ?, ?, ?)')
    .run(request.idempotencyKey, request.sku, request.quantity, now());
  const eligible = quotes.filter((q) => q.minQuantity <= request.quantity);
  const best = eligible[0];
  return {
    sku: request.sku,
    quantity: request.quantity,
    eligible: eligible.length,
    cheapest: best ? { supplier: best.supplier, unitPrice: best.unitPrice, total: toDollars(toCents(best.unitPrice) * request.quantity) } : null,
  };
}

/** How many price comparisons were run against the suppliers. */
export function countPriceChecks(): number {
  return db().prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM price_checks').get()?.n ?? 0;
}

export interface PurchaseOrderRequest {
  sku: string;
  quantity: number;
  supplier: string;
  /** One key per intended order; the same key again returns the first order. */
  idempotencyKey: string;
}

/**
 * Places a purchase order at the supplier's quoted price, or returns the order already placed
 * under the same idempotency key (`created: false`). Throws `ShopError` when the supplier does not
 * quote the SKU or the quantity is below its minimum.
 */
export function createPurchaseOrder(request: PurchaseOrderRequest): { purchaseOrder: PurchaseOrder; created: boolean } {
  return db()
    .transaction(() => {
      const existing = db().prepare<[string], PurchaseOrderRow>('SELECT * FROM purchase_orders WHERE idempotency_key = ?').get(request.idempotencyKey);
      if (existing) return { purchaseOrder: purchaseOrderOf(existing), created: false };
      const quote = db().prepare<[string, string], QuoteRow>('SELECT * FROM quotes WHERE sku = ? AND supplier = ?').get(request.sku, request.supplier);
      if (!quote) throw new ShopError(`${request.supplier} does not quote ${request.sku}`);
      if (!Number.isInteger(request.quantity) || request.quantity <= 0) throw new ShopError(`a purchase order needs a positive whole quantity, not ${request.quantity}`);
      if (request.quantity < quote.min_quantity) {
        throw new ShopError(`${request.supplier} quotes ${request.sku} from ${quote.min_quantity} units; ${request.quantity} is too few`);
      }
      const n = db().prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM purchase_orders').get()?.n ?? 0;
      const id = `PO-${2001 + n}`;
      db()
        .prepare(
          'INSERT INTO purchase_orders (id, sku, quantity, supplier, unit_price_cents, total_cents, idempotency_key, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(id, request.sku, request.quantity, request.supplier, quote.unit_price_cents, quote.unit_price_cents * request.quantity, request.idempotencyKey, 'open', now());
      const row = db().prepare<[string], PurchaseOrderRow>('SELECT * FROM purchase_orders WHERE id = ?').get(id);
      if (!row) throw new ShopError(`purchase order ${id} vanished after insert`);
      return { purchaseOrder: purchaseOrderOf(row), created: true };
    })
    .immediate();
}

/** A purchase order, or undefined for an unknown id. */
export function getPurchaseOrder(id: string): PurchaseOrder | undefined {
  const row = db().prepare<[string], PurchaseOrderRow>('SELECT * FROM purchase_orders WHERE id = ?').get(id);
  return row && purchaseOrderOf(row);
}

/** Cancels a purchase order. Cancelling it again changes nothing. Throws `ShopError` for an unknown order. */
export function cancelPurchaseOrder(id: string): PurchaseOrder {
  return db()
    .transaction(() => {
      db().prepare("UPDATE purchase_orders SET status = 'cancelled', cancelled_at = ? WHERE id = ? AND status = 'open'").run(now(), id);
      const purchaseOrder = getPurchaseOrder(id);
      if (!purchaseOrder) throw new ShopError(`no purchase order ${id}`);
      return purchaseOrder;
    })
    .immediate();
}

/** How many purchase orders the shop holds, optionally only those with a status. */
export function countPurchaseOrders(status?: PurchaseOrderStatus): number {
  const row =
    status === undefined
      ? db().prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM purchase_orders').get()
      : db().prepare<[PurchaseOrderStatus], { n: number }>('SELECT COUNT(*) AS n FROM purchase_orders WHERE status = ?').get(status);
  return row?.n ?? 0;
}
