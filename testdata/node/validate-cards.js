#!/usr/bin/env node
// Validates Adaptive Card JSON files the way Teams will read them, with two
// independent checks per file:
//
//  1. The npm `adaptivecards` renderer (3.0.6) parses the card with a
//     SerializationContext that targets version 1.5 and then validates it.
//     Any parse or validation event fails the file: unknown element or
//     action types, invalid property values, duplicate ids.
//  2. ajv validates the card against the official Adaptive Card 1.5 JSON
//     schema, which catches missing required properties and properties that
//     the element does not define.
//
// Usage: node validate-cards.js [--schema FILE] CARD.json...
// Exit status: 0 when every card passes, 1 when any card fails, 2 when the
// arguments, the schema or the npm modules cannot be loaded.
'use strict';

const fs = require('fs');
const path = require('path');

const defaultSchema = path.join(__dirname, '..', '..', 'cards', 'testdata', 'adaptive-card-1.5.schema.json');

function exitUsage(message) {
  process.stderr.write(`validate-cards: ${message}\n`);
  process.stderr.write('usage: node validate-cards.js [--schema FILE] CARD.json...\n');
  process.exit(2);
}

function parseArgs(argv) {
  const files = [];
  let schema = defaultSchema;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--schema') {
      if (i + 1 >= argv.length) {
        exitUsage('missing value for --schema');
      }
      schema = argv[++i];
      continue;
    }
    files.push(argv[i]);
  }
  if (files.length === 0) {
    exitUsage('missing card files');
  }
  return { schema, files };
}

// Adds the Teams `msteams` property to the card root. The official schema sets
// additionalProperties to false on AdaptiveCard and does not list `msteams`,
// but Teams reads `"msteams": {"width": "Full"}` there for full-width cards
// (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format).
// Only the width value that storagebot sends is allowed.
function allowTeamsWidth(schema) {
  const root = schema.definitions && schema.definitions.AdaptiveCard;
  if (!root || !root.properties) {
    throw new Error('schema has no definitions.AdaptiveCard.properties');
  }
  root.properties.msteams = {
    type: 'object',
    properties: { width: { enum: ['Full'] } },
    additionalProperties: false,
  };
  return schema;
}

function loadSchemaValidator(schemaPath) {
  const Ajv = require('ajv');
  const addFormats = require('ajv-formats');
  const schema = allowTeamsWidth(JSON.parse(fs.readFileSync(schemaPath, 'utf8')));

  // The schema declares draft-06 but its root uses the draft-04 `id`
  // keyword, which ajv 8 rejects, so the id is dropped. Non-strict mode
  // tolerates the schema's own annotation keywords (`version`, `features`).
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true });
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
  addFormats(ajv);
  delete schema.id;
  return ajv.compile(schema);
}

function rendererProblems(AdaptiveCards, json) {
  const problems = [];
  const card = new AdaptiveCards.AdaptiveCard();
  const context = new AdaptiveCards.SerializationContext(AdaptiveCards.Versions.v1_5);
  card.parse(json, context);
  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    problems.push(`renderer parse: ${AdaptiveCards.ValidationEvent[event.event]}: ${event.message}`);
  }

  const results = card.validateProperties();
  for (const event of results.validationEvents) {
    problems.push(`renderer validation: ${AdaptiveCards.ValidationEvent[event.event]}: ${event.message}`);
  }
  return problems;
}

// Returns the value at a JSON pointer such as "/body/0/type".
function valueAt(json, pointer) {
  let value = json;
  for (const token of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') {
      return undefined;
    }
    value = value[token.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}

// Reports whether an ajv error comes from an anyOf branch for another element
// or action type. The schema lists every element type as an anyOf branch, so
// one wrong TextBlock otherwise yields errors for all 16 element types.
// Needs ajv's verbose option, which adds parentSchema to each error.
function isOtherBranch(json, error) {
  if (error.instancePath.endsWith('/type') && error.keyword === 'enum') {
    return true;
  }
  const branchTypes = error.parentSchema && error.parentSchema.properties &&
    error.parentSchema.properties.type && error.parentSchema.properties.type.enum;
  const instance = valueAt(json, error.instancePath);
  if (!Array.isArray(branchTypes) || instance === null || typeof instance !== 'object') {
    return false;
  }
  return !branchTypes.includes(instance.type);
}

function schemaProblems(validate, json) {
  if (validate(json)) {
    return [];
  }
  let errors = validate.errors.filter((e) => !isOtherBranch(json, e));
  if (errors.length === 0) {
    errors = validate.errors;
  }
  const lines = errors.map((e) => `schema: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  return [...new Set(lines)];
}

function main() {
  const { schema, files } = parseArgs(process.argv.slice(2));

  let AdaptiveCards;
  let validate;
  try {
    // The package's default entry (lib/) fails to load on Node 20; the
    // webpack bundle in dist/ loads without a DOM as long as nothing renders.
    AdaptiveCards = require('adaptivecards/dist/adaptivecards.js');
    validate = loadSchemaValidator(schema);
  } catch (err) {
    process.stderr.write(`validate-cards: load validators: ${err.message}\n`);
    process.exit(2);
  }

  let failed = 0;
  for (const file of files) {
    let json;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      process.stdout.write(`FAIL ${file}\n  read card: ${err.message}\n`);
      failed++;
      continue;
    }

    const problems = rendererProblems(AdaptiveCards, json).concat(schemaProblems(validate, json));
    if (problems.length > 0) {
      process.stdout.write(`FAIL ${file}\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
      failed++;
      continue;
    }
    process.stdout.write(`ok   ${file}\n`);
  }

  if (failed > 0) {
    process.stdout.write(`${failed} of ${files.length} cards failed\n`);
    process.exit(1);
  }
}

main();
