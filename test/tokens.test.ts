import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import libraryRanks from 'gpt-tokenizer/bpeRanks/o200k_base';
import { countTokens as libraryCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countPromptTokens, countText, loadO200kRanks } from '../src/lib/tokens.ts';

describe('token counting', () => {
  test('the ranks read from the tiktoken file are the table of gpt-tokenizer’s own module, entry for entry', () => {
    const ours = loadO200kRanks();
    const theirs = libraryRanks as readonly (string | readonly number[])[];
    assert.equal(ours.length, theirs.length);
    let differing = 0;
    for (let i = 0; i < theirs.length; i++) if (JSON.stringify(ours[i]) !== JSON.stringify(theirs[i])) differing++;
    assert.equal(differing, 0);
    // Tokens that start with a byte-order mark are kept as bytes, as the library keeps them.
    assert.deepEqual(ours[5574], [239, 187, 191]);
  });

  test('counts agree with gpt-tokenizer on English, code, CJK, emoji, a byte-order mark and broken surrogates', () => {
    const texts = [
      'Say hello to the benchmark.',
      'function add(a, b) {\n  return a + b; // 🙂\n}',
      '日本語のテキストと한국어 그리고 Ελληνικά',
      '\uFEFFusing namespace std;',
      'lone \uD800 surrogate',
      ' '.repeat(100),
      '',
    ];
    for (const t of texts) assert.equal(countText(t), libraryCount(t), JSON.stringify(t));
  });

  test('a chat prompt counts every message with the framing overhead', () => {
    const n = countPromptTokens({ messages: [{ role: 'user', content: 'Say hello to the benchmark.' }] });
    assert.equal(n, 3 + 3 + 1 + libraryCount('Say hello to the benchmark.'));
  });
});
