/**
 * The rule that no error is swallowed, held over lib/: a catch that keeps no error (`catch {`, or an
 * empty `catch (e) {}`) and a `.catch(() => …)` handler that ignores its error must each say in a
 * comment which case they handle and why (or report, or rethrow, which needs the error). A lint-like
 * check over the source with the TypeScript parser, so a new silent swallow fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import ts from 'typescript';

const LIB = path.join(import.meta.dirname, '..', '..', 'lib');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const hasComment = (text: string) => /\/\/|\/\*/.test(text);

/** The statement (in a block, a case or the file) that holds `node`. */
function statementOf(node: ts.Node): ts.Node {
  let n = node;
  while (n.parent && !ts.isBlock(n.parent) && !ts.isSourceFile(n.parent) && !ts.isCaseClause(n.parent) && !ts.isDefaultClause(n.parent) && !ts.isModuleBlock(n.parent)) n = n.parent;
  return n;
}

/** A handler with no parameter, or one whose body never names it (`(_e) => undefined`). */
function ignoresItsError(fn: ts.ArrowFunction | ts.FunctionExpression): boolean {
  const param = fn.parameters[0];
  if (!param) return true;
  if (!ts.isIdentifier(param.name)) return false;
  const name = param.name.text;
  let used = false;
  const visit = (n: ts.Node): void => {
    if (ts.isIdentifier(n) && n.text === name && n !== param.name) used = true;
    else ts.forEachChild(n, visit);
  };
  visit(fn.body);
  return !used;
}

/** "line: what" for each catch in `text` that drops its error without a comment saying why. */
export function silentSwallows(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isCatchClause(node) && (!node.variableDeclaration || node.block.statements.length === 0)) {
      if (!hasComment(node.block.getText(sf))) out.push(`${lineOf(node.getStart(sf))}: catch without its error and without a comment`);
    }
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === 'catch' &&
      node.arguments.length === 1 &&
      (ts.isArrowFunction(node.arguments[0]!) || ts.isFunctionExpression(node.arguments[0]!)) &&
      ignoresItsError(node.arguments[0] as ts.ArrowFunction | ts.FunctionExpression)
    ) {
      // A comment before the statement, in the chain, or on the line where the handler ends.
      const stmt = statementOf(node);
      const lineEnd = text.indexOf('\n', node.getEnd());
      if (!hasComment(text.slice(stmt.getFullStart(), lineEnd < 0 ? text.length : lineEnd))) {
        out.push(`${lineOf(node.expression.name.getStart(sf))}: .catch(() => …) without a comment`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

test('the check finds a silent catch and a silent .catch handler, and passes ones that say why', (t) => {
  const bad = [
    'try {', '  f();', '} catch {', '  return undefined;', '}',
    'try { g(); } catch (e) {}',
    'await p.catch(() => undefined);',
    'const x = await q', '  .then(h)', '  .catch(() => []);',
    'await r.catch((_e) => false);',
  ].join('\n');
  t.deepEqual(silentSwallows('bad.ts', bad), [
    '3: catch without its error and without a comment',
    '6: catch without its error and without a comment',
    '7: .catch(() => …) without a comment',
    '10: .catch(() => …) without a comment',
    '11: .catch(() => …) without a comment',
  ]);
  const good = [
    'try {', '  f();', '} catch {', '  // ENOENT: gone already', '  return undefined;', '}',
    'try { g(); } catch (e) { /* the status below is what matters */ }',
    '// marked handled: awaited below',
    'p.catch(() => undefined);',
    'const x = await q.catch(() => []); // no such directory yet',
    'try { h(); } catch (e) { if (!isCode(e, "ENOENT")) throw e; }',
    'r.catch((e) => report(e));',
  ].join('\n');
  t.deepEqual(silentSwallows('good.ts', good), []);
});

test('no file under lib/ drops an error without a comment saying which case and why', (t) => {
  const files = sources(LIB);
  t.true(files.length > 100, `found ${files.length} sources under ${LIB}`);
  const found = files.flatMap((f) => silentSwallows(f, readFileSync(f, 'utf8')).map((s) => `${path.relative(LIB, f)}:${s}`));
  t.deepEqual(found, []);
});
