/**
 * The benchmark's trace collector: the tests' real OTLP/gRPC receiver (grpc-js,
 * test/receivers/otlp.ts) in its own process, so the meshers export the 1% of requests they
 * sample to something real and the collector's CPU is not counted as theirs. Prints
 * "collector host:port"; writes the number of spans received so far to the file SPANS_FILE
 * each second (the spans themselves are dropped).
 */
import { writeFileSync } from "node:fs";
import { startOtlpReceiver } from "../test/receivers/otlp.ts";

const receiver = await startOtlpReceiver();
let total = 0;
setInterval(() => {
  total += receiver.spans.length;
  receiver.spans.length = 0;
  if (process.env.SPANS_FILE) writeFileSync(process.env.SPANS_FILE, String(total));
}, 1000);
console.log(`collector ${receiver.address}`);
