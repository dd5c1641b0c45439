// The first-boot password. The appliance generates 20 characters from an
// alphabet without look-alikes (firmware/auth GeneratePassword) and writes
// them to a root-only file, which is not a password to keep. The API does
// not say whether the password is still the generated one, so the login
// screen asks for a change when the API says so (password_change_required)
// or, without that answer, when the password typed has the generated form.

const GENERATED = /^[a-km-zA-HJ-NP-Z2-9]{20}$/;

/** looksGenerated reports whether pw has the form of a generated password. */
export function looksGenerated(pw) {
  // Mixed case as well: a generated password lacks one of the cases with
  // a chance of about 4 in 100 000, an all-lowercase phrase always does.
  // (Not digits: one in twenty generated passwords has none.)
  return typeof pw === 'string' && GENERATED.test(pw) && /[a-z]/.test(pw) && /[A-Z]/.test(pw);
}

/**
 * mustChangePassword decides after a login: the API's word when it gives
 * one, else the form of the password.
 */
export function mustChangePassword(loginAnswer, password) {
  if (loginAnswer && typeof loginAnswer.password_change_required === 'boolean') return loginAnswer.password_change_required;
  return looksGenerated(password);
}

/** MIN_PASSWORD is the API's minimum length (firmware/auth). */
export const MIN_PASSWORD = 12;

/** checkNewPassword returns a problem with a new password, or ''. */
export function checkNewPassword(current, next, repeat) {
  // The API counts bytes, as bcrypt does.
  const bytes = new TextEncoder().encode(next).length;
  if (bytes < MIN_PASSWORD) return `At least ${MIN_PASSWORD} characters.`;
  if (bytes > 72) return 'At most 72 bytes.';
  if (next === current) return 'Choose a password different from the current one.';
  if (next !== repeat) return 'The two new passwords differ.';
  return '';
}
