// ipk test node: a js-ipfs core (ipfs-core 0.18) with its Kubo-compatible
// HTTP RPC server and gateway, bound to loopback only, for ipk's
// integration specs (spec/support/ipfs_node.lua starts and stops it by PID).
//
//   node node.mjs REPO_DIR [API_PORT [SWARM_PORT [GATEWAY_PORT]]]   (0 = any free port)
//
// Network: 127.0.0.1 only; no bootstrap list, MDNS, DHT, preload nodes,
// delegates or NAT mapping: nodes meet only through swarm/connect. Pubsub is
// gossipsub; publishing with no peers succeeds, as on Kubo.
// When the API answers, prints one line: READY {"api":..,"gateway":..,"swarm":..,"peer":..,"pid":..}
// SIGTERM/SIGINT stop it cleanly.
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { HttpGateway } from 'ipfs-http-gateway'
import { createLibp2p } from 'libp2p'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'

const [repo, apiPort = '0', swarmPort = '0', gwPort = '0'] = process.argv.slice(2)
if (!repo) {
  console.error('usage: node node.mjs REPO_DIR [API_PORT [SWARM_PORT [GATEWAY_PORT]]]')
  process.exit(2)
}
const ip = '127.0.0.1'

const node = await create({
  repo,
  start: true,
  offline: false, // swarm, bitswap and pubsub need libp2p running
  silent: true,
  preload: { enabled: false, addresses: [] },
  init: { algorithm: 'Ed25519', emptyRepo: true, profiles: ['test'] },
  config: {
    Addresses: {
      Swarm: [`/ip4/${ip}/tcp/${swarmPort}`],
      Announce: [],
      NoAnnounce: [],
      API: `/ip4/${ip}/tcp/${apiPort}`,
      Gateway: `/ip4/${ip}/tcp/${gwPort}`,
      RPC: '',
      Delegates: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false, Interval: 10 }, webRTCStar: { Enabled: false } },
    Pubsub: { Router: 'gossipsub', Enabled: true },
    Swarm: { DisableNatPortMap: true, ConnMgr: { LowWater: 50, HighWater: 200 } },
    Routing: { Type: 'none' }
  },
  libp2p: async ({ libp2pOptions }) => {
    libp2pOptions.pubsub = gossipsub({
      fallbackToFloodsub: true,
      emitSelf: true,
      allowPublishToZeroPeers: true
    })
    libp2pOptions.start = false
    return createLibp2p(libp2pOptions)
  }
}).catch((err) => { console.error('node: start failed:', err); process.exit(1) })

const api = new HttpApi(node)
const gateway = new HttpGateway(node)
try {
  await api.start()
  await gateway.start()
} catch (err) {
  console.error('node: server start failed:', err)
  await node.stop().catch(() => {})
  process.exit(1)
}

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(0), 4000).unref()
  await Promise.allSettled([api.stop(), gateway.stop()])
  await node.stop().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

const uri = (ma) => { const p = ma.toString().split('/'); return `http://${p[2]}:${p[4]}` }
const id = await node.id()
const swarm = id.addresses.map(String).find((a) => a.startsWith(`/ip4/${ip}/tcp/`))
console.log('READY ' + JSON.stringify({
  api: uri(api._apiServers[0].info.ma),
  gateway: uri(gateway._gatewayServers[0].info.ma),
  swarm,
  peer: id.id.toString(),
  pid: process.pid
}))
