#!/usr/bin/env node
// License inventory and allow-list check over every installed package (node_modules, nested copies
// included, dev dependencies included). Reads each package.json's `license` (SPDX expression) or the
// legacy `licenses` array (alternatives, so read as OR). `(A OR B)` passes when either is allowed,
// `A AND B` when both are, `A WITH exception` when A is. A missing, unparsable or unlisted license
// fails unless .ci/licenses.json has an exception for that exact name@version (with its reason).
//
//   node .ci/licenses.js [--root DIR] [--policy FILE] [--out FILE]
//
// Writes the inventory (name, version, license, scope) to --out (default dist/licenses.txt), prints
// the count per license, and exits 1 naming each package that fails (2 on a usage error).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// ---------------------------------------------------------------------------------------------
// SPDX expressions
// ---------------------------------------------------------------------------------------------

function tokenize(expr) {
  const tokens = [];
  const re = /\s*(\(|\)|[^\s()]+)/g;
  let m;
  while ((m = re.exec(expr))) tokens.push(m[1]);
  return tokens;
}

/** Parse an SPDX license expression into a tree: {id, with?} | {and: [..]} | {or: [..]}. Throws when malformed. */
function parseSpdx(expr) {
  const tokens = tokenize(String(expr));
  let i = 0;
  const peek = () => tokens[i];
  const isOp = (t, op) => typeof t === 'string' && t.toUpperCase() === op;
  function atom() {
    const t = tokens[i++];
    if (t === undefined) throw new Error('unexpected end');
    if (t === '(') {
      const inner = or();
      if (tokens[i++] !== ')') throw new Error('missing )');
      return inner;
    }
    if (t === ')' || isOp(t, 'AND') || isOp(t, 'OR') || isOp(t, 'WITH')) throw new Error(`unexpected ${t}`);
    if (!/^[A-Za-z0-9.+:-]+$/.test(t)) throw new Error(`not an SPDX id: ${t}`);
    const node = { id: t };
    if (isOp(peek(), 'WITH')) {
      i++;
      const exception = tokens[i++];
      if (!exception || !/^[A-Za-z0-9.-]+$/.test(exception)) throw new Error('WITH needs an exception id');
      node.with = exception;
    }
    return node;
  }
  // `a OP b OP c` as { op: [a, b, c] }; AND binds tighter than OR.
  function chain(op, operand) {
    const parts = [operand()];
    while (isOp(peek(), op)) {
      i++;
      parts.push(operand());
    }
    return parts.length === 1 ? parts[0] : { [op.toLowerCase()]: parts };
  }
  const and = () => chain('AND', atom);
  const or = () => chain('OR', and);
  const tree = or();
  if (i !== tokens.length) throw new Error(`unexpected ${tokens[i]}`);
  return tree;
}

/** True when the expression is satisfied by the allowed ids (case-insensitive; `id+` and `WITH x` judged by id). */
function spdxAllowed(expr, allowed) {
  const set = new Set([...allowed].map((a) => a.toLowerCase()));
  const ok = (node) => {
    if (node.or) return node.or.some(ok);
    if (node.and) return node.and.every(ok);
    return set.has(node.id.toLowerCase()) || set.has(node.id.replace(/\+$/, '').toLowerCase());
  };
  try {
    return ok(parseSpdx(expr));
  } catch {
    return false;
  }
}

/**
 * The declared license of a package.json: {license, alternatives}. license is the text shown in the
 * inventory (undefined when none is declared); alternatives are the expressions any one of which
 * must pass (one for `license`, one per entry of a legacy `licenses` array).
 */
function declaredLicense(pkg) {
  const one = (l) => (typeof l === 'string' ? l : l && typeof l === 'object' && typeof l.type === 'string' ? l.type : undefined);
  const list = Array.isArray(pkg.license) ? pkg.license : pkg.license !== undefined ? [pkg.license] : Array.isArray(pkg.licenses) ? pkg.licenses : [];
  const alternatives = list.map(one).filter((s) => s && s.trim()).map((s) => s.trim());
  if (!alternatives.length) return { license: undefined, alternatives: [] };
  const wrap = (s) => (alternatives.length > 1 && /\s/.test(s) && !/^\(.*\)$/.test(s) ? `(${s})` : s);
  return { license: alternatives.map(wrap).join(' OR '), alternatives };
}

// ---------------------------------------------------------------------------------------------
// Installed packages
// ---------------------------------------------------------------------------------------------

/** Every package under root/node_modules (nested node_modules too): {name, version, license, rel}. */
function installedPackages(root) {
  const found = [];
  const seen = new Set();
  function visitPackage(dir, rel) {
    let real;
    try {
      real = fs.realpathSync(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      let pkg;
      try {
        pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
      } catch (e) {
        pkg = { name: path.basename(dir), version: '?', __error: String(e.message || e) };
      }
      const { license, alternatives } = declaredLicense(pkg);
      found.push({ name: pkg.name || rel.replace(/^.*node_modules\//, ''), version: pkg.version || '?', license, alternatives, rel });
    }
    visitModules(path.join(dir, 'node_modules'), `${rel}/node_modules`);
  }
  function visitModules(modules, relModules) {
    let entries;
    try {
      entries = fs.readdirSync(modules, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(modules, e.name);
      if (e.name.startsWith('@')) {
        let scoped = [];
        try {
          scoped = fs.readdirSync(full, { withFileTypes: true });
        } catch {
          continue;
        }
        for (const s of scoped) if (!s.name.startsWith('.')) visitPackage(path.join(full, s.name), `${relModules}/${e.name}/${s.name}`);
      } else {
        visitPackage(full, `${relModules}/${e.name}`);
      }
    }
  }
  visitModules(path.join(root, 'node_modules'), 'node_modules');
  return found;
}

/** prod | dev | optional (from npm's hidden lockfile or package-lock.json), or '?' when neither says. */
function scopes(root) {
  for (const f of [path.join(root, 'node_modules', '.package-lock.json'), path.join(root, 'package-lock.json')]) {
    try {
      const packages = JSON.parse(fs.readFileSync(f, 'utf8')).packages || {};
      return (rel) => {
        const p = packages[rel];
        if (!p) return 'not-in-lockfile';
        return p.dev ? 'dev' : p.devOptional ? 'dev' : p.optional ? 'optional' : 'prod';
      };
    } catch {
      // next
    }
  }
  return () => '?';
}

// ---------------------------------------------------------------------------------------------
// Policy check
// ---------------------------------------------------------------------------------------------

function loadPolicy(file) {
  const policy = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(policy.allowed) || !policy.allowed.every((a) => typeof a === 'string')) throw new Error(`${file}: "allowed" must be a list of SPDX ids`);
  const exceptions = policy.exceptions || [];
  for (const x of exceptions) {
    if (!x || typeof x.package !== 'string' || typeof x.version !== 'string' || typeof x.reason !== 'string' || !x.reason.trim()) {
      throw new Error(`${file}: every exception needs "package", "version" (exact) and a "reason": ${JSON.stringify(x)}`);
    }
  }
  return { allowed: policy.allowed, exceptions };
}

/**
 * Check root's installed packages against the policy. Returns {packages, failures, unusedExceptions}:
 * packages are unique name@version rows with license, scope, status ('allowed' | 'exception' | 'denied').
 */
function checkLicenses(root, policy) {
  const scopeOf = scopes(root);
  const byId = new Map();
  for (const p of installedPackages(root)) {
    const id = `${p.name}@${p.version}`;
    const scope = scopeOf(p.rel);
    const row = byId.get(id);
    if (row) {
      row.paths.push(p.rel);
      if (row.scope !== 'prod' && scope === 'prod') row.scope = 'prod';
      continue;
    }
    byId.set(id, { name: p.name, version: p.version, license: p.license, alternatives: p.alternatives, scope, paths: [p.rel] });
  }
  const used = new Set();
  const packages = [...byId.values()].sort((a, b) => (a.name === b.name ? (a.version < b.version ? -1 : 1) : a.name < b.name ? -1 : 1));
  for (const p of packages) {
    const exception = policy.exceptions.find((x) => x.package === p.name && (x.version === p.version || x.version === '*'));
    if (exception) {
      used.add(exception);
      p.status = 'exception';
      p.reason = exception.reason;
      if (exception.license) p.effective = exception.license;
    } else if (p.alternatives.some((a) => spdxAllowed(a, policy.allowed))) {
      p.status = 'allowed';
    } else {
      p.status = 'denied';
    }
  }
  return {
    packages,
    failures: packages.filter((p) => p.status === 'denied'),
    unusedExceptions: policy.exceptions.filter((x) => !used.has(x)),
  };
}

function inventoryText(packages) {
  const lines = ['# package\tversion\tlicense\tscope\tnote'];
  for (const p of packages) {
    const note = p.status === 'exception' ? `exception: ${p.effective ? `${p.effective}; ` : ''}${p.reason}` : p.status === 'denied' ? 'NOT ALLOWED' : '';
    lines.push([p.name, p.version, p.license || 'UNKNOWN', p.scope, note].join('\t'));
  }
  return lines.join('\n') + '\n';
}

module.exports = { parseSpdx, spdxAllowed, declaredLicense, installedPackages, checkLicenses, loadPolicy, inventoryText };

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const at = args.indexOf(name);
    if (at < 0) return dflt;
    if (!args[at + 1]) {
      console.error(`licenses: ${name} needs a value`);
      process.exit(2);
    }
    return path.resolve(args[at + 1]);
  };
  const repo = path.resolve(__dirname, '..');
  const root = opt('--root', repo);
  const policyFile = opt('--policy', path.join(repo, '.ci', 'licenses.json'));
  const out = opt('--out', path.join(root, 'dist', 'licenses.txt'));
  let policy;
  try {
    policy = loadPolicy(policyFile);
  } catch (e) {
    console.error(`licenses: ${e.message}`);
    process.exit(2);
  }
  if (!fs.existsSync(path.join(root, 'node_modules'))) {
    console.error(`licenses: ${path.join(root, 'node_modules')} not found: run npm ci first`);
    process.exit(2);
  }
  const { packages, failures, unusedExceptions } = checkLicenses(root, policy);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, inventoryText(packages));
  const counts = {};
  for (const p of packages) {
    const key = p.license || 'UNKNOWN';
    counts[key] = (counts[key] || 0) + 1;
  }
  const scopesCount = {};
  for (const p of packages) scopesCount[p.scope] = (scopesCount[p.scope] || 0) + 1;
  console.log(`licenses: ${packages.length} packages (${Object.entries(scopesCount).map(([s, n]) => `${n} ${s}`).join(', ')}), inventory in ${path.relative(process.cwd(), out) || out}`);
  for (const [license, n] of Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    console.log(`  ${String(n).padStart(4)}  ${license}`);
  }
  for (const p of packages.filter((x) => x.status === 'exception')) {
    console.log(`licenses: exception ${p.name}@${p.version} (${p.license || 'no license field'}): ${p.reason}`);
  }
  for (const x of unusedExceptions) console.log(`licenses: warning: exception for ${x.package}@${x.version} matches no installed package; remove it`);
  if (failures.length) {
    for (const p of failures) {
      console.error(`licenses: NOT ALLOWED: ${p.name}@${p.version} license ${p.license ? JSON.stringify(p.license) : 'UNKNOWN (no license field)'} (${p.scope}, ${p.paths[0]}${p.paths.length > 1 ? ` and ${p.paths.length - 1} more` : ''})`);
    }
    console.error(`licenses: ${failures.length} package(s) with a license outside ${path.relative(process.cwd(), policyFile) || policyFile}; replace the package, or add an exception with its reason only if the license is really permissive`);
    process.exit(1);
  }
  console.log(`licenses: all ${packages.length} packages allowed (${Object.keys(counts).length} distinct licenses)`);
}
