import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Reads a request body, or answers null as soon as more than `maxBytes` have arrived. The limit
 * is on the bytes actually read, not on Content-Length: a chunked body declares no length, so a
 * header check alone would buffer it without bound. Once over the limit the request is paused
 * (nothing more is read or kept) and the caller answers with `refuseTooLarge`.
 */
export function readBodyWithin(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.pause();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stop();
        // Removing the listener leaves the stream flowing (and its bytes dropped on the floor, but
        // still read); pausing lets TCP back-pressure stop the sender instead.
        req.pause();
        chunks.length = 0;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    const onClose = () => {
      stop();
      reject(new Error('the client closed the connection before the request body was complete'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/**
 * Answers 413 to a body `readBodyWithin` refused, and closes the connection: the rest of the body
 * is never read, so the connection cannot carry another request.
 */
export function refuseTooLarge(res: ServerResponse, body = '', headers: Record<string, string> = {}): void {
  res.writeHead(413, { ...headers, connection: 'close' });
  res.end(body);
}
