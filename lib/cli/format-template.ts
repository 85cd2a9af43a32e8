/**
 * docker's `--format` for list commands, the part people use: `json` (one object a line),
 * `table` + a template (a header row, then aligned rows), or a template alone (`{{.Name}}`,
 * `{{json .Labels}}`), fields named as docker names them. Other Go-template actions are refused.
 */
import { ValidationError } from '../errors.js';
import { table } from './output.js';

const ACTION = /\{\{\s*(json\s+)?\.([A-Za-z0-9_]+)\s*\}\}/g;

function render(template: string, row: Record<string, unknown>): string {
  const text = template.replace(ACTION, (_m, json: string | undefined, field: string) => {
    if (!(field in row)) throw new ValidationError(`template: can't evaluate field ${field}`, 'format');
    const v = row[field];
    return json ? JSON.stringify(v) : typeof v === 'string' ? v : String(v);
  });
  if (text.includes('{{')) throw new ValidationError(`template: only {{.Field}} and {{json .Field}} are supported: ${template}`, 'format');
  return text.replaceAll('\\t', '\t').replaceAll('\\n', '\n');
}

/** The lines `--format` prints for `rows`; `headers` names each field's column for `table`. */
export function formatRows(format: string, rows: Record<string, unknown>[], headers: Record<string, string>): string {
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (format.startsWith('table')) {
    const template = format.slice(5).trim();
    const fields = [...template.matchAll(ACTION)].map((m) => m[2]!);
    const header = fields.map((f) => headers[f] ?? f.toUpperCase());
    return table(header, rows.map((r) => fields.map((f) => render(`{{.${f}}}`, r))));
  }
  return rows.map((r) => `${render(format, r)}\n`).join('');
}
