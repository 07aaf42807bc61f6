/**
 * A tiny real DNS server (npm dns2) on 127.0.0.1 for tests: answers A, AAAA and SRV from a
 * table the test edits, and counts queries (to see TTL-driven refresh).
 */
import dns2 from "dns2";

const { Packet } = dns2;

export interface Records {
  A?: { address: string; ttl: number }[];
  AAAA?: { address: string; ttl: number }[];
  SRV?: { target: string; port: number; priority?: number; weight?: number; ttl: number }[];
}

export interface DnsServer {
  /** "127.0.0.1:port" for Resolver.setServers */
  readonly address: string;
  /** name -> records; edit it to change answers. */
  readonly zone: Map<string, Records>;
  /** Queries seen, as "TYPE name". */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPE_NAME: Record<number, keyof Records> = { [Packet.TYPE.A]: "A", [Packet.TYPE.AAAA]: "AAAA", [Packet.TYPE.SRV]: "SRV" };

export async function startDns(): Promise<DnsServer> {
  const zone = new Map<string, Records>();
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      for (const q of request.questions) {
        const type = TYPE_NAME[q.type];
        queries.push(`${type ?? q.type} ${q.name}`);
        const records = type ? zone.get(q.name.toLowerCase())?.[type] : undefined;
        if (!zone.has(q.name.toLowerCase())) response.header.rcode = 3; // NXDOMAIN
        for (const r of records ?? []) {
          response.answers.push({ name: q.name, type: q.type, class: Packet.CLASS.IN, priority: 0, weight: 1, ...r } as never);
        }
      }
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: "127.0.0.1" } });
  return {
    address: `127.0.0.1:${addresses.udp!.port}`,
    zone,
    queries,
    close: () => server.close(),
  };
}
