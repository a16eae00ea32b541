import { checkForm, TOKEN_REQUEST } from './oauth.dto';

describe('checkForm (OAuth form parameters)', () => {
  it('keeps the declared parameters and drops unknown ones (RFC 6749 §3.1)', () => {
    expect(checkForm(TOKEN_REQUEST, { grant_type: 'refresh_token', refresh_token: 'rt', extra: 'x' })).toEqual({
      ok: true,
      value: { grant_type: 'refresh_token', refresh_token: 'rt' },
    });
  });

  it('refuses a missing required parameter, a repeated one (an array) and an over-long one', () => {
    expect(checkForm(TOKEN_REQUEST, {})).toMatchObject({ ok: false, errors: expect.arrayContaining(['grant_type must be a string']) });
    expect(checkForm(TOKEN_REQUEST, { grant_type: 'refresh_token', scope: ['a', 'b'] })).toMatchObject({
      ok: false,
      errors: expect.arrayContaining(['scope must be a string']),
    });
    expect(checkForm(TOKEN_REQUEST, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(513) })).toEqual({
      ok: false,
      errors: ['refresh_token must be shorter than or equal to 512 characters'],
    });
    expect(checkForm(TOKEN_REQUEST, 'grant_type=refresh_token')).toEqual({ ok: false, errors: ['body must be an object'] });
  });

  it('does not read parameters from the prototype', () => {
    const body = Object.create({ grant_type: 'refresh_token' }) as object;
    expect(checkForm(TOKEN_REQUEST, body)).toMatchObject({ ok: false });
  });
});
