import { describe, expect, test } from "bun:test";
import { pushReused } from "./fastpath.ts";

/** A socket that takes `room` bytes, then nothing (the fault: a full send buffer). */
function fullSocket(room: number) {
  const taken: number[] = [];
  return {
    taken,
    write(data: Uint8Array, offset = 0, length = data.byteLength - offset) {
      const n = Math.min(room, length);
      room -= n;
      taken.push(...data.subarray(offset, offset + n));
      return n;
    },
  };
}

describe("pushReused", () => {
  test("what a full socket cannot take is queued as a copy: the reused buffer can be overwritten", () => {
    const buf = Buffer.from("GET /a HTTP/1.1\r\n\r\nrest of the buffer");
    const socket = fullSocket(4);
    const queue: Uint8Array[] = [];
    expect(pushReused(socket, queue, buf, 19)).toBe(false);
    buf.fill(0x78); // the next request's head written over it
    expect(Buffer.from(socket.taken).toString()).toBe("GET ");
    expect(queue.map((q) => Buffer.from(q).toString())).toEqual(["/a HTTP/1.1\r\n\r\n"]);
    // Behind a queue, the whole of it waits, copied too.
    buf.write("PUT /b HTTP/1.1\r\n\r\n");
    expect(pushReused(socket, queue, buf, 19)).toBe(false);
    buf.fill(0x79);
    expect(Buffer.from(queue[1]!).toString()).toBe("PUT /b HTTP/1.1\r\n\r\n");
  });

  test("a socket with room takes the bytes at once, nothing queued", () => {
    const socket = fullSocket(100);
    const queue: Uint8Array[] = [];
    expect(pushReused(socket, queue, Buffer.from("abcdef"), 3)).toBe(true);
    expect(queue).toEqual([]);
    expect(Buffer.from(socket.taken).toString()).toBe("abc");
  });
});
