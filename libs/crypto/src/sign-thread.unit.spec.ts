import { generateKeyPairSync, verify } from 'node:crypto';
import { SigningUnavailableError, SignThread } from './sign-thread';
import { signatureOptions } from './signature-options';

const es256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

const verifies = (input: string, signature: string, publicKey: ReturnType<typeof es256>['publicKey']) => {
  const [digest, options] = signatureOptions('ES256', publicKey);
  return verify(digest, Buffer.from(input), options, Buffer.from(signature, 'base64url'));
};

describe('SignThread', () => {
  it('signs the requests of one turn in one batch, each with its own key (a rotation mid-batch)', async () => {
    const signer = new SignThread();
    try {
      const [a, b] = [es256(), es256()];
      const inputs = Array.from({ length: 40 }, (_, i) => `header.payload-${i}`);
      const signed = await Promise.all(inputs.map((input, i) => signer.sign('ES256', (i % 2 ? b : a).privateKey, input)));
      inputs.forEach((input, i) => {
        expect(verifies(input, signed[i], (i % 2 ? b : a).publicKey)).toBe(true);
        expect(verifies(input, signed[i], (i % 2 ? a : b).publicKey)).toBe(false);
      });
    } finally {
      await signer.close();
    }
  });

  it('fails the signatures a dead thread held, and the next one starts another thread (sending the key again)', async () => {
    const signer = new SignThread();
    const key = es256();
    try {
      expect(verifies('x.y', await signer.sign('ES256', key.privateKey, 'x.y'), key.publicKey)).toBe(true);
      const held = Promise.allSettled(Array.from({ length: 10 }, (_, i) => signer.sign('ES256', key.privateKey, `held.${i}`)));
      await signer.close();
      const outcomes = await held;
      expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof SigningUnavailableError)).toBe(true);
      // Same key object: the new thread has never seen it, so it must be sent again.
      expect(verifies('x.z', await signer.sign('ES256', key.privateKey, 'x.z'), key.publicKey)).toBe(true);
    } finally {
      await signer.close();
    }
  });

  it('answers a request it cannot sign with that request\'s error, and signs the others of the batch', async () => {
    const signer = new SignThread();
    const key = es256();
    try {
      // An X25519 key cannot sign at all: crypto.sign refuses it in the thread.
      const x25519 = generateKeyPairSync('x25519');
      const [bad, good] = await Promise.allSettled([signer.sign('ES256', x25519.privateKey, 'a.b'), signer.sign('ES256', key.privateKey, 'a.c')]);
      expect(bad.status).toBe('rejected');
      expect(good.status === 'fulfilled' && verifies('a.c', good.value, key.publicKey)).toBe(true);
    } finally {
      await signer.close();
    }
  });

  it('fails a batch that cannot be sent to the thread (an input that does not clone) without ending the process, and signs the next', async () => {
    const signer = new SignThread();
    const key = es256();
    try {
      await expect(signer.sign('ES256', key.privateKey, (() => 'x') as unknown as string)).rejects.toThrow();
      expect(verifies('a.d', await signer.sign('ES256', key.privateKey, 'a.d'), key.publicKey)).toBe(true);
    } finally {
      await signer.close();
    }
  });
});
