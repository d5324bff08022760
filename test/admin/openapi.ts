/**
 * Checks admin API responses against the OpenAPI 3.1 document in the repository (src/admin/openapi.json)
 * with ajv (JSON Schema 2020-12, which OpenAPI 3.1 uses): every documented status, every schema.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { OPENAPI_FILE } from '../../src/admin/router.js';

type Json = Record<string, unknown>;

export const openapi = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as Json & { paths: Record<string, Record<string, Json>> };

const ajv = new Ajv2020({ strict: false, allErrors: true });
// ajv-formats ships CommonJS; under ESM its function may sit on `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv2020) => void;
addFormats(ajv);
ajv.addSchema(openapi, 'openapi.json');

const pointer = (parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** The documented path template that an actual path (without /admin/api and query) matches. */
export function templateFor(actualPath: string): string | undefined {
  return Object.keys(openapi.paths).find((template) => new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(actualPath));
}

export function documentedOperations(): Array<{ method: string; template: string }> {
  return Object.entries(openapi.paths).flatMap(([template, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((method) => ({ method, template })));
}

const validators = new Map<string, ValidateFunction>();

/** Throws unless `body` is a documented response of `method url` with `status`. */
export function assertConforms(method: string, url: string, status: number, body: unknown): void {
  const actual = new URL(url, 'http://x').pathname.replace(/^\/admin\/api/, '');
  const template = templateFor(actual);
  if (!template) throw new Error(`OpenAPI: ${actual} is not documented`);
  const operation = openapi.paths[template]![method.toLowerCase()] as { responses?: Record<string, Json> } | undefined;
  if (!operation) throw new Error(`OpenAPI: ${method} ${template} is not documented`);
  let response = operation.responses?.[String(status)];
  if (!response) throw new Error(`OpenAPI: ${method} ${template} does not document status ${status} (body: ${JSON.stringify(body).slice(0, 300)})`);
  let location = ['paths', template, method.toLowerCase(), 'responses', String(status)];
  if (typeof response.$ref === 'string') {
    location = response.$ref.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    response = location.reduce<Json>((node, key) => node[key] as Json, openapi);
  }
  const content = response.content as Record<string, { schema: Json }> | undefined;
  if (!content?.['application/json']) throw new Error(`OpenAPI: ${method} ${template} ${status} has no JSON schema`);
  const ref = `openapi.json#/${pointer([...location, 'content', 'application/json', 'schema'])}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  if (!validate(body)) {
    throw new Error(`OpenAPI: ${method} ${template} ${status} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 1000)}`);
  }
}

/** Compiles the JSON schema of every documented response; returns how many there are. */
export function compileEveryResponseSchema(): number {
  let count = 0;
  for (const { method, template } of documentedOperations()) {
    const responses = (openapi.paths[template]![method] as { responses: Record<string, Json> }).responses;
    for (const [status, response] of Object.entries(responses)) {
      const location = typeof response.$ref === 'string' ? response.$ref.slice(2).split('/') : ['paths', template, method, 'responses', status];
      const ref = `openapi.json#/${pointer([...location, 'content', 'application/json', 'schema'])}`;
      if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: ref }));
      count += 1;
    }
  }
  return count;
}
