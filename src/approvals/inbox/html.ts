import { createHash } from 'node:crypto';

/** Markup that is already safe: built by `html`, never from a raw string. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Fragment = SafeHtml | string | number | boolean | null | undefined | readonly Fragment[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function render(part: Fragment): string {
  if (part instanceof SafeHtml) return part.value;
  if (Array.isArray(part)) return (part as readonly Fragment[]).map(render).join('');
  if (part === null || part === undefined || part === false) return '';
  return escapeHtml(String(part));
}

/**
 * The one way pages are built: every interpolated value is escaped unless it is itself `html`.
 * Agent arguments, reasons and audit data come from models and people, so nothing is trusted.
 */
export function html(strings: TemplateStringsArray, ...values: Fragment[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

const CSS = `
:root{--fg:#1d232b;--muted:#5f6b7a;--line:#dde2e8;--bg:#f6f7f9;--card:#fff;--ok:#1f7a3d;--bad:#b42318;--warn:#9a6700;--accent:#2457c5}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{display:flex;align-items:center;gap:1.5rem;padding:.75rem 1.5rem;background:#1d232b;color:#fff}
header.top a{color:#fff;text-decoration:none;opacity:.85}
header.top a:hover{opacity:1}
header.top .brand{font-weight:700;letter-spacing:.02em;opacity:1}
header.top .who{margin-left:auto;display:flex;align-items:center;gap:.75rem;font-size:.9rem}
header.top form{margin:0}
header.top button{background:transparent;color:#fff;border:1px solid #fff6;border-radius:4px;padding:.2rem .6rem;cursor:pointer}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.35rem;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .75rem}
a{color:var(--accent)}
.muted{color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}
.card h3{margin:0 0 .5rem;font-size:1.05rem;display:flex;align-items:baseline;gap:.6rem;flex-wrap:wrap}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
.card dt{color:var(--muted)}
.card dd{margin:0;overflow-wrap:anywhere}
pre{background:#f1f3f6;border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem;overflow:auto;font-size:.85rem;margin:.5rem 0}
code{font-size:.9em}
.badge{display:inline-block;border-radius:999px;padding:.05rem .6rem;font-size:.8rem;font-weight:600;background:#e8ecf2;color:var(--fg)}
.badge.approved,.badge.ok{background:#dcf3e3;color:var(--ok)}
.badge.rejected,.badge.refused,.badge.bad{background:#fde4e1;color:var(--bad)}
.badge.expired,.badge.warn{background:#fff1cc;color:var(--warn)}
textarea{width:100%;min-height:3.2rem;font:inherit;padding:.4rem .5rem;border:1px solid var(--line);border-radius:6px}
.actions{display:flex;gap:.6rem;margin-top:.5rem}
button.approve,button.reject,button.primary{border:0;border-radius:6px;padding:.45rem 1.1rem;font:inherit;font-weight:600;color:#fff;cursor:pointer}
button.approve{background:var(--ok)}
button.reject{background:var(--bad)}
button.primary{background:var(--accent)}
.note{border-left:4px solid var(--warn);background:#fff8e5;padding:.4rem .75rem;margin:.5rem 0;border-radius:0 6px 6px 0}
.result{border-left:6px solid var(--accent)}
.result.ok{border-left-color:var(--ok)}
.result.bad{border-left-color:var(--bad)}
.result.warn{border-left-color:var(--warn)}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px;font-size:.9rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.data{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem;overflow-wrap:anywhere;max-width:32rem}
.filters{display:flex;gap:.5rem;margin-bottom:1rem}
.filters a{padding:.2rem .7rem;border:1px solid var(--line);border-radius:999px;background:#fff;text-decoration:none}
.filters a.on{background:var(--accent);color:#fff;border-color:var(--accent)}
form.login{max-width:22rem;margin:3rem auto}
form.login label{display:block;margin:.75rem 0 .25rem}
form.login input{width:100%;padding:.45rem .5rem;font:inherit;border:1px solid var(--line);border-radius:6px}
form.login button{margin-top:1rem;width:100%}
.error{color:var(--bad)}
`;

/** The stylesheet's CSP hash: the page allows exactly this inline style and no script at all. */
export const STYLE_HASH = `sha256-${createHash('sha256').update(CSS).digest('base64')}`;

export interface Chrome {
  /** The signed-in person, shown with a sign-out button (password sessions only). */
  user?: { label: string; csrf?: string };
}

/** The page frame: header with navigation and the person signed in, then the content. */
export function page(title: string, chrome: Chrome, body: SafeHtml): string {
  const user = chrome.user;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · Warden</title><style>${new SafeHtml(CSS)}</style></head>
<body><header class="top"><a class="brand" href="/">Warden</a>${
    user ? html`<a href="/">Inbox</a><a href="/history">History</a><a href="/quotas">Quotas</a><a href="/console/runs">Console</a>` : ''
  }<span class="who">${
    user
      ? html`<span>${user.label}</span>${
          user.csrf ? html`<form method="post" action="/logout"><input type="hidden" name="csrf" value="${user.csrf}"><button type="submit">Sign out</button></form>` : ''
        }`
      : ''
  }</span></header>
<main>${body}</main></body></html>`.value;
}
