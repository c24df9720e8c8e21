// hookgate console: a page over the admin API. Plain JavaScript, no framework, no build step.
//
// Security: webhook payloads (and so most of what this page shows) are attacker-controlled.
// The page is built with createElement and text nodes only, never by parsing markup, and the
// server's Content-Security-Policy allows no inline script. Links are built here, to `#/…` or
// `/…` only. The admin token is kept in sessionStorage (this tab's session) and sent as
// `Authorization: Bearer` with every call; a 401 signs out.
'use strict';

(() => {
  const TOKEN_KEY = 'hookgate.admin-token';
  const REFRESH_MS = 5000;
  const TAIL_WAIT = '25s';
  const TAIL_KEEP = 500;
  const KINDS = ['json', 'standard', 'kratos', 'identus', 'abp'];
  const SCHEMES = ['bearer', 'api_key', 'basic', 'hmac', 'standard_webhooks', 'abp_signature', 'none'];
  const IDENTUS_KINDS = ['connections', 'credentials', 'presentations', 'dids'];

  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  const notice = document.getElementById('notice');
  const signOutButton = document.getElementById('sign-out');

  // ---- DOM building (text only) ----

  /** A safe href: only this page's routes (`#/…`) and this origin's paths (`/…`). */
  function safeHref(href) {
    const s = String(href);
    return (s.startsWith('#/') || (s.startsWith('/') && !s.startsWith('//'))) ? s : '#/';
  }

  /** `h('a', {href: '#/x', class: 'c', onclick: f}, 'text', node…)`: an element; strings become text. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'href') el.setAttribute('href', safeHref(v));
      else if (k === 'value') el.value = String(v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    add(el, children);
    return el;
  }

  function add(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function say(text, kind) {
    notice.replaceChildren(h('span', { class: 'msg ' + (kind || 'ok') }, text));
  }

  function clearNotice() {
    notice.replaceChildren();
  }

  // ---- formatting ----

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  /** `2026-01-02 10:42:05` in the browser's time zone. */
  function localText(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** A `<time>` for an RFC 3339 time, shown in local time (UTC in its title); `—` for none. */
  function when(iso) {
    if (!iso) return h('span', { class: 'muted' }, '—');
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return h('span', {}, String(iso));
    return h('time', { datetime: iso, title: iso }, localText(d));
  }

  /** `3m 12s`, `2h 5m`, `4d 1h`. */
  function age(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    let s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60); s %= 60;
    if (m < 60) return `${m}m ${s}s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr}h ${m % 60}m`;
    return `${Math.floor(hr / 24)}d ${hr % 24}h`;
  }

  const num = (n) => (n === null || n === undefined) ? '—' : Number(n).toLocaleString('en');

  /** A value for `<input type="datetime-local" step="1">` from an RFC 3339 time. */
  function toLocalInput(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** RFC 3339 (UTC) from a datetime-local value; `end` takes the whole second (for `to`). */
  function fromLocalInput(value, end) {
    if (!value) return '';
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return '';
    if (end && d.getMilliseconds() === 0) d.setMilliseconds(999);
    return d.toISOString();
  }

  /**
   * Indents JSON text without parsing its values: numbers and strings stay exactly as sent
   * (JSON.parse would round large numbers). `null` when the text is not JSON.
   */
  function prettyJson(text) {
    try { JSON.parse(text); } catch { return null; }
    let out = '';
    let depth = 0;
    let inString = false;
    let escaped = false;
    const indent = () => '\n' + '  '.repeat(depth);
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        out += c;
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
      if (c === '"') { inString = true; out += c; continue; }
      if (c === '{' || c === '[') {
        // An empty object or array stays on one line.
        let j = i + 1;
        while (j < text.length && ' \n\r\t'.includes(text[j])) j++;
        const close = c === '{' ? '}' : ']';
        if (text[j] === close) { out += c + close; i = j; continue; }
        depth++;
        out += c + indent();
        continue;
      }
      if (c === '}' || c === ']') { depth--; out += indent() + c; continue; }
      if (c === ',') { out += ',' + indent(); continue; }
      if (c === ':') { out += ': '; continue; }
      out += c;
    }
    return out;
  }

  // ---- the admin API ----

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  /** Thrown when the token was refused or is gone: the page is already on the sign-in form. */
  class SignedOut extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  /** The problem+json detail of a failed answer, with its field errors. */
  async function problemText(res) {
    try {
      const p = await res.json();
      let text = p.detail || p.title || res.statusText;
      if (Array.isArray(p.errors) && p.errors.length) {
        text += ': ' + p.errors.map((e) => `${e.pointer || '/'} ${e.detail}`).join('; ');
      }
      return text;
    } catch {
      return `${res.status} ${res.statusText}`;
    }
  }

  /**
   * Calls the admin API with the token. `opts`: `method`, `body` (sent as JSON), `as`
   * (`json` (default) | `bytes`), `signal`. Throws ApiError, or SignedOut after a 401.
   */
  async function api(path, opts = {}) {
    const t = token();
    if (!t) { signOut(''); throw new SignedOut(); }
    const init = {
      method: opts.method || 'GET',
      headers: { Authorization: 'Bearer ' + t, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      signal: opts.signal,
    };
    if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'hookgate did not answer; is it running?');
    }
    if (res.status === 401) {
      signOut('The admin token was refused (it may have changed): sign in again.');
      throw new SignedOut();
    }
    if (!res.ok) throw new ApiError(res.status, await problemText(res));
    if (res.status === 204) return null;
    if (opts.as === 'bytes') return new Uint8Array(await res.arrayBuffer());
    return res.json();
  }

  /** A query string from an object, leaving out empty values. */
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }

  /** Shows what went wrong (not for SignedOut and aborts, which are not errors). */
  function report(e, where) {
    if (e instanceof SignedOut || (e && e.name === 'AbortError')) return;
    const text = e instanceof ApiError ? e.message : String(e && e.message || e);
    if (where) where.textContent = text;
    else say(text, 'error');
  }

  // ---- the page in view: its abort signal ends its requests and timers ----

  let current = null;

  function newPage() {
    if (current) current.abort();
    current = new AbortController();
    return current.signal;
  }

  /** Runs `fn` now and every `ms` after it ends, until `signal` aborts; paused while hidden. */
  function every(ms, signal, fn) {
    let timer = null;
    const run = async () => {
      if (signal.aborted) return;
      if (document.visibilityState === 'visible') {
        try { await fn(); } catch (e) { report(e); }
      }
      if (!signal.aborted) timer = setTimeout(run, ms);
    };
    signal.addEventListener('abort', () => clearTimeout(timer));
    run();
  }

  // ---- tables that refresh in place ----

  /**
   * A table with a fixed layout: `columns` are `{label, cls, col}`; returns `{table, tbody}`.
   * Each cell carries its column's name (`data-label`) for the phone layout.
   */
  function dataTable(caption, columns) {
    const colgroup = h('colgroup', {}, columns.map((c) => h('col', { class: c.col || null })));
    const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.cls || null }, c.label))));
    const tbody = h('tbody');
    const table = h('table', { class: 'data' }, h('caption', { class: 'visually-hidden' }, caption), colgroup, head, tbody);
    table.columns = columns;
    return { table, tbody, wrap: h('div', { class: 'table-wrap' }, table) };
  }

  /**
   * Puts `items` in `tbody`, one row per key, changing only cells whose content changed and
   * leaving alone any cell that holds the keyboard focus. `cells(item)` gives one value per
   * column: a string or a Node.
   */
  function syncRows(tbody, columns, items, key, cells, empty) {
    const rows = new Map();
    for (const tr of Array.from(tbody.children)) {
      if (tr.dataset.key !== undefined) rows.set(tr.dataset.key, tr);
      else tr.remove();
    }
    const wanted = [];
    for (const item of items) {
      const k = String(key(item));
      let tr = rows.get(k);
      if (!tr) {
        tr = h('tr', {}, columns.map((c) => h('td', { 'data-label': c.label, class: c.cls || null })));
        tr.dataset.key = k;
      }
      rows.delete(k);
      const values = cells(item);
      Array.from(tr.children).forEach((td, i) => {
        if (td.contains(document.activeElement)) return;
        const v = values[i];
        if (v instanceof Node) {
          const sig = v.textContent + '|' + (v.getAttribute && (v.getAttribute('href') || v.getAttribute('class')) || '');
          if (td.dataset.sig !== sig) {
            td.replaceChildren(v);
            td.dataset.sig = sig;
            td.title = (v.getAttribute && v.getAttribute('title')) || v.textContent;
          }
        } else {
          const s = v === null || v === undefined ? '' : String(v);
          if (td.textContent !== s || td.dataset.sig !== undefined) {
            td.textContent = s;
            delete td.dataset.sig;
          }
          td.title = s;
        }
      });
      wanted.push(tr);
    }
    for (const tr of rows.values()) tr.remove();
    wanted.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
    if (!items.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { class: 'empty', colspan: columns.length }, empty || 'Nothing here yet.')));
    }
  }

  /** A placeholder row of a table whose data is on its way (same height as a data row). */
  function loadingRow(tbody, columns, text) {
    tbody.replaceChildren(h('tr', {}, h('td', { class: 'empty', colspan: columns.length }, text || 'Loading…')));
  }

  function badge(state) {
    const cls = { active: 'ok', delivered: 'ok', connected: 'ok', pending: 'warn', paused: 'warn', failed: 'bad', disconnected: 'bad' }[state] || '';
    return h('span', { class: 'badge ' + cls }, state || '—');
  }

  function link(href, text, extra) {
    return h('a', Object.assign({ href }, extra || {}), text);
  }

  const eventHref = (id) => '#/events/' + encodeURIComponent(id);

  // ---- sign in and out ----

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    signInView(message);
  }

  function signInView(message) {
    newPage();
    clearNotice();
    nav.hidden = true;
    signOutButton.hidden = true;
    document.title = 'Sign in · hookgate console';
    const error = h('p', { class: 'error-text', id: 'signin-error', role: 'alert' }, message || '');
    const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-hint signin-error' });
    const form = h('form', { class: 'panel signin', onsubmit: async (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value) { error.textContent = 'Enter the admin token.'; return; }
      error.textContent = '';
      let res;
      try {
        res = await fetch('/admin/destinations', { headers: { Authorization: 'Bearer ' + value }, cache: 'no-store', credentials: 'omit' });
      } catch {
        error.textContent = 'hookgate did not answer; is it running?';
        return;
      }
      if (res.status === 401) {
        error.textContent = 'This token was refused. Use the value of admin.token (HOOKGATE_ADMIN_TOKEN).';
        input.focus();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      route();
    } },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    h('p', { id: 'token-hint', class: 'muted' }, 'The console calls the admin API with its token (admin.token in the configuration). It is kept for this browser tab only, until you sign out or close it.'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
    main.replaceChildren(form);
    input.focus();
  }

  signOutButton.addEventListener('click', () => signOut('Signed out.'));

  // ---- routing (`#/page?query`; the Back button walks the hash history) ----

  const routes = [
    [/^\/?$/, overviewPage, 'overview'],
    [/^\/overview$/, overviewPage, 'overview'],
    [/^\/events$/, eventsPage, 'events'],
    [/^\/events\/([^/]+)$/, eventPage, 'events'],
    [/^\/destinations$/, destinationsPage, 'destinations'],
    [/^\/projections$/, projectionsPage, 'projections'],
    [/^\/hooks$/, hooksPage, 'hooks'],
  ];

  let lastPath = null;
  let lastEventsHash = null;

  function parseHash() {
    const raw = location.hash.replace(/^#/, '');
    const at = raw.indexOf('?');
    const path = at < 0 ? raw : raw.slice(0, at);
    const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
    return { path: path || '/overview', params };
  }

  /** Sets the hash to `path` with `params` (a new history entry, so Back returns here). */
  function go(path, params) {
    const target = '#' + path + query(params || {});
    if (location.hash === target) route(); else location.hash = target;
  }

  function route() {
    if (!token()) { signInView(''); return; }
    const { path, params } = parseHash();
    nav.hidden = false;
    signOutButton.hidden = false;
    const found = routes.find(([re]) => re.test(path));
    if (!found) { go('/overview'); return; }
    const [re, page, name] = found;
    for (const a of nav.querySelectorAll('a')) {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const signal = newPage();
    const moved = path !== lastPath;
    if (path === '/events') lastEventsHash = location.hash;
    lastPath = path;
    if (moved) clearNotice();
    main.replaceChildren();
    page({ signal, params, match: path.match(re) });
    // A new page (or the same with new filters, built anew): the focus goes to its heading, as
    // after a page load, so that screen readers say where they are and Tab starts from there.
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    }
  }

  function setTitle(title) {
    document.title = `${title} · hookgate console`;
  }

  // ---- Overview ----

  const SOURCE_COLUMNS = [
    { label: 'Source' },
    { label: 'Kind', col: 'w-small' },
    { label: 'Path' },
    { label: 'Events, last hour', cls: 'num', col: 'w-small' },
    { label: 'Last event', col: 'w-time' },
    { label: '2xx', cls: 'num', col: 'w-num' },
    { label: '4xx', cls: 'num', col: 'w-num' },
    { label: '401', cls: 'num', col: 'w-num' },
    { label: '5xx', cls: 'num', col: 'w-num' },
  ];

  const DESTINATION_COLUMNS = [
    { label: 'Destination' },
    { label: 'Kind', col: 'w-small' },
    { label: 'State', col: 'w-small' },
    { label: 'Backlog', cls: 'num', col: 'w-num' },
    { label: 'Oldest pending', cls: 'num', col: 'w-small' },
    { label: 'Last success', col: 'w-time' },
    { label: 'Failed', cls: 'num', col: 'w-num' },
  ];

  function sourceCells(s) {
    const r = s.responses || {};
    return [
      link('#/events' + query({ source: s.id }), s.id),
      s.kind || '—',
      s.path ? h('code', {}, s.path) : '—',
      num(s.events_last_hour),
      when(s.last_event_at),
      num(r['2xx']),
      num(r['4xx']),
      num(r['401']),
      num(r['5xx']),
    ];
  }

  function destinationCells(d) {
    return [
      link('#/destinations', d.id),
      d.kind || '',
      stateCell(d),
      num(d.pending),
      age(d.oldest_pending_seconds),
      when(d.last_success_at),
      num(d.failed),
    ];
  }

  function overviewPage({ signal }) {
    setTitle('Overview');
    const refreshed = h('p', { class: 'meta' }, 'Refreshed every 5 seconds.');
    const sources = dataTable('Sources', SOURCE_COLUMNS);
    const dests = dataTable('Destinations', DESTINATION_COLUMNS);
    const sourcesNote = h('p', { class: 'meta' }, 'Responses are counted by this hookgate process since it started.');
    loadingRow(sources.tbody, SOURCE_COLUMNS);
    loadingRow(dests.tbody, DESTINATION_COLUMNS);
    add(main, [
      h('h1', {}, 'Overview'),
      refreshed,
      h('section', { 'aria-labelledby': 'ov-sources' }, h('h2', { id: 'ov-sources' }, 'Sources'), sources.wrap, sourcesNote),
      h('section', { 'aria-labelledby': 'ov-dests' }, h('h2', { id: 'ov-dests' }, 'Destinations'), dests.wrap),
    ]);
    every(REFRESH_MS, signal, async () => {
      const [s, d] = await Promise.allSettled([
        api('/admin/sources', { signal }),
        api('/admin/destinations', { signal }),
      ]);
      if (signal.aborted) return;
      if (s.status === 'fulfilled') {
        syncRows(sources.tbody, SOURCE_COLUMNS, s.value.sources || [], (x) => x.id, sourceCells, 'No sources are configured.');
      } else if (!(s.reason instanceof SignedOut)) {
        loadingRow(sources.tbody, SOURCE_COLUMNS, 'Sources could not be read: ' + s.reason.message);
      }
      if (d.status === 'fulfilled') {
        syncRows(dests.tbody, DESTINATION_COLUMNS, d.value.destinations || [], (x) => x.id, destinationCells, 'No destinations are configured.');
      } else if (!(d.reason instanceof SignedOut)) {
        loadingRow(dests.tbody, DESTINATION_COLUMNS, 'Destinations could not be read: ' + d.reason.message);
      }
      refreshed.textContent = `Refreshed every 5 seconds; last at ${localText(new Date())}.`;
    });
  }

  // ---- Events ----

  const EVENT_COLUMNS = [
    { label: 'Received', col: 'w-time' },
    { label: 'Source', col: 'w-small' },
    { label: 'Event type' },
    { label: 'Hook' },
    { label: 'Event id', col: 'w-id' },
  ];

  function eventCells(e) {
    return [
      when(e.received_at),
      e.source,
      e.event_type || '—',
      e.hook ? (e.hook.label || e.hook.id) : '—',
      link(eventHref(e.id), e.id, { class: 'mono' }),
    ];
  }

  /** A labelled input inside a grid cell. */
  function field(id, label, input, hint) {
    input.id = id;
    if (!input.name) input.name = id;
    return h('div', { class: hint && hint.wide ? 'wide' : null },
      h('label', { for: id }, label, hint && hint.text ? h('span', { class: 'hint' }, ' ' + hint.text) : null),
      input);
  }

  /** A `<datalist>` of the configured source ids (filled when /admin/sources answers). */
  function sourceList(id, signal) {
    const list = h('datalist', { id });
    api('/admin/sources', { signal }).then((r) => {
      const ids = new Set((r.sources || []).map((s) => s.id));
      ids.add('hooks'); // registered hooks' events, whether or not any came lately
      add(list, Array.from(ids, (id) => h('option', { value: id })));
    }).catch(() => {});
    return list;
  }

  function eventsPage({ signal, params }) {
    setTitle('Events');
    const p = Object.fromEntries(['source', 'event_type', 'hook', 'from', 'to', 'after'].map((k) => [k, params.get(k) || '']));
    const source = h('input', { list: 'source-ids', value: p.source, autocomplete: 'off' });
    const type = h('input', { value: p.event_type, autocomplete: 'off' });
    const hook = h('input', { value: p.hook, autocomplete: 'off', pattern: '[0-9a-fA-F]{32}', title: '32 hex digits' });
    const from = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(p.from) });
    const to = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(p.to) });
    const filters = h('form', { class: 'panel', role: 'search', 'aria-label': 'Filter events', onsubmit: (ev) => {
      ev.preventDefault();
      go('/events', { source: source.value.trim(), event_type: type.value.trim(), hook: hook.value.trim().toLowerCase(), from: fromLocalInput(from.value), to: fromLocalInput(to.value, true) });
    } },
    h('div', { class: 'fields' },
      field('f-source', 'Source', source),
      field('f-type', 'Event type', type),
      field('f-hook', 'Hook id', hook),
      field('f-from', 'From', from, { text: '(local time)' }),
      field('f-to', 'To', to, { text: '(local time)' })),
    sourceList('source-ids', signal),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Apply'),
      h('button', { type: 'button', class: 'quiet', onclick: () => go('/events', { source: source.value.trim(), event_type: type.value.trim(), hook: hook.value.trim().toLowerCase(), from: new Date(Date.now() - 3600e3).toISOString() }) }, 'Last hour'),
      h('button', { type: 'button', class: 'quiet', onclick: () => go('/events', {}) }, 'Clear')));

    const openId = h('input', { autocomplete: 'off', placeholder: 'Hookgate-Event-Id' });
    const openForm = h('form', { class: 'inline', 'aria-label': 'Open an event', onsubmit: (ev) => {
      ev.preventDefault();
      const id = openId.value.trim();
      if (id) go('/events/' + encodeURIComponent(id));
    } }, h('label', { for: 'open-id', class: 'visually-hidden' }, 'Event id'), openId, h('button', { type: 'submit', class: 'quiet' }, 'Open event'));
    openId.id = 'open-id';

    const list = dataTable('Events, oldest first', EVENT_COLUMNS);
    loadingRow(list.tbody, EVENT_COLUMNS);
    const meta = h('p', { class: 'meta', 'aria-live': 'polite' }, '');
    const tailButton = h('button', { type: 'button', class: 'quiet', 'aria-pressed': 'false', disabled: true, title: p.to ? 'A live tail needs no To time' : null }, 'Live tail');
    const pager = h('div', { class: 'pager' });
    add(main, [
      h('h1', {}, 'Events'),
      filters,
      h('div', { class: 'toolbar' }, h('div', { class: 'inline' }, tailButton, meta), openForm),
      list.wrap,
      pager,
    ]);

    const filter = { source: p.source, event_type: p.event_type, hook: p.hook, from: p.from, to: p.to };
    let shown = [];
    let next = p.after;
    let tail = null;

    const render = () => syncRows(list.tbody, EVENT_COLUMNS, shown, (e) => e.id, eventCells, 'No event matches these filters.');

    api('/admin/events' + query(Object.assign({ limit: 100, after: p.after }, filter)), { signal }).then((page) => {
      shown = page.events || [];
      next = page.next;
      render();
      meta.textContent = `${shown.length} event${shown.length === 1 ? '' : 's'}, oldest first.`;
      tailButton.disabled = !!p.to;
      if (page.more) pager.replaceChildren(link('#/events' + query(Object.assign({}, filter, { after: page.next })), 'Next page'));
    }).catch((e) => {
      loadingRow(list.tbody, EVENT_COLUMNS, 'Events could not be read: ' + (e.message || e));
      report(e);
    });

    // The live tail: follows the feed from the last event shown, then waits for new ones
    // (long poll) and adds them at the end, keeping the last TAIL_KEEP rows.
    async function follow(stop) {
      while (!stop.aborted) {
        let page;
        try {
          page = await api('/admin/events' + query(Object.assign({ limit: 1000, after: next, wait: TAIL_WAIT }, filter)), { signal: stop });
        } catch (e) {
          if (stop.aborted) return;
          report(e);
          if (e instanceof SignedOut) return;
          await new Promise((r) => setTimeout(r, 3000));
          continue;
        }
        next = page.next;
        const fresh = page.events || [];
        if (fresh.length) {
          shown = shown.concat(fresh).slice(-TAIL_KEEP);
          render();
          for (const e of fresh) {
            const tr = list.tbody.querySelector(`tr[data-key="${CSS.escape(String(e.id))}"]`);
            if (tr) tr.classList.add('new');
          }
          pager.replaceChildren();
        }
        const text = `Live: ${shown.length} event${shown.length === 1 ? '' : 's'} shown; new ones are added at the end.`;
        if (meta.textContent !== text) meta.textContent = text;
      }
    }

    tailButton.addEventListener('click', () => {
      if (tail) {
        tail.abort();
        tail = null;
        tailButton.setAttribute('aria-pressed', 'false');
        meta.textContent = 'Live tail stopped.';
        return;
      }
      tail = new AbortController();
      signal.addEventListener('abort', () => tail && tail.abort());
      tailButton.setAttribute('aria-pressed', 'true');
      meta.textContent = 'Live: catching up…';
      follow(tail.signal);
    });
  }

  // ---- Event page ----

  const ATTEMPT_COLUMNS = [
    { label: '#', cls: 'num', col: 'w-num' },
    { label: 'At', col: 'w-time' },
    { label: 'Duration', cls: 'num', col: 'w-num' },
    { label: 'Status', cls: 'num', col: 'w-num' },
    { label: 'Error', col: 'w-small' },
    { label: 'Response' },
  ];

  function attemptCells(a) {
    return [
      String(a.number),
      when(a.at),
      `${num(a.duration_ms)} ms`,
      a.status === null || a.status === undefined ? '—' : String(a.status),
      a.error || '—',
      a.response ? h('span', { class: 'mono', title: a.response }, a.response) : '—',
    ];
  }

  function facts(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  /** One delivery with its attempts and a Retry button. */
  function deliveryBlock(d, onRetry) {
    const attempts = dataTable(`Attempts of delivery ${d.id}`, ATTEMPT_COLUMNS);
    syncRows(attempts.tbody, ATTEMPT_COLUMNS, d.attempts || [], (a) => a.number, attemptCells, 'No attempt yet.');
    const heading = h('h3', { id: `delivery-${d.id}`, tabindex: '-1' }, `Delivery ${d.id} to ${d.destination}`);
    return h('article', { class: 'delivery', 'aria-labelledby': heading.id, 'data-delivery': d.id },
      h('header', {}, heading, badge(d.state),
        h('button', { type: 'button', class: 'small', onclick: (ev) => onRetry(d, ev.currentTarget) }, 'Retry')),
      facts([
        ['Attempts made', num(d.attempts_made)],
        d.next_attempt_at ? ['Next attempt', when(d.next_attempt_at)] : null,
        d.delivered_at ? ['Delivered', when(d.delivered_at)] : null,
        d.last_error ? ['Last error', d.last_error] : null,
        ['Created', when(d.created_at)],
      ]),
      attempts.wrap);
  }

  /** The "replay a range into a destination" form; `preset` fills source, type and times. */
  function replayForm(signal, preset, idPrefix) {
    const dest = h('select', { required: true }, h('option', { value: '' }, 'Loading…'));
    api('/admin/destinations', { signal }).then((r) => {
      const list = r.destinations || [];
      dest.replaceChildren(...(list.length ? list.map((d) => h('option', { value: d.id }, d.id)) : [h('option', { value: '' }, 'No destination is configured')]));
    }).catch((e) => report(e));
    const source = h('input', { value: preset.source || '', autocomplete: 'off' });
    const type = h('input', { value: preset.event_type || '', autocomplete: 'off' });
    const from = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(preset.from) });
    const to = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(preset.to) });
    const out = h('p', { class: 'meta', role: 'status' });
    const form = h('form', { class: 'panel', 'aria-label': 'Replay a range', onsubmit: async (ev) => {
      ev.preventDefault();
      out.textContent = 'Queuing…';
      const body = {};
      if (source.value.trim()) body.source = source.value.trim();
      if (type.value.trim()) body.event_type = type.value.trim();
      if (from.value) body.from = fromLocalInput(from.value);
      if (to.value) body.to = fromLocalInput(to.value, true);
      try {
        const r = await api(`/admin/destinations/${encodeURIComponent(dest.value)}/replay`, { method: 'POST', body, signal });
        out.textContent = `${num(r.queued)} queued for ${dest.value}.`;
      } catch (e) {
        out.textContent = '';
        report(e, out);
      }
    } },
    h('p', { class: 'muted' }, 'Queues the stored events that match these filters and the destination\u2019s own, as new deliveries (consumers see the same event ids again).'),
    h('div', { class: 'fields' },
      field(idPrefix + '-dest', 'Destination', dest),
      field(idPrefix + '-source', 'Source', source),
      field(idPrefix + '-type', 'Event type', type),
      field(idPrefix + '-from', 'From', from, { text: '(local time)' }),
      field(idPrefix + '-to', 'To', to, { text: '(local time)' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Replay'), out));
    return form;
  }

  function eventPage({ signal, match }) {
    const id = decodeURIComponent(match[1]);
    setTitle('Event ' + id.slice(0, 8));
    // Back to the list as it was last seen (filters and page), as the Back button would.
    const back = h('p', {}, link(lastEventsHash || '#/events', '\u2190 Events'));
    const summary = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading…'));
    const headers = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const deliveries = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const replay = h('div');
    add(main, [
      back,
      h('h1', {}, 'Event ', h('code', {}, id)),
      summary,
      h('section', { 'aria-labelledby': 'ev-headers' }, h('h2', { id: 'ev-headers' }, 'Headers'),
        h('p', { class: 'meta' }, 'The selected headers hookgate keeps; never a credential.'), headers),
      h('section', { 'aria-labelledby': 'ev-body' }, h('h2', { id: 'ev-body' }, 'Body'), body),
      h('section', { 'aria-labelledby': 'ev-deliveries' }, h('h2', { id: 'ev-deliveries' }, 'Deliveries'), deliveries),
      h('section', { 'aria-labelledby': 'ev-replay' }, h('h2', { id: 'ev-replay' }, 'Replay a range into a destination'), replay),
    ]);

    let waitFor = null; // a retried delivery's id, until its first attempt shows

    let drawn = null; // what the deliveries section shows, as JSON: redrawn only when it changes
    async function loadDeliveries(event) {
      const full = await Promise.all((event.deliveries || []).map((d) => api('/admin/deliveries/' + encodeURIComponent(d.id), { signal })));
      if (signal.aborted) return full;
      const json = JSON.stringify(full);
      if (json === drawn) return full;
      drawn = json;
      const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest('[data-delivery]');
      deliveries.replaceChildren(...(full.length
        ? full.map((d) => deliveryBlock(d, retry))
        : [h('p', { class: 'muted' }, 'No destination takes this event.')]));
      if (focusedId) {
        const again = deliveries.querySelector(`[data-delivery="${CSS.escape(focusedId.dataset.delivery)}"] button`);
        if (again) again.focus();
      }
      return full;
    }

    async function retry(d, button) {
      button.disabled = true;
      try {
        const r = await api(`/admin/deliveries/${encodeURIComponent(d.id)}/retry`, { method: 'POST', signal });
        waitFor = r.delivery_id;
        say(`Delivery ${d.id} retried as delivery ${r.delivery_id}.`);
        schedule(await refresh());
        const heading = document.getElementById(`delivery-${r.delivery_id}`);
        if (heading) heading.focus();
      } catch (e) {
        report(e);
        button.disabled = false;
      }
    }

    let event = null;
    async function refresh() {
      event = await api('/admin/events/' + encodeURIComponent(id), { signal });
      const full = await loadDeliveries(event);
      const waiting = full.find((d) => d.id === waitFor);
      if (waiting && (waiting.attempts || []).length) waitFor = null;
      return full;
    }

    // Pending deliveries are refreshed (every second while a retry waits for its first attempt).
    let timer = null;
    signal.addEventListener('abort', () => clearTimeout(timer));
    function schedule(full) {
      clearTimeout(timer);
      if (signal.aborted) return;
      const pending = full.some((d) => d.state === 'pending');
      if (!pending && waitFor === null) return;
      timer = setTimeout(async () => {
        if (signal.aborted) return;
        try { schedule(await refresh()); } catch (e) { report(e); }
      }, waitFor !== null ? 1000 : REFRESH_MS);
    }

    api('/admin/events/' + encodeURIComponent(id), { signal }).then(async (e) => {
      event = e;
      summary.replaceChildren(facts([
        ['Event id', h('code', {}, e.id)],
        ['Source', link('#/events' + query({ source: e.source }), e.source)],
        ['Kind', e.kind],
        ['Event type', e.event_type || '—'],
        ['Received', when(e.received_at)],
        ['Dedupe key', h('code', {}, e.dedupe_key)],
        e.sender_id ? ['Sender id', h('code', {}, e.sender_id)] : null,
        e.hook ? ['Hook', link('#/events' + query({ hook: e.hook.id }), e.hook.label || e.hook.id)] : null,
      ]));
      const hdrs = Object.entries(e.headers || {});
      const t = dataTable('Headers', [{ label: 'Header', col: 'w-id' }, { label: 'Value', cls: 'wrap' }]);
      syncRows(t.tbody, t.table.columns, hdrs, ([k]) => k, ([k, v]) => [h('code', {}, k), String(v)], 'No header was kept.');
      headers.replaceChildren(t.wrap);
      replay.replaceChildren(replayForm(signal, { source: e.source, event_type: e.event_type, from: e.received_at, to: e.received_at }, 'rp'));
      schedule(await loadDeliveries(e));
    }).catch((e) => {
      summary.replaceChildren(h('p', { class: 'error-text' }, e instanceof ApiError && e.status === 404 ? 'No event has this id (retention may have removed it).' : 'The event could not be read: ' + (e.message || e)));
      for (const s of [headers, body, deliveries]) s.replaceChildren();
      report(e);
    });

    api('/admin/events/' + encodeURIComponent(id) + '/raw', { signal, as: 'bytes' }).then((bytes) => {
      const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
      const pretty = prettyJson(text);
      body.replaceChildren(h('div', { class: 'two' },
        h('figure', {}, h('figcaption', {}, 'Pretty-printed'),
          h('pre', { class: 'code', tabindex: '0', id: 'body-pretty' }, pretty === null ? 'The body is not JSON: see the exact bytes.' : pretty)),
        h('figure', {}, h('figcaption', {}, `Exact bytes as received (${num(bytes.length)} bytes, shown as UTF-8)`),
          h('pre', { class: 'code', tabindex: '0', id: 'body-raw' }, text))));
    }).catch((e) => {
      if (!(e instanceof ApiError && e.status === 404)) report(e);
      body.replaceChildren();
    });
  }

  // ---- Destinations ----

  const DEST_FULL_COLUMNS = [
    { label: 'Destination' },
    { label: 'State', col: 'w-small' },
    { label: 'Backlog', cls: 'num', col: 'w-num' },
    { label: 'Oldest pending', cls: 'num', col: 'w-small' },
    { label: 'Failed', cls: 'num', col: 'w-num' },
    { label: 'Failures in a row', cls: 'num', col: 'w-num' },
    { label: 'Last success', col: 'w-time' },
    { label: 'Last failure', col: 'w-time' },
    { label: 'Action', col: 'w-act' },
  ];

  /** The state, with the reason when paused. */
  function stateCell(d) {
    return d.paused_reason && d.state === 'paused'
      ? h('span', { title: d.paused_reason }, badge(d.state), ' ', d.paused_reason)
      : badge(d.state);
  }

  function destinationsPage({ signal }) {
    setTitle('Destinations');
    const t = dataTable('Destinations', DEST_FULL_COLUMNS);
    loadingRow(t.tbody, DEST_FULL_COLUMNS);
    const refreshed = h('p', { class: 'meta' }, 'Refreshed every 5 seconds.');
    let latest = [];
    const draw = () => syncRows(t.tbody, DEST_FULL_COLUMNS, latest, (d) => d.id, (d) => [
      h('span', { title: `${d.id} (${d.kind})` }, d.id, h('span', { class: 'muted' }, ` ${d.kind || ''}`)),
      stateCell(d),
      num(d.pending),
      age(d.oldest_pending_seconds),
      num(d.failed),
      num(d.consecutive_failures),
      when(d.last_success_at),
      when(d.last_failure_at),
      h('button', { type: 'button', class: 'small quiet', 'data-id': d.id, onclick: () => toggle(d) }, d.state === 'paused' ? 'Resume' : 'Pause'),
    ], 'No destinations are configured.');
    async function toggle(d) {
      const action = d.state === 'paused' ? 'resume' : 'pause';
      try {
        const r = await api(`/admin/destinations/${encodeURIComponent(d.id)}/${action}`, { method: 'POST', signal });
        latest = latest.map((x) => x.id === r.id ? r : x);
        const focused = document.activeElement;
        if (focused) focused.blur();
        draw();
        const again = t.tbody.querySelector(`button[data-id="${CSS.escape(r.id)}"]`);
        if (again) again.focus();
        say(`${r.id} ${action === 'pause' ? 'paused' : 'resumed'}.`);
      } catch (e) { report(e); }
    }
    add(main, [
      h('h1', {}, 'Destinations'),
      refreshed,
      t.wrap,
      h('section', { 'aria-labelledby': 'ds-replay' }, h('h2', { id: 'ds-replay' }, 'Replay a range'), replayForm(signal, {}, 'ds')),
    ]);
    every(REFRESH_MS, signal, async () => {
      const r = await api('/admin/destinations', { signal });
      latest = r.destinations || [];
      draw();
      refreshed.textContent = `Refreshed every 5 seconds; last at ${localText(new Date())}.`;
    });
  }

  // ---- Projections ----

  function projectionsPage({ signal, params }) {
    setTitle('Projections');
    const kid = h('input', { value: params.get('kratos') || '', autocomplete: 'off' });
    const email = h('input', { type: 'email', value: params.get('email') || '', autocomplete: 'off' });
    const ikind = h('select', {}, IDENTUS_KINDS.map((k) => h('option', { value: k, selected: params.get('identus') === k }, k)));
    const iid = h('input', { value: params.get('id') || '', autocomplete: 'off' });
    const wallet = h('input', { value: params.get('wallet_id') || '', autocomplete: 'off' });
    const result = h('section', { 'aria-labelledby': 'pj-result', 'aria-live': 'polite' });
    add(main, [
      h('h1', {}, 'Projections'),
      h('p', { class: 'muted' }, 'What the events say now: the latest Kratos identity, the latest state of each Identus record.'),
      h('div', { class: 'two' },
        h('form', { class: 'panel', 'aria-label': 'Kratos identity', onsubmit: (ev) => {
          ev.preventDefault();
          if (kid.value.trim()) go('/projections', { kratos: kid.value.trim() });
          else if (email.value.trim()) go('/projections', { email: email.value.trim() });
        } },
        h('h2', {}, 'Kratos identity'),
        h('div', { class: 'fields' },
          field('pj-kratos', 'Identity id', kid),
          field('pj-email', 'or e-mail address', email)),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Look up'))),
        h('form', { class: 'panel', 'aria-label': 'Identus record', onsubmit: (ev) => {
          ev.preventDefault();
          if (iid.value.trim()) go('/projections', { identus: ikind.value, id: iid.value.trim(), wallet_id: wallet.value.trim() });
        } },
        h('h2', {}, 'Identus record'),
        h('div', { class: 'fields' },
          field('pj-ikind', 'Record kind', ikind),
          field('pj-iid', 'Record id', iid),
          field('pj-wallet', 'Wallet id', wallet, { text: '(optional)' })),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Look up')))),
      result,
    ]);

    const madeBy = (eventId) => ['Made by', h('span', {}, link(eventHref(eventId), eventId, { class: 'mono' }), h('span', { class: 'hint' }, ' (the latest event that changed it)'))];

    const show = (title, pairs, json) => {
      const pretty = json === null || json === undefined ? null : prettyJson(JSON.stringify(json));
      result.replaceChildren(h('h2', { id: 'pj-result' }, title), h('div', { class: 'panel' }, facts(pairs),
        pretty ? h('pre', { class: 'code', tabindex: '0' }, pretty) : null));
    };
    const fail = (e, what) => {
      if (e instanceof SignedOut || (e && e.name === 'AbortError')) return;
      result.replaceChildren(h('h2', { id: 'pj-result' }, 'Result'),
        h('p', { class: 'error-text' }, e instanceof ApiError && e.status === 404 ? `No ${what} has this id.` : (e.message || String(e))));
    };

    if (params.get('kratos')) {
      const id = params.get('kratos');
      api('/admin/kratos/identities/' + encodeURIComponent(id), { signal }).then((r) => show('Kratos identity', [
        ['Identity id', h('code', {}, r.identity_id)],
        ['State', r.state ? badge(r.state) : '—'],
        ['Schema', r.schema_id || '—'],
        ['Updated', when(r.updated_at)],
        madeBy(r.event_id),
      ], r.identity)).catch((e) => fail(e, 'identity'));
    } else if (params.get('email')) {
      const t = dataTable('Identities with this e-mail address', [{ label: 'Identity id', col: 'w-id' }, { label: 'State', col: 'w-small' }, { label: 'Schema' }, { label: 'Updated', col: 'w-time' }]);
      loadingRow(t.tbody, t.table.columns);
      result.replaceChildren(h('h2', { id: 'pj-result' }, 'Identities with this e-mail address'), t.wrap);
      api('/admin/kratos/identities' + query({ email: params.get('email') }), { signal }).then((r) => {
        syncRows(t.tbody, t.table.columns, r.identities || [], (x) => x.identity_id, (x) => [
          link('#/projections' + query({ kratos: x.identity_id }), x.identity_id, { class: 'mono' }),
          x.state ? badge(x.state) : '—',
          x.schema_id || '—',
          when(x.updated_at),
        ], 'No identity has this e-mail address.');
      }).catch((e) => fail(e, 'identity'));
    } else if (params.get('identus') && params.get('id')) {
      const kind = params.get('identus');
      api(`/admin/identus/${encodeURIComponent(kind)}/${encodeURIComponent(params.get('id'))}` + query({ wallet_id: params.get('wallet_id') }), { signal }).then((r) => show(`Identus record (${kind})`, [
        ['Record id', h('code', {}, r.id)],
        ['Wallet', r.wallet_id ? h('code', {}, r.wallet_id) : '—'],
        ['State', r.state ? badge(r.state) : '—'],
        ['As of', when(r.ts)],
        madeBy(r.event_id),
      ], r.data)).catch((e) => fail(e, 'record of this kind'));
    }
  }

  // ---- Registered hooks ----

  const HOOK_COLUMNS = [
    { label: 'Label' },
    { label: 'Kind', col: 'w-small' },
    { label: 'Path', col: 'w-id' },
    { label: 'Created', col: 'w-time' },
    { label: 'Expires', col: 'w-time' },
    { label: 'Events', col: 'w-small' },
    { label: 'Action', col: 'w-act' },
  ];

  /** A button that copies `text` (and says so); selecting the text is the fallback. */
  function copyButton(text, target, what) {
    return h('button', { type: 'button', class: 'small', onclick: async (ev) => {
      const b = ev.currentTarget;
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = 'Copied';
        say(`${what} copied.`);
      } catch {
        const range = document.createRange();
        range.selectNodeContents(target);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        say(`${what} selected: press Ctrl+C (\u2318C) to copy it.`);
      }
    } }, 'Copy ' + what.toLowerCase());
  }

  function hooksPage({ signal, params }) {
    setTitle('Hooks');
    const label = h('input', { maxlength: '200', autocomplete: 'off' });
    const kind = h('select', {}, KINDS.map((k) => h('option', { value: k }, k)));
    const scheme = h('select', {}, SCHEMES.map((s) => h('option', { value: s }, s)));
    const header = h('input', { autocomplete: 'off', placeholder: 'X-Api-Key' });
    const headerField = field('hk-header', 'Header', header, { text: '(api_key: default X-Api-Key; hmac: required)' });
    const expires = h('input', { type: 'datetime-local', step: '1' });
    const payload = h('textarea', { rows: '3', spellcheck: 'false', placeholder: '{"shop": 42}' });
    const formError = h('p', { class: 'error-text', role: 'alert' });
    const created = h('div', { 'aria-live': 'polite' });
    const showHeader = () => { headerField.hidden = !['api_key', 'hmac'].includes(scheme.value); };
    scheme.addEventListener('change', showHeader);
    showHeader();

    const list = dataTable('Registered hooks', HOOK_COLUMNS);
    loadingRow(list.tbody, HOOK_COLUMNS);
    const pager = h('div', { class: 'pager' });
    const dialogText = h('p');
    const dialog = h('dialog', { 'aria-labelledby': 'hk-dialog-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'hk-dialog-title' }, 'Delete this hook?'),
        dialogText,
        h('div', { class: 'actions' },
          h('button', { value: 'delete', class: 'danger', id: 'hk-confirm' }, 'Delete'),
          h('button', { value: 'cancel', class: 'quiet', autofocus: true }, 'Cancel'))));

    const form = h('form', { class: 'panel', 'aria-labelledby': 'hk-new', onsubmit: async (ev) => {
      ev.preventDefault();
      formError.textContent = '';
      const body = { kind: kind.value };
      if (label.value.trim()) body.label = label.value.trim();
      const verify = { scheme: scheme.value };
      if (scheme.value !== 'none') verify.secrets = 'generate';
      if (header.value.trim() && !headerField.hidden) verify.header = header.value.trim();
      body.verify = verify;
      if (expires.value) body.expires_at = fromLocalInput(expires.value);
      if (payload.value.trim()) {
        try { body.payload = JSON.parse(payload.value); } catch { formError.textContent = 'Payload must be JSON (or left empty).'; payload.focus(); return; }
      }
      try {
        const r = await api('/admin/hooks', { method: 'POST', body, signal });
        showCreated(r);
        form.reset();
        showHeader();
        load();
      } catch (e) {
        report(e, formError);
      }
    } },
    h('h2', { id: 'hk-new' }, 'Register a hook'),
    h('p', { class: 'muted' }, 'A new URL on hookgate\u2019s public listener, for one external sender. Its events have the source \u201chooks\u201d.'),
    h('div', { class: 'fields' },
      field('hk-label', 'Label', label, { text: '(optional)' }),
      field('hk-kind', 'Kind', kind),
      field('hk-scheme', 'Verification', scheme),
      headerField,
      field('hk-expires', 'Expires', expires, { text: '(optional)' }),
      field('hk-payload', 'Payload', payload, { text: '(optional JSON, given back with each event)', wide: true })),
    formError,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Register')));

    function showCreated(r) {
      const path = h('code', { id: 'hk-created-path' }, r.path);
      const secret = r.secret ? h('code', { id: 'hk-created-secret' }, r.secret) : null;
      const heading = h('h2', { tabindex: '-1' }, 'Hook registered');
      created.replaceChildren(h('div', { class: 'panel', id: 'hk-created' },
        heading,
        h('p', {}, 'Give the sender this URL: hookgate\u2019s public address followed by the path.'),
        h('div', { class: 'secret' }, h('span', {}, 'Path'), path, copyButton(r.path, path, 'Path')),
        secret ? [
          h('p', {}, h('strong', {}, 'The secret is shown this once:'), ' hookgate keeps it for checking requests and never shows it again.'),
          h('div', { class: 'secret' }, h('span', {}, 'Secret'), secret, copyButton(r.secret, secret, 'Secret')),
        ] : h('p', { class: 'muted' }, 'No verification: anyone who knows the URL can send to it.'),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'quiet', onclick: () => created.replaceChildren() }, 'Done'))));
      heading.focus();
    }

    let shown = [];
    const after = params.get('after') || '';
    function load() {
      api('/admin/hooks' + query({ after, limit: 100 }), { signal }).then((r) => {
        shown = r.hooks || [];
        syncRows(list.tbody, HOOK_COLUMNS, shown, (x) => x.id, (x) => [
          x.label || '—',
          x.kind,
          h('code', { title: x.path }, x.path),
          when(x.created_at),
          when(x.expires_at),
          link('#/events' + query({ hook: x.id }), 'Events'),
          h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete hook ${x.label || x.id}`, onclick: () => confirmDelete(x) }, 'Delete'),
        ], 'No hook is registered.');
        pager.replaceChildren(r.next ? link('#/hooks' + query({ after: r.next }), 'Next page') : '');
      }).catch((e) => { loadingRow(list.tbody, HOOK_COLUMNS, 'Hooks could not be read: ' + (e.message || e)); report(e); });
    }

    function confirmDelete(x) {
      dialogText.textContent = `${x.label ? `\u201c${x.label}\u201d (${x.path})` : x.path}: requests to its URL will get 404 from now on. Its events stay.`;
      dialog.returnValue = '';
      dialog.onclose = async () => {
        if (dialog.returnValue !== 'delete') return;
        try {
          await api('/admin/hooks/' + encodeURIComponent(x.id), { method: 'DELETE', signal });
          say(`Hook ${x.label || x.id} deleted.`);
          load();
          main.querySelector('h1').focus();
        } catch (e) { report(e); }
      };
      dialog.showModal();
    }

    add(main, [
      h('h1', {}, 'Registered hooks'),
      form,
      created,
      h('section', { 'aria-labelledby': 'hk-list' }, h('h2', { id: 'hk-list' }, 'Hooks'), list.wrap, pager),
      dialog,
    ]);
    load();
  }

  // ---- start ----

  document.getElementById('skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    const heading = main.querySelector('h1');
    (heading || main).focus();
  });

  window.addEventListener('hashchange', () => route());
  route();
})();
