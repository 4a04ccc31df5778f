// A small loopback HTTP server for ipk's fault and auth specs (Node's http
// module only, no dependencies). Started and stopped by PID from
// spec/support/ipfs_node.lua.
//
//   node fake.mjs DIR [TOKEN]
// DIR holds files the routes serve: blocks/<CID> (block bytes) and
// cars/<CID>.car. With TOKEN every /api/v0 request needs the header
// "Authorization: Bearer TOKEN" (Kubo's API.Authorizations), else 401.
// Prints "READY {"url":…,"pid":…}" once listening on 127.0.0.1 (free port).
//
// Routes (POST, like Kubo's RPC):
//   /api/v0/version                    {"Version":"fake"}
//   /api/v0/block/get?arg=CID          bytes of DIR/blocks/CID; a CID listed in
//                                      DIR/tamper gets one flipped byte; else 500
//   /api/v0/error                      500 {"Message":"fake failure","Code":0,"Type":"error"}
//   /api/v0/cat?arg=…                  Content-Length 100000, sends 4096 bytes, cuts the socket
//   /api/v0/slow                       never answers (timeouts, cancellation)
//   /api/v0/flaky?key=K&fail=N         503 for the first N requests with key K, then 200 "ok"
//   /api/v0/count                      number of requests served so far
// Gateway (GET): /ipfs/CID?format=raw -> block file (tampered if listed);
//   /ipfs/CID?format=car -> DIR/cars/CID.car; missing -> 404.
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'

const [dir, token] = process.argv.slice(2)
const flaky = new Map()
let served = 0

const tampered = (cid) => {
  try { return fs.readFileSync(path.join(dir, 'tamper'), 'utf8').split(/\s+/).includes(cid) } catch { return false }
}
const readBlock = (cid) => {
  if (!/^[A-Za-z0-9]+$/.test(cid)) return null
  try {
    const b = fs.readFileSync(path.join(dir, 'blocks', cid))
    if (tampered(cid) && b.length > 0) b[0] ^= 0xff
    return b
  } catch { return null }
}
const fail = (res, code, msg) => {
  res.writeHead(code, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify({ Message: msg, Code: 0, Type: 'error' }))
}

const server = http.createServer((req, res) => {
  served++
  const u = new URL(req.url, 'http://x')
  const p = u.pathname
  if (p.startsWith('/api/v0/')) {
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'Content-Type': 'text/plain' }); res.end('missing or wrong Authorization'); return
    }
    if (req.method !== 'POST') { res.writeHead(405); res.end('405 - Method Not Allowed'); return }
    req.resume()
    const route = p.slice(8)
    if (route === 'version') {
      res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify({ Version: 'fake' })); return
    }
    if (route === 'count') { res.end(String(served)); return }
    if (route === 'error') { fail(res, 500, 'fake failure'); return }
    if (route === 'slow') { return }
    if (route === 'flaky') {
      const k = u.searchParams.get('key'); const n = flaky.get(k) || 0
      flaky.set(k, n + 1)
      if (n < Number(u.searchParams.get('fail') || 0)) { res.writeHead(503); res.end('busy'); return }
      res.end('ok'); return
    }
    if (route === 'cat') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '100000' })
      res.write(Buffer.alloc(4096, 0x61), () => setTimeout(() => req.socket.destroy(), 50))
      return
    }
    if (route === 'block/get') {
      const b = readBlock(u.searchParams.get('arg') || '')
      if (!b) { fail(res, 500, 'block not found'); return }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); res.end(b); return
    }
    fail(res, 404, `unknown route ${route}`); return
  }
  const m = p.match(/^\/ipfs\/([A-Za-z0-9]+)$/)
  if (m && req.method === 'GET') {
    const fmt = u.searchParams.get('format')
    if (fmt === 'raw') {
      const b = readBlock(m[1])
      if (!b) { res.writeHead(404); res.end('not found'); return }
      res.writeHead(200, { 'Content-Type': 'application/vnd.ipld.raw' }); res.end(b); return
    }
    if (fmt === 'car') {
      let b
      try { b = fs.readFileSync(path.join(dir, 'cars', m[1] + '.car')) } catch { res.writeHead(404); res.end('not found'); return }
      res.writeHead(200, { 'Content-Type': 'application/vnd.ipld.car; version=1' }); res.end(b); return
    }
  }
  res.writeHead(404); res.end('not found')
})
server.listen(0, '127.0.0.1', () => {
  console.log('READY ' + JSON.stringify({ url: `http://127.0.0.1:${server.address().port}`, pid: process.pid }))
})
process.on('SIGTERM', () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref() })
