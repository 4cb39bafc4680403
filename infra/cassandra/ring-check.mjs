// Does every node of a local ring see the others, without nodetool? Used by ring.sh.
//
//   node infra/cassandra/ring-check.mjs [--wait SECONDS] name=host:port ...
//
// For each node: a client that may use that node alone (AllowListPolicy) reads system.local
// and system.peers_v2 (who it knows, for the report), then writes one row at consistency ALL
// to the keyspace ring_check (replication 3 in datacenter1, so every node holds every row).
// A coordinator refuses a write at ALL (Unavailable) while its failure detector holds any
// replica down, and the write succeeds only once all three replicas acknowledged it: so a
// success from every node means each one sees the other two up and reachable. system.peers
// alone would not do: it is a table on disk and still lists a node that was killed.
//
// Exit status 0 once every node passes (retrying for up to --wait seconds, default 0), else 1.

import cassandra from 'cassandra-driver';

const { Client, policies, types } = cassandra;
const DATA_CENTER = 'datacenter1';

const args = process.argv.slice(2);
let waitSeconds = 0;
const nodes = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--wait') {
    waitSeconds = Number(args[++i]);
  } else {
    const match = /^([^=]+)=([^:]+):([0-9]+)$/.exec(args[i]);
    if (match === null) {
      console.error(`usage: ring-check.mjs [--wait SECONDS] name=host:port ...; got "${args[i]}"`);
      process.exit(2);
    }
    nodes.push({ name: match[1], host: match[2], port: Number(match[3]) });
  }
}
const nameOf = (address) => nodes.find((node) => node.host === address)?.name ?? address;

function clientFor(node) {
  const point = `${node.host}:${node.port}`;
  return new Client({
    contactPoints: [point],
    // The driver seeks the peers it discovers on this port (9042 by default): on 127.0.0.1
    // that would be the dev node, a cluster of its own.
    protocolOptions: { port: node.port },
    localDataCenter: DATA_CENTER,
    policies: {
      loadBalancing: new policies.loadBalancing.AllowListPolicy(new policies.loadBalancing.DCAwareRoundRobinPolicy(DATA_CENTER), [point]),
      // One attempt per check: the loop below is the retry.
      retry: new policies.retry.FallthroughRetryPolicy(),
    },
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
    // The check needs no view of the whole cluster's schema.
    isMetadataSyncEnabled: false,
  });
}

let schemaReady = false;

/** One node's view: '' when it sees every other node up, else what is missing. */
async function check(node) {
  const client = clientFor(node);
  try {
    await client.connect();
    if (!schemaReady) {
      await client.execute(
        `CREATE KEYSPACE IF NOT EXISTS ring_check WITH replication = {'class': 'NetworkTopologyStrategy', '${DATA_CENTER}': ${nodes.length}}`,
      );
      await client.execute('CREATE TABLE IF NOT EXISTS ring_check.seen (node text PRIMARY KEY, at timestamp)');
      schemaReady = true;
    }
    const peers = (await client.execute('SELECT peer, host_id, tokens FROM system.peers_v2')).rows
      .filter((row) => row.host_id !== null && row.tokens !== null)
      .map((row) => nameOf(row.peer.toString()));
    const missing = nodes.filter((other) => other !== node && !peers.includes(other.name)).map((other) => other.name);
    if (missing.length > 0) return `knows no ${missing.join(', ')} yet (peers: ${peers.join(', ') || 'none'})`;
    await client.execute('INSERT INTO ring_check.seen (node, at) VALUES (?, toTimestamp(now()))', [node.name], {
      prepare: true,
      consistency: types.consistencies.all,
    });
    return '';
  } catch (error) {
    return (error?.message ?? String(error)).split('\n')[0];
  } finally {
    await client.shutdown().catch(() => {});
  }
}

const deadline = Date.now() + waitSeconds * 1000;
for (;;) {
  const problems = [];
  for (const node of nodes) {
    const problem = await check(node);
    if (problem !== '') problems.push(`${node.name} (${node.host}:${node.port}): ${problem}`);
  }
  if (problems.length === 0) {
    console.log(`every node sees the other ${nodes.length - 1} up (a write at ALL through each of ${nodes.map((node) => node.name).join(', ')} succeeded)`);
    process.exit(0);
  }
  if (Date.now() >= deadline) {
    for (const problem of problems) console.log(`not yet: ${problem}`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
