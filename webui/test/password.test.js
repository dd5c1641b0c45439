import { test } from 'node:test';
import assert from 'node:assert/strict';
import { looksGenerated, mustChangePassword, checkNewPassword } from '../src/lib/password.js';

test('the generated form: 20 characters without look-alikes', () => {
  assert.equal(looksGenerated('abcDEF234ghjKMN56789'), true);
  assert.equal(looksGenerated('abcDEF234ghjKMN5678'), false); // 19
  assert.equal(looksGenerated('abcDEF234ghjKMN56780'), false); // 0 is not in the alphabet
  assert.equal(looksGenerated('abcDEF234ghjKMN5678l'), false); // nor l
  assert.equal(looksGenerated('abcDEF234ghjKMN5678I'), false); // nor I
  assert.equal(looksGenerated('correct horse battery'), false);
  assert.equal(looksGenerated('abcDEFghjKMNpqrSTUvw'), true); // no digit: one in twenty are so
  assert.equal(looksGenerated('correcthorsebatterys'), false); // one case only
  assert.equal(looksGenerated(undefined), false);
});

test('the API decides when it answers', () => {
  assert.equal(mustChangePassword({ password_change_required: false }, 'abcDEF234ghjKMN56789'), false);
  assert.equal(mustChangePassword({ password_change_required: true }, 'my own long password'), true);
  assert.equal(mustChangePassword({ csrf_token: 'x' }, 'abcDEF234ghjKMN56789'), true);
  assert.equal(mustChangePassword({}, 'my own long password'), false);
});

test('checkNewPassword', () => {
  assert.match(checkNewPassword('old', 'short', 'short'), /12/);
  assert.match(checkNewPassword('same password', 'same password', 'same password'), /different/);
  assert.match(checkNewPassword('old', 'a long new password', 'a long new passworx'), /differ/);
  assert.match(checkNewPassword('old', 'é'.repeat(37), 'é'.repeat(37)), /72 bytes/);
  assert.equal(checkNewPassword('old', 'a long new password', 'a long new password'), '');
  // Bytes, not characters: six 2-byte characters are 12 bytes.
  assert.equal(checkNewPassword('old', 'éééééé', 'éééééé'), '');
});
