/** The signing thread of SignThread (sign-thread.ts): signs each batch it is sent, answers in one message. */
import { sign, type KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { signatureOptions } from './signature-options';
import type { SignBatch, SignReply } from './sign-thread';

const port = parentPort!;
const keys = new Map<number, KeyObject>();

port.on('message', (batch: SignBatch) => {
  for (const [id, key] of batch.keys) keys.set(id, key);
  const replies = batch.requests.map((r): SignReply => {
    try {
      const key = keys.get(r.key);
      if (!key) throw new Error(`signing key ${r.key} was never sent`);
      const [digest, options] = signatureOptions(r.alg, key);
      return { id: r.id, signature: sign(digest, Buffer.from(r.input), options).toString('base64url') };
    } catch (error) {
      return { id: r.id, error: error instanceof Error ? error.message : String(error) };
    }
  });
  port.postMessage(replies);
});
