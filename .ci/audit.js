#!/usr/bin/env node
// npm audit, reported in CI. Counts advisories by severity for all installed packages and for
// production ones (those package-lock.json does not mark dev), writes dist/audit.json, and fails
// (exit 1) only on an advisory at or above --fail-on (default: critical) that reaches a production
// package and is not accepted in .ci/audit-allow.json. Everything below that is reported, not fatal.
// When the registry does not answer the audit endpoint (offline, a mirror without it), it reports
// "audit unavailable" and exits 0: the advisory database is outside this repository's control.
//
//   node .ci/audit.js [--fail-on critical|high|moderate|low|none] [--input audit.json] [--root DIR]
//                     [--allow FILE] [--out FILE]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical'];

function advisoryId(via) {
  const m = typeof via.url === 'string' && via.url.match(/(GHSA-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})/i);
  return m ? m[1] : via.source !== undefined ? String(via.source) : via.title || '?';
}

/**
 * Summarize an `npm audit --json` report (v2). lockPackages: package-lock.json `packages`, to tell
 * production from dev. Returns {available, reason?, all, production, advisories, failing}.
 */
function summarize(report, lockPackages, { failOn = 'critical', accepted = [], today = new Date().toISOString().slice(0, 10) } = {}) {
  const empty = () => Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  if (!report || typeof report !== 'object' || !report.vulnerabilities || typeof report.vulnerabilities !== 'object') {
    const reason = (report && (report.error && (report.error.summary || report.error.code))) || (report && report.message) || 'no audit report';
    return { available: false, reason: String(reason), all: empty(), production: empty(), advisories: [], failing: [] };
  }
  const threshold = failOn === 'none' ? Infinity : SEVERITIES.indexOf(failOn);
  if (threshold < 0) throw new Error(`--fail-on must be one of none, ${SEVERITIES.join(', ')}`);
  const isProd = (node) => {
    const p = lockPackages[node];
    return !p || !(p.dev || p.devOptional);
  };
  const all = empty();
  const production = empty();
  const advisories = [];
  for (const v of Object.values(report.vulnerabilities)) {
    const prod = (v.nodes || []).some(isProd);
    for (const via of v.via || []) {
      if (typeof via !== 'object') continue; // vulnerable only through another entry, counted there
      const severity = SEVERITIES.includes(via.severity) ? via.severity : v.severity;
      const id = advisoryId(via);
      const acceptance = accepted.find((a) => a.advisory === id && (!a.package || a.package === v.name));
      const lapsed = acceptance && acceptance.until && acceptance.until < today;
      const a = { id, package: v.name, range: via.range || v.range, severity, title: via.title, url: via.url, production: prod, fixAvailable: Boolean(v.fixAvailable), accepted: Boolean(acceptance && !lapsed) };
      if (acceptance && !lapsed) a.reason = acceptance.reason;
      advisories.push(a);
      all[severity]++;
      if (prod) production[severity]++;
    }
  }
  const failing = advisories.filter((a) => a.production && !a.accepted && SEVERITIES.indexOf(a.severity) >= threshold);
  return { available: true, all, production, advisories, failing };
}

module.exports = { summarize, advisoryId, SEVERITIES };

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const at = args.indexOf(name);
    return at < 0 ? dflt : args[at + 1];
  };
  const repo = path.resolve(__dirname, '..');
  const root = path.resolve(opt('--root', repo));
  const failOn = opt('--fail-on', 'critical');
  const allowFile = path.resolve(opt('--allow', path.join(repo, '.ci', 'audit-allow.json')));
  const out = path.resolve(opt('--out', path.join(root, 'dist', 'audit.json')));
  const input = opt('--input');

  let report;
  if (input) {
    report = JSON.parse(fs.readFileSync(input, 'utf8'));
  } else {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(npm, ['audit', '--json'], { cwd: root, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    try {
      report = JSON.parse(r.stdout);
    } catch {
      report = { message: r.error ? String(r.error.message) : `npm audit exit ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}` };
    }
  }
  const accepted = fs.existsSync(allowFile) ? JSON.parse(fs.readFileSync(allowFile, 'utf8')).accepted || [] : [];
  for (const a of accepted) {
    if (!a || typeof a.advisory !== 'string' || typeof a.reason !== 'string' || !a.reason.trim()) {
      console.error(`audit: ${allowFile}: every accepted advisory needs "advisory" (GHSA id) and a "reason": ${JSON.stringify(a)}`);
      process.exit(2);
    }
  }
  let lockPackages = {};
  try {
    lockPackages = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')).packages || {};
  } catch {
    // without a lockfile every package counts as production
  }
  let s;
  try {
    s = summarize(report, lockPackages, { failOn, accepted });
  } catch (e) {
    console.error(`audit: ${e.message}`);
    process.exit(2);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ failOn, ...s }, null, 2) + '\n');
  if (!s.available) {
    console.log(`audit: npm audit unavailable (${s.reason}); not checked. Advisories were not looked up in this run.`);
    console.log(JSON.stringify({ audit: 'unavailable', reason: s.reason }));
    process.exit(0);
  }
  const fmt = (c) => SEVERITIES.slice().reverse().map((sev) => `${c[sev]} ${sev}`).join(', ');
  console.log(`audit: all packages: ${fmt(s.all)}`);
  console.log(`audit: production:   ${fmt(s.production)}`);
  for (const a of s.advisories) {
    const tag = a.accepted ? `accepted: ${a.reason}` : a.production ? 'production' : 'dev only';
    console.log(`audit:   ${a.severity.padEnd(8)} ${a.package} ${a.range || ''} ${a.id} ${a.title || ''} (${tag}${a.fixAvailable ? ', fix available' : ''})`);
  }
  console.log(JSON.stringify({ audit: 'ok', failOn, all: s.all, production: s.production, failing: s.failing.map((a) => `${a.package} ${a.id}`) }));
  if (s.failing.length) {
    for (const a of s.failing) console.error(`audit: FAIL: ${a.severity} advisory ${a.id} in production package ${a.package} (${a.range || '?'}): ${a.title || ''} ${a.url || ''}`);
    console.error(`audit: ${s.failing.length} ${failOn}+ advisory(ies) in production packages; upgrade (docs/supply-chain.md), or accept each in ${path.relative(process.cwd(), allowFile)} with a reason`);
    process.exit(1);
  }
}
