import { readFileSync } from 'node:fs';
import type { Context, MiddlewareHandler } from 'hono';
import { securityHeaders } from '../inbox/page-headers';

/**
 * The console's headers: the inbox's (no framing, no sniffing, no referrer elsewhere, forms post
 * here only), with scripts and stylesheets from this server itself. Still no inline script and no
 * asset from elsewhere: the charts are drawn by uPlot and the console's own script, both served
 * below, from their numbers in a JSON data block (which the browser never runs).
 */
export const consoleHeaders: MiddlewareHandler = securityHeaders({ ownAssets: true });

const CONSOLE_CSS = `
nav.console{display:flex;gap:.5rem;margin-bottom:1rem;flex-wrap:wrap}
nav.console a{padding:.2rem .8rem;border:1px solid var(--line);border-radius:999px;background:#fff;text-decoration:none}
nav.console a.on{background:var(--accent);color:#fff;border-color:var(--accent)}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
form.filters input,form.filters select{font:inherit;padding:.3rem .4rem;border:1px solid var(--line);border-radius:6px;min-width:8rem}
form.filters button,form.confirm button{border:0;border-radius:6px;padding:.4rem 1rem;font:inherit;font-weight:600;color:#fff;background:var(--accent);cursor:pointer}
.pager{display:flex;gap:1rem;margin:1rem 0}
ol.timeline{list-style:none;margin:0;padding:0 0 0 1.2rem;border-left:3px solid var(--line)}
ol.timeline li{position:relative;margin:0 0 .8rem;padding:.5rem .8rem;background:var(--card);border:1px solid var(--line);border-radius:8px}
ol.timeline li::before{content:"";position:absolute;left:-1.75rem;top:.8rem;width:.8rem;height:.8rem;border-radius:50%;background:var(--muted);border:2px solid var(--bg)}
ol.timeline li.ok::before{background:var(--ok)}
ol.timeline li.bad::before{background:var(--bad)}
ol.timeline li.warn::before{background:var(--warn)}
ol.timeline li.ok{border-left:4px solid var(--ok)}
ol.timeline li.bad{border-left:4px solid var(--bad)}
ol.timeline li.warn{border-left:4px solid var(--warn)}
ol.timeline .head{display:flex;gap:.6rem;align-items:baseline;flex-wrap:wrap}
ol.timeline .head strong{font-size:.95rem}
ol.timeline .kind{font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
ol.timeline dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0 0;font-size:.85rem}
ol.timeline dt{color:var(--muted)}
ol.timeline dd{margin:0;overflow-wrap:anywhere}
ul.tree{margin:.25rem 0;padding-left:1.2rem}
.controls{display:flex;gap:.5rem;flex-wrap:wrap}
.controls a{padding:.35rem .9rem;border-radius:6px;color:#fff;text-decoration:none;font-weight:600;background:var(--accent)}
.controls a.danger{background:var(--bad)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1rem}
.chart{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem}
.chart h3{margin:0 0 .25rem;font-size:1rem}
.chart .totals{font-size:.8rem;color:var(--muted);margin:0 0 .4rem}
.verify.ok{border-left:6px solid var(--ok)}
.verify.bad{border-left:6px solid var(--bad)}
`;

/** Draws each chart of the page's JSON data block with uPlot; the numbers are the server's. */
const CHARTS_JS = `(function () {
  var block = document.getElementById('fleet-data');
  if (!block || typeof uPlot === 'undefined') return;
  var charts = JSON.parse(block.textContent || '[]');
  var colours = ['#2457c5', '#b42318', '#9a6700', '#1f7a3d', '#6b3fa0', '#5f6b7a'];
  charts.forEach(function (c) {
    var el = document.getElementById('chart-' + c.id);
    if (!el) return;
    var series = [{}].concat(c.labels.map(function (label, i) {
      return { label: label, stroke: colours[i % colours.length], width: 2, fill: c.id === 'cost' ? 'rgba(36,87,197,.12)' : undefined };
    }));
    var plot = new uPlot({ width: Math.max(320, el.clientWidth || 460), height: 220, series: series, axes: [{}, { label: c.unit, size: 60 }] }, [c.x].concat(c.series), el);
    el.setAttribute('data-drawn', String(plot.series.length - 1));
  });
})();
`;

/** uPlot as the package ships it, read once: served from this server, never from a CDN. */
let uplot: { js: string; css: string } | undefined;
function uplotFiles(): { js: string; css: string } {
  uplot ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplot;
}

const ASSETS: Record<string, { type: string; body: () => string }> = {
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', body: () => uplotFiles().js },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', body: () => uplotFiles().css },
  'console.css': { type: 'text/css; charset=utf-8', body: () => CONSOLE_CSS },
  'charts.js': { type: 'text/javascript; charset=utf-8', body: () => CHARTS_JS },
};

/** `/console/assets/<name>`: the console's stylesheet and scripts; anything else is not found. */
export function sendAsset(c: Context, name: string): Response | null {
  const asset = ASSETS[name];
  if (!asset) return null;
  return c.body(asset.body(), 200, { 'content-type': asset.type, 'cache-control': 'private, max-age=300' });
}
