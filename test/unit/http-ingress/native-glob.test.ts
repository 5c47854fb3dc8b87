/**
 * The native HTTP engine routes with its own glob matcher (native/src/http/glob.h). It must
 * answer exactly as minimatch with the options routes.ts uses, for every pattern it accepts
 * (httpGlobProblem says ''); patterns outside the subset keep the listener on the JS path.
 * fast-check generates patterns and subjects from alphabets dense in the characters that
 * matter ('*', '?', '.', '/', '**' segments).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Minimatch } from 'minimatch';
import { loadNativeAddon } from '../../../shared/native/addon.js';

const addon = loadNativeAddon();
const skip = addon ? false : 'the native addon is not built';

const pathPattern = fc
  .array(fc.oneof(fc.constant('**'), fc.stringMatching(/^[ab.*?_-]{1,4}$/)), { minLength: 1, maxLength: 5 })
  .map((segments) => `/${segments.join('/')}`);
// Paths the engine routes itself: no empty segment but a trailing one, no "." or ".." segment
// (its parser hands the others to the JS path, which asks minimatch).
const pathSubject = fc
  .tuple(
    fc.array(
      fc.stringMatching(/^[ab.*?_-]{1,4}$/).filter((s) => s !== '.' && s !== '..'),
      { minLength: 1, maxLength: 5 },
    ),
    fc.boolean(),
  )
  .map(([segments, slash]) => `/${segments.join('/')}${slash ? '/' : ''}`);
const hostPattern = fc.stringMatching(/^[ab.*?-]{1,8}$/);
const hostSubject = fc.stringMatching(/^[ab.-]{0,8}$/);

test('path globs: the native matcher equals minimatch {dot: true} on every pattern it accepts', { skip }, () => {
  fc.assert(
    fc.property(pathPattern, fc.array(pathSubject, { minLength: 1, maxLength: 8 }), (pattern, subjects) => {
      if (addon!.httpGlobProblem(pattern, false) !== '') return;
      const m = new Minimatch(pattern, { dot: true });
      for (const s of subjects) assert.equal(addon!.httpGlobMatch(pattern, false, s), m.match(s), `${pattern} on ${s}`);
    }),
    { numRuns: 3000 },
  );
});

test('host globs: the native matcher equals minimatch {nocase, dot, noglobstar} on lower-cased hosts', { skip }, () => {
  fc.assert(
    fc.property(hostPattern, fc.array(hostSubject, { minLength: 1, maxLength: 8 }), (pattern, subjects) => {
      if (addon!.httpGlobProblem(pattern, true) !== '') return;
      const m = new Minimatch(pattern, { nocase: true, dot: true, noglobstar: true });
      for (const s of subjects) assert.equal(addon!.httpGlobMatch(pattern, true, s), m.match(s), `${pattern} on ${s}`);
    }),
    { numRuns: 3000 },
  );
});

test('the route shapes of the docs and tests are inside the subset; braces, classes, extglobs and negation are not', { skip }, () => {
  for (const p of ['/api/**', '/v1/**', '/static/*.js', '/a/**/b', '/health']) assert.equal(addon!.httpGlobProblem(p, false), '', p);
  for (const h of ['api.example.com', '*.example.com']) assert.equal(addon!.httpGlobProblem(h, true), '', h);
  for (const p of ['/api{,/**}', '/[ab]', '/+(a|b)', '!/x', '/a\\*', '/a//b', '/a/./b', '#c'])
    assert.notEqual(addon!.httpGlobProblem(p, false), '', p);
});
