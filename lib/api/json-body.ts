/**
 * Request bodies: JSON validated by a zod schema. Docker ignores fields it does not know, so the
 * schemas are loose; an empty body is `{}` (docker's clients send none for empty options).
 */
import type { z } from 'zod';
import { ValidationError } from '../errors.js';
import { ApiError } from './api-error.js';
import type { Exchange } from './exchange.js';

export async function jsonBody<T extends z.ZodType>(ex: Exchange, schema: T, what: string): Promise<z.output<T>> {
  const raw = (await ex.body()).toString('utf8');
  let value: unknown = {};
  if (raw.trim() !== '') {
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new ApiError(400, `invalid JSON in the ${what} body: ${(e as Error).message}`);
    }
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.') || what;
  throw new ValidationError(`invalid ${what}: ${field}: ${issue.message}`, field, r.error);
}
