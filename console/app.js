// The key console: plain DOM, no framework. Every value from the API is set with textContent or
// an input's value, never parsed as HTML. The root key lives only in this tab's sessionStorage.

const STORE = 'apikeys.rootKey';
const PAGE_SIZE = 10;
const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  status: 'active', identity: null, url: null, next: null, previous: null, rows: [], open: null, audit: null, company: null,
  identities: { url: null, next: null, previous: null, rows: [], open: null },
};

// --- The API ------------------------------------------------------------------------------------

function requestId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One call: {status, ok, etag, data}. Writes carry an Idempotency-Key, so a retried click is safe. */
async function api(method, path, { body, headers = {} } = {}) {
  const sent = { Authorization: `Bearer ${sessionStorage.getItem(STORE) ?? ''}`, ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (method !== 'GET') sent['Idempotency-Key'] = requestId();
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, ok: false, etag: null, data: { error: { code: 'network', message: `The API did not answer: ${e.message}` } } };
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: { code: 'not_json', message: text.slice(0, 300) } }; }
  }
  return { status: response.status, ok: response.ok, etag: response.headers.get('ETag'), data };
}

const errorOf = (res) => res.data?.error ?? { code: `http_${res.status}`, message: `The API answered ${res.status}` };

// --- Forms and errors ---------------------------------------------------------------------------

function clearErrors(root) {
  root.querySelectorAll('.field-error, .form-error').forEach((p) => { p.textContent = ''; });
  root.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
}

/** Shows a message next to the field it names (`acl[0].permissions` belongs to `acl`), else for the form. */
function showFieldError(root, field, message) {
  const base = String(field ?? '').split(/[.[]/)[0];
  const slot = base && root.querySelector(`[data-error-for="${CSS.escape(base)}"]`);
  const input = base && root.querySelector(`[data-field="${CSS.escape(base)}"]`);
  if (slot && input && !input.closest('[hidden]')) {
    slot.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  $('.form-error', root).textContent = field ? `${field}: ${message}` : message;
}

function showApiError(root, res) {
  const error = errorOf(res);
  if (res.status === 412) {
    $('.form-error', root).textContent =
      `This key changed since you opened it (412 ${error.code}). Close and open it again to see the current version.`;
    return;
  }
  showFieldError(root, error.field, `${error.message} (${res.status} ${error.code})`);
}

/** A JSON field of a form: undefined when empty; throws a field error when not JSON. */
function jsonField(form, name) {
  const raw = form.elements[name].value.trim();
  if (!raw) return undefined;
  try { return JSON.parse(raw); } catch { throw { field: name, message: `${name} is not valid JSON` }; }
}

const listField = (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean);

// --- Rendering ----------------------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

const when = (iso) => (iso ? String(iso).replace('T', ' ').replace(/(:\d\d)(\.\d+)?(Z|[+-]00:00)$/, '$1Z') : '—');

function button(label, onClick, name) {
  const b = el('button', label);
  b.type = 'button';
  if (name) b.setAttribute('aria-label', `${label} ${name}`);
  b.addEventListener('click', onClick);
  return b;
}

function renderRows() {
  const body = $('#key-rows');
  body.replaceChildren();
  const query = $('#search').value.trim().toLowerCase();
  const shown = state.rows.filter((k) => !query || [k.id, k.userId, k.description].some((v) => String(v ?? '').toLowerCase().includes(query)));
  for (const key of shown) {
    const tr = el('tr');
    tr.dataset.keyId = key.id;
    const cells = [
      ['Id', el('code', key.id)], ['Description', key.description ?? ''], ['User', key.userId], ['Type', key.type],
      ['Prefix', el('code', key.keyPrefix)], ['Status', key.status], ['Created', when(key.createdAt)],
      ['Last used', when(key.lastUsedAt)], ['Expires', when(key.expiresAt)],
      ['Identity', key.identityId ? el('code', key.identityId) : '—'],
    ];
    for (const [label, value] of cells) {
      const td = el('td', typeof value === 'string' ? value : undefined);
      if (typeof value !== 'string') td.append(value);
      td.dataset.label = label;
      if (label === 'Status') td.className = `status-${key.status}`;
      if (label === 'Description') td.className = 'description';
      tr.append(td);
    }
    const tags = el('td');
    tags.dataset.label = 'Tags';
    for (const tag of key.tags ?? []) tags.append(el('span', tag, 'tag'));
    tr.append(tags);
    const actions = el('td', undefined, 'actions');
    actions.append(
      button('Edit', () => openEdit(key.id), key.id),
      button('Roll', () => openKeyAction('roll', key.id), key.id),
      button('Delete', () => openKeyAction('delete', key.id), key.id),
      button('Audit', () => openAudit(key.id), key.id),
      button('Usage', () => openUsage('key', key.id), key.id),
    );
    tr.append(actions);
    body.append(tr);
  }
  if (!shown.length) {
    const td = el('td', state.rows.length ? 'No key on this page matches.' : 'No keys.');
    td.colSpan = 12;
    body.append(el('tr')).append(td);
  }
}

/** A JSON value in a cell: compact, as text. */
const brief = (value) => (value === undefined || value === null ? '—' : JSON.stringify(value));

function renderIdentities() {
  const body = $('#identity-rows');
  body.replaceChildren();
  for (const identity of state.identities.rows) {
    const tr = el('tr');
    tr.dataset.identityId = identity.id;
    const limits = identity.ratelimits.map((l) => `${l.name} ${l.limit}/${l.periodSeconds}s${l.autoApply ? '' : ' (asked)'}`);
    const cells = [
      ['Id', el('code', identity.id)], ['External id', identity.externalId],
      ['Meta', Object.keys(identity.meta).length ? brief(identity.meta) : '—'],
      ['Named limits', limits.length ? limits.join(', ') : '—'], ['Created', when(identity.createdAt)],
    ];
    for (const [label, value] of cells) {
      const td = el('td', typeof value === 'string' ? value : undefined);
      if (typeof value !== 'string') td.append(value);
      td.dataset.label = label;
      tr.append(td);
    }
    const actions = el('td', undefined, 'actions');
    actions.append(
      button('Edit', () => openIdentityEdit(identity.id), identity.id),
      button('Keys', () => showIdentityKeys(identity.id), identity.id),
      button('Usage', () => openUsage('identity', identity.id), identity.id),
      button('Delete', () => deleteIdentity(identity.id), identity.id),
    );
    tr.append(actions);
    body.append(tr);
  }
  if (!state.identities.rows.length) {
    const td = el('td', 'No identities.');
    td.colSpan = 6;
    body.append(el('tr')).append(td);
  }
}

// --- Sign-in --------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const input = $('#signin-key');
  $('#signin-error').textContent = '';
  sessionStorage.setItem(STORE, input.value.trim());
  if (!(await loadMe())) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

async function loadMe() {
  const res = await api('GET', '/me');
  if (!res.ok) {
    sessionStorage.removeItem(STORE);
    const error = errorOf(res);
    $('#signin-error').textContent = `${error.message} (${res.status} ${error.code})`;
    return false;
  }
  const me = res.data;
  $('#signin-key').value = '';
  $('#signin-key').removeAttribute('aria-invalid');
  $('#who-company').textContent = `company ${me.companyId}`;
  $('#who-key').textContent = me.keyId;
  $('#who-permissions').textContent = me.permissions.length ? me.permissions.join(', ') : 'no keys: permission';
  $('#who').hidden = false;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  await loadList(listUrl());
  $('#status-filter').focus();
  return true;
}

function signOut() {
  sessionStorage.removeItem(STORE);
  state.rows = [];
  state.identity = null;
  state.identities.rows = [];
  forgetCompany();
  renderRows();
  renderIdentities();
  $('#who').hidden = true;
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-key').focus();
}

// --- The list -------------------------------------------------------------------------------------

const listUrl = () => `/keys?limit=${PAGE_SIZE}&status=${encodeURIComponent(state.status)}${
  state.identity ? `&identityId=${encodeURIComponent(state.identity)}` : ''}`;

/** Numbers each list request: an answer that is not the newest one asked for is dropped, so a slow
 * page never paints over a newer filter or page (the label names the status the answer is for). */
let listRequest = 0;

async function loadList(url) {
  const request = ++listRequest;
  // The filter this page is of, from its own link (links leave out the default, active).
  const status = new URL(url, location.href).searchParams.get('status') ?? 'active';
  $('#list-error').textContent = '';
  const res = await api('GET', url);
  if (request !== listRequest) return;
  if (!res.ok) {
    const error = errorOf(res);
    $('#list-error').textContent = `${error.message} (${res.status} ${error.code})`;
    return;
  }
  state.url = url;
  state.rows = res.data.data;
  state.next = res.data.nextUrl;
  state.previous = res.data.previousUrl;
  $('#total').textContent = `${res.data.total} ${status === 'all' ? '' : `${status} `}key${res.data.total === 1 ? '' : 's'}, showing ${res.data.count}`;
  $('#identity-filter').hidden = !state.identity;
  $('#identity-filter-id').textContent = state.identity ?? '';
  $('#next-page').disabled = !state.next;
  $('#prev-page').disabled = !state.previous;
  renderRows();
}

const reload = () => loadList(state.url ?? listUrl());

// --- Create and edit --------------------------------------------------------------------------------

const keyDialog = () => $('#key-dialog');
const OPTIONAL_TEXT = ['description', 'expiresAt'];

function openCreate() {
  const form = $('#key-form');
  form.reset();
  clearErrors(form);
  state.open = null;
  $('#key-dialog-title').textContent = 'New key';
  $('#key-save').textContent = 'Create';
  for (const name of ['id', 'userId', 'type']) form.elements[name].disabled = false;
  form.elements.status.closest('select').hidden = true;
  $('label[for=f-status]').hidden = true;
  keyDialog().showModal();
  form.elements.id.focus();
}

async function openEdit(id) {
  const res = await api('GET', `/keys/${encodeURIComponent(id)}`);
  if (!res.ok) { $('#list-error').textContent = errorOf(res).message; return; }
  const key = res.data;
  const form = $('#key-form');
  form.reset();
  clearErrors(form);
  state.open = { id, etag: res.etag, key };
  $('#key-dialog-title').textContent = `Edit key ${id}`;
  $('#key-save').textContent = 'Save';
  const f = form.elements;
  f.id.value = key.id;
  f.userId.value = key.userId;
  f.type.value = key.type;
  for (const name of ['id', 'userId', 'type']) f[name].disabled = true;
  f.status.hidden = false;
  $('label[for=f-status]').hidden = false;
  f.status.value = key.status;
  f.description.value = key.description ?? '';
  f.expiresAt.value = key.expiresAt ?? '';
  f.whitelistedIPs.value = (key.whitelistedIPs ?? []).join(', ');
  f.acl.value = key.acl ? JSON.stringify(key.acl) : '';
  f.rateLimit.value = key.rateLimit ? JSON.stringify(key.rateLimit) : '';
  f.quota.value = key.quota ? JSON.stringify({ max: key.quota.max, renewalSeconds: key.quota.renewalSeconds }) : '';
  f.tags.value = (key.tags ?? []).join(', ');
  f.metadata.value = key.metadata && Object.keys(key.metadata).length ? JSON.stringify(key.metadata) : '';
  f.identityId.value = key.identityId ?? '';
  f.ratelimits.value = key.ratelimits?.length ? JSON.stringify(key.ratelimits) : '';
  keyDialog().showModal();
  f.description.focus();
}

/** The form as a create body (empty fields left out) or a PATCH body (changed fields only; emptied ones null). */
function keyBody(form) {
  const f = form.elements;
  const values = {
    description: f.description.value.trim() || undefined,
    expiresAt: f.expiresAt.value.trim() || undefined,
    whitelistedIPs: listField(f.whitelistedIPs.value),
    acl: jsonField(form, 'acl'),
    rateLimit: jsonField(form, 'rateLimit'),
    quota: jsonField(form, 'quota'),
    tags: listField(f.tags.value),
    metadata: jsonField(form, 'metadata'),
    identityId: f.identityId.value.trim() || undefined,
    ratelimits: jsonField(form, 'ratelimits'),
  };
  if (!state.open) {
    const body = { userId: f.userId.value.trim(), type: f.type.value };
    for (const [name, value] of Object.entries(values)) {
      if (value !== undefined && !(Array.isArray(value) && !value.length)) body[name] = value;
    }
    return body;
  }
  const key = state.open.key;
  const before = {
    description: key.description ?? undefined, expiresAt: key.expiresAt ?? undefined,
    whitelistedIPs: key.whitelistedIPs ?? [], acl: key.acl ?? undefined, rateLimit: key.rateLimit ?? undefined,
    quota: key.quota ? { max: key.quota.max, renewalSeconds: key.quota.renewalSeconds } : undefined,
    tags: key.tags ?? [], metadata: key.metadata && Object.keys(key.metadata).length ? key.metadata : undefined,
    identityId: key.identityId ?? undefined, ratelimits: key.ratelimits?.length ? key.ratelimits : undefined,
  };
  const body = {};
  for (const [name, value] of Object.entries(values)) {
    if (JSON.stringify(value) === JSON.stringify(before[name])) continue;
    if (name === 'tags') body.tags = value;
    else if (name === 'metadata') body.metadata = value ?? {};
    else if (name === 'ratelimits') body.ratelimits = value ?? [];
    else if (name === 'whitelistedIPs') body.whitelistedIPs = value.length ? value : null;
    else body[name] = value ?? null;
  }
  if (f.status.value !== key.status) body.status = f.status.value;
  return body;
}

async function saveKey(event) {
  event.preventDefault();
  const form = $('#key-form');
  clearErrors(form);
  let body;
  try { body = keyBody(form); } catch (problem) { showFieldError(form, problem.field, problem.message); return; }
  let res;
  if (state.open) {
    if (!Object.keys(body).length) { keyDialog().close(); return; }
    const headers = state.open.etag ? { 'If-Match': state.open.etag } : {};
    res = await api('PATCH', `/keys/${encodeURIComponent(state.open.id)}`, { body, headers });
  } else {
    const id = form.elements.id.value.trim();
    res = await api('POST', id ? `/keys/${encodeURIComponent(id)}` : '/keys', { body });
  }
  if (!res.ok) { showApiError(form, res); return; }
  keyDialog().close();
  if (res.data?.key) showSecret(res.data.id, res.data.key);
  await reload();
}

// --- Identities -------------------------------------------------------------------------------------------

const identitiesUrl = () => `/identities?limit=${PAGE_SIZE}`;
let identityRequest = 0;

async function loadIdentities(url) {
  const request = ++identityRequest;
  $('#identity-list-error').textContent = '';
  const res = await api('GET', url);
  if (request !== identityRequest) return;
  if (!res.ok) {
    const error = errorOf(res);
    $('#identity-list-error').textContent = `${error.message} (${res.status} ${error.code})`;
    return;
  }
  Object.assign(state.identities, { url, rows: res.data.data, next: res.data.nextUrl, previous: res.data.previousUrl });
  $('#identity-total').textContent = `${res.data.total} identit${res.data.total === 1 ? 'y' : 'ies'}, showing ${res.data.count}`;
  $('#identity-next').disabled = !state.identities.next;
  $('#identity-prev').disabled = !state.identities.previous;
  renderIdentities();
}

const reloadIdentities = () => loadIdentities(state.identities.url ?? identitiesUrl());

function openIdentityCreate() {
  const form = $('#identity-form');
  form.reset();
  clearErrors(form);
  state.identities.open = null;
  $('#identity-dialog-title').textContent = 'New identity';
  $('#identity-save').textContent = 'Create';
  $('#identity-dialog').showModal();
  form.elements.externalId.focus();
}

async function openIdentityEdit(id) {
  const res = await api('GET', `/identities/${encodeURIComponent(id)}`);
  if (!res.ok) { $('#identity-list-error').textContent = errorOf(res).message; return; }
  const identity = res.data;
  const form = $('#identity-form');
  form.reset();
  clearErrors(form);
  state.identities.open = { id, etag: res.etag, identity };
  $('#identity-dialog-title').textContent = `Edit identity ${id}`;
  $('#identity-save').textContent = 'Save';
  const f = form.elements;
  f.externalId.value = identity.externalId;
  f.meta.value = Object.keys(identity.meta).length ? JSON.stringify(identity.meta) : '';
  f.ratelimits.value = identity.ratelimits.length ? JSON.stringify(identity.ratelimits) : '';
  $('#identity-dialog').showModal();
  f.externalId.focus();
}

/** The form as a create body, or a PATCH body of the fields that changed (`{}` and `[]` empty them). */
function identityBody(form) {
  const values = {
    externalId: form.elements.externalId.value.trim(),
    meta: jsonField(form, 'meta') ?? {},
    ratelimits: jsonField(form, 'ratelimits') ?? [],
  };
  const open = state.identities.open;
  if (!open) return values;
  return Object.fromEntries(
    Object.entries(values).filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(open.identity[name])),
  );
}

async function saveIdentity(event) {
  event.preventDefault();
  const form = $('#identity-form');
  clearErrors(form);
  let body;
  try { body = identityBody(form); } catch (problem) { showFieldError(form, problem.field, problem.message); return; }
  const open = state.identities.open;
  let res;
  if (open) {
    if (!Object.keys(body).length) { $('#identity-dialog').close(); return; }
    const headers = open.etag ? { 'If-Match': open.etag } : {};
    res = await api('PATCH', `/identities/${encodeURIComponent(open.id)}`, { body, headers });
  } else {
    res = await api('POST', '/identities', { body });
  }
  if (!res.ok) { showApiError(form, res); return; }
  $('#identity-dialog').close();
  await reloadIdentities();
}

async function deleteIdentity(id) {
  const res = await api('DELETE', `/identities/${encodeURIComponent(id)}`);
  if (!res.ok) {
    const error = errorOf(res);
    $('#identity-list-error').textContent = `${id}: ${error.message} (${res.status} ${error.code})`;
    return;
  }
  await reloadIdentities();
}

/** The keys tab, listing one identity's keys (by status; `all` is not a status an identity lists). */
async function showIdentityKeys(id) {
  state.identity = id;
  if (state.status === 'all') {
    state.status = 'active';
    $('#status-filter').value = 'active';
  }
  showTab('keys');
  await loadList(listUrl());
}

// --- The secret, shown once -------------------------------------------------------------------------

function showSecret(id, secret) {
  $('#secret-key-id').textContent = id;
  $('#secret-value').value = secret;
  $('#copy-status').textContent = '';
  $('#secret-dialog').showModal();
  $('#secret-value').select();
}

/** Copies an input's value to the clipboard, saying how it went in `status`. */
async function copyValue(input, status) {
  try {
    await navigator.clipboard.writeText(input.value);
    status.textContent = 'Copied.';
  } catch {
    input.select();
    status.textContent = document.execCommand('copy') ? 'Copied.' : 'Select it and copy it yourself.';
  }
}

const copySecret = () => copyValue($('#secret-value'), $('#copy-status'));

function forgetSecret() {
  $('#secret-value').value = '';
}

// --- Roll and delete ----------------------------------------------------------------------------------

async function openKeyAction(kind, id) {
  const res = await api('GET', `/keys/${encodeURIComponent(id)}`);
  if (!res.ok) { $('#list-error').textContent = errorOf(res).message; return; }
  state.open = { id, etag: res.etag, key: res.data };
  const dialog = $(`#${kind}-dialog`);
  const form = $('form', dialog);
  form.reset();
  clearErrors(form);
  $('.dialog-key', dialog).textContent = id;
  dialog.showModal();
  $(kind === 'roll' ? '#roll-grace' : '#delete-force', dialog).focus();
}

async function roll(event) {
  event.preventDefault();
  const form = $('#roll-form');
  clearErrors(form);
  const raw = form.elements.gracePeriodSeconds.value.trim();
  const grace = Number(raw || '0');
  if (!Number.isInteger(grace)) { showFieldError(form, 'gracePeriodSeconds', 'a whole number of seconds'); return; }
  const res = await api('POST', `/keys/${encodeURIComponent(state.open.id)}/roll`, {
    body: { gracePeriodSeconds: grace }, headers: state.open.etag ? { 'If-Match': state.open.etag } : {},
  });
  if (!res.ok) { showApiError(form, res); return; }
  $('#roll-dialog').close();
  showSecret(res.data.id, res.data.key);
  await reload();
}

async function remove(event) {
  event.preventDefault();
  const form = $('#delete-form');
  clearErrors(form);
  const force = form.elements.force.checked ? '?force=true' : '';
  const res = await api('DELETE', `/keys/${encodeURIComponent(state.open.id)}${force}`, {
    headers: state.open.etag ? { 'If-Match': state.open.etag } : {},
  });
  if (!res.ok) { showApiError(form, res); return; }
  $('#delete-dialog').close();
  await reload();
}

// --- Audit trail --------------------------------------------------------------------------------------

async function openAudit(id) {
  state.audit = id;
  const dialog = $('#audit-dialog');
  $('.dialog-key', dialog).textContent = id;
  dialog.showModal();
  await loadAudit(`/keys/${encodeURIComponent(id)}/events?limit=${PAGE_SIZE}`);
  $('#audit-dialog .close').focus();
}

/** Numbered like the list's requests: only the newest audit page asked for is shown. */
let auditRequest = 0;

async function loadAudit(url) {
  const request = ++auditRequest;
  const dialog = $('#audit-dialog');
  clearErrors(dialog);
  const list = $('#audit-events');
  list.replaceChildren();
  const res = await api('GET', url);
  if (request !== auditRequest) return;
  if (!res.ok) { showApiError(dialog, res); return; }
  $('#audit-total').textContent = `${res.data.total} event${res.data.total === 1 ? '' : 's'}, newest first`;
  for (const event of res.data.data) {
    const li = el('li');
    const head = el('p');
    head.append(el('strong', event.action), ` at ${when(event.at)} by `, el('code', event.actor));
    li.append(head, el('pre', JSON.stringify(event.changes ?? {}, null, 2)));
    list.append(li);
  }
  for (const [which, link] of [['next', res.data.nextUrl], ['prev', res.data.previousUrl]]) {
    const b = $(`#audit-${which}`);
    b.disabled = !link;
    b.dataset.url = link ?? '';
  }
}

// --- Usage charts -------------------------------------------------------------------------------------

/** The outcome codes usage counts, in the API's order: the order of a bar's segments, bottom up. */
const OUTCOMES = ['VALID', 'RATE_LIMITED', 'QUOTA_EXCEEDED', 'FORBIDDEN', 'EXPIRED', 'INACTIVE', 'IP_NOT_ALLOWED'];
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element, its attributes set one by one (nothing is parsed as markup), and a `<title>`
 * child when `title` is given: the tooltip, and the name a screen reader reads. */
function svg(tag, attributes = {}, title = undefined) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (title !== undefined) {
    const name = document.createElementNS(SVG_NS, 'title');
    name.textContent = title;
    node.append(name);
  }
  return node;
}

/** A time as usage answers write it: RFC 3339, UTC, whole seconds. */
const usageTime = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Every bucket of an answer's range, oldest first: the API leaves empty ones out, the chart
 * draws them as zero. Buckets are UTC hours or days, so a multiple of the step is a start. */
function slots(usage) {
  const step = usage.granularity === 'day' ? DAY : HOUR;
  const counted = new Map(usage.buckets.map((b) => [Date.parse(b.start), b.counts]));
  const all = [];
  for (let start = Math.floor(Date.parse(usage.from) / step) * step; start < Date.parse(usage.to); start += step) {
    all.push({ start, counts: counted.get(start) ?? {} });
  }
  return all;
}

/** A bucket's names: in full for its title (`2030-01-01 10:00 UTC`, a day without the time), and
 * short under the axis (`10:00`, `01-01`). */
function slotNames(start, granularity) {
  const [day, time] = usageTime(start).split('T');
  if (granularity === 'day') return { full: `${day} UTC`, short: day.slice(5) };
  return { full: `${day} ${time.slice(0, 5)} UTC`, short: time.slice(0, 5) };
}

/** One bar: a `<g>` carrying its start and counts (data-start, data-count-VALID…) and a title with
 * its numbers, a hover area the plot's height, and one titled rect per outcome, stacked bottom up. */
function usageBar(slot, granularity, x, width, plot) {
  const when = slotNames(slot.start, granularity).full;
  const parts = OUTCOMES.filter((code) => slot.counts[code]).map((code) => `${code} ${slot.counts[code]}`);
  const title = `${when}: ${parts.length ? parts.join(', ') : 'no verifications'}`;
  const bar = svg('g', { class: 'bar', role: 'img', 'data-start': usageTime(slot.start) }, title);
  bar.append(svg('rect', { class: 'hit', x, y: plot.top, width, height: plot.height }));
  let y = plot.top + plot.height;
  for (const code of OUTCOMES) {
    const count = slot.counts[code];
    if (!count) continue;
    bar.setAttribute(`data-count-${code}`, count);
    const height = (count / plot.max) * plot.height;
    y -= height;
    bar.append(svg('rect', { class: `o-${code}`, x, y, width, height }, `${when}: ${code} ${count}`));
  }
  return bar;
}

/** A stacked bar chart of one usage answer, `width` CSS pixels wide (so its text keeps its size on
 * a phone; the SVG still scales with its box), a legend with each outcome's total beside it. */
function usageChart(title, usage, width) {
  const buckets = slots(usage);
  const figure = el('figure');
  Object.assign(figure.dataset, { granularity: usage.granularity, from: usage.from, to: usage.to });
  const total = sum(usage.totals);
  figure.append(el('figcaption', `${title}: ${total} verification${total === 1 ? '' : 's'}`));

  const height = 170;
  const left = 34;
  const plot = { top: 8, height: height - 8 - 20, max: Math.max(1, ...buckets.map((b) => sum(b.counts))) };
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, 'aria-label': title });
  const bottom = plot.top + plot.height;
  chart.append(
    svg('line', { class: 'axis', x1: left, x2: width, y1: bottom, y2: bottom }),
    svg('line', { class: 'axis', x1: left, x2: width, y1: plot.top, y2: plot.top }),
  );
  // The scale: the tallest bar's count at the top line, 0 at the bottom one.
  for (const [value, y] of [[plot.max, plot.top + 4], [0, bottom]]) {
    const label = svg('text', { x: left - 4, y, 'text-anchor': 'end' });
    label.textContent = value;
    chart.append(label);
  }
  const band = (width - left) / buckets.length;
  buckets.forEach((slot, i) => {
    chart.append(usageBar(slot, usage.granularity, left + i * band + band * 0.1, Math.max(1, band * 0.8), plot));
  });
  // Three times under the axis: the first bucket, the middle one and the last (the current one).
  const ticks = [[0, 'start'], [Math.floor(buckets.length / 2), 'middle'], [buckets.length - 1, 'end']];
  for (const [i, anchor] of buckets.length ? ticks : []) {
    const x = anchor === 'start' ? left : anchor === 'end' ? width : left + (i + 0.5) * band;
    const label = svg('text', { x, y: height - 4, 'text-anchor': anchor });
    label.textContent = slotNames(buckets[i].start, usage.granularity).short;
    chart.append(label);
  }
  figure.append(chart);

  const legend = el('ul', undefined, 'legend');
  for (const code of OUTCOMES) {
    const count = usage.totals[code] ?? 0;
    const item = el('li', undefined, count ? undefined : 'none');
    item.dataset.outcome = code;
    item.append(el('span', undefined, `swatch o-${code}`), `${code} `, el('strong', count));
    legend.append(item);
  }
  figure.append(legend);
  return figure;
}

/** Numbered like the audit pages: only the newest usage asked for is drawn. */
let usageRequest = 0;

/** The usage dialog of a key or an identity (`kind`): the API's last 24 hours by hour, and the 30
 * days up to now by day. Both end at the API's now (the hours' answer's `to`), not the browser's,
 * so a browser whose clock is off still shows the hours and days the API counted in. */
async function openUsage(kind, id) {
  const request = ++usageRequest;
  const dialog = $('#usage-dialog');
  clearErrors(dialog);
  $('.usage-of', dialog).textContent = kind;
  $('.dialog-key', dialog).textContent = id;
  const charts = $('#usage-charts');
  charts.replaceChildren(el('p', 'Loading…', 'hint'));
  dialog.showModal();
  $('.close', dialog).focus();
  const path = `/${kind === 'key' ? 'keys' : 'identities'}/${encodeURIComponent(id)}/usage`;
  const hours = await api('GET', `${path}?granularity=hour`);
  if (request !== usageRequest) return;
  if (!hours.ok) { charts.replaceChildren(); showApiError(dialog, hours); return; }
  const from = usageTime(Math.floor(Date.parse(hours.data.to) / DAY) * DAY - 29 * DAY);
  const days = await api('GET', `${path}?granularity=day&from=${encodeURIComponent(from)}&to=${encodeURIComponent(hours.data.to)}`);
  if (request !== usageRequest) return;
  if (!days.ok) { charts.replaceChildren(); showApiError(dialog, days); return; }
  const width = Math.max(240, Math.floor(charts.clientWidth));
  charts.replaceChildren(
    usageChart('Last 24 hours, by hour (UTC)', hours.data, width),
    usageChart('Last 30 days, by day (UTC)', days.data, width),
  );
}

// --- Verify playground ----------------------------------------------------------------------------------

async function verify(event) {
  event.preventDefault();
  const form = $('#verify-form');
  clearErrors(form);
  const f = form.elements;
  const body = { key: f.key.value.trim() };
  if (f.ip.value.trim()) body.ip = f.ip.value.trim();
  const permissions = listField(f.permissions.value);
  if (permissions.length) body.permissions = permissions;
  if (f.cost.value.trim()) body.cost = Number(f.cost.value.trim());
  try {
    const scope = jsonField(form, 'scope');
    if (scope !== undefined) body.scope = scope;
    const limits = jsonField(form, 'ratelimits');
    if (limits !== undefined) body.ratelimits = limits;
  } catch (problem) { showFieldError(form, problem.field, problem.message); return; }
  const res = await api('POST', '/keys/verify', { body });
  $('#verify-code').textContent = `${res.status}${res.data?.code ? ` ${res.data.code}` : ''}`;
  $('#verify-answer').textContent = JSON.stringify(res.data, null, 2);
  if (!res.ok) showApiError(form, res);
}

// --- Company settings ------------------------------------------------------------------------------------

/** Numbered like the list's requests: only the newest settings asked for are shown. */
let companyRequest = 0;

/** Shows settings as `GET`/`PATCH /company` answer them, and keeps their ETag for the next change. */
function renderCompany(settings, etag) {
  state.company = { settings, etag };
  const prefix = $('#company-prefix');
  if (settings.keyPrefix) {
    prefix.replaceChildren(el('code', settings.keyPrefix), ` (new keys read ${settings.keyPrefix}_sk_… and ${settings.keyPrefix}_pk_…)`);
  } else {
    prefix.replaceChildren(el('strong', 'none'), ' (keys read sk_… and pk_…)');
  }
  $('#company-policy').textContent = settings.leakPolicy;
  $('#company-secret-pattern').value = settings.keyPatterns.secret;
  $('#company-publishable-pattern').value = settings.keyPatterns.publishable;
}

/** The form as the shown settings are. */
function fillCompanyForm() {
  const f = $('#company-form').elements;
  f.keyPrefix.value = state.company.settings.keyPrefix ?? '';
  f.leakPolicy.value = state.company.settings.leakPolicy;
}

/** `GET /company`; `fill` also resets the form to what it answers. True when it answered. */
async function loadCompany(fill = true) {
  const request = ++companyRequest;
  $('#company-error').textContent = '';
  const res = await api('GET', '/company');
  if (request !== companyRequest) return false;
  if (!res.ok) {
    const error = errorOf(res);
    $('#company-error').textContent = `${error.message} (${res.status} ${error.code})`;
    return false;
  }
  renderCompany(res.data, res.etag);
  if (fill) fillCompanyForm();
  return true;
}

/** A PATCH of the changed fields (an emptied prefix is null: none), with the If-Match of the
 * settings shown; the answer is the new settings, shown at once. */
async function saveCompany(event) {
  event.preventDefault();
  const form = $('#company-form');
  clearErrors(form);
  $('#company-status').textContent = '';
  if (!state.company) { await loadCompany(); return; }
  const f = form.elements;
  const before = state.company.settings;
  const body = {};
  const prefix = f.keyPrefix.value.trim() || null;
  if (prefix !== (before.keyPrefix ?? null)) body.keyPrefix = prefix;
  if (f.leakPolicy.value !== before.leakPolicy) body.leakPolicy = f.leakPolicy.value;
  if (!Object.keys(body).length) { $('#company-status').textContent = 'Nothing to change.'; return; }
  const headers = state.company.etag ? { 'If-Match': state.company.etag } : {};
  // One change at a time: a second click would only meet a 412 from the first.
  $('#company-save').disabled = true;
  const res = await api('PATCH', '/company', { body, headers });
  $('#company-save').disabled = false;
  if (res.status === 412) {
    // Someone changed them since they were read: show the current ones, and keep only what was
    // typed here (a field left alone takes the current value, so saving again undoes nothing).
    $('.form-error', form).textContent = `The settings changed since they were shown (412 ${errorOf(res).code}). `
      + 'The current ones are shown above: check them, then save again.';
    if (await loadCompany(false)) {
      const now = state.company.settings;
      if (!('keyPrefix' in body)) f.keyPrefix.value = now.keyPrefix ?? '';
      if (!('leakPolicy' in body)) f.leakPolicy.value = now.leakPolicy;
    }
    return;
  }
  if (!res.ok) { showApiError(form, res); return; }
  companyRequest++;
  renderCompany(res.data, res.etag);
  fillCompanyForm();
  $('#company-status').textContent = 'Saved.';
}

function forgetCompany() {
  state.company = null;
  companyRequest++;
  for (const id of ['#company-prefix', '#company-policy', '#company-status', '#company-copy-status']) $(id).textContent = '';
  for (const id of ['#company-secret-pattern', '#company-publishable-pattern']) $(id).value = '';
  $('#company-form').reset();
  clearErrors($('#company-form'));
}

// --- Wiring -----------------------------------------------------------------------------------------------

function showTab(which) {
  for (const name of ['keys', 'identities', 'verify', 'company']) {
    $(`#${name}`).hidden = name !== which;
    $(`#tab-${name}`).setAttribute('aria-pressed', String(name === which));
  }
}

function init() {
  $('#signin-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', signOut);
  $('#tab-keys').addEventListener('click', () => showTab('keys'));
  $('#tab-verify').addEventListener('click', () => showTab('verify'));
  $('#tab-identities').addEventListener('click', () => { showTab('identities'); reloadIdentities(); });
  $('#tab-company').addEventListener('click', () => { showTab('company'); loadCompany(); });
  $('#company-form').addEventListener('submit', saveCompany);
  document.querySelectorAll('#company button[data-copy]').forEach((b) => b.addEventListener('click', () => {
    copyValue($(`#${b.dataset.copy}`), $('#company-copy-status'));
  }));
  $('#new-identity').addEventListener('click', openIdentityCreate);
  $('#identity-form').addEventListener('submit', saveIdentity);
  $('#clear-identity').addEventListener('click', () => { state.identity = null; loadList(listUrl()); });
  for (const [which, link] of [['next', 'next'], ['prev', 'previous']]) {
    $(`#identity-${which}`).addEventListener('click', () => state.identities[link] && loadIdentities(state.identities[link]));
  }
  $('#status-filter').addEventListener('change', (e) => { state.status = e.target.value; loadList(listUrl()); });
  $('#search').addEventListener('input', renderRows);
  $('#new-key').addEventListener('click', openCreate);
  $('#next-page').addEventListener('click', () => state.next && loadList(state.next));
  $('#prev-page').addEventListener('click', () => state.previous && loadList(state.previous));
  $('#key-form').addEventListener('submit', saveKey);
  $('#roll-form').addEventListener('submit', roll);
  $('#delete-form').addEventListener('submit', remove);
  $('#verify-form').addEventListener('submit', verify);
  $('#copy-secret').addEventListener('click', copySecret);
  $('#secret-dialog').addEventListener('close', forgetSecret);
  for (const which of ['next', 'prev']) {
    $(`#audit-${which}`).addEventListener('click', (e) => e.target.dataset.url && loadAudit(e.target.dataset.url));
  }
  document.querySelectorAll('dialog .close').forEach((b) => b.addEventListener('click', () => b.closest('dialog').close()));
  document.body.dataset.ready = 'true';
  if (sessionStorage.getItem(STORE)) loadMe(); else $('#signin-key').focus();
}

init();
