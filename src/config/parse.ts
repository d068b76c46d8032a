/**
 * Config file text to a value: JSON (`.json`) or YAML (`.yaml`, `.yml`, with the `yaml` package);
 * a file with another extension is read as JSON when it parses, else as YAML. Every syntax error is
 * one line naming the file, the line and the column.
 */
import { parseDocument } from 'yaml';
import { extname } from 'node:path';
import { UserError } from '../errors.js';

/** `line L, column C` (1-based) of character offset `pos` in `text`. */
export function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

/**
 * The offset of the first character where `text` stops being JSON (RFC 8259), or null when it is
 * JSON. Node 20's JSON.parse names the bad token but not where it is.
 */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    if (text.slice(i, i + word.length) !== word) fail(); // reported at the word's start
    i += word.length;
  };
  const string = () => {
    i++; // the opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined || c < ' ') fail();
      if (c === '"') return void i++;
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 5;
        } else if ('"\\/bfnrt'.includes(text[i] ?? 'x')) i++;
        else fail();
      } else i++;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m || m[0] === '' || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return null;
  } catch (pos) {
    if (typeof pos === 'number') return Math.min(pos, text.length);
    throw pos;
  }
}

/**
 * Parses JSON text, turning a syntax error into a {@link UserError} of one line naming `file`, line
 * and column; an object with a key twice is refused too, as in YAML configs.
 * @throws UserError when the text is not JSON or repeats a key.
 */
export function parseJsonFile(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const pos = jsonErrorOffset(text);
    const where = pos === null ? '' : ` at ${lineCol(text, pos)}`;
    const what = pos === null ? (e as Error).message.split('\n')[0]! : pos >= text.length ? 'the text ends too early' : `unexpected ${JSON.stringify(text[pos])}`;
    throw new UserError(`${file}: not valid JSON${where}: ${what}`);
  }
  // JSON.parse keeps the last of duplicate keys silently; YAML configs refuse them, and so do these
  // (JSON is YAML 1.2: its parser finds them, with their place)
  const dup = parseDocument(text, { uniqueKeys: true }).errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (dup) {
    const pos = dup.linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    const key = /^"((?:[^"\\]|\\.)*)"/.exec(text.slice(dup.pos[0]))?.[1];
    throw new UserError(`${file}: not valid JSON${where}: duplicate key${key === undefined ? '' : ` "${key}"`} (a key may appear once per object)`);
  }
  return value;
}

/**
 * Parses YAML text (YAML 1.2, core schema; duplicate keys are errors).
 * @throws UserError naming `file`, the line and column, and the parser's first line about it.
 */
export function parseYamlFile(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(`${file}: not valid YAML${where}: ${what}`);
  }
  return doc.toJS();
}

/** Whether a config file is YAML by its name (`.yaml`, `.yml`), JSON (`.json`), or to be told by its content. */
export function configFormat(file: string): 'json' | 'yaml' | 'either' {
  const ext = extname(file).toLowerCase();
  return ext === '.yaml' || ext === '.yml' ? 'yaml' : ext === '.json' ? 'json' : 'either';
}

/**
 * Parses a config file's text by its format ({@link configFormat}). A `.json` file that is not JSON
 * but is a YAML mapping is still an error, with a hint to name it `.yaml`.
 * @throws UserError on a syntax error (one line: file, line, column).
 */
export function parseConfigText(text: string, file: string): unknown {
  const format = configFormat(file);
  if (format === 'yaml') return parseYamlFile(text, file);
  try {
    return parseJsonFile(text, file);
  } catch (e) {
    let yaml: unknown = null;
    try {
      yaml = parseYamlFile(text, file);
    } catch {
      // neither: the JSON error stands
    }
    const mapping = typeof yaml === 'object' && yaml !== null && !Array.isArray(yaml);
    if (format === 'either' && mapping) return yaml;
    // a JSON object with a typo reads as a YAML flow mapping too: no hint for text that starts like JSON
    if (mapping && !/^\s*[{[]/.test(text)) throw new UserError(`${(e as Error).message} (it reads as YAML: name the file .yaml or .yml)`);
    throw e;
  }
}
