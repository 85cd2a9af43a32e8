/**
 * The Dockerfile parser and variable substitution (lib/build/dockerfile): directives,
 * continuations, comments, heredocs, flags, JSON and shell forms; `$V`, `${V:-x}` and friends,
 * quotes and escapes; .dockerignore matching. Cases chosen after BuildKit's parser and shell tests.
 */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { DockerfileParseError, parseDockerfile } from '../../lib/build/dockerfile/parse.js';
import { expandWord, expandWords, keyValuePairs } from '../../lib/build/dockerfile/expand.js';
import { DockerIgnore } from '../../lib/build/dockerignore.js';

test('instructions in any case, flags split off, JSON and shell forms, line numbers', (t) => {
  const df = parseDockerfile('from busybox AS b\n\ncopy --from=b --chown=1:2 a /b\nRun ["echo", "hi"]\nCMD [not json\n');
  t.deepEqual(df.nodes.map((n) => n.keyword), ['FROM', 'COPY', 'RUN', 'CMD']);
  const copy = df.nodes[1]!;
  t.deepEqual(copy.flags, ['--from=b', '--chown=1:2']);
  t.is(copy.args, 'a /b');
  t.is(copy.line, 3);
  t.deepEqual(df.nodes[2]!.json, ['echo', 'hi']);
  t.is(df.nodes[3]!.json, undefined, 'a bad JSON array is the shell form');
  t.is(df.nodes[3]!.args, '[not json');
});

test('continuation lines, with comments and empty lines inside, and trailing whitespace after the escape', (t) => {
  const df = parseDockerfile('RUN echo a \\\n  # a comment\n  && echo b \\  \n\n  && echo c\nENV X=1\n');
  t.is(df.nodes.length, 2);
  t.is(df.nodes[0]!.args, 'echo a   && echo b   && echo c');
  t.is(df.nodes[0]!.line, 1);
  t.is(df.nodes[0]!.endLine, 5);
  t.is(df.nodes[1]!.line, 6);
  t.is(df.warnings.length, 1, 'the empty continuation line is warned about');
});

test('parser directives: escape (backtick), syntax noted, only at the top, not twice', (t) => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nRUN dir c:\\ `\n  && echo x\n');
  t.is(df.escape, '`');
  t.is(df.nodes[0]!.args, 'dir c:\\   && echo x');
  t.regex(df.warnings[0]!, /syntax directive .* ignored/);
  const late = parseDockerfile('FROM x\n# escape=`\nRUN a \\\n b\n');
  t.is(late.escape, '\\', 'a directive after an instruction is a comment');
  t.is(late.nodes[1]!.args, 'a  b');
  t.throws(() => parseDockerfile('# escape=\\\n# escape=`\nFROM x\n'), { instanceOf: DockerfileParseError, message: /only one escape/ });
  t.throws(() => parseDockerfile('# escape=x\nFROM x\n'), { message: /invalid escape token/ });
});

test('heredocs: RUN <<EOF, several, <<- strips tabs, quoted delimiters do not expand, COPY <<EOF', (t) => {
  const df = parseDockerfile([
    'RUN <<EOF',
    'echo $HOME',
    'EOF',
    'RUN cat <<A <<-"B" > /f',
    'one',
    'A',
    '\t\ttwo',
    '\tB',
    "COPY <<'X' /etc/x",
    'raw $V',
    'X',
    'CMD ["true"]',
  ].join('\n'));
  t.deepEqual(df.nodes.map((n) => n.keyword), ['RUN', 'RUN', 'COPY', 'CMD']);
  t.deepEqual(df.nodes[0]!.heredocs, [{ name: 'EOF', content: 'echo $HOME\n', expand: true, chomp: false }]);
  t.deepEqual(df.nodes[1]!.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp]), [['A', 'one\n', true, false], ['B', 'two\n', false, true]]);
  t.deepEqual(df.nodes[2]!.heredocs.map((h) => [h.name, h.content, h.expand]), [['X', 'raw $V\n', false]]);
  t.is(df.nodes[3]!.line, 12);
  t.throws(() => parseDockerfile('RUN <<EOF\necho\n'), { instanceOf: DockerfileParseError, message: /Dockerfile:1: unterminated heredoc <<EOF/ });
  t.deepEqual(parseDockerfile('RUN ["sh", "<<EOF"]\n').nodes[0]!.heredocs, [], 'the exec form has no heredocs');
});

test('errors name the line: no instructions, a word that is not an instruction', (t) => {
  t.throws(() => parseDockerfile('# only a comment\n\n'), { instanceOf: DockerfileParseError, message: /file with no instructions/ });
  t.throws(() => parseDockerfile('FROM x\n"RUN" y\n'), { message: /Dockerfile:2: unknown instruction: "RUN"/ });
  const e = t.throws(() => parseDockerfile('FROM x\n=oops\n'));
  t.true(e instanceof ValidationError);
});

test('substitution: $V, ${V}, defaults and alternatives, set-but-empty, escapes and quotes', (t) => {
  const env = new Map([['A', 'x'], ['E', ''], ['S', 'a b']]);
  t.is(expandWord('$A-${A}_$A_', env), 'x-x_');
  t.is(expandWord('${U:-d} ${E:-d} ${E-d} ${U-d}', env), 'd d  d');
  t.is(expandWord('${A:+y} ${E:+y} ${E+y} ${U+y}', env), 'y  y ');
  t.is(expandWord('${U:-${A}z}', env), 'xz', 'nested in the word');
  t.is(expandWord('\\$A \\\\ $', env), '$A \\ $');
  t.is(expandWord('\'$A\' "$A" "\\$A" "a\\b"', env), '$A x $A a\\b');
  t.is(expandWord('$1$', env), '$');
  t.throws(() => expandWord('${U:?must be set}', env), { message: /U: must be set/ });
  t.throws(() => expandWord('${A', env), { message: /missing \}/ });
  t.throws(() => expandWord('"open', env), { message: /matching double-quote/ });
  t.is(expandWord('$A', env, '`'), 'x');
  t.is(expandWord('`$A', env, '`'), '$A');
});

test('words: split on unquoted blanks after expansion of quoted parts only', (t) => {
  const env = new Map([['S', 'a b']]);
  t.deepEqual(expandWords('x "$S" \'y z\' $S', env), ['x', 'a b', 'y z', 'a b']);
  t.deepEqual(expandWords('  ', env), []);
});

test('ENV/LABEL pairs: one environment per instruction, legacy form, quotes', (t) => {
  const env = new Map([['a', 'old']]);
  t.deepEqual(keyValuePairs('a=new b=$a c="x y" d=\\$a', env, '\\', 'ENV'), [['a', 'new'], ['b', 'old'], ['c', 'x y'], ['d', '$a']]);
  t.deepEqual(keyValuePairs('K the rest $a', env, '\\', 'ENV'), [['K', 'the rest old']]);
  t.throws(() => keyValuePairs('K', env, '\\', 'ENV'), { message: /ENV must have two arguments/ });
  t.throws(() => keyValuePairs('=x', env, '\\', 'LABEL'), { message: /is not KEY=value/ });
});

test('.dockerignore: globs, **, leading /, parents, ! exceptions, last match wins', (t) => {
  const ig = new DockerIgnore('# comment\n/node_modules\n*.log\n!keep.log\n**/tmp\ndocs/*.md\n!docs/README.md\n\n');
  t.true(ig.ignores('node_modules'));
  t.true(ig.ignores('node_modules/a/b.js'), 'a path under an ignored directory');
  t.true(ig.ignores('x.log'));
  t.false(ig.ignores('sub/x.log'), '* does not cross /');
  t.false(ig.ignores('keep.log'));
  t.true(ig.ignores('a/b/tmp/c'));
  t.true(ig.ignores('tmp'));
  t.true(ig.ignores('docs/a.md'));
  t.false(ig.ignores('docs/README.md'));
  t.false(ig.ignores('src/index.js'));
  t.true(ig.hasExclusions);
  t.false(new DockerIgnore('').ignores('a'));
});
