#!/usr/bin/env node
// Validates a Teams app manifest.json against the JSON schema that its
// `$schema` property names, with AppManifestUtils.validateAgainstSchema from
// npm @microsoft/app-manifest 1.1.2.
//
// That function loads a schema under
// https://developer.microsoft.com/json-schemas/teams/ from the copy bundled in
// the package (build/json-schemas/teams/v1.0 to v1.30 and vDevPreview) and
// downloads any other URL. This script replaces the global fetch with one that
// fails before the package is loaded, so validation never reaches the network:
// a manifest whose schema is not bundled is reported with exit status 2.
//
// Usage: node validate-manifest.js MANIFEST.json
// Exit status: 0 when the manifest is valid, 1 when it is not (the schema
// errors go to stdout), 2 when the arguments, the file, the npm package or the
// schema cannot be loaded.
'use strict';

const fs = require('fs');

const blockedFetches = [];

function exitLoad(message) {
  process.stderr.write(`validate-manifest: ${message}\n`);
  process.exit(2);
}

// Records the URL and fails, in place of a network request. The package
// calls globalThis.fetch when it exists and falls back to node-fetch only
// when it does not, so replacing the global covers both paths.
function blockFetch(url) {
  blockedFetches.push(String(url));
  return Promise.reject(new Error('network access is disabled in validate-manifest.js'));
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1) {
    process.stderr.write('usage: node validate-manifest.js MANIFEST.json\n');
    process.exit(2);
  }
  const file = args[0];

  globalThis.fetch = blockFetch;

  let AppManifestUtils;
  try {
    ({ AppManifestUtils } = require('@microsoft/app-manifest'));
  } catch (err) {
    exitLoad(`load @microsoft/app-manifest: ${err.message}`);
  }

  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    exitLoad(`read manifest ${file}: ${err.message}`);
  }

  let errors;
  try {
    errors = await AppManifestUtils.validateAgainstSchema(manifest);
  } catch (err) {
    if (blockedFetches.length > 0) {
      exitLoad(`load schema ${blockedFetches.join(', ')}: not bundled in @microsoft/app-manifest and network access is disabled`);
    }
    exitLoad(`validate manifest ${file}: ${err.message}`);
  }
  if (blockedFetches.length > 0) {
    exitLoad(`validate manifest ${file}: the package tried to fetch ${blockedFetches.join(', ')}`);
  }

  if (errors.length > 0) {
    process.stdout.write(`FAIL ${file}\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`ok   ${file} (${manifest.$schema})\n`);
}

main().catch((err) => exitLoad(`validate manifest: ${err.stack || err.message}`));
