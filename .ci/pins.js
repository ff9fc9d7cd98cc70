#!/usr/bin/env node
// Exact pins: every dependency range in package.json (and every overrides value) is one exact
// version (no ^, ~, ranges, tags, URLs), package-lock.json records the same ranges for the root,
// and the installed copy (when node_modules exists) is that version. Exit 1 names every offender.
// One exception: an optional peer dependency (an agent framework a service brings itself) is a
// range, `^V` or `>=V <W`, whose lower bound V is the exact devDependencies pin the tests run with.
//
//   node .ci/pins.js [--root DIR]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const SECTIONS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'];
// semver without operators: 1.2.3, 1.2.3-rc.1, 1.2.3+build
const EXACT = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Problems (strings) for the project at root; empty when every pin is exact and consistent. */
function checkPins(root) {
  const problems = [];
  const pkg = readJson(path.join(root, 'package.json'));
  const lockFile = path.join(root, 'package-lock.json');
  const lock = fs.existsSync(lockFile) ? readJson(lockFile) : undefined;
  if (!lock) problems.push('package-lock.json is missing (it must be committed)');
  const lockRoot = (lock && lock.packages && lock.packages['']) || {};
  for (const section of SECTIONS) {
    for (const [name, range] of Object.entries(pkg[section] || {})) {
      const optionalPeer = section === 'peerDependencies' && ((pkg.peerDependenciesMeta || {})[name] || {}).optional === true;
      if (optionalPeer && !EXACT.test(String(range))) {
        const tested = (pkg.devDependencies || {})[name];
        const lower = /^(?:\^|>=)(\S+)/.exec(String(range));
        if (!tested || !EXACT.test(String(tested)) || !lower || lower[1] !== tested || !/^(?:\^\S+|>=\S+ <\S+)$/.test(String(range))) {
          problems.push(`${section}.${name} is "${range}": an optional peer is ^V or ">=V <W" with V its exact devDependencies pin (${tested === undefined ? 'none' : tested})`);
        } else if (lock && (lockRoot[section] || {})[name] !== range) {
          problems.push(`${section}.${name} is ${range} in package.json but ${JSON.stringify((lockRoot[section] || {})[name])} in package-lock.json (run npm install)`);
        }
        continue;
      }
      if (!EXACT.test(String(range))) {
        problems.push(`${section}.${name} is "${range}", not an exact version`);
        continue;
      }
      if (lock && (lockRoot[section] || {})[name] !== range) {
        problems.push(`${section}.${name} is ${range} in package.json but ${JSON.stringify((lockRoot[section] || {})[name])} in package-lock.json (run npm install)`);
      }
      const locked = lock && lock.packages && lock.packages[`node_modules/${name}`];
      if (lock && section !== 'peerDependencies' && (!locked || locked.version !== range)) {
        problems.push(`${section}.${name}: package-lock.json resolves ${locked ? locked.version : 'nothing'}, package.json pins ${range}`);
      }
      const installed = path.join(root, 'node_modules', name, 'package.json');
      if (section !== 'peerDependencies' && fs.existsSync(installed)) {
        const version = readJson(installed).version;
        if (version !== range) problems.push(`${section}.${name}: node_modules has ${version}, package.json pins ${range} (run npm ci)`);
      }
    }
  }
  // overrides (how a transitive package is moved to a fixed version) are exact too; "$name" reuses a pin.
  const walk = (node, at) => {
    for (const [key, value] of Object.entries(node || {})) {
      const where = `${at}.${key}`;
      if (value && typeof value === 'object') walk(value, where);
      else if (!EXACT.test(String(value)) && !/^\$[^\s]+$/.test(String(value))) problems.push(`${where} is "${value}", not an exact version`);
    }
  };
  walk(pkg.overrides, 'overrides');
  return problems;
}

module.exports = { checkPins, EXACT };

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--root');
  const root = at >= 0 ? path.resolve(args[at + 1]) : path.resolve(__dirname, '..');
  const problems = checkPins(root);
  if (problems.length) {
    for (const p of problems) console.error(`pins: ${p}`);
    console.error(`pins: ${problems.length} problem(s); package.json must pin exact versions (npm install --save-exact)`);
    process.exit(1);
  }
  const pkg = readJson(path.join(root, 'package.json'));
  const n = SECTIONS.reduce((sum, s) => sum + Object.keys(pkg[s] || {}).length, 0);
  console.log(`pins: ${n} direct dependencies, all exact and matching package-lock.json`);
}
