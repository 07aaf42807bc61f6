/**
 * Makes a request body replayable: buffers a streamed body up to a cap. A larger body is
 * handed on intact (the bytes read so far, then the rest of the stream) and is not retried.
 */
import type { Ctx } from "../../pipeline/types.ts";

/** True when `ctx.body` can be sent again (absent, or now buffered bytes). */
export async function bufferBody(ctx: Ctx, maxBytes: number): Promise<boolean> {
  const body = ctx.body;
  if (!(body instanceof ReadableStream)) return true;
  const declared = ctx.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) return false;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > maxBytes) {
      ctx.body = replayThenRest(chunks, reader);
      return false;
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  ctx.body = bytes;
  return true;
}

function replayThenRest(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < chunks.length) return controller.enqueue(chunks[i++]!);
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
