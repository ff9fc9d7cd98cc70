#!/usr/bin/env node
// CycloneDX SBOM of the installed tree, made by npm itself (`npm sbom --sbom-format cyclonedx`,
// npm >= 9.5).
//
//   node .ci/sbom.js [--all] [--out FILE]      (npm run sbom [-- --all])
//
// Default: production packages only, what a worker deployment installs (npm ci --omit=dev), to
// dist/sbom.cdx.json. --all keeps the dev tooling too (marked by npm with the property
// cdx:npm:package:development=true), to dist/sbom-all.cdx.json unless --out says otherwise.
//
// Why not `npm sbom --omit=dev`: it drops production packages that a dev dependency also reaches
// (npm/cli#7909). Here @temporalio/testing (dev) reaches @temporalio/worker, so it lost 174 of the
// 238 production packages, webpack, swc and grpc among them. npm's own dev marking of each
// component is right (it agrees with package-lock.json), so this script asks npm for the whole tree
// and drops the components npm marks as development, and their dependency entries.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const DEV = 'cdx:npm:package:development';

function isDev(component) {
  return (component.properties || []).some((p) => p.name === DEV && p.value === 'true');
}

/** The production view of a full npm CycloneDX SBOM: dev components and their dependency edges removed. */
function productionOnly(bom) {
  const drop = new Set(bom.components.filter(isDev).map((c) => c['bom-ref']));
  return {
    ...bom,
    components: bom.components.filter((c) => !drop.has(c['bom-ref'])),
    dependencies: (bom.dependencies || [])
      .filter((d) => !drop.has(d.ref))
      .map((d) => (d.dependsOn ? { ...d, dependsOn: d.dependsOn.filter((r) => !drop.has(r)) } : d)),
  };
}

module.exports = { productionOnly, isDev };

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  const args = process.argv.slice(2);
  const all = args.includes('--all');
  const at = args.indexOf('--out');
  const out = at >= 0 ? path.resolve(args[at + 1]) : path.join(root, 'dist', all ? 'sbom-all.cdx.json' : 'sbom.cdx.json');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const version = execFileSync(npm, ['--version'], { cwd: root, encoding: 'utf8' }).trim();
  const [major, minor] = version.split('.').map(Number);
  if (major < 9 || (major === 9 && minor < 5)) {
    console.error(`sbom: npm ${version} has no npm sbom (needs npm >= 9.5)`);
    process.exit(2);
  }
  let text;
  try {
    text = execFileSync(npm, ['sbom', '--sbom-format', 'cyclonedx', '--sbom-type', 'application'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  } catch (e) {
    console.error(`sbom: npm sbom failed (exit ${e.status}); is node_modules installed and in sync (npm ci)?`);
    process.exit(1);
  }
  let bom = JSON.parse(text);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  // npm names the root component after the checkout's folder; name it after the package.
  if (bom.metadata && bom.metadata.component) bom.metadata.component.name = pkg.name;
  const total = bom.components.length;
  if (!all) bom = productionOnly(bom);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(bom, null, 2) + '\n');
  const dev = bom.components.filter(isDev).length;
  console.log(
    `sbom: ${path.relative(process.cwd(), out) || out}: CycloneDX ${bom.specVersion} by npm ${version}, ${bom.components.length} components` +
      (all ? ` (${dev} dev)` : ` (production; ${total - bom.components.length} dev components left out, --all keeps them)`),
  );
}
